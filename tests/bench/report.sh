# tests/bench/report.sh: turns $BENCH_RES/*.jsonl into benchmarks.md and the
# PNG plots (gnuplot).  Sourced by run.sh: report_write OUT_DIR.

# Helpers every filter may use: f2 (two decimals, as text), r1, med, pct,
# distinct_in_order (first occurrences, in order), read_p99_ratio (of a sync
# load pair: the reads' p99 with sync over without), pooled_read_p99_ratio (of
# a list of pairs: the same over every pair's reads together); of latency
# records:
# has_pinned, placement_note, judged (the pinned ones when there are any),
# unpinned, fs_order.
JQ_DEFS='
  def f2: (. * 100 | round) as $n | ($n % 100) as $c
    | "\(($n - $c) / 100)." + (if $c < 10 then "0" else "" end) + "\($c)";
  def r1: (. * 10 | round) / 10;
  def r2: (. * 100 | round) / 100;
  def med: sort | .[(length - 1) / 2 | floor];
  def pct($p): sort | .[((length * $p / 100) | ceil) - 1];
  def apis: to_entries | map("\(.key) \(.value)") | join(", ");
  def distinct_in_order: reduce .[] as $x ([]; if any(.[]; . == $x) then . else . + [$x] end);
  def read_p99_ratio: (.a.waits_sim | pct(99)) / (.b.waits_sim | pct(99));
  def pooled_read_p99_ratio: ([.[].a.waits_sim[]] | pct(99)) / ([.[].b.waits_sim[]] | pct(99));
  def has_pinned: any(.[]; .pinned == true);
  def placement_note: if has_pinned then ", pinned" else "" end;
  def judged: if has_pinned then map(select(.pinned == true)) else . end;
  def unpinned: map(select(.pinned != true));
  def fs_order: ["tmpfs", "floor", "floor2", "floorflush", "cliqfs"];
'

# The sync load runs as {org, a: with sync, b: without} per organization, in
# the order they ran (a jq filter to prefix).
SYNC_LOAD_PAIRS='
  map(.round //= 1)
  | (map([.org, .round]) | distinct_in_order) as $keys
  | . as $all
  | [$keys[] as [$o, $n]
     | {org: $o, round: $n,
        a: ($all | map(select(.org == $o and .round == $n and .run == "sync=all"))[0]),
        b: ($all | map(select(.org == $o and .round == $n and .run == "sync=off"))[0])}
     | select(.a and .b)] |'
# The same grouped by organization: [{org, rounds: [pairs]}] (in order).
SYNC_LOAD_ORGS="$SYNC_LOAD_PAIRS"'
  (map(.org) | distinct_in_order) as $orgs
  | . as $pairs | [$orgs[] as $o | {org: $o, rounds: ($pairs | map(select(.org == $o)))}] |'

# jqs FILE [JQ OPTIONS...] FILTER: jq -r over every line of a results file
# as one array (an empty array when the section did not run).
jqs() {
  local f=$BENCH_RES/$1
  shift
  local -a args=("$@")
  local filter=${args[-1]}
  unset 'args[-1]'
  if [ -s "$f" ]; then
    jq -rs "${args[@]}" "$JQ_DEFS $filter" "$f"
  else
    jq -rn "${args[@]}" "$JQ_DEFS [] | $filter"
  fi
}

have() {
  [ -s "$BENCH_RES/$1" ]
}

# ---- Derived figures ------------------------------------------------------------

# The follow task's bound: the best a poller can do at a fixed interval I
# (simulated seconds), whatever tool runs it.  Resolving the N paths costs
# the channel list and the thread-list pages of the C followed channels,
# which also give each thread's last message time; `tail -f` starts with
# each file's last lines, so every tool reads one message page per followed
# thread.  Then, for the D simulated seconds of following, the cheaper of
#   (a) poll the C thread-list pages every I (their entries carry each
#       thread's last message time), fetch only the threads that changed:
#       ceil(D/I)*C + P, P being the number of posts
#   (b) poll each of the N threads' messages every I:   ceil(D/I)*N
# A post then shows after at most I (about I/2 in the middle).  The interval
# is fixed (the curl + jq loop's 10 s and 20 s), not cliqfs's own: the
# question is how fresh a poller of a given cost can be.
follow_poll_json() {
  jqs follow.jsonl --argjson d "$FOLLOW_SIM" --argjson i "$1" '
    (map(select(.tool == "cliqfs"))[0] // .[0]) as $c
    | if $c == null then null else
      (($d / $i) | ceil) as $polls
      | ($polls * $c.channel_pages + $c.posts) as $a
      | ($polls * $c.threads) as $b
      | {interval_s: $i, polls: $polls,
         strategy: (if $a <= $b then "the thread lists" else "each thread" end),
         busiest: (if $a <= $b then {api: "threads.list", per_min: (60 / $i * $c.channel_pages)}
                   else {api: "chats.messages", per_min: (60 / $i * $c.threads)} end),
         setup: (1 + $c.channel_pages + $c.threads),
         following: ([$a, $b] | min),
         lower_bound: (1 + $c.channel_pages + $c.threads + ([$a, $b] | min)),
         per_min: (([$a, $b] | min) / ($d / 60))}
      end'
}

# The interval of the requests table's follow row: the curl + jq loop's.
FOLLOW_BOUND_S=10

# ---- Tables ---------------------------------------------------------------------

TASK_ORDER='["browse", "states", "reply"]'

md_requests() {
  local flb
  flb=$(follow_poll_json "$FOLLOW_BOUND_S")
  cat <<EOF
| task | lower bound | cliqfs | cliqfs ÷ bound | curl + jq | curl + jq ÷ bound | cliqfs requests by API |
|---|---:|---:|---:|---:|---:|---|
EOF
  jqs requests.jsonl '
    group_by(.task) | map({task: .[0].task, lb: .[0].lower_bound,
      c: (map(select(.tool == "cliqfs"))[0]), b: (map(select(.tool == "curl+jq"))[0])})
    | sort_by(.task as $k | '"$TASK_ORDER"' | index($k)) []
    | "| \(.task) | \(.lb) | \(.c.requests) | \(.c.requests / .lb | f2)× | \(.b.requests) | \(.b.requests / .lb | f2)× | \(.c.apis | apis) |"'
  if [ "$flb" != null ]; then
    jqs follow.jsonl --argjson lb "$flb" '
      (map(select(.tool == "cliqfs"))[0]) as $c | (map(select(.tool == "curl+jq"))[0]) as $b
      | "| follow (\($c.threads) threads, \($c.sim_minutes | round) min) | \($lb.lower_bound) (a poller every \($lb.interval_s) s) | \($c.requests) | \($c.requests / $lb.lower_bound | f2)× | \($b.requests) | \($b.requests / $lb.lower_bound | f2)× | \($c.apis | apis) |"'
  fi
}

md_requests_notes() {
  jqs requests.jsonl --arg s "$REQ_SCALE" '
    sort_by(.task as $k | '"$TASK_ORDER"' | index($k)) []
    | if .tool == "cliqfs" then
        "- \(.task), cliqfs: \(.seconds | f2) s at time_scale \($s), \(.throttled) refused by the emulator, \(.refetches // 0) repeated fetches of a thread'"'"'s messages\(if .replies then "; \(.replies) replies delivered for \(.matches) matching threads" else "" end)."
      else
        "- \(.task), curl + jq: \(.seconds | f2) s, \(.apis | apis)\(if .replies then "; \(.replies) replies" else "" end)."
      end'
}

# FOLLOW_LOAD_DEFS: jq over follow.jsonl (to prefix): $lim, each API's limit
# a window (as the emulator at Cliq's budgets reported it), and load, a run's
# busiest API while following: its requests a simulated minute against its
# limit.
FOLLOW_LOAD_DEFS='
  (map(select(.limits))[0].limits // {}) as $lim
  | def load: .sim_minutes as $m | .setup_apis as $s
      | [.apis | to_entries[] | select($lim[.key])
         | {api: .key, per_min: ((.value - ($s[.key] // 0)) / $m), limit: $lim[.key]}]
      | max_by(.per_min / .limit) // {api: "none", per_min: 0, limit: 1};
'

md_follow() {
  cat <<EOF
| tool | threads (channels) | posts seen | delay p50 | delay max | requests while following | per minute | busiest API while following: a minute (its limit) | set-up requests | all requests by API |
|---|---|---:|---:|---:|---:|---:|---|---:|---|
EOF
  jqs follow.jsonl "$FOLLOW_LOAD_DEFS"'
    .[] | "| \(.tool) | \(.threads) (\(.channels)) | \(.arrived) of \(.posts) | \(if .arrived > 0 then (.delays_sim | pct(50) | r1 | tostring) + " s" else "none" end) | \(if .arrived > 0 then (.delays_sim | max | r1 | tostring) + " s" else "none" end) | \(.following_requests) | \(.requests_per_min | r1) | \(load | "\(.api) \(.per_min | r1) (\(.limit))") | \(.setup_requests) | \(.apis | apis) |"'
  local p10 p20
  p10=$(follow_poll_json 10)
  p20=$(follow_poll_json 20)
  [ "$p10" != null ] || return 0
  jqs follow.jsonl --argjson p10 "$p10" --argjson p20 "$p20" "$FOLLOW_LOAD_DEFS"'
    (map(select(.tool == "cliqfs"))[0]) as $c
    | def over($p): $p.busiest | if $lim[.api] then "; \(.api) \(.per_min | r1) a minute, its limit \($lim[.api])" else "" end;
    "\nThe best any poller can do at a fixed interval (to start, the channel list, the followed channels'"'"' thread lists and one message page per thread; then the cheaper of polling the thread-list pages, whose entries carry each thread'"'"'s last message time, and fetching the threads that changed, or polling every thread'"'"'s messages): every \($p10.interval_s) s, \($p10.following) requests while following (\($p10.per_min | r1) a minute, polling \($p10.strategy)\(over($p10))), a post shown after up to \($p10.interval_s) s, about \($p10.interval_s / 2) s in the middle; every \($p20.interval_s) s, \($p20.following) (\($p20.per_min | r1) a minute\(over($p20))), up to \($p20.interval_s) s, about \($p20.interval_s / 2) s. The curl + jq loop polls each thread'"'"'s messages.",
      ($c | select(. != null)
       | ((.apis["chats.messages"] // 0) - (.setup_apis["chats.messages"] // 0)) as $fetches
       | ((.apis["threads.list"] // 0) - (.setup_apis["threads.list"] // 0)) as $lists
       | "\nWhile following, cliqfs polled the followed channels'"'"' thread lists \($lists) times and fetched a thread'"'"'s messages \($fetches) times (threads whose list entry or whose parent'"'"'s message count, probed in between with messages.get and threads.main, showed a newer message, and polls of the thread unchecked the longest with what the messages lane had spare), for \($c.posts) posts. The most requests each API received in one of its windows: \((.windows // {}) | to_entries | map("\(.key) \(.value.max_in_window) of \(.value.limit)") | join(", ")); \(.throttled) refused.")'
}

# _md_latency_table PLACEMENT: the table of the records judged or unpinned,
# and each round's ratios.
_md_latency_table() {
  cat <<EOF
| filesystem | p50 | p99 | mean | stat p50 | p50 ÷ floor | p99 ÷ floor | p50 ÷ tmpfs |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs latency.jsonl "$1"' |
    group_by(.fs) | map({fs: .[0].fs, p50: (map(.p50_us) | med), p99: (map(.p99_us) | med),
                         mean: (map(.mean_us) | med), stat: (map(.stat_p50_us) | med)})
    | (map(select(.fs == "floor"))[0]) as $f | (map(select(.fs == "tmpfs"))[0]) as $t
    | sort_by(.fs as $k | fs_order | index($k)) []
    | "| \({tmpfs: "tmpfs (/dev/shm)", floor: "FUSE floor (floorfs)", floor2: "a second FUSE floor (the control)", floorflush: "FUSE floor answering FLUSH (floorfs -o flush)", cliqfs: "cliqfs (warm)"}[.fs]) | \(.p50 | f2) µs | \(.p99 | f2) µs | \(.mean | f2) µs | \(.stat | f2) µs | \(.p50 / $f.p50 | f2)× | \(.p99 / $f.p99 | f2)× | \(.p50 / $t.p50 | f2)× |"'
  jqs latency.jsonl "$1"' |
    def ratios($a): group_by(.round) | map({c: (map(select(.fs == $a))[0].p50_us), f: (map(select(.fs == "floor"))[0].p50_us)})
      | map(select(.c != null and .f != null)) | map(.c / .f);
    (ratios("cliqfs")) as $c | (ratios("floor2")) as $k
    | select(($c | length) > 1)
    | "\nRound by round (every filesystem read in one process, alternating in blocks of '"$LAT_BLOCK"' operations), p50 ÷ the floor'"'"'s p50: cliqfs \($c | map("\(. | f2)×") | join(", "))"
      + (if ($k | length) > 0 then "; the control \($k | map("\(. | f2)×") | join(", ")) (\($k | min | f2)–\($k | max | f2)×: the machine'"'"'s own spread)" else "" end) + "."'
}

md_latency() {
  if [ "$(jqs latency.jsonl 'has_pinned')" = true ]; then
    cat <<EOF
**Pinned** (readlat on CPU 0, every daemon's threads on CPU 1: the same placement for all; the
targets are judged here):

EOF
    _md_latency_table judged
    cat <<EOF

**Unpinned** (as a user runs it; the same rounds, each measured just before its pinned run):

EOF
    _md_latency_table unpinned
  else
    _md_latency_table judged
  fi
}

# KINDS_MED: jq over latency_kinds.jsonl (to prefix): per kind, the medians
# over the rounds of each filesystem and each round's p50 ratio, of the
# judged records; $loose holds the same of the unpinned ones, by kind.
KINDS_MED='
  def side($fs): map(select(.fs == $fs))
    | {p50: (map(.p50_us) | med), p99: (map(.p99_us) | med), reads: (map(.daemon_reads_per_op) | med)};
  def kinds_med: group_by(.kind) | map({k: .[0].kind, c: side("cliqfs"), f: side("floor"),
    rounds: (group_by(.round // 1) | map({c: (map(select(.fs == "cliqfs"))[0].p50_us),
                                          f: (map(select(.fs == "floor"))[0].p50_us)})
             | map(select(.c != null and .f != null)) | map(.c / .f))});
  (if has_pinned then unpinned | kinds_med | map({key: .k, value: .}) | from_entries
   else {} end) as $loose |
  judged | kinds_med |'

md_latency_kinds() {
  cat <<EOF
| file | cliqfs p50 | floor p50 | ratio | each round's ratio | cliqfs p99 | floor p99 | daemon read() calls per operation: cliqfs | floor | unpinned: ratio (each round's) |
|---|---:|---:|---:|---|---:|---:|---:|---:|---|
EOF
  jqs latency_kinds.jsonl "$KINDS_MED"'
    .[] | "| \(.k) | \(.c.p50 | f2) µs | \(.f.p50 | f2) µs | \(.c.p50 / .f.p50 | f2)× | \(.rounds | map("\(. | f2)×") | join(", ")) | \(.c.p99 | f2) µs | \(.f.p99 | f2) µs | \(.c.reads | f2) | \(.f.reads | f2) | \($loose[.k] as $u | if $u and ($u.rounds | length) > 0 then "\($u.c.p50 / $u.f.p50 | f2)× (\($u.rounds | map("\(. | f2)×") | join(", ")))" else "–" end) |"'
}

# md_latency_workers: floorfs with at most 1, 2, … workers side by side, per
# round.
md_latency_workers() {
  have latency_workers.jsonl || return 0
  cat <<EOF

**Workers** (floorfs with at most 1, 2, … workers (\`-o max_threads\`), each read by concurrent readers
until it had them all or five passes were over, in one \`readlat\` per round, $((LAT_ITER / 5)) operations each,
$(jqs latency_workers.jsonl 'if .[0].pinned then "pinned" else "unpinned" end'); cliqfs and the floor above ran with $(jqs latency_meta.jsonl '.[0].fuse_workers // "?"')):

| max_threads | workers it had | p50 (median) | each round's p50 | p50 ÷ 1 worker's |
|---:|---:|---:|---|---:|
EOF
  jqs latency_workers.jsonl '
    (map(select(.max_threads == 1)) | map(.p50_us) | med) as $one
    | group_by(.max_threads)[]
    | "| \(.[0].max_threads) | \(.[0].workers) | \(map(.p50_us) | med | f2) µs | \(sort_by(.round) | map("\(.p50_us | f2)") | join(", ")) µs | \((map(.p50_us) | med) / $one | f2)× |"'
}

md_scale_ls() {
  cat <<EOF
| organization (C×T×M) | threads | entries listed | requests (lower bound) | \`ls -R\` cold | warm | daemon RSS idle | peak RSS (VmHWM) |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs scale_ls.jsonl '
    .[] | "| \(.size) | \(.threads) | \(.entries) | \(.requests) (\(.lower_bound)) | \(.cold_s | f2) s | \(.warm_s | f2) s | \(.rss_idle_kb / 1024 | f2) MiB | \(.hwm_kb / 1024 | f2) MiB |"'
}

md_scale_ls_budget() {
  have scale_ls_budget.jsonl || return 0
  cat <<EOF

**At Cliq's budgets.** A cold \`ls -R\` with the budgets in force (emulator and cliqfs at time_scale
$REQ_SCALE, so a window is $((60 / REQ_SCALE)) real s): it needs the channel list and one thread list per channel,
which fit a window of \`threads.list\` (20 a minute), so it should not wait for a request slot. With
sync on, sync lists channels from the mount on and the ls uses what it listed.

| organization (C×T×M) | sync | lists requested (needed) | \`ls -R\` cold (simulated) | waits for a request slot | throttled | APIs over their limit in a window |
|---|---|---:|---:|---:|---:|---|
EOF
  jqs scale_ls_budget.jsonl '
    .[] | "| \(.size) | \(.sync) | \(.lists) (\(.needed)) | \(.sim_s | f2) s | \(.slot_waits) | \(.throttled) | \(if (.over | length) > 0 then .over | join(", ") else "none" end) |"'
}

md_scale_msgs() {
  cat <<EOF
| history (messages in the thread) | messages shown | requests (lower bound) | read cold | warm | warm, median of the rounds | tmpfs, same bytes | ÷ tmpfs | peak RSS | live heap per cached message | RSS per cached message | its JSON size | heap ÷ JSON | RSS ÷ JSON | heap per message after messages.jsonl too | disk cache per message |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs scale_msgs.jsonl '
    .[] | "| \(.messages) | \(.shown) | \(.requests) (\(.lower_bound)) | \(.cold_s | f2) s | \(.warm_s | f2) s | \(if .warm_median_s then (.warm_median_s * 1000 | f2) + " ms" else "–" end) | \(if .tmpfs_warm_s then (.tmpfs_warm_s * 1000 | f2) + " ms" else "–" end) | \(if .tmpfs_warm_s then (.warm_median_s / .tmpfs_warm_s | f2) + "×" else "–" end) | \(.hwm_kb / 1024 | f2) MiB | \(.heap_bytes_per_msg | round) B | \(.mem_bytes_per_msg | round) B | \(.json_bytes_per_msg | round) B | \(.heap_bytes_per_msg / .json_bytes_per_msg | f2)× | \(.mem_bytes_per_msg / .json_bytes_per_msg | f2)× | \(.heap_bytes_per_msg_with_jsonl | round) B | \(.disk_cache_bytes / .shown | round) B |"'
}

md_writes() {
  cat <<EOF
| appends | delivered (in order) | all closes returned after | last delivered after: real | simulated | budget's minimum: simulated (real) | delivered ÷ minimum | posts sent | refused |
|---:|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs writes.jsonl '
    .[] | "| \(.appends) | \(.delivered) (\(if .in_order then "in order" else "NOT in order" end)) | \(.writes_real_s | f2) s (\(.writes_real_s * .time_scale | r1) s simulated) | \(.delivered_real_s | f2) s | \(.delivered_sim_s | f2) s | \(.min_sim_s) s (\(.min_real_s | f2) s) | \(if .min_sim_s > 0 then (.delivered_sim_s / .min_sim_s | f2) + "×" else "no minimum" end) | \(.post_requests) | \(.throttled) |"'
}

# ---- Targets ----------------------------------------------------------------------

verdict() {
  # jq expression (true/false) -> yes / **no**
  printf 'if %s then "yes" else "**no**" end' "$1"
}

md_targets() {
  cat <<EOF
| target | measured | met |
|---|---|---|
EOF
  jqs requests.jsonl '
    map(select(.tool == "cliqfs")) | sort_by(.task as $k | '"$TASK_ORDER"' | index($k)) []
    | "| requests ≤ 1.0× the lower bound: \(.task) | \(.requests) ÷ \(.lower_bound) = \(.requests / .lower_bound | f2)× | \('"$(verdict '.requests <= .lower_bound')"') |"'
  jqs latency.jsonl '
    placement_note as $how
    | judged | group_by(.fs) | map({key: .[0].fs, value: {p50: (map(.p50_us) | med), p99: (map(.p99_us) | med)}})
    | from_entries | select(.cliqfs and .floor)
    | "| cached reads ≤ 1.3× the FUSE floor (p50\($how)) | \(.cliqfs.p50 | f2) µs ÷ \(.floor.p50 | f2) µs = \(.cliqfs.p50 / .floor.p50 | f2)× | \('"$(verdict '.cliqfs.p50 <= 1.3 * .floor.p50')"') |",
      "| cached reads ≤ 1.3× the FUSE floor (p99\($how)) | \(.cliqfs.p99 | f2) µs ÷ \(.floor.p99 | f2) µs = \(.cliqfs.p99 / .floor.p99 | f2)× | \('"$(verdict '.cliqfs.p99 <= 1.3 * .floor.p99')"') |"'
  jqs latency_kinds.jsonl 'placement_note as $how | '"$KINDS_MED"'
    .[] | select(.k == "messages")
    | "| cached reads of `messages` ≤ 1.3× the FUSE floor (p50, median of \(.rounds | length) rounds\($how)) | \(.c.p50 | f2) µs ÷ \(.f.p50 | f2) µs = \(.c.p50 / .f.p50 | f2)× | \('"$(verdict '.c.p50 <= 1.3 * .f.p50')"') |"'
  jqs scale_msgs.jsonl '
    max_by(.shown) | select(. != null)
    | "| memory per cached message ≤ 2× its JSON: live heap (\(.shown) messages) | \(.heap_bytes_per_msg | round) B ÷ \(.json_bytes_per_msg | round) B = \(.heap_bytes_per_msg / .json_bytes_per_msg | f2)× | \('"$(verdict '.heap_bytes_per_msg <= 2 * .json_bytes_per_msg')"') |",
      "| memory per cached message ≤ 2× its JSON: RSS (\(.shown) messages) | \(.mem_bytes_per_msg | round) B ÷ \(.json_bytes_per_msg | round) B = \(.mem_bytes_per_msg / .json_bytes_per_msg | f2)× | \('"$(verdict '.mem_bytes_per_msg <= 2 * .json_bytes_per_msg')"') |"'
  jqs scale_msgs.jsonl '
    map(select(.tmpfs_warm_s and .messages == 10000))[]
    | "| warm cat of a \(.messages)-message file ≤ 1.3× tmpfs | \(.warm_median_s * 1000 | f2) ms ÷ \(.tmpfs_warm_s * 1000 | f2) ms = \(.warm_median_s / .tmpfs_warm_s | f2)× (median of \(.warm_rounds // 7) interleaved rounds each) | \('"$(verdict '.warm_median_s <= 1.3 * .tmpfs_warm_s')"') |"'
  jqs writes.jsonl '
    .[] | select(.min_sim_s > 0)
    | "| \(.appends) appends delivered ≤ 1.1× the budget'"'"'s minimum | \(.delivered_sim_s | f2) s ÷ \(.min_sim_s) s = \(.delivered_sim_s / .min_sim_s | f2)× (simulated) | \('"$(verdict '.delivered_sim_s <= 1.1 * .min_sim_s and .delivered == .appends')"') |"'
  jqs follow.jsonl "$FOLLOW_LOAD_DEFS"'
    (map(select((.tool | startswith("cliqfs") | not) and .arrived > 0))) as $loops
    | map(select(.tool | startswith("cliqfs")))[] | select(.arrived > 0)
    | (.delays_sim | pct(50)) as $p50 | (.delays_sim | max) as $max
    | ([(.windows // {}) | to_entries[] | select(.value.max_in_window > .value.limit)] | length) as $over
    | (($loops | length) > 0 and all($loops[]; $p50 < (.delays_sim | pct(50)) and $max < (.delays_sim | max))) as $better
    | "| tail -f delay p50 ≤ 8 s and max ≤ 20 s (simulated), 0 throttled, within the budget, better than the curl+jq loop on both: \(.tool)\(if .tool == "cliqfs" then " (sync=off)" else "" end) | p50 \($p50 | r1) s ÷ 8 s = \($p50 / 8 | f2)×, max \($max | r1) s ÷ 20 s = \($max / 20 | f2)×, \(.throttled) throttled, \(.arrived) of \(.posts) seen; \($over) APIs over their limit in a window (busiest while following: \(load | "\(.api) \(.per_min | r1) a minute of \(.limit)")); the loop: \($loops | map("\(.tool) p50 \(.delays_sim | pct(50) | r1) s, max \(.delays_sim | max | r1) s") | join("; ")) | \('"$(verdict '$p50 <= 8 and $max <= 20 and .throttled == 0 and .arrived == .posts and $over == 0 and .windows != null and $better')"') |"'
  jqs sync_load.jsonl "$SYNC_LOAD_ORGS"'
    .[] | select((.rounds | length) > 1)
    | [.rounds[] | {synced: .a.synced, sync: (.a.sim_s / .a.min_share_s),
                    p99: read_p99_ratio,
                    reads: .a.reads, share: .a.share,
                    throttled: (.a.throttled + .b.throttled), failed: .a.failed}] as $r
    | ($r | map(.sync) | med) as $sm
    | ([.rounds[].a.waits_sim[]] | pct(99)) as $pa | ([.rounds[].b.waits_sim[]] | pct(99)) as $pb
    | ($pa / $pb) as $pm
    | def order($f): [.rounds[] | select((.a.first // "all") == $f)]
        | if length > 0 then "\(length) rounds with sync=\($f) first: \(([.[].a.waits_sim[]] | pct(99)) / ([.[].b.waits_sim[]] | pct(99)) | f2)×" else empty end;
      ([order("all"), order("off")] | join(", ")) as $orders
    | def stalled($k): [.rounds[] | .[$k].reads_stalled // empty] | if length > 0 then add else "?" end;
      "reads a CPU stall overlapped: \(stalled("a")) with sync, \(stalled("b")) without" as $stall_note
    | "| synced ≤ 1.1× the budget'"'"'s minimum at the sync share, 0 throttled, reads'"'"' p99 with sync ≤ without: \(.org) (median of \($r | length) rounds; the p99 of every round'"'"'s reads together) | synced in every round: \(all($r[]; .synced)); \($sm | f2)× the minimum at the share (simulated, share \($r[0].share) %; rounds: \($r | map(.sync | f2 + "×") | join(", "))), \($r | map(.throttled) | add) throttled; reads'"'"' p99 with sync ÷ without, \([.rounds[].a.waits_sim[]] | length) and \([.rounds[].b.waits_sim[]] | length) reads: \($pa | f2) s ÷ \($pb | f2) s = \($pm | f2)× (simulated; each round alone, \($r | map(.reads | tostring) | join("/")) reads, its p99 the slowest: \($r | map(.p99 | f2 + "×") | join(", ")), median \($r | map(.p99) | med | f2)×; by the order of the pair: \($orders); \($stall_note)) | \('"$(verdict 'all($r[]; .synced and .failed == 0) and ($r | map(.throttled) | add) == 0 and $sm <= 1.1 and $pm <= 1')"') |"'
  jqs sync_load.jsonl "$SYNC_LOAD_ORGS"'
    .[] | select((.rounds | length) == 1) | .rounds[0]
    | (.a.waits_sim | pct(99)) as $pa | (.b.waits_sim | pct(99)) as $pb
    | "| synced ≤ 1.1× the budget'"'"'s minimum at the sync share, 0 throttled, reads'"'"' p99 with sync ≤ without: \(.org) | \(if .a.synced then "\(.a.sim_s | round) s ÷ \(.a.min_share_s | round) s = \(.a.sim_s / .a.min_share_s | f2)× (simulated, share \(.a.share) %; \(.a.sim_s / .a.min_whole_s | f2)× the whole budget'"'"'s minimum)" else "no full pass within the deadline" end), \(.a.throttled) throttled (\(.b.throttled) without sync); p99 \($pa | f2) s ÷ \($pb | f2) s = \($pa / $pb | f2)× (simulated, \(.a.reads) reads; waits for a rate slot: \(.a.slot_waits // "?") with sync, \(.b.slot_waits // "?") without; reads a CPU stall overlapped: \(.a.reads_stalled // "?") with sync, \(.b.reads_stalled // "?") without) | \('"$(verdict '.a.synced and .a.sim_s <= 1.1 * .a.min_share_s and .a.throttled == 0 and .b.throttled == 0 and $pa <= $pb and .a.failed == 0')"') |"'
  jqs sync_grep.jsonl '
    (map(select(.fs == "meta"))[0].requests_during) as $req
    | map(select(.fs != "meta")) | group_by(.fs) | map({key: .[0].fs, value: (map(.seconds) | med)}) | from_entries
    | select(.cliqfs and .floor)
    | "| grep -r after sync: 0 requests, ≤ 1.5× the FUSE floor | \($req) requests; \(.cliqfs * 1000 | f2) ms ÷ \(.floor * 1000 | f2) ms = \(.cliqfs / .floor | f2)× | \('"$(verdict '$req == 0 and .cliqfs <= 1.5 * .floor')"') |"'
  jqs scale_ls_budget.jsonl '
    .[] | "| cold ls -R of \(.size) at Cliq'"'"'s budgets, sync=\(.sync): no wait, 0 throttled | \(.lists) lists for \(.needed) needed, \(.slot_waits) waits for a slot, \(.sim_s | f2) s ÷ 60 s (a window) = \(.sim_s / 60 | f2)× (simulated), \(.throttled) throttled, \(.over | length) APIs over their limit | \('"$(verdict '.slot_waits == 0 and .throttled == 0 and (.over | length) == 0 and .sim_s < 60')"') |"'
  jqs sync_size.jsonl '
    select(length >= 2) | sort_by(.messages) | .[0] as $s | .[-1] as $l
    | "| peak RSS syncing \($l.size) ≤ 1.2× \($s.size), < 128 MiB | \($l.hwm_kb / 1024 | f2) MiB ÷ \($s.hwm_kb / 1024 | f2) MiB = \($l.hwm_kb / $s.hwm_kb | f2)× | \('"$(verdict '$l.hwm_kb <= 1.2 * $s.hwm_kb and $l.hwm_kb < 131072')"') |",
      "| disk ≤ 1.3× the JSON (\($l.size)) | \($l.disk_bytes / 1048576 | f2) MiB ÷ \($l.json_bytes / 1048576 | f2) MiB = \($l.disk_per_json | f2)× | \('"$(verdict '$l.disk_per_json <= 1.3')"') |"'
}

# ---- Plots ------------------------------------------------------------------------

plot_all() {
  local dir=$1/bench pd=$BENCH_TMP/plot
  mkdir -p "$dir" "$pd"
  local term="set terminal pngcairo size 900,540 font 'DejaVu Sans,10'"
  # The .tsv files below are tab-separated because their labels have spaces
  # ("FUSE floor"): each plot sets gnuplot's separator to a tab, or a label
  # would be cut at its first space and its value read from the next word.
  if have requests.jsonl; then
    local flb
    flb=$(follow_poll_json "$FOLLOW_BOUND_S")
    {
      jqs requests.jsonl -r '
        group_by(.task) | sort_by(.[0].task as $k | ["browse", "states", "reply"] | index($k)) []
        | [.[0].task, .[0].lower_bound, (map(select(.tool == "cliqfs"))[0].requests),
           (map(select(.tool == "curl+jq"))[0].requests)] | @tsv'
      if have follow.jsonl && [ "$flb" != null ]; then
        jqs follow.jsonl -r --argjson lb "$flb" '
          [("follow"), $lb.lower_bound, (map(select(.tool == "cliqfs"))[0].requests),
           (map(select(.tool == "curl+jq"))[0].requests // 0)] | @tsv'
      fi
    } >"$pd/requests.tsv"
    gnuplot <<EOF || bfail "gnuplot: requests"
$term
set output '$dir/requests.png'
set datafile separator '\t'
set title 'Cliq API requests per task (demo organization; log scale)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [1:*]
set ylabel 'requests'
set key top left
set grid ytics
plot '$pd/requests.tsv' using 2:xtic(1) title 'lower bound', '' using 3 title 'cliqfs', '' using 4 title 'curl + jq'
EOF
  fi
  if have latency.jsonl; then
    jqs latency.jsonl -r '
      judged | map(select(.fs != "floor2")) | group_by(.fs) | sort_by(.[0].fs as $k | fs_order | index($k)) []
      | [({tmpfs: "tmpfs", floor: "FUSE floor", floorflush: "floor + FLUSH", cliqfs: "cliqfs"}[.[0].fs]),
         (map(.p50_us) | med), (map(.p99_us) | med)] | @tsv' >"$pd/latency.tsv"
    gnuplot <<EOF || bfail "gnuplot: latency"
$term
set output '$dir/latency.png'
set datafile separator '\t'
set title 'stat + open + read + close of a small cached file'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'microseconds'
set yrange [0:*]
set key top left
set grid ytics
plot '$pd/latency.tsv' using 2:xtic(1) title 'p50', '' using 3 title 'p99'
EOF
  fi
  if have scale_ls.jsonl; then
    jqs scale_ls.jsonl -r '.[] | [.threads, .cold_s, .warm_s, (.hwm_kb / 1024), .size] | @tsv' >"$pd/ls.tsv"
    gnuplot <<EOF || bfail "gnuplot: scale ls"
$term
set output '$dir/scale-ls.png'
set title 'ls -R of synthetic organizations (channels × threads × messages)'
set logscale x
set xlabel 'threads in the organization'
set ylabel 'seconds'
set y2label 'daemon peak RSS (MiB)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key top left
set grid
plot '$pd/ls.tsv' using 1:2 with linespoints lw 2 title 'ls -R cold (s)', \
     '' using 1:3 with linespoints lw 2 title 'ls -R warm (s)', \
     '' using 1:4 axes x1y2 with linespoints lw 2 dt 2 title 'peak RSS (MiB, right)', \
     '' using 1:2:5 with labels offset 0,1 notitle
EOF
  fi
  if have scale_msgs.jsonl; then
    jqs scale_msgs.jsonl -r '.[] | [.shown, .cold_s, .warm_s, (.hwm_kb / 1024), .mem_bytes_per_msg, .json_bytes_per_msg, .heap_bytes_per_msg] | @tsv' >"$pd/msgs.tsv"
    gnuplot <<EOF || bfail "gnuplot: scale messages"
set terminal pngcairo size 1100,480 font 'DejaVu Sans,10'
set output '$dir/scale-messages.png'
set multiplot layout 1,2 title 'Reading one messages file of N messages (-o history=N)'
set logscale x
set xlabel 'messages cached (shown in the file)'
set ylabel 'seconds'
set y2label 'daemon peak RSS (MiB)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key top left
set grid
set title 'time and peak memory'
plot '$pd/msgs.tsv' using 1:2 with linespoints lw 2 title 'cat, cold (s)', \
     '' using 1:3 with linespoints lw 2 title 'cat, warm (s)', \
     '' using 1:4 axes x1y2 with linespoints lw 2 dt 2 title 'peak RSS (MiB, right)'
unset y2label
unset y2tics
set ytics mirror
set ylabel 'bytes per message'
set title 'memory per cached message'
plot '$pd/msgs.tsv' using 1:5 with linespoints lw 2 title 'daemon RSS growth', \
     '' using 1:7 with linespoints lw 2 title 'daemon live heap growth', \
     '' using 1:6 with linespoints lw 2 title 'JSON size (API)', \
     '' using 1:(2*\$6) with lines dt 2 title '2× JSON (target)'
unset multiplot
EOF
  fi
  if have follow.jsonl; then
    jqs follow.jsonl -r '.[] | .tool as $t | .delays_sim | to_entries[] | [$t, .key, .value] | @tsv' >"$pd/follow.tsv"
    grep -P '^cliqfs\t' "$pd/follow.tsv" | cut -f 2- >"$pd/follow.cliqfs"
    grep -P '^cliqfs, sync=all\t' "$pd/follow.tsv" | cut -f 2- >"$pd/follow.cliqfs-sync" || :
    local with_sync=
    [ -s "$pd/follow.cliqfs-sync" ] &&
      with_sync="'$pd/follow.cliqfs-sync' using 1:2 with linespoints lw 2 title 'cliqfs + tail -f, sync on (the default)', "
    grep -P '^curl\+jq\t' "$pd/follow.tsv" | cut -f 2- >"$pd/follow.curl"
    grep -P '^curl\+jq \(20 s\)\t' "$pd/follow.tsv" | cut -f 2- >"$pd/follow.curl20"
    gnuplot <<EOF || bfail "gnuplot: follow"
$term
set output '$dir/follow.png'
set title 'tail -f: delay from a post to its line (simulated seconds)'
set xlabel 'post number (one every 20 simulated s, round robin over the followed threads)'
set ylabel 'delay (s)'
set yrange [0:*]
set grid
set key top left
plot '$pd/follow.cliqfs' using 1:2 with linespoints lw 2 title 'cliqfs + tail -f, sync off', $with_sync\
     '$pd/follow.curl' using 1:2 with linespoints lw 2 title 'curl + jq loop (polls every 10 s)', \
     '$pd/follow.curl20' using 1:2 with linespoints lw 2 title 'curl + jq loop (polls every 20 s)'
EOF
  fi
}

# ---- The page ------------------------------------------------------------------------

md_head() {
  local cpu mem kernel cores fuse_v
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  kernel=$(uname -sr)
  cores=$(nproc)
  fuse_v=$(pkg-config --modversion fuse3 2>/dev/null || echo "?")
  cat <<EOF
# Benchmarks

Generated by \`tests/bench/run.sh$([ "$MODE" = smoke ] && echo " --smoke")\` on $BENCH_STARTED in $BENCH_SECONDS s
(sections: $ONLY). Do not edit by hand: rerun the command (see the end of the page). Raw results:
[bench/results.jsonl](bench/results.jsonl).
EOF
  if [ "$MODE" = smoke ]; then
    printf '\n**Smoke run: tiny sizes; the numbers only show that the harness works.**\n'
  fi
  cat <<EOF

## The machine

| | |
|---|---|
| CPU | $cpu |
| cores (nproc) | $cores |
| memory | $mem |
| kernel | $kernel |
| libfuse | $fuse_v |

The machine is shared with other work, so timings carry noise; request counts do not.

## Targets

EOF
  md_targets
}

md_section_requests() {
  cat <<EOF

## Requests per task

The demo organization of the emulator (\`cliq-emulator --demo\`: 5 joined channels, 39 threads of
5–40 messages). Each task starts from a fresh mount with an empty cache; the emulator counts every
Cliq request it serves. cliqfs and the emulator run at \`time_scale=$REQ_SCALE\` (every budget window,
lock period and cache lifetime divided by $REQ_SCALE), so the real budgets apply, compressed.

| task | cliqfs | curl + jq (\`tests/bench/baseline/\`) |
|---|---|---|
| browse | \`ls -lR MNT\` | \`browse.sh\`: channel list, thread list of each channel |
| states | \`cat MNT/*/*/state\` | \`states.sh\`: the same lists; the state is in each thread entry |
| reply | \`for d in */*/; do [ "\$(cat \$d/state)" = open ] && grep -qiw $REQ_WORD \$d/messages && echo … >> \$d/messages; done\`, until delivered | \`reply.sh\`: the lists, each open thread's messages, a post where the word occurs |
| follow | \`tail -f\` on the \`messages\` of $FOLLOW_N threads for $FOLLOW_SIM simulated s while other people post (one message in every 20 s, at a moment drawn with a fixed seed, the same for every tool; round robin) | \`follow.sh\`: find the threads by name, then poll each one every 10 s (\`fromtime\`) |

Lower bounds come from the organization: \`ceil(joined channels / 100)\` channel-list pages, plus
\`ceil(threads / 100)\` thread-list pages per joined channel (the thread list carries every thread's
state and title); for reply, plus one message page per open thread (\`ceil(min(messages, history) / 100)\`)
and one post per matching thread. For follow see the next section. The curl + jq scripts handle no
rate limit, so they run against an emulator whose windows are shrunk to nothing
(\`--time-scale $BASELINE_SCALE\`); at real speed their bursts exceed the 15 requests a minute of
\`chats.messages\` whenever they read more than 15 threads' messages within a minute, and the follow
loop, polling $FOLLOW_N threads every 10 s, asks for up to $((FOLLOW_N * 6)) \`chats.messages\` a minute (fewer
here, where its own run time is magnified by the time scale: see the next table); a real account
would be locked out.

EOF
  md_requests
  echo
  md_requests_notes
  cat <<EOF

![requests](bench/requests.png)
EOF
  have follow.jsonl || return 0
  cat <<EOF

## tail -f

The follow task, seen from \`tail -f\`: the delay from a message posted at the emulator
(\`POST /_emulator/post\`) to its line in \`tail -f\` output (each line is time-stamped as it comes).
Times are simulated seconds (real seconds × $REQ_SCALE); \`tail -s\` is 1/$REQ_SCALE s so that tail's
once-a-second poll is compressed too. The curl + jq loop's delays are shown for comparison (it prints
what it fetched), polling every 10 s and every 20 s; its own running time is not compressed (some 40
process starts per round of polls, each real second of which counts as $REQ_SCALE simulated ones), which
inflates its delays on a slow machine; its request counts are exact. cliqfs runs twice, each on a freshly
started emulator and a fresh mount: \`cliqfs\` with \`-o sync=off\`, the followed threads alone (its
requests are what following costs); \`cliqfs, sync=all\` with sync on, the default, where the ten
\`tail -f\` start right after the mount while sync starts to fetch the whole organization (its requests
include sync's).

EOF
  md_follow
  cat <<EOF

![follow](bench/follow.png)
EOF
}

md_section_latency() {
  cat <<EOF

## Latency of cached reads

\`readlat\` (tests/bench/readlat.c): $LAT_ITER × (\`stat\` + \`open\` + \`read\` to EOF + \`close\`) in one
process, round a list of small files (\`$LAT_KINDS\` of every thread of the demo organization,
$(jqs latency_meta.jsonl '.[0].files') files), after one warm-up pass. In each of $LAT_ROUNDS rounds one
\`readlat\` reads every filesystem, alternating in blocks of $LAT_BLOCK operations (the order turning by one
each round), so that a round compares them under the same state of the machine; the tables give the
medians over the rounds. The same bytes are read from cliqfs (warm: everything read once, well within its cache
lifetimes; the budget lifted so that the warm-up is quick), from a copy in tmpfs (/dev/shm), and from
floorfs (tests/bench/floorfs.c), a minimal low-level FUSE filesystem serving that copy from memory
that keeps the kernel's page cache between opens (\`keep_cache\`: the best a FUSE filesystem that must
see every open can do) with cliqfs's timeouts per kind of file (stable files 30 s, folders 5 s,
\`messages\` attributes never cached), multi-threaded loop$(jqs latency_meta.jsonl 'if .[0].fuse_workers then " with as many FUSE workers at most as cliqfs (\(.[0].fuse_workers) here: one per CPU and one more)" else "" end'). cliqfs keeps the page cache too while a
file's content is unchanged. floorfs leaves FLUSH unimplemented, as a minimal
read-only filesystem does; cliqfs answers FLUSH where a close posts a message and opens read-only files
with \`noflush\` (so the kernel sends it no FLUSH for them); the table also shows floorfs answering FLUSH
on every close, the price cliqfs would pay without \`noflush\`, and a second floorfs, the control: the
same program, measured beside the first.

A cached read is two FUSE round trips of some 20 µs each. On this 2-vCPU virtual machine, where the
scheduler puts a daemon's worker threads (beside the reader or on the other vCPU) moves its p50 by
a third, and a daemon keeps the placement it got for seconds: the control against the floor, the same
program, shows that spread in the unpinned rounds. So each round runs twice: unpinned, as a user runs
it, and pinned (\`taskset\`: readlat on CPU 0, every thread of every daemon on CPU 1), the same
placement for all, which takes placement out of the comparison; what is left, the virtual CPU's own fast
and slow spells, shows as the control's spread in the pinned rounds. The targets are judged on the
pinned rounds.
$(jqs latency_meta.jsonl 'if .[0].threads then "
**Workers.** The kernel hands each FUSE request to the daemon'"'"'s worker that has waited longest, so the
requests cycle through every idle worker, and on this machine a request'"'"'s cost depends on how many
there are (see the workers table below). libfuse starts a worker when all are busy and
keeps it, so a daemon'"'"'s count depends on how many readers it has met. Before the rounds every daemon is
read by four readers per worker until it has all it may have (\(.[0].fuse_workers)); its threads before
and after the rounds: \(.[0].threads | to_entries | sort_by(.key) | map("\(.key) \(.value[0]) and \(.value[1])") | join(", ")) (floorfs: its workers and the main thread; cliqfs: its workers and its own threads)." else "" end')
Requests to the emulator during the timed runs: $(jqs latency_meta.jsonl '.[0].requests_during').

EOF
  md_latency
  cat <<EOF

![latency](bench/latency.png)

By kind of file ($((LAT_ITER / 5)) operations each, cliqfs and the floor alternating in one \`readlat\`,
$LAT_ROUNDS rounds, pinned: the medians, and each round's p50 ratio; the last column has the unpinned rounds; \`title\` and \`state\` come from the thread list,
\`info\`, \`main\` and \`members\` from their own cached answers, \`messages\` from the thread's log):

EOF
  md_latency_kinds
  md_latency_workers
}

md_section_scale() {
  cat <<EOF

## Scale

Synthetic organizations (\`cliq-emulator --synthetic CxTxM\`). The budget is lifted on both sides
(emulator \`--time-scale $BASELINE_SCALE\`; cliqfs \`-o limit.<api>=100000/60\` for every read API, with
its real cache lifetimes): these runs measure cliqfs, not the rate limits, which at real speed would
dominate (at 20 thread lists a minute, listing 100 channels takes 5 minutes however fast cliqfs is).
Peak RSS is the daemon's VmHWM (/proc/PID/status) after the operation, on a fresh mount.

### \`ls -R\`

EOF
  md_scale_ls
  md_scale_ls_budget
  cat <<EOF

![ls -R](bench/scale-ls.png)

### One big \`messages\` file

A thread of N messages (\`--synthetic 1x1xN\`) mounted with \`-o history=N\` and read with \`cat\`.
Memory per cached message is measured two ways, over the read, divided by the messages shown: the
growth of the daemon's live heap (glibc \`mallinfo2\`, asked through tests/bench/heapstat.c, an
\`LD_PRELOAD\` library: what the cache really holds) and the growth of its RSS (what the machine pays,
with freed memory the allocator keeps and buffers of worker threads). Its JSON size is the compact JSON
of the message objects as the API returns them. (The synthetic
organizations above have 1,000 messages per thread, so the big files come from organizations of
their own.) The lower bound is \`ceil(N / 100)\` pages.

EOF
  md_scale_msgs
  cat <<EOF

![messages](bench/scale-messages.png)
EOF
}

md_section_writes() {
  cat <<EOF

## Writes

EOF
  jqs writes.jsonl '.[0] | "\(.appends) × `echo \"bench-append N\" >> messages` to one thread, then the time until the emulator has stored the last one (its own time stamp), counted from the first write. messages.post allows 20 requests a minute and cliqfs spends all of them, so at most \(.budget_per_min) posts go out in any 60 s: \(.appends) posts need at least \(.min_sim_s) s after the first (\(.budget_per_min) at once, then \(.budget_per_min) more each minute). Run at time_scale \(.time_scale) on both sides; simulated = real × \(.time_scale)."'
  echo
  md_writes
}

md_sync_load() {
  jqs sync_load.jsonl "$SYNC_LOAD_PAIRS"'
    def w: if length > 0 then "\(pct(50) | f2) s | \(pct(99) | f2) s | \(max | f2) s" else "– | – | –" end;
    def lsw: if length > 0 then "\(pct(50) | f2) s | \(max | f2) s" else "– | –" end;
    def stalls: (if .stalls then "\(.stalls) CPU stalls of \(.stall_us / 1000) ms or more (the longest \(.stall_max_ms | f2) ms), \(.reads_stalled) reads overlapped" else "no stall probe" end) + (if .cpus_awake then ", CPUs kept awake" else "" end);
    (map(.org) | group_by(.) | map({key: .[0], value: length}) | from_entries) as $count
    | .[] | (.a.waits_sim | pct(99)) as $pa | (.b.waits_sim | pct(99)) as $pb
    | "\n**\(.org)**\(if $count[.org] > 1 then " (round \(.round) of \($count[.org]), sync=\(.a.first // "all") first)" else "" end), time_scale \(.a.time_scale), a read every \(.a.every_s) s (simulated)\(if (.a.reads_made // .a.reads) != .a.reads or (.b.reads_made // .b.reads) != .b.reads then "; reads made \(.a.reads_made) with sync, \(.b.reads_made) without, both cut to \(.a.reads)" else "" end):\n",
      "| run | reads (ls) | read wait p50 | read wait p99 | read wait max | ls wait p50 | ls wait max | failed | synced after | minimum at the sync share | ratio | minimum at the whole budget | ratio | throttled | peak RSS |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      (.a | "| sync=all | \(.reads) (\(.ls)) | \(.waits_sim | w) | \(.ls_sim | lsw) | \(.failed) | \(if .synced then "\(.sim_s | round) s" else "no full pass" end) | \(.min_share_s | round) s (\(.share) %) | \(if .synced then "\(.sim_s / .min_share_s | f2)×" else "–" end) | \(.min_whole_s | round) s | \(if .synced then "\(.sim_s / .min_whole_s | f2)×" else "–" end) | \(.throttled) | \(.hwm_kb / 1024 | f2) MiB |"),
      (.b | "| sync=off | \(.reads) (\(.ls)) | \(.waits_sim | w) | \(.ls_sim | lsw) | \(.failed) | – | – | – | – | – | \(.throttled) | \(.hwm_kb / 1024 | f2) MiB |"),
      "\nReads'"'"' p99 with sync ÷ without: \($pa | f2) s ÷ \($pb | f2) s = \($pa / $pb | f2)×. Requests sync needed (with sync − without = sync'"'"'s) ÷ what sync may send a window\(if .a.share_in_status then "" else " (this build'"'"'s status has no `.sync.share`: 100 %)" end): "
        + ([.a.per_api[] | "\(.api) \(.with_sync) − \(.without) = \(.sync) ÷ \(.allowed)"] | join(", "))
        + "; the slowest: \(.a.slowest_api). Sync'"'"'s own count (`.sync.requests`, a log counted once however many pages): \(.a.status_sync.requests). The last read with sync started \(.a.last_read_at_sim | round) s (simulated) after the mount\(if .a.synced then ", the full pass came at \(.a.sim_s | round) s" else "" end). During the runs: with sync \(.a | stalls); without \(.b | stalls)."'
}

md_section_sync() {
  cat <<EOF

## Background sync

\`-o sync=all\` (the default): with request slots no user is using, cliqfs copies every thread list, message
and document to disk (tests/bench/sec_sync.sh).

**With a user at work.** For each organization, two mounts one after the other, each on a freshly started
emulator with an empty cache, at Cliq's budgets compressed by a time scale (both sides; simulated = real ×
time_scale): with sync (\`-o sync=all\`) and without (\`-o sync=off\`). In both, a user reads a thread every
$(jqs sync_load.jsonl '.[0].every_s') simulated seconds (its \`messages\` and \`main\`, each thread once, read whole by the benchmark's
shell itself: a \`cat\` would add its fork and exec, about 5 ms here and far more spread under load than the
read itself, about 3 ms; one
channel after another, least recently active first: sync fetches the most recently active first, so the user
reads threads sync has not reached) and lists the channel's folder (\`ls\`) before its first read there and
before every fourth read. With sync the reads go on until \`.cliqfs/status\` shows a full pass; without, the
same reads in the same order on the same schedule. An organization whose full pass comes after a few reads
(the demo, about 13) runs in rounds, each such a pair of mounts, in turns: odd rounds mount with sync first
(its full pass decides how many reads the pair makes), even rounds without sync first (as many reads as the
round before made) and then with sync (at most as many; both cut to the reads both made), so that going
first or second (the machine a run finds) counts as often for sync as against it; each round's order is in
its table and the target row shows the ratio of each order apart. Beside every run a probe (tests/bench/stallprobe.c:
one thread per CPU at the highest real-time priority, waking every millisecond) notes each time it woke
$(jqs sync_load.jsonl '.[0].stall_us // 3000 | . / 1000') ms late or more: no process can delay it, whatever its priority, so such a stall is
time in which no process could run on that CPU (the host ran something else, or the kernel ran with
preemption off, which work on behalf of the processes, such as interrupts, can cause too). Each pair's text
gives the stalls of both runs and the reads they overlapped; the target row adds these reads up, with sync and
without. They are counted, not left out. For the organizations whose pair text says "CPUs kept awake" (the
demo) the probe also runs, beside both runs alike, one spinning thread per CPU at the lowest priority there is
(SCHED_IDLE: it runs only when nothing else wants the CPU, and whatever wakes preempts it), so that no CPU
halts: this machine is a virtual one, whose host now and then takes milliseconds to wake a halted CPU, and the
demo's short reads, a second apart, find the CPUs halted. Without it the probe counted 50 such stalls in 8
rounds with sync and 16 without, and they decided the tail both ways; with it, 5 and 6 in 32 rounds, none
during a read. What is measured is then sync's cost to a user on a machine whose CPUs wake at once. The p99 of one round is its slowest read,
which one hiccup of the machine decides, so its target row takes the p99 of every round's reads together
(with sync against without) and shows each round's own ratio. A wait is an operation's wall time × time_scale; \`ls\`
is timed apart, so that a read's wait is the thread's content, not its channel's thread list. At time_scale
S sync sends S times as many requests a real second as it would against Cliq, each costing the machine the
same CPU, and a real millisecond of a wait counts as S simulated ones: on a small machine, part of a read's
wait with sync is the CPU the compressed sync takes from it, magnified by S.

The budget's minimum: per API, the requests sync needed ÷ the requests it may send a window × the window
(60 s); the slowest API decides. Sync may send max(1, ⌊limit × share ÷ 100⌋) a window, share being
\`.sync.share\` of the status (100 % when the build shows none); the minimum at the whole budget (the API's
limit) is given too. The requests sync needed are what the emulator counted with sync (at the full pass)
less what it counted for the same reads without: a read of a thread sync had fetched costs nothing with
sync, so this errs towards fewer requests than sync sent, a shorter minimum and a larger ratio. Sync's first window starts
empty, so a small organization can beat the minimum by up to one window. Peak RSS is the daemon's VmHWM at
the end of the run. Why these time scales: tests/bench/sec_sync.sh.

EOF
  md_sync_load
  cat <<EOF

**Size.** Synthetic organizations (channels × threads × messages), budgets lifted on both sides (only
cliqfs is measured), \`history\` = the messages per thread: the time until a full pass, the daemon's peak RSS
(VmHWM) and its RSS once idle, the messages kept in memory (logs nobody uses beyond 16 MiB are dropped from
memory, their disk copies stay), and the disk cache against the messages' JSON as the API sends it.

| organization | messages | synced after | peak RSS | RSS idle | messages in memory | disk cache | disk ÷ JSON |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs sync_size.jsonl '.[] | "| \(.size) | \(.messages) | \(.synced_s | f2) s | \(.hwm_kb / 1024 | f2) MiB | \(.rss_kb / 1024 | f2) MiB | \(.log_bytes / 1048576 | f2) MiB | \(.disk_bytes / 1048576 | f2) MiB | \(.disk_per_json | f2)× |"'
  cat <<EOF

**grep -r after sync.** \`grep -r the\` over the whole demo organization once synced, on cliqfs, on a
copy of the same files in tmpfs and on the FUSE floor (floorfs) serving that copy; rounds interleaved,
median reported. Requests to the emulator during every cliqfs round:
$(jqs sync_grep.jsonl '.[] | select(.fs == "meta") | .requests_during').

| filesystem | median | ÷ floor | ÷ tmpfs | lines |
|---|---:|---:|---:|---:|
EOF
  jqs sync_grep.jsonl '
    map(select(.fs != "meta")) | group_by(.fs) | map({fs: .[0].fs, s: (map(.seconds) | med), l: .[0].lines})
    | (map(select(.fs == "floor"))[0].s) as $f | (map(select(.fs == "tmpfs"))[0].s) as $t
    | sort_by(.fs as $k | ["tmpfs", "floor", "cliqfs"] | index($k)) []
    | "| \(.fs) | \(.s * 1000 | f2) ms | \(.s / $f | f2)× | \(.s / $t | f2)× | \(.l) |"'
  jqs sync_grep.jsonl '
    map(select(.fs != "meta")) | group_by(.round)
    | map({c: (map(select(.fs == "cliqfs"))[0].seconds), f: (map(select(.fs == "floor"))[0].seconds)})
    | "\nRound by round, cliqfs ÷ floor: \(map("\(.c / .f | f2)×") | join(", "))."'
}

report_write() {
  local out=$1
  local md=$out/benchmarks.md
  plot_all "$out"
  for f in "$BENCH_RES"/*.jsonl; do
    [ -e "$f" ] || continue
    jq -c --arg s "$(basename "$f" .jsonl)" '{section: $s} + .' "$f"
  done >"$out/bench/results.jsonl"
  {
    md_head
    if [ -s "$BENCH_SRC/findings.sh" ]; then
      . "$BENCH_SRC/findings.sh"
      md_findings
    fi
    have requests.jsonl && md_section_requests
    have latency.jsonl && md_section_latency
    have scale_ls.jsonl && md_section_scale
    have writes.jsonl && md_section_writes
    { have sync_load.jsonl || have sync_size.jsonl; } && md_section_sync
    cat <<EOF

## Reproduce

\`\`\`sh
meson setup build && meson compile -C build
tests/bench/run.sh                         # every section$([ "$MODE" = full ] && echo " (about $((BENCH_SECONDS / 60 + 1)) min here)"): docs/benchmarks.md, docs/bench/
tests/bench/run.sh --only latency,writes   # some sections
tests/bench/run.sh --smoke --out /tmp/b    # the short run of meson test --suite bench
\`\`\`

Needs fuse3, curl, jq and gnuplot (Debian: \`gnuplot-nox\`), and permission to mount FUSE filesystems.
EOF
  } >"$md"
}
