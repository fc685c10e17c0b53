# tests/bench/sec_latency.sh: latency of cached reads of small files, on
# cliqfs (warm), on the same bytes in tmpfs (/dev/shm) and on floorfs (the
# FUSE floor: the same bytes from memory, keeping the page cache, with
# cliqfs's timeouts).  Sourced by run.sh; writes latency.jsonl and
# latency_kinds.jsonl.
#
# Placement.  A cached read is two FUSE round trips of some 20 us each; on a
# small virtual machine where the scheduler puts the daemon's worker threads
# (beside the reader or on the other vCPU, warm or cold) moves a daemon's p50
# by a third, and the placement a daemon gets sticks for seconds: two copies
# of the same floorfs measured side by side differ by up to 1.4x from one
# round to the next.  So every round is measured twice: unpinned, as a user
# runs it, and pinned (the reader on one CPU, every daemon's threads on
# another: the same placement for all), which takes placement out; what is
# left (the virtual CPU's own fast and slow spells) shows as the control's
# spread.  The targets are judged on the pinned rounds; the report shows
# both, and a second floorfs against the first (floor2) as the machine's own
# spread.
#
# Workers.  A daemon's p50 also depends on how many FUSE workers the kernel
# cycles through (here an even count cost nearly twice an odd one), and a
# daemon keeps every worker it started: before the rounds every daemon is
# filled to the same count, cliqfs's (_lat_fill_workers).  Without that, one
# floorfs with another count ran at 0.6x the others for whole runs.
#
# The budget must not be what is measured: the emulator's windows are shrunk
# to nothing and cliqfs runs at time_scale 1 (its real cache lifetimes) with
# budgets it cannot reach.

# Read APIs whose budget is lifted for this section and the scale section.
BENCH_NOLIMITS="limit.channels.list=100000/60,limit.channels.get=100000/60"
BENCH_NOLIMITS+=",limit.threads.list=100000/60,limit.chats.messages=100000/60"
BENCH_NOLIMITS+=",limit.messages.get=100000/60,limit.threads.get=100000/60"
BENCH_NOLIMITS+=",limit.threads.main=100000/60,limit.chats.members=100000/60"
BENCH_NOLIMITS+=",limit.threads.followers.get=100000/60"
BENCH_NOLIMITS+=",limit.threads.nonfollowers=100000/60"

# The small files read: kinds whose content is known from the listing
# (state, title) or cached after a first read (info, main, members), and
# the thread's log (messages).
LAT_KINDS="state title info main members messages"

# _lat_pin PIDS CPUS: every thread of each process may run on CPUS only
# (threads it starts later inherit it).
_lat_pin() {
  local pid
  for pid in $1; do
    taskset -a -p -c "$2" "$pid" >/dev/null || bfail "taskset -a -p -c $2 $pid failed"
  done
}

# _daemon_reads PID: the read() calls the process has made (/proc/PID/io).
_daemon_reads() {
  awk '$1 == "syscr:" { print $2 }' "/proc/$1/io"
}

# _threads PID: the process's threads now.
_threads() {
  awk '$1 == "Threads:" { print $2 }' "/proc/$1/status"
}

# _lat_fill_workers PID LIST [THREADS]: readers of LIST, four per worker,
# three times over, so that the daemon starts as many FUSE workers as it may
# (its max_threads); with THREADS, again (five times at most) until the
# process has that many threads, or fails.  libfuse starts a worker when
# every one it has is busy and keeps it.
_lat_fill_workers() {
  local pid=$1 list=$2 want=${3:-} pass k
  local -a readers
  for pass in 1 2 3 4 5; do
    readers=()
    for k in $(seq 1 $((4 * CLIQFS_WORKERS))); do
      (for _ in 1 2 3; do xargs -d '\n' cat -- <"$list" >/dev/null || exit 1; done) &
      readers+=($!)
    done
    for k in "${readers[@]}"; do
      wait "$k" || bfail "latency: reading $list to start the workers of $pid failed"
    done
    [ -z "$want" ] || [ "$(_threads "$pid")" -ge "$want" ] && return 0
  done
  return 1
}

# _lat_measure SET ROUND KIND PINNED ITERATIONS LIST...: one readlat over the
# lists (dir/list.FS[.KIND]), one record per filesystem in SET, with the
# read() calls each daemon made per operation (/proc/PID/io: FUSE requests
# are read() calls on /dev/fuse; more means file reads).  PINNED true: the
# reader runs on CPU 0 and every daemon on CPU 1, for this run only.  Uses
# $dir and $daemon_pid of sec_latency.
_lat_measure() {
  local set=$1 round=$2 kind=$3 pinned=$4 iters=$5
  shift 5
  local -A r0=()
  local -a runner=()
  local fs out line list files reads
  if [ "$pinned" = true ]; then
    _lat_pin "${daemon_pid[*]}" 1
    runner=(taskset -c 0)
  fi
  for fs in "${!daemon_pid[@]}"; do
    r0[$fs]=$(_daemon_reads "${daemon_pid[$fs]}")
  done
  out=$("${runner[@]}" "$BENCH_READLAT" -n "$iters" -b "$LAT_BLOCK" "$@") ||
    bfail "readlat failed on $*"
  [ "$pinned" = true ] && _lat_pin "${daemon_pid[*]}" "0-$(($(nproc) - 1))"
  while IFS= read -r line; do
    read -r list files < <(jq -r '"\(.list) \(.files)"' <<<"$line")
    fs=${list##*/list.}
    fs=${fs%%.*}
    reads=null
    if [ -n "${daemon_pid[$fs]:-}" ]; then
      # The warm-up pass read every file once besides the timed operations.
      reads=$(calc "($(_daemon_reads "${daemon_pid[$fs]}") - ${r0[$fs]}) / ($iters + $files)")
    fi
    res_add "$set" "$(jq -c --arg fs "$fs" --arg k "$kind" --argjson r "$round" \
      --argjson reads "$reads" --argjson pinned "$pinned" \
      'del(.list) + {fs: $fs, round: $r, pinned: $pinned}
       + (if $k == "" then {} else {kind: $k} end)
       + (if $reads == null then {} else {daemon_reads_per_op: $reads} end)' <<<"$line")"
  done <<<"$out"
}

sec_latency() {
  blog "latency: cached reads ($LAT_ITER operations x $LAT_ROUNDS rounds)"
  bench_emu --demo --time-scale 100000
  bench_mount "$BENCH_NOLIMITS"
  local dir=$BENCH_TMP/latency
  mkdir -p "$dir"
  # Warm: list everything, read every file once.
  ls -lR "$MNT" >/dev/null || bfail "latency: ls -lR failed"
  local rel kind
  : >"$dir/rel"
  while IFS= read -r rel; do
    for kind in $LAT_KINDS; do
      printf '%s\n' "$rel/$kind" >>"$dir/rel"
    done
  done < <(cd "$MNT" && find . -mindepth 2 -maxdepth 2 -type d ! -path './.cliqfs*' | sed 's|^\./||' | sort)
  local files
  files=$(wc -l <"$dir/rel")
  [ "$files" -gt 0 ] || bfail "latency: no files"
  # One process reads them all (the harness's own processes would take
  # CPU from the measured daemon on a small machine).
  (cd "$MNT" && xargs -d '\n' cat -- <"$dir/rel" >/dev/null) ||
    bfail "latency: cannot read every file of $dir/rel"

  # The same bytes in tmpfs, and floorfs serving that copy.
  local shm
  shm=$(mktemp -d /dev/shm/cliqfs-bench.XXXXXX)
  (cd "$MNT" && xargs -d '\n' cp --parents -t "$shm" -- <"$dir/rel") ||
    bfail "latency: copying the files to $shm failed"
  # floorfs three times: as small as a FUSE filesystem gets (floor, and
  # floor2, the control), and answering FLUSH as cliqfs must (it posts on
  # close), one more request per close.
  local fs
  local -A daemon_pid=([cliqfs]=$CLIQFS_PID)
  for fs in floorflush floor floor2; do
    if [ "$fs" = floorflush ]; then
      floor_mount "$shm" "$dir/$fs" "$dir/floorfs.log" -o flush
    else
      floor_mount "$shm" "$dir/$fs" "$dir/floorfs.log"
    fi
    daemon_pid[$fs]=$FLOOR_PID
    sed "s|^|$dir/$fs/|" "$dir/rel" >"$dir/list.$fs"
  done
  sed "s|^|$MNT/|" "$dir/rel" >"$dir/list.cliqfs"
  sed "s|^|$shm/|" "$dir/rel" >"$dir/list.tmpfs"

  local -A threads0=()
  for fs in "${!daemon_pid[@]}"; do
    if [ "$fs" = cliqfs ]; then
      _lat_fill_workers "${daemon_pid[$fs]}" "$dir/list.$fs"
    else
      _lat_fill_workers "${daemon_pid[$fs]}" "$dir/list.$fs" $((CLIQFS_WORKERS + 1)) ||
        bfail "latency: $fs has $(_threads "${daemon_pid[$fs]}") threads after five passes of readers, not $((CLIQFS_WORKERS + 1))"
    fi
    threads0[$fs]=$(_threads "${daemon_pid[$fs]}")
  done

  emu_reset
  # One readlat per round reads every filesystem, alternating in blocks of
  # LAT_BLOCK operations, so that each round's ratios compare filesystems
  # measured under the same state of the shared machine; the order of the
  # filesystems turns by one each round.  Each round runs unpinned, then
  # pinned (when there are two CPUs).
  local -a order=(cliqfs floor floor2 floorflush tmpfs) lists
  local round i pinned
  for round in $(seq 1 "$LAT_ROUNDS"); do
    lists=()
    for i in "${!order[@]}"; do
      lists+=("$dir/list.${order[(i + round - 1) % ${#order[@]}]}")
    done
    for pinned in $LAT_PLACEMENTS; do
      _lat_measure latency.jsonl "$round" "" "$pinned" "$LAT_ITER" "${lists[@]}"
    done
  done
  # Per kind of file, cliqfs against the floor (a fifth of the operations),
  # interleaved in the same way, LAT_ROUNDS times.
  local kind
  for kind in $LAT_KINDS; do
    for fs in cliqfs floor; do
      grep -E "/$kind\$" "$dir/list.$fs" >"$dir/list.$fs.$kind"
    done
  done
  for round in $(seq 1 "$LAT_ROUNDS"); do
    for kind in $LAT_KINDS; do
      if ((round % 2)); then
        lists=("$dir/list.cliqfs.$kind" "$dir/list.floor.$kind")
      else
        lists=("$dir/list.floor.$kind" "$dir/list.cliqfs.$kind")
      fi
      for pinned in $LAT_PLACEMENTS; do
        _lat_measure latency_kinds.jsonl "$round" "$kind" "$pinned" $((LAT_ITER / 5)) "${lists[@]}"
      done
    done
  done
  local during
  during=$(emu_total)

  # floorfs with at most 1 to LAT_WORKERS_MAX workers, each read until it has
  # them all (or five passes of readers), in one readlat per round (pinned
  # when there are two CPUs): what the number of workers the kernel cycles
  # through costs on this machine.  Each record has the workers the daemon
  # had (its threads less the main one).
  local n placement=${LAT_PLACEMENTS##* }
  local -a wlists=()
  for n in $(seq 1 "$LAT_WORKERS_MAX"); do
    CLIQFS_WORKERS=$n floor_mount "$shm" "$dir/w$n" "$dir/floorfs.log"
    daemon_pid[w$n]=$FLOOR_PID
    sed "s|^|$dir/w$n/|" "$dir/rel" >"$dir/list.w$n"
    CLIQFS_WORKERS=$n _lat_fill_workers "$FLOOR_PID" "$dir/list.w$n" $((n + 1)) || true
    wlists+=("$dir/list.w$n")
  done
  for round in $(seq 1 "$LAT_ROUNDS"); do
    _lat_measure latency_workers_raw "$round" "" "$placement" $((LAT_ITER / 5)) \
      "${wlists[@]:round % LAT_WORKERS_MAX}" "${wlists[@]:0:round % LAT_WORKERS_MAX}"
  done
  for n in $(seq 1 "$LAT_WORKERS_MAX"); do
    jq -c --argjson m "$n" --argjson w $(($(_threads "${daemon_pid[w$n]}") - 1)) \
      'select(.fs == "w\($m)") + {max_threads: $m, workers: $w}' "$BENCH_RES/latency_workers_raw" |
      while IFS= read -r line; do res_add latency_workers.jsonl "$line"; done
    fusermount3 -u "$dir/w$n"
    unset "daemon_pid[w$n]"
  done
  rm -f "$BENCH_RES/latency_workers_raw"

  # Each daemon's threads before and after the rounds (the FUSE workers
  # and, for cliqfs, its own threads).
  local threads='{}'
  for fs in "${!daemon_pid[@]}"; do
    threads=$(jq -c --arg fs "$fs" --argjson a "${threads0[$fs]}" \
      --argjson b "$(_threads "${daemon_pid[$fs]}")" '. + {($fs): [$a, $b]}' <<<"$threads")
  done
  res_add latency_meta.jsonl "{\"requests_during\":$during,\"files\":$files,\"kinds\":\"$LAT_KINDS\",\"fuse_workers\":$CLIQFS_WORKERS,\"threads\":$threads}"

  for fs in floor floor2 floorflush; do
    fusermount3 -u "$dir/$fs"
  done
  bench_bg_stop
  rm -rf "$shm"
  bench_unmount
  emu_stop
  # Every filesystem served the same bytes.
  local digests
  digests=$(jq -s '[.[].digest] | unique | length' "$BENCH_RES/latency.jsonl")
  [ "$digests" -eq 1 ] || bfail "latency: the filesystems served different bytes"
}
