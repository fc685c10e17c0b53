# tests/bench/sec_writes.sh: WRITES_N appends (`echo … >> messages`, one
# message per close) to one thread, and the time until the last one is
# delivered, against the least time the budget allows: messages.post allows
# LIMIT - margin requests in any window, so WRITES_N posts need at least
# floor((WRITES_N - 1) / (LIMIT - margin)) windows after the first.  Runs at
# WRITES_SCALE (time_scale on both sides); times are reported as measured
# (real) and multiplied back by the time scale (simulated, as at real speed).
# Sourced by run.sh; writes writes.jsonl.

WRITES_LIMIT=20        # messages.post per window (api/endpoints.h)
WRITES_WINDOW=60       # seconds
WRITES_MARGIN=0        # requests the governor keeps back (cache/governor.h)

_posted_at_least() {
  [ "$(emu_status_count messages.post 200)" -ge "$1" ]
}

sec_writes() {
  blog "writes: $WRITES_N appends at time_scale $WRITES_SCALE"
  bench_emu --demo --time-scale "$WRITES_SCALE"
  local pick chan title chat
  pick=$(emu_ctl GET /_emulator/state | jq -r '
    [.channels[] | select(.joined != false) | .unique_name as $c
     | (.threads | group_by(.title) | map(select(length == 1) | .[0].title)) as $u
     | .threads[] | select(.state != "closed")
     | select(.title as $t | $u | index($t))
     | select(.title | test("^[ -~]+$") and (test("/") | not))
     | [$c, .title, .chat_id]][0] | @tsv')
  IFS=$'\t' read -r chan title chat <<<"$pick"
  [ -n "$chat" ] || bfail "writes: no thread"
  bench_mount "time_scale=$WRITES_SCALE"
  local file="$MNT/$chan/$title/messages"
  stat "$file" >/dev/null || bfail "writes: no $file"
  emu_reset
  local t0 t1 i
  t0=$(now)
  for i in $(seq 1 "$WRITES_N"); do
    echo "bench-append $i" >>"$file" || bfail "writes: append $i failed"
  done
  t1=$(now)
  local budget=$((WRITES_LIMIT - WRITES_MARGIN))
  local min_sim=$((((WRITES_N - 1) / budget) * WRITES_WINDOW))
  local deadline
  deadline=$(calc "($min_sim * 3 + 120) / $WRITES_SCALE + 10")
  wait_for "$deadline" _posted_at_least "$WRITES_N" ||
    bfail "writes: $(emu_status_count messages.post 200) of $WRITES_N delivered in time"
  # Delivery times as the emulator stamped the messages; order and count.
  local got
  got=$(emu_ctl GET /_emulator/state | jq -c --arg c "$chat" '
    [.channels[].threads[] | select(.chat_id == $c) | .messages[]
     | select(.text | startswith("bench-append "))]
    | {count: length,
       in_order: ([.[].text | ltrimstr("bench-append ") | tonumber] as $n
                  | $n == [range(1; ($n | length) + 1)]),
       first_ms: (map(.time) | min), last_ms: (map(.time) | max)}')
  local counters
  counters=$(emu_counters)
  res_add writes.jsonl "$(jq -nc --argjson got "$got" --argjson c "$counters" \
    --argjson n "$WRITES_N" --argjson t0 "$t0" --argjson t1 "$t1" \
    --argjson scale "$WRITES_SCALE" --argjson min_sim "$min_sim" \
    --argjson budget "$budget" '
      {appends: $n, time_scale: $scale, budget_per_min: $budget,
       delivered: $got.count, in_order: $got.in_order,
       writes_real_s: ($t1 - $t0),
       delivered_real_s: ($got.last_ms / 1000 - $t0),
       first_after_real_s: ($got.first_ms / 1000 - $t0),
       delivered_sim_s: (($got.last_ms / 1000 - $t0) * $scale),
       min_sim_s: $min_sim, min_real_s: ($min_sim / $scale),
       post_requests: ($c.apis["messages.post"].total // 0),
       throttled: $c.throttled,
       max_in_window: ($c.windows["messages.post"].max_in_window // null)}')"
  bench_unmount
  emu_stop
}
