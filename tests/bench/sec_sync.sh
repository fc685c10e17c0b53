# tests/bench/sec_sync.sh: background sync (-o sync=all).
#  - load: an organization synced at Cliq's budgets while a user works, side
#    by side with the same user work and no sync (sec_sync_load, below);
#  - size: synthetic organizations with budgets lifted (only cliqfs is
#    measured): time to synced, the daemon's peak RSS, the disk cache against
#    the messages' JSON;
#  - grep: after sync, `grep -r WORD` over the whole tree: the requests it
#    sends and its time, side by side with tmpfs and the FUSE floor serving
#    the same bytes (SYNC_GREP_ROUNDS rounds, interleaved).
# Sourced by run.sh; writes sync_load.jsonl, sync_size.jsonl, sync_grep.jsonl.

_sync_done() {
  jq -e '.sync.last_full_pass != null' "$MNT/.cliqfs/status" >/dev/null 2>&1
}

# ---- load: sync at Cliq's budgets beside a user --------------------------------
#
# sec_sync_load ORG SCALE: two mounts, one after the other, each on a freshly
# started emulator (ORG "demo" or a synthetic CxTxM, mounted with history=M)
# and an empty cache, at Cliq's budgets compressed by SCALE on both sides:
#   a. sync=all while a user works, until .cliqfs/status shows a full pass
#      (or SYNC_LOAD_READS reads are made, or the targets run out), so that
#      every read of run a is made while sync works;
#   b. sync=off with the same work: the same targets in the same order on the
#      same simulated schedule, as many reads as run a made (an even round
#      runs b first: sec_sync_load).
# The user's work: every SYNC_LOAD_EVERY simulated seconds one cold read a
# user waits for (a thread's messages and main, each thread once, read whole
# by this shell: _sync_load_read);
# before the first read in a channel and before every 4th read, an `ls` of
# the channel's folder (a person lists, then opens), timed apart, so that
# a read's wait is the thread's content and not the thread list sync may
# already have fetched.  Threads are taken one per joined channel in turn,
# least recently active first: sync fetches the most recently active first,
# so in run a the user reads threads sync has not reached.  A wait is the
# operation's wall time × SCALE (simulated seconds).  The reads start no
# process: on this machine the fork and exec of a `cat` cost about 5 ms,
# more than the cold read itself (about 3 ms), and under any load they
# spread far more (measured with sync at 100x: p99 27 ms with `cat`, 4 ms
# read by the shell), which would judge the machine's process start-up and
# not the read.  (`ls` is still the tool: it is timed apart.)
#
# Time scale.  The budget's minimum for 20x100x200 is hours of simulated
# time (4,000 and more chats.messages pages at 15 a minute, of which sync
# may take a share), so it is compressed 100x to take minutes (run a about 5
# real minutes, run b 1).  The ceiling is the machine: the syncer sends one
# request at a time (cache/store_sync.c), and while it fetches each thread's
# five documents besides its messages it may send about 100 requests a
# simulated minute (every API's background lane at once), 165 a real second
# at 100x, about what it manages on 2 cores (measured: 155).  Sync alone at
# 100x took 1.10x what the background lane allows for its 4,658
# chats.messages pages, 0 throttled; at 150x it took 2.9x the whole
# budget's minimum with every API at about half its lane's rate, the pace of
# the machine, not of the budget.  (With a share of 50 % sync may send half
# as much, which leaves room.)  The demo runs at 20x: it is small, and its
# first window asks for every thread's documents at once (some 100
# requests), more than the machine sends in the 0.6 s of a window at 100x.
# Its full pass comes after about 14 reads, so the p99 of one run is its
# slowest read: a single hiccup of the machine (20 ms real is 0.4 s
# simulated) decides it.  It runs in rounds (40), each a pair of runs a and
# b, half of them with b first, and the report judges the p99 of every
# round's reads together (some 550 with sync, as many without: the p99 is
# then the sixth slowest, not the slowest of 14), every round's own ratio
# shown beside it.  Why 40: pooling 446 reads each way from 32 rounds (CPUs
# kept awake), the p99 with sync was 0.95x without, and a bootstrap of
# those reads put its ratio at or below 1 with probability 0.78; the
# statistic is that close to its noise, and more reads narrow it.
#
# The requests sync needed: per API, what the emulator counted in run a (at
# the full pass) less what it counted in run b (the user's work alone).  A
# read whose thread sync had already fetched costs nothing in run a, so this
# errs towards fewer requests than sync sent, a shorter minimum and a larger
# (less flattering) ratio.  (.sync.requests of the status counts log refreshes,
# not pages, and is not split by API: it is recorded, not used.)  Sync may
# send max(1, floor(limit × share / 100)) requests a window, share being the
# status's .sync.share (100 when the build has none).

# sync_load_targets ORG N: up to N threads to read, "channel<TAB>folder"
# lines: threads whose titles are their folder names (unique in the channel,
# printable ASCII without '/'), one per joined channel in turn, least
# recently active first.  Last activity is the newest message's time; a
# synthetic organization's state leaves its messages out (they are
# generated), and its threads' last messages come in the order of their
# parents, so the parent's time (in thread_message_id) stands in.
sync_load_targets() {
  local q=/_emulator/state
  [ "$1" = demo ] || q="$q?messages=0"
  emu_ctl GET "$q" | jq -r --argjson n "$2" '
    [.channels[] | select(.joined != false) | .unique_name as $c
     | (.threads | group_by(.title) | map(select(length == 1) | .[0].title)) as $unique
     | [.threads[] | select(.title as $t | $unique | index($t))
        | select(.title | test("^[ -~]+$") and (test("/") | not))
        | {c: $c, t: .title,
           last: (([.messages[]?.time] | max)
                  // (.thread_message_id | split("_")[0] | tonumber))}]
     | sort_by(.last, .t) | to_entries[] | .value + {rank: .key}]
    | sort_by(.rank, .last, .c) | .[0:$n][] | [.c, .t] | @tsv'
}

# _sync_load_op DIR KIND K COMMAND...: runs COMMAND (output dropped) and
# appends "KIND K start end status" (real seconds) to DIR/ops.
_sync_load_op() {
  local dir=$1 kind=$2 k=$3
  shift 3
  local -a said=()
  [ -s "$dir/errors" ] && mapfile -t said <"$dir/errors"
  local before=${#said[@]}
  local a=$EPOCHREALTIME rc
  "$@" >/dev/null 2>>"$dir/errors"
  rc=$?
  local b=$EPOCHREALTIME
  # A read error leaves read's status as at the end of a file: what it
  # said counts too.
  if [ "$rc" -eq 0 ] && [ -s "$dir/errors" ]; then
    mapfile -t said <"$dir/errors"
    [ "${#said[@]}" -eq "$before" ] || rc=1
  fi
  printf '%s\t%d\t%s\t%s\t%d\n' "$kind" "$k" "$a" "$b" "$rc" >>"$dir/ops"
}

# _sync_load_read FILE...: reads each FILE whole in this shell (open, read
# to the end, close; no process is started).  Non-zero when a FILE cannot
# be opened; a read error is only said on stderr (read's status is 1 at
# the end of a file too), which _sync_load_op counts.
_sync_load_read() {
  local f x rc=0
  for f; do
    { IFS= read -r -d '' x || :; } <"$f" || rc=1
  done
  return "$rc"
}

# _sync_load_user DIR SCALE EVERY N T0: the user's work (run in the
# background): read k of DIR/targets (k = 0 .. N-1) at T0 + k × EVERY ÷
# SCALE (real epoch seconds), unless DIR/stop exists by then; DIR/user.end
# when it is over.
_sync_load_user() {
  local dir=$1 scale=$2 every=$3 n=$4 t0=$5
  local -a chans=() folders=()
  local -A listed=()
  local c t k
  while IFS=$'\t' read -r c t; do
    chans+=("$c")
    folders+=("$t")
  done <"$dir/targets"
  for ((k = 0; k < n && k < ${#chans[@]}; k++)); do
    sleep_until "$(calc "$t0 + $k * $every / $scale")"
    # The first read is made whatever happens: the mount has just started.
    ((k > 0)) && [ -e "$dir/stop" ] && break
    c=${chans[k]}
    if [ -z "${listed[$c]:-}" ] || ((k % 4 == 3)); then
      listed[$c]=1
      _sync_load_op "$dir" ls "$k" ls "$MNT/$c"
    fi
    t=$MNT/$c/${folders[k]}
    _sync_load_op "$dir" read "$k" _sync_load_read "$t/messages" "$t/main"
  done
  : >"$dir/user.end"
}

# _sync_load_synced: .cliqfs/status shows a full pass.  Read by the shell (no
# process): both runs poll it every 50 ms beside the measured daemon, so
# that what the polls cost the daemon is the same with and without sync.
_sync_load_synced() {
  local st=
  { IFS= read -r -d '' st <"$MNT/.cliqfs/status"; } 2>/dev/null
  [[ $st =~ \"last_full_pass\":\ *[0-9] ]]
}

# _sync_load_run DIR MODE SCALE N DEADLINE MOUNT_OPTIONS AWAKE: one mount
# (sync=MODE) of the running emulator with the user's work (N reads at most)
# and, for sync=all, until the full pass (DEADLINE real seconds at most);
# AWAKE 1 keeps every CPU awake during the run (stallprobe --keep-awake, see
# "Keeping the CPUs awake" above sec_sync_load).  Prints one
# JSON object (on stdout, which the caller sends to a file): the reads' and lists' waits (simulated), the counters at the
# full pass (sync=all; else at the end of the work), the status's sync block,
# throttled answers, the daemon's peak RSS at the end, and the CPU stalls
# during the run (stallprobe.c) with the reads each overlapped.
_sync_load_run() {
  local dir=$1 mode=$2 scale=$3 n=$4 deadline=$5 opts=$6 awake=$7
  rm -f "$dir/ops" "$dir/stop" "$dir/user.end" "$dir/errors"
  : >"$dir/ops"
  emu_reset
  # What the last run left to write back (its disk cache, its state) is
  # written now, not during this run's reads.
  sync
  local t0 t_user done_at='' c='' st=null dl upid probe
  # When no process could run on a CPU during the run (stallprobe.c): the
  # report counts the reads such a stall overlapped, with sync and without.
  local -a probe_args=()
  [ "$awake" = 1 ] && probe_args=(--keep-awake)
  "$BENCH_STALLPROBE" "${probe_args[@]}" "$dir/stalls" "$SYNC_LOAD_STALL_US" &
  probe=$!
  bench_bg_add "$probe"
  t0=$(now)
  bench_mount "time_scale=$scale,sync=$mode$opts"
  kill -0 "$probe" 2>/dev/null || bfail "sync: stallprobe did not start (it needs a SCHED_FIFO thread: root)"
  t_user=$(now)
  _sync_load_user "$dir" "$scale" "$SYNC_LOAD_EVERY" "$n" "$t_user" &
  upid=$!
  bench_bg_add "$upid"
  dl=$(calc "($t_user + $deadline) * 1000000")
  dl=${dl%.*}
  while :; do
    if [ "$mode" = all ] && [ -z "$done_at" ] && _sync_load_synced; then
      done_at=$(now)
      : >"$dir/stop"
      c=$(emu_counters)
      st=$(jq -c .sync "$MNT/.cliqfs/status")
    fi
    [ -e "$dir/user.end" ] && { [ "$mode" = off ] || [ -n "$done_at" ]; } && break
    if [ "${EPOCHREALTIME/./}" -gt "$dl" ]; then
      : >"$dir/stop"
      break
    fi
    nap 0.05
  done
  # The read under way when sync was done (a read waits at most max_wait,
  # 60 real seconds).
  wait_for 90 test -e "$dir/user.end" || bfail "sync: $ORG_LOAD: the user's work did not end"
  bench_bg_stop
  [ -f "$dir/stalls" ] || bfail "sync: stallprobe wrote no $dir/stalls"
  local stalls
  stalls=$(awk 'BEGIN { printf "[" } { printf "%s[%s,%s]", (NR > 1 ? "," : ""), $2, $3 } END { printf "]" }' \
    "$dir/stalls")
  local end_c hwm
  end_c=$(emu_counters)
  [ -n "$c" ] || c=$end_c
  [ "$st" != null ] || st=$(jq -c .sync "$MNT/.cliqfs/status")
  hwm=$(proc_kb "$CLIQFS_PID" VmHWM)
  # Reads (or anything) that waited for a rate slot: the governor logs each.
  local slot_waits
  slot_waits=$(grep -c "waiting for " "$MNT_DIR/cliqfs.log" 2>/dev/null || true)
  if [ -s "$dir/errors" ]; then
    blog "sync: $ORG_LOAD sync=$mode: errors of the user's work: $(head -c 300 "$dir/errors")"
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$BENCH_KEEP"
    cp "$MNT_DIR/cliqfs.log" "$BENCH_KEEP/$ORG_LOAD-$mode.log"
    cp "$dir/ops" "$BENCH_KEEP/$ORG_LOAD-$mode.ops"
    cp "$dir/stalls" "$BENCH_KEEP/$ORG_LOAD-$mode.stalls"
  fi
  jq -Rsc --argjson s "$scale" --argjson t0 "$t0" --argjson tu "$t_user" \
    --argjson done_at "${done_at:-null}" --argjson c "$c" --argjson ce "$end_c" \
    --argjson st "$st" --argjson hwm "$hwm" --arg mode "$mode" \
    --argjson slot_waits "${slot_waits:-0}" --argjson stalls "$stalls" \
    --argjson stall_us "$SYNC_LOAD_STALL_US" --argjson awake "$awake" '
      split("\n") | map(select(length > 0) | split("\t")
        | {kind: .[0], k: (.[1] | tonumber), a: (.[2] | tonumber), b: (.[3] | tonumber),
           rc: (.[4] | tonumber)}) as $ops
      | ($ops | map(select(.kind == "read"))) as $r | ($ops | map(select(.kind == "ls"))) as $l
      | {run: "sync=\($mode)", reads: ($r | length), ls: ($l | length),
         read_k: ($r | map(.k)), ls_k: ($l | map(.k)),
         failed: ($ops | map(select(.rc != 0)) | length),
         waits_sim: ($r | map((.b - .a) * $s)), ls_sim: ($l | map((.b - .a) * $s)),
         read_stalled: ($r | map(. as $o | any($stalls[]; .[0] < $o.b and .[1] > $o.a))),
         stalls: ($stalls | length), stall_us: $stall_us, cpus_awake: ($awake == 1),
         stall_max_ms: ($stalls | map((.[1] - .[0]) * 1000) | max // 0),
         last_read_at_sim: ((($r | map(.a) | max // $tu) - $tu) * $s),
         synced: ($done_at != null),
         real_s: (if $done_at then $done_at - $t0 else null end),
         sim_s: (if $done_at then ($done_at - $t0) * $s else null end),
         apis: ($c.apis | map_values(.total)),
         limits: ($c.windows | map_values(.limit)),
         window_sim_s: ($c.windows | map_values(.window_ms / 1000 * $s)),
         max_in_window: ($c.windows | map_values(.max_in_window) | with_entries(select(.value > 0))),
         requests: $c.total, throttled: $ce.throttled, hwm_kb: $hwm, status_sync: $st,
         slot_waits: $slot_waits}' "$dir/ops"
  bench_unmount
}

# Keeping the CPUs awake.  This machine is a virtual one: a CPU with nothing
# to run halts, and the host wakes it when it has work again, which now and
# then takes milliseconds.  The demo's reads (about 3 ms real each, a second
# apart) are short against that, and the CPUs idle between them: the stall
# probe (stallprobe.c) counted 50 wake-ups of 3 ms or more late in 8 rounds
# with sync and 16 without (sync's bursts halt and wake the CPUs more often;
# the committed run of 24 rounds before this: 67 and 45), and they decided
# the reads' tail both ways.  With a spinning thread per CPU at SCHED_IDLE
# beside both runs (stallprobe --keep-awake: it runs only when nothing else
# wants the CPU, and anything that wakes preempts it) the CPUs never halt:
# in 32 rounds 5 such stalls with sync and 6 without, none during a read;
# the reads' tail is then the daemon's, the emulator's and the kernel's.
# What is measured is sync's cost to a user on a machine whose CPUs wake at
# once; the probe still runs and counts what stalls remain.
# Only for the organizations in SYNC_LOAD_AWAKE (run.sh): where sync is
# CPU-bound (20x100x200 at 100x) the CPUs never idle, and the spinner would
# only take its sliver from sync.
#
# sec_sync_load ORG SCALE ROUND: one round (the pair of runs a and b).  Odd
# rounds run a first (it decides how many reads the pair makes: until the
# full pass), even rounds run b first, with as many reads as the last round's
# run a made, and then run a with that many at most; both are then cut to the
# reads both made (the first N of each, by the targets' order).  A round's
# order is its "first" field; the alternation keeps what comes of going first
# (a fresher machine, the page cache) from counting for or against sync.
declare -A SYNC_LOAD_LAST_N=()
sec_sync_load() {
  local org=$1 scale=$2 round=$3
  ORG_LOAD=$org-$round
  local dir=$BENCH_TMP/syncload-$org-$round opts=
  mkdir -p "$dir"
  local -a emu_args=(--demo)
  if [ "$org" != demo ]; then
    emu_args=(--synthetic "$org")
    opts=",history=${org##*x}"
  fi
  local first=all awake=0
  [[ " $SYNC_LOAD_AWAKE " == *" $org "* ]] && awake=1
  if ((round % 2 == 0)) && [ -n "${SYNC_LOAD_LAST_N[$org]:-}" ]; then
    first=off
  fi
  blog "sync: $org at Cliq's budgets (time_scale $scale) with a user at work and the same work without sync, sync=$first first (round $round)"
  bench_emu "${emu_args[@]}" --time-scale "$scale"
  sync_load_targets "$org" "$SYNC_LOAD_READS" >"$dir/targets"
  local n a b
  n=$(grep -c . "$dir/targets")
  [ "$n" -gt 0 ] || bfail "sync: $org has no thread to read"
  [ "$first" = off ] && n=${SYNC_LOAD_LAST_N[$org]}
  local -a order=(all off)
  [ "$first" = off ] && order=(off all)
  local mode started=
  for mode in "${order[@]}"; do
    # Each run on a fresh emulator (the same organization, windows and
    # counters empty) and a fresh mount (bench_mount: new, empty cache and
    # state).  Not in a $(...): the mount must stay known to this shell
    # (bench_cleanup).
    [ -n "$started" ] && bench_emu "${emu_args[@]}" --time-scale "$scale"
    started=1
    if [ "$mode" = all ]; then
      _sync_load_run "$dir" all "$scale" "$n" "$SYNC_LOAD_DEADLINE" "$opts" "$awake" >"$dir/with.json"
      n=$(jq .reads "$dir/with.json")
      [ "$n" -gt 0 ] || bfail "sync: $org was synced before the user's first read"
      [ "$first" = all ] && SYNC_LOAD_LAST_N[$org]=$n
    else
      _sync_load_run "$dir" off "$scale" "$n" "$(calc "$n * $SYNC_LOAD_EVERY / $scale + 120")" \
        "$opts" "$awake" >"$dir/without.json"
    fi
  done
  # Both cut to the first n reads (and the lists made before them).
  local cut='.reads_made = .reads
    | ([.read_k, .waits_sim] | transpose | map(select(.[0] < $n) | .[1])) as $w
    | ([.ls_k, .ls_sim] | transpose | map(select(.[0] < $n) | .[1])) as $l
    | ([.read_k, .read_stalled] | transpose | map(select(.[0] < $n) | .[1])) as $rs
    | .waits_sim = $w | .reads = ($w | length) | .ls_sim = $l | .ls = ($l | length)
    | .read_stalled = $rs | .reads_stalled = ($rs | map(select(.)) | length)
    | del(.read_k, .ls_k)'
  a=$(jq -c --argjson n "$n" "$cut" "$dir/with.json")
  b=$(jq -c --argjson n "$n" "$cut" "$dir/without.json")
  [ "$(jq .reads <<<"$b")" -eq "$n" ] || bfail "sync: $org: $n reads with sync, $(jq .reads <<<"$b") without"
  emu_stop
  local common
  common=$(jq -nc --arg org "$org" --argjson s "$scale" --argjson e "$SYNC_LOAD_EVERY" \
    --argjson r "$round" --arg first "$first" \
    '{org: $org, time_scale: $s, every_s: $e, round: $r, first: $first}')
  # What sync needed and the budget's minimum, at the share and at the whole
  # limit (per API; the slowest decides).
  res_add sync_load.jsonl "$(jq -nc --argjson a "$a" --argjson b "$b" --argjson common "$common" '
    ($a.status_sync.share // null) as $sh | ($sh // 100) as $share
    | [$a.apis | to_entries[] | select(.key != "oauth.token")
       | {api: .key, with_sync: .value, without: ($b.apis[.key] // 0)}
       | .sync = ([.with_sync - .without, 0] | max) | select(.sync > 0)
       | .limit = $a.limits[.api] | .window_s = $a.window_sim_s[.api]
       | .allowed = ([1, (.limit * $share / 100 | floor)] | max)
       | .min_share_s = (.sync / .allowed * .window_s)
       | .min_whole_s = (.sync / .limit * .window_s)] as $per
    | $common + $a + {share: $share, share_in_status: ($sh != null), per_api: $per,
        min_share_s: ([$per[].min_share_s] | max), min_whole_s: ([$per[].min_whole_s] | max),
        slowest_api: ($per | max_by(.min_share_s) | .api)}')"
  res_add sync_load.jsonl "$(jq -nc --argjson b "$b" --argjson common "$common" '$common + $b')"
}

sec_sync_size() {
  local size=$1
  blog "sync: synthetic $size, budgets lifted"
  bench_emu --synthetic "$size" --time-scale 100000
  local m=${size##*x} t0 t1
  t0=$(now)
  bench_mount "sync=all,history=$m,$BENCH_NOLIMITS"
  wait_for 900 _sync_done || bfail "sync: $size was not synced within 900 s"
  t1=$(now)
  # Idle logs leave memory within the refresher's next rounds.
  nap 5
  local hwm rss disk st chat json_pm
  hwm=$(proc_kb "$CLIQFS_PID" VmHWM)
  rss=$(proc_kb "$CLIQFS_PID" VmRSS)
  disk=$(du -sb "$MNT_DIR/cache" | cut -f 1)
  st=$(jq -c '{sync, memory}' "$MNT/.cliqfs/status")
  chat=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r '.channels[0].threads[0].chat_id')
  json_pm=$(json_bytes_per_message "$chat" "$m")
  res_add sync_size.jsonl "$(jq -nc --arg size "$size" --argjson st "$st" \
    --argjson real "$(calc "$t1 - $t0")" --argjson hwm "$hwm" --argjson rss "$rss" \
    --argjson disk "$disk" --argjson json_pm "$json_pm" '
      {size: $size, synced_s: $real, messages: $st.sync.messages,
       requests: $st.sync.requests, hwm_kb: $hwm, rss_kb: $rss,
       log_bytes: $st.memory.log_bytes, logs_on_disk_only: $st.memory.logs_on_disk_only,
       disk_bytes: $disk, json_bytes: ($json_pm * $st.sync.messages),
       disk_per_json: ($disk / ($json_pm * $st.sync.messages))}')"
  bench_unmount
}

sec_sync_grep() {
  blog "sync: grep -r after sync ($SYNC_GREP_ROUNDS rounds)"
  bench_emu --demo --time-scale 100000
  bench_mount "sync=all,$BENCH_NOLIMITS"
  wait_for 120 _sync_done || bfail "sync: the demo was not synced within 120 s"
  local dir=$BENCH_TMP/syncgrep shm
  mkdir -p "$dir"
  shm=$(mktemp -d /dev/shm/cliqfs-bench.XXXXXX)
  # The same bytes in tmpfs: every file of every thread and channel.
  (cd "$MNT" && find . -path ./.cliqfs -prune -o -type f -print0 |
    xargs -0 cp --parents -t "$shm") || bfail "sync: copying the tree to $shm failed"
  floor_mount "$shm" "$dir/floor" "$dir/floorfs.log"
  local word=the round fs t0 t1 out lines req
  emu_reset
  for round in $(seq 1 "$SYNC_GREP_ROUNDS"); do
    for fs in cliqfs floor tmpfs; do
      case $fs in
        cliqfs) out=$MNT ;;
        floor) out=$dir/floor ;;
        tmpfs) out=$shm ;;
      esac
      t0=$(now)
      lines=$(grep -r --exclude-dir=.cliqfs -e "$word" "$out" | wc -l)
      t1=$(now)
      res_add sync_grep.jsonl "$(jq -nc --arg fs "$fs" --argjson r "$round" \
        --argjson s "$(calc "$t1 - $t0")" --argjson l "$lines" \
        '{fs: $fs, round: $r, seconds: $s, lines: $l}')"
    done
  done
  req=$(emu_total)
  res_add sync_grep.jsonl "{\"fs\":\"meta\",\"requests_during\":$req}"
  fusermount3 -u "$dir/floor"
  bench_bg_stop
  rm -rf "$shm"
  bench_unmount
  emu_stop
  local distinct
  distinct=$(jq -s '[.[] | select(.fs != "meta") | .lines] | unique | length' "$BENCH_RES/sync_grep.jsonl")
  [ "$distinct" -eq 1 ] || bfail "sync: grep -r found different lines on the three filesystems"
}

sec_sync() {
  local s
  # ORG:SCALE[:ROUNDS]: the rounds of one organization run one after the
  # other.
  local org scale rounds r
  for s in $SYNC_LOAD; do
    IFS=: read -r org scale rounds <<<"$s"
    for r in $(seq 1 "${rounds:-1}"); do
      sec_sync_load "$org" "$scale" "$r"
    done
  done
  for s in $SYNC_SIZES; do
    sec_sync_size "$s"
  done
  [ "$SYNC_GREP_ROUNDS" -gt 0 ] && sec_sync_grep
  emu_stop
}
