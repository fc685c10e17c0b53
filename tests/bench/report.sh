# tests/bench/report.sh: turns $BENCH_RES/*.jsonl into benchmarks.md and the
# PNG plots (gnuplot).  Sourced by run.sh: report_write OUT_DIR.

# jqs FILE FILTER: jq over every line of a results file as one array.
jqs() {
  local f=$BENCH_RES/$1
  shift
  if [ -s "$f" ]; then
    jq -rs "$@" "$f"
  else
    jq -rn '[]' | jq -r "$@"
  fi
}

have() {
  [ -s "$BENCH_RES/$1" ]
}

# ---- Derived figures ------------------------------------------------------------

# The follow task's lower bound: to show every new message within F seconds,
# poll each followed channel's thread list (it carries each thread's last
# message time) every F seconds and fetch only the threads that changed:
#   1 (channel list) + C (thread lists: resolve the paths, and the starting
#   point) + ceil(D / F) * C (polls) + P (one fetch per new message)
# with F = the worst delay cliqfs itself achieved (the same freshness).
follow_lb_json() {
  jqs follow.jsonl --argjson d "$FOLLOW_SIM" --argjson g "$FOLLOW_GRACE" '
    (map(select(.tool == "cliqfs"))[0]) as $c
    | if $c == null then null else
      ($c.delays_sim | if length > 0 then max else null end) as $worst
      | (if $c.arrived == $c.posts and $worst != null then $worst else ($d + $g) end) as $f
      | ([$f, 1] | max) as $f
      | {freshness_s: $f,
         lower_bound: (1 + $c.channels + (($d / $f) | ceil) * $c.channels + $c.posts),
         polls_per_min: ($c.channels * 60 / $f)}
      end'
}

# ---- Tables ---------------------------------------------------------------------

md_requests() {
  local flb
  flb=$(follow_lb_json)
  cat <<EOF
| task | lower bound | cliqfs | cliqfs ÷ bound | curl + jq | curl + jq ÷ bound | cliqfs requests by API |
|---|---:|---:|---:|---:|---:|---|
EOF
  jqs requests.jsonl -r '
    group_by(.task) | map({task: .[0].task, lb: .[0].lower_bound,
      c: (map(select(.tool == "cliqfs"))[0]), b: (map(select(.tool == "curl+jq"))[0])})
    | sort_by(["browse", "states", "reply"] | index(.task)) []
    | "| \(.task) | \(.lb) | \(.c.requests) | \((.c.requests / .lb * 100 | round) / 100)× | \(.b.requests) | \((.b.requests / .lb * 100 | round) / 100)× | \(.c.apis | to_entries | map("\(.key) \(.value)") | join(", ")) |"'
  if have follow.jsonl && [ "$flb" != null ]; then
    jqs follow.jsonl -r --argjson lb "$flb" '
      (map(select(.tool == "cliqfs"))[0]) as $c | (map(select(.tool == "curl+jq"))[0]) as $b
      | "| follow (\($c.threads) threads, \($c.sim_minutes | round) min) | \($lb.lower_bound) | \($c.requests) | \((($c.requests / $lb.lower_bound) * 100 | round) / 100)× | \($b.requests // "–") | \(if $b then ((($b.requests / $lb.lower_bound) * 100 | round) / 100 | tostring) + "×" else "–" end) | \($c.apis | to_entries | map("\(.key) \(.value)") | join(", ")) |"'
  fi
}

md_requests_notes() {
  jqs requests.jsonl -r '
    map(select(.tool == "curl+jq")) []
    | "- \(.task), curl + jq: \(.requests) requests in \((.seconds * 100 | round) / 100) s (\(.apis | to_entries | map("\(.key) \(.value)") | join(", ")))."'
  jqs requests.jsonl -r '
    map(select(.tool == "cliqfs")) []
    | "- \(.task), cliqfs: \((.seconds * 100 | round) / 100) s at time_scale \($ENV.REQ_SCALE), \(.throttled) refused by the emulator\(if .replies then ", \(.replies) replies delivered for \(.matches) matching threads" else "" end)."'
}

md_follow() {
  local flb
  flb=$(follow_lb_json)
  cat <<EOF
| tool | threads (channels) | posts seen | delay p50 | delay max | requests while following | per minute | set-up requests | by API |
|---|---|---:|---:|---:|---:|---:|---:|---|
EOF
  jqs follow.jsonl -r '
    def r1: (. * 10 | round) / 10;
    def pct($p): sort | .[((length * $p / 100) | ceil) - 1];
    .[] | "| \(.tool) | \(.threads) (\(.channels)) | \(.arrived) of \(.posts) | \(if .arrived > 0 then (.delays_sim | pct(50) | r1 | tostring) + " s" else "–" end) | \(if .arrived > 0 then (.delays_sim | max | r1 | tostring) + " s" else "–" end) | \(.following_requests) | \(.requests_per_min | r1) | \(.setup_requests) | \(.apis | to_entries | map("\(.key) \(.value)") | join(", ")) |"'
  if [ "$flb" != null ]; then
    jq -rn --argjson lb "$flb" '"\nLower bound at cliqfs'"'"'s worst delay (F = \($lb.freshness_s * 10 | round / 10) simulated s): \($lb.lower_bound) requests, \($lb.polls_per_min * 10 | round / 10) thread-list polls per minute plus one fetch per new message."'
  fi
}

md_latency() {
  cat <<EOF
| filesystem | p50 | p99 | mean | stat p50 | p50 ÷ floor | p99 ÷ floor | p50 ÷ tmpfs |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs latency.jsonl -r '
    def med: sort | .[(length - 1) / 2 | floor];
    def r2: (. * 100 | round) / 100;
    group_by(.fs) | map({fs: .[0].fs, p50: (map(.p50_us) | med), p99: (map(.p99_us) | med),
                         mean: (map(.mean_us) | med), stat: (map(.stat_p50_us) | med)})
    | (map(select(.fs == "floor"))[0]) as $f | (map(select(.fs == "tmpfs"))[0]) as $t
    | sort_by(["tmpfs", "floor", "cliqfs"] | index(.fs)) []
    | "| \({tmpfs: "tmpfs (/dev/shm)", floor: "FUSE floor (floorfs)", cliqfs: "cliqfs (warm)"}[.fs]) | \(.p50 | r2) µs | \(.p99 | r2) µs | \(.mean | r2) µs | \(.stat | r2) µs | \(.p50 / $f.p50 | r2)× | \(.p99 / $f.p99 | r2)× | \(.p50 / $t.p50 | r2)× |"'
}

md_scale_ls() {
  cat <<EOF
| organization (C×T×M) | threads | entries listed | requests | \`ls -R\` cold | warm | daemon RSS idle | peak RSS (VmHWM) |
|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs scale_ls.jsonl -r '
    def r2: (. * 100 | round) / 100;
    .[] | "| \(.size) | \(.threads) | \(.entries) | \(.requests) | \(.cold_s | r2) s | \(.warm_s | r2) s | \(.rss_idle_kb / 1024 | r2) MiB | \(.hwm_kb / 1024 | r2) MiB |"'
}

md_scale_msgs() {
  cat <<EOF
| messages (history) | requests | read cold | warm | peak RSS | memory per cached message | its JSON size | memory ÷ JSON | with messages.jsonl read too | disk cache per message |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs scale_msgs.jsonl -r '
    def r2: (. * 100 | round) / 100;
    .[] | "| \(.messages) | \(.requests) | \(.cold_s | r2) s | \(.warm_s | r2) s | \(.hwm_kb / 1024 | r2) MiB | \(.mem_bytes_per_msg | round) B | \(.json_bytes_per_msg | round) B | \(.mem_bytes_per_msg / .json_bytes_per_msg | r2)× | \(.mem_bytes_per_msg_with_jsonl | round) B | \(.disk_cache_bytes / .messages | round) B |"'
}

md_writes() {
  cat <<EOF
| appends | delivered (in order) | all closes returned | last delivered: real | simulated | budget's minimum: simulated (real) | ratio | posts sent | refused |
|---:|---|---:|---:|---:|---:|---:|---:|---:|
EOF
  jqs writes.jsonl -r '
    def r2: (. * 100 | round) / 100;
    .[] | "| \(.appends) | \(.delivered) (\(if .in_order then "yes" else "NO" end)) | \(.writes_real_s | r2) s | \(.delivered_real_s | r2) s | \(.delivered_sim_s | r2) s | \(.min_sim_s) s (\(.min_real_s | r2) s) | \(if .min_sim_s > 0 then (.delivered_sim_s / .min_sim_s | r2 | tostring) + "×" else "–" end) | \(.post_requests) | \(.throttled) |"'
}

# ---- Targets ----------------------------------------------------------------------

md_targets() {
  local flb req lat msgs wr
  flb=$(follow_lb_json)
  cat <<EOF
| target | measured | met |
|---|---|---|
EOF
  jqs requests.jsonl -r '
    map(select(.tool == "cliqfs")) | sort_by(["browse", "states", "reply"] | index(.task)) []
    | "| requests ≤ 1.0× lower bound: \(.task) | \(.requests) / \(.lower_bound) = \((.requests / .lower_bound * 100 | round) / 100)× | \(if .requests <= .lower_bound then "yes" else "**no**" end) |"'
  if [ "$flb" != null ]; then
    jqs follow.jsonl -r --argjson lb "$flb" '
      map(select(.tool == "cliqfs")) []
      | "| requests ≤ 1.0× lower bound: follow | \(.requests) / \($lb.lower_bound) = \((.requests / $lb.lower_bound * 100 | round) / 100)× | \(if .requests <= $lb.lower_bound then "yes" else "**no**" end) |"'
  fi
  jqs latency.jsonl -r '
    def med: sort | .[(length - 1) / 2 | floor];
    def r2: (. * 100 | round) / 100;
    group_by(.fs) | map({key: .[0].fs, value: {p50: (map(.p50_us) | med), p99: (map(.p99_us) | med)}}) | from_entries
    | select(.cliqfs and .floor)
    | "| cached reads ≤ 1.3× FUSE floor (p50) | \(.cliqfs.p50 | r2) µs / \(.floor.p50 | r2) µs = \(.cliqfs.p50 / .floor.p50 | r2)× | \(if .cliqfs.p50 <= 1.3 * .floor.p50 then "yes" else "**no**" end) |",
      "| cached reads ≤ 1.3× FUSE floor (p99) | \(.cliqfs.p99 | r2) µs / \(.floor.p99 | r2) µs = \(.cliqfs.p99 / .floor.p99 | r2)× | \(if .cliqfs.p99 <= 1.3 * .floor.p99 then "yes" else "**no**" end) |"'
  jqs scale_msgs.jsonl -r '
    def r2: (. * 100 | round) / 100;
    .[] | "| memory per cached message ≤ 2× its JSON (\(.messages) messages) | \(.mem_bytes_per_msg | round) B / \(.json_bytes_per_msg | round) B = \(.mem_bytes_per_msg / .json_bytes_per_msg | r2)× | \(if .mem_bytes_per_msg <= 2 * .json_bytes_per_msg then "yes" else "**no**" end) |"'
  jqs writes.jsonl -r '
    def r2: (. * 100 | round) / 100;
    .[] | select(.min_sim_s > 0)
    | "| \(.appends) appends delivered ≤ 1.1× the budget'"'"'s minimum | \(.delivered_sim_s | r2) s / \(.min_sim_s) s = \(.delivered_sim_s / .min_sim_s | r2)× (simulated) | \(if .delivered_sim_s <= 1.1 * .min_sim_s and .delivered == .appends then "yes" else "**no**" end) |"'
}

# ---- Plots ------------------------------------------------------------------------

plot_all() {
  local dir=$1/bench pd=$BENCH_TMP/plot
  mkdir -p "$dir" "$pd"
  local term="set terminal pngcairo size 900,540 font 'DejaVu Sans,10'"
  if have requests.jsonl; then
    local flb
    flb=$(follow_lb_json)
    {
      jqs requests.jsonl -r '
        group_by(.task) | sort_by(["browse", "states", "reply"] | index(.[0].task)) []
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
      def med: sort | .[(length - 1) / 2 | floor];
      group_by(.fs) | sort_by(["tmpfs", "floor", "cliqfs"] | index(.[0].fs)) []
      | [({tmpfs: "tmpfs", floor: "FUSE floor", cliqfs: "cliqfs"}[.[0].fs]),
         (map(.p50_us) | med), (map(.p99_us) | med)] | @tsv' >"$pd/latency.tsv"
    gnuplot <<EOF || bfail "gnuplot: latency"
$term
set output '$dir/latency.png'
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
    jqs scale_msgs.jsonl -r '.[] | [.messages, .cold_s, .warm_s, (.hwm_kb / 1024), .mem_bytes_per_msg, .json_bytes_per_msg, .mem_bytes_per_msg_with_jsonl] | @tsv' >"$pd/msgs.tsv"
    gnuplot <<EOF || bfail "gnuplot: scale messages"
set terminal pngcairo size 1100,480 font 'DejaVu Sans,10'
set output '$dir/scale-messages.png'
set multiplot layout 1,2 title 'Reading one messages file of N messages (-o history=N)'
set logscale x
set xlabel 'messages in the file'
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
plot '$pd/msgs.tsv' using 1:5 with linespoints lw 2 title 'daemon memory (RSS growth)', \
     '' using 1:7 with linespoints lw 2 title '... with messages.jsonl read too', \
     '' using 1:6 with linespoints lw 2 title 'JSON size (API)', \
     '' using 1:(2*\$6) with lines dt 2 title '2× JSON (target)'
unset multiplot
EOF
  fi
  if have follow.jsonl; then
    jqs follow.jsonl -r '.[] | .tool as $t | .delays_sim | to_entries[] | [$t, .key, .value] | @tsv' >"$pd/follow.tsv"
    grep -P '^cliqfs\t' "$pd/follow.tsv" | cut -f 2- >"$pd/follow.cliqfs"
    grep -P '^curl\+jq\t' "$pd/follow.tsv" | cut -f 2- >"$pd/follow.curl"
    gnuplot <<EOF || bfail "gnuplot: follow"
$term
set output '$dir/follow.png'
set title 'tail -f: delay from a post to its line (simulated seconds)'
set xlabel 'post number (one every 20 simulated s, round robin over the followed threads)'
set ylabel 'delay (s)'
set yrange [0:*]
set grid
set key top left
plot '$pd/follow.cliqfs' using 1:2 with linespoints lw 2 title 'cliqfs + tail -f', \
     '$pd/follow.curl' using 1:2 with linespoints lw 2 title 'curl + jq loop (polls every 10 s)'
EOF
  fi
}

# ---- The page ------------------------------------------------------------------------

report_write() {
  local out=$1
  local md=$out/benchmarks.md
  plot_all "$out"
  local cpu mem kernel cores
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  kernel=$(uname -sr)
  cores=$(nproc)
  local fuse_v
  fuse_v=$(pkg-config --modversion fuse3 2>/dev/null || echo "?")
  cat /dev/null "$BENCH_RES"/*.jsonl >"$out/bench/results.jsonl.tmp" 2>/dev/null
  for f in "$BENCH_RES"/*.jsonl; do
    [ -e "$f" ] || continue
    jq -c --arg s "$(basename "$f" .jsonl)" '{section: $s} + .' "$f"
  done >"$out/bench/results.jsonl"
  rm -f "$out/bench/results.jsonl.tmp"
  {
    cat <<EOF
# Benchmarks

Generated by \`tests/bench/run.sh$([ "$MODE" = smoke ] && echo " --smoke")\` on $BENCH_STARTED in ${BENCH_SECONDS} s
(sections: $ONLY). Do not edit by hand: rerun the command. Raw results: [bench/results.jsonl](bench/results.jsonl).
$([ "$MODE" = smoke ] && printf '\n**Smoke run: tiny sizes, the numbers only show that the harness works.**\n')

## The machine

| | |
|---|---|
| CPU | $cpu |
| cores (nproc) | $cores |
| memory | $mem |
| kernel | $kernel |
| libfuse | $fuse_v |

The machine is shared (other work may run at the same time), so timings carry noise; request
counts do not.

## Targets

EOF
    md_targets
    cat <<EOF

## Requests per task

The demo organization of the emulator (\`cliq-emulator --demo\`: 5 joined channels, 39 threads of
5–40 messages). Each task starts from a fresh mount with an empty cache; the emulator counts every
Cliq request it serves. cliqfs and the emulator run at \`time_scale=$REQ_SCALE\` (every budget window,
lock and cache lifetime divided by $REQ_SCALE), so the real budgets apply, compressed.

| task | cliqfs | curl + jq (\`tests/bench/baseline/\`) |
|---|---|---|
| browse | \`ls -lR MNT\` | \`browse.sh\`: channel list, thread list of each channel |
| states | \`cat MNT/*/*/state\` | \`states.sh\`: the same lists, state from each thread entry |
| reply | \`for d in */*/; do [ "\$(cat \$d/state)" = open ] && grep -qiw $REQ_WORD \$d/messages && echo … >> \$d/messages; done\` (until delivered) | \`reply.sh\`: lists, then each open thread's messages, then a post where the word occurs |
| follow | \`tail -f\` on the \`messages\` of $FOLLOW_N threads for $FOLLOW_SIM simulated s while others post (one message every 20 s) | \`follow.sh\`: resolve by name, then poll each thread every 10 s (\`fromtime\`) |

Lower bounds come from the organization: \`ceil(joined channels / 100)\` channel-list pages, plus
\`ceil(threads / 100)\` thread-list pages per joined channel (the thread list carries every thread's
state and title); for reply, plus one message page per open thread (\`ceil(min(messages, history) / 100)\`)
and one post per matching thread. The curl + jq scripts handle no rate limit, so they run against an
emulator whose windows are shrunk to nothing (\`--time-scale $BASELINE_SCALE\`); at real speed their bursts
exceed the 15/min budget of \`chats.messages\` whenever they read more than 15 threads' messages in a
minute, and the follow loop sends $((FOLLOW_N * 6)) \`chats.messages\` requests per minute.

EOF
    md_requests
    echo
    md_requests_notes
    cat <<EOF

![requests](bench/requests.png)

## tail -f

The follow task above, seen from \`tail -f\`: the delay from a message posted at the emulator
(\`POST /_emulator/post\`) to its line in \`tail -f\` output (each tail's output is time-stamped as it
comes). Times are simulated seconds (real seconds × $REQ_SCALE); \`tail -s\` is set to 1/$REQ_SCALE s so
that its once-a-second poll is compressed too.

EOF
    md_follow
    cat <<EOF

![follow](bench/follow.png)

## Latency of cached reads

\`readlat\` (tests/bench/readlat.c): $LAT_ITER × (\`stat\` + \`open\` + \`read\` to EOF + \`close\`) in one
process, round the same list of small files (\`$LAT_KINDS\` of every thread of the demo organization,
$(jqs latency_meta.jsonl -r '.[0].files // "?"') files), after one warm-up pass; median of $LAT_ROUNDS runs per filesystem.
The same bytes are read from cliqfs (warm: everything read once, well within its cache lifetimes; the
budget lifted so that the warm-up is quick), from a copy in tmpfs (/dev/shm), and from floorfs
(tests/bench/floorfs.c), a minimal low-level FUSE filesystem serving that copy from memory with the
kernel cache settings cliqfs uses for these files (entry and attribute timeouts 30 s, directories 5 s,
no \`keep_cache\`, multi-threaded loop). Requests to the emulator during the timed runs:
$(jqs latency_meta.jsonl -r '.[0].requests_during // "?"').

EOF
    md_latency
    cat <<EOF

![latency](bench/latency.png)

## Scale

Synthetic organizations (\`cliq-emulator --synthetic CxTxM\`). The budget is lifted on both sides
(emulator \`--time-scale $BASELINE_SCALE\`; cliqfs \`-o limit.<api>=100000/60\` for every read API, its
cache lifetimes real): these runs measure cliqfs, not the rate limits, which at real speed would
dominate (at 20 thread lists a minute, listing 100 channels takes 5 minutes however fast cliqfs is).
Peak RSS is the daemon's VmHWM (/proc/PID/status) after the operation, on a fresh mount.

### \`ls -R\`

EOF
    md_scale_ls
    cat <<EOF

![ls -R](bench/scale-ls.png)

### One big \`messages\` file

A thread of N messages (\`--synthetic 1x1xN\`) mounted with \`-o history=N\` and read with \`cat\`.
Memory per cached message is the daemon's RSS growth over the read divided by N; its JSON size is the
compact JSON of the message objects as the API returns them. (The synthetic organizations have 1,000
messages per thread, so the 10,000-message file comes from its own organization.)

EOF
    md_scale_msgs
    cat <<EOF

![messages](bench/scale-messages.png)

## Writes

$(jqs writes.jsonl -r '.[0] | "\(.appends) × `echo \"bench-append N\" >> messages` to one thread, then the time until the emulator has stored the last one (its own time stamp), from the first write. messages.post allows 20 requests a minute and cliqfs keeps 1 back, so the budget allows \(.budget_per_min) posts in any 60 s window: \(.appends) posts need at least \(.min_sim_s) s after the first (the first \(.budget_per_min) at once, then \(.budget_per_min) more per minute). Run at time_scale \(.time_scale) on both sides; simulated = real × \(.time_scale)."')

EOF
    md_writes
    cat <<EOF

## Reproduce

\`\`\`sh
meson setup build && meson compile -C build
tests/bench/run.sh                      # all sections, ~15 min; writes docs/benchmarks.md, docs/bench/
tests/bench/run.sh --only latency       # one section
tests/bench/run.sh --smoke --out /tmp/b # the short run that meson test --suite bench makes
\`\`\`

Needs fuse3, curl, jq and gnuplot (Debian: \`gnuplot-nox\`).
EOF
  } >"$md"
}
