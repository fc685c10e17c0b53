# tests/bench/sec_scale.sh: synthetic organizations of growing size.
#  - `ls -R` of C channels x T threads (M messages each): time cold and warm,
#    requests, peak RSS of the daemon (VmHWM);
#  - reading a messages file of N messages (-o history=N) from a thread of N
#    messages: time cold and warm, peak RSS, memory per cached message against
#    the message's JSON size (compact, as the API sends it).
# The budget is lifted on both sides (see sec_latency.sh): this measures
# cliqfs, not the rate limits.  Sourced by run.sh; writes scale_ls.jsonl and
# scale_msgs.jsonl.

sec_scale_ls() {
  local size=$1 c t m
  IFS=x read -r c t m <<<"$size"
  blog "scale: ls -R of ${c}x${t}x${m}"
  bench_emu --synthetic "$size" --time-scale 100000
  bench_mount "$BENCH_NOLIMITS"
  emu_reset
  # The daemon at rest, mounted.
  local rss0 t0 t1 t2 entries dirs
  rss0=$(proc_kb "$CLIQFS_PID" VmRSS)
  t0=$(now)
  ls -R "$MNT" >"$BENCH_TMP/ls.out" || bfail "scale: ls -R failed"
  t1=$(now)
  local hwm requests
  hwm=$(proc_kb "$CLIQFS_PID" VmHWM)
  requests=$(emu_total)
  ls -R "$MNT" >/dev/null || bfail "scale: second ls -R failed"
  t2=$(now)
  entries=$(grep -cv -e '^$' -e ':$' "$BENCH_TMP/ls.out")
  dirs=$(grep -c ':$' "$BENCH_TMP/ls.out")
  # The root, C channels, C*T threads.
  [ "$dirs" -eq $((1 + c + c * t)) ] ||
    bfail "scale: ls -R of $size listed $dirs folders, expected $((1 + c + c * t))"
  res_add scale_ls.jsonl "$(jq -nc --arg size "$size" --argjson c "$c" --argjson t "$t" \
    --argjson m "$m" --argjson cold "$(calc "$t1 - $t0")" --argjson warm "$(calc "$t2 - $t1")" \
    --argjson rss0 "$rss0" --argjson hwm "$hwm" --argjson req "$requests" \
    --argjson entries "$entries" --argjson thr "$(emu_throttled)" '
      {size: $size, channels: $c, threads: ($c * $t), messages_each: $m,
       lower_bound: ((($c / 100) | ceil) + $c * (($t / 100) | ceil)),
       entries: $entries, cold_s: $cold, warm_s: $warm, requests: $req,
       throttled: $thr, rss_idle_kb: $rss0, hwm_kb: $hwm}')"
  bench_unmount
}

# json_bytes_per_message CHAT N: the compact JSON of the chat's messages as
# the API sends them (pages of 100, oldest first), bytes per message, over
# its first N messages (at most 1000: a sample of the big ones).
json_bytes_per_message() {
  local chat=$1 n=$2 from=0 total=0 count=0 page bytes got last
  [ "$n" -le 1000 ] || n=1000
  while [ "$count" -lt "$n" ]; do
    emu_api GET "/api/v2/chats/$chat/messages?fromtime=$from&limit=100" >/dev/null
    page=$(cat "$EMU_BODY")
    got=$(jq '.data | length' <<<"$page")
    [ "$got" -gt 0 ] || break
    bytes=$(jq -c '.data[]' <<<"$page" | wc -c)
    total=$((total + bytes - got))     # without the newlines jq adds
    count=$((count + got))
    last=$(jq '.data[-1].time' <<<"$page")
    from=$((last + 1))
  done
  [ "$count" -eq "$n" ] || bfail "scale: the API gave $count of $n messages"
  calc "$total / $count"
}

sec_scale_msgs() {
  local n=$1
  # A messages file starts with at most 100000 messages (history): more are
  # read as several threads of 100000.
  local threads=$(((n + 99999) / 100000))
  local per=$((n / threads))
  blog "scale: $n messages read ($threads thread(s) of $per)"
  bench_emu --synthetic "1x${threads}x$per" --time-scale 100000
  local chat
  chat=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r '.channels[0].threads[0].chat_id')
  BENCH_WITH_HEAP=1 bench_mount "history=$per,$BENCH_NOLIMITS"
  local -a tdirs=()
  mapfile -t tdirs < <(find "$MNT" -mindepth 2 -maxdepth 2 -type d ! -path '*/.cliqfs*')
  [ "${#tdirs[@]}" -eq "$threads" ] || bfail "scale: ${#tdirs[@]} thread folders, expected $threads"
  stat "${tdirs[0]}/messages" >/dev/null || bfail "scale: no messages file"
  emu_reset
  local rss0 t0 t1 t2 rss1 hwm lines requests heap0 heap1 heap2
  heap0=$(heap_now)
  rss0=$(proc_kb "$CLIQFS_PID" VmRSS)
  t0=$(now)
  cat "${tdirs[@]/%//messages}" >"$BENCH_TMP/msgs.out" || bfail "scale: cat messages failed"
  t1=$(now)
  rss1=$(proc_kb "$CLIQFS_PID" VmRSS)
  heap1=$(heap_now)
  hwm=$(proc_kb "$CLIQFS_PID" VmHWM)
  requests=$(emu_total)
  cat "${tdirs[@]/%//messages}" >/dev/null || bfail "scale: second cat failed"
  t2=$(now)
  # Warm cat against tmpfs holding the same bytes: WARM_ROUNDS rounds,
  # interleaved, the median of each.  The clock is read by the shell itself
  # ($(now) is a fork, which would count in both times).  Most of either
  # time is the fork and exec of cat (about 5 ms here), whose spread is what
  # 3 rounds could not outvote, nor 7 always (1.41x and 0.98x in two runs of
  # the same code).
  local shm_f a b c r
  local -a cw=() tw=()
  shm_f=$(mktemp /dev/shm/cliqfs-bench-msgs.XXXXXX)
  cp "$BENCH_TMP/msgs.out" "$shm_f" && cat "$shm_f" >/dev/null
  # A file past the memory bound is read from the disk copy (12 s a cat at
  # 1M messages): 7 rounds there.
  local rounds=$WARM_ROUNDS
  [ "$n" -le 100000 ] || rounds=7
  for ((r = 0; r < rounds; r++)); do
    a=$EPOCHREALTIME
    cat "${tdirs[@]/%//messages}" >/dev/null || bfail "scale: warm cat failed"
    b=$EPOCHREALTIME
    cat "$shm_f" >/dev/null
    c=$EPOCHREALTIME
    cw+=("$(calc "$b - $a")") tw+=("$(calc "$c - $b")")
  done
  rm -f "$shm_f"
  local warm_med tmpfs_med
  warm_med=$(printf '%s\n' "${cw[@]}" | sort -g | sed -n "$((rounds / 2 + 1))p")
  tmpfs_med=$(printf '%s\n' "${tw[@]}" | sort -g | sed -n "$((rounds / 2 + 1))p")
  # One line per message (continuation lines start with a TAB).
  lines=$(grep -c -v $'^\t' "$BENCH_TMP/msgs.out")
  # Fewer than asked is a finding to report, not a reason to stop.
  [ "$lines" -gt 0 ] || bfail "scale: messages is empty"
  local text_bytes
  text_bytes=$(wc -c <"$BENCH_TMP/msgs.out")
  # messages.jsonl too: what both forms cost together.
  cat "${tdirs[@]/%//messages.jsonl}" >/dev/null || bfail "scale: cat messages.jsonl failed"
  local rss2 disk
  rss2=$(proc_kb "$CLIQFS_PID" VmRSS)
  heap2=$(heap_now)
  disk=$(du -sb "$MNT_DIR/cache" | cut -f 1)
  local json_pm
  json_pm=$(json_bytes_per_message "$chat" "$per")
  res_add scale_msgs.jsonl "$(jq -nc --argjson n "$n" --argjson cold "$(calc "$t1 - $t0")" \
    --argjson warm "$(calc "$t2 - $t1")" --argjson rss0 "$rss0" --argjson rss1 "$rss1" \
    --argjson rss2 "$rss2" --argjson hwm "$hwm" --argjson req "$requests" \
    --argjson json_pm "$json_pm" --argjson text "$text_bytes" --argjson shown "$lines" \
    --argjson heap0 "$heap0" --argjson heap1 "$heap1" --argjson heap2 "$heap2" --argjson disk "$disk" \
    --argjson warm_med "$warm_med" --argjson tmpfs_med "$tmpfs_med" --argjson rounds "$rounds" '
      {messages: $n, shown: $shown, lower_bound: (($n / 100) | ceil), cold_s: $cold, warm_s: $warm, requests: $req,
       warm_median_s: $warm_med, tmpfs_warm_s: $tmpfs_med, warm_rounds: $rounds,
       rss_before_kb: $rss0, rss_after_kb: $rss1, rss_after_jsonl_kb: $rss2,
       hwm_kb: $hwm, json_bytes_per_msg: $json_pm, text_bytes: $text,
       disk_cache_bytes: $disk,
       mem_bytes_per_msg: (($rss1 - $rss0) * 1024 / $shown),
       mem_bytes_per_msg_with_jsonl: (($rss2 - $rss0) * 1024 / $shown),
       heap_before: $heap0, heap_after: $heap1, heap_after_jsonl: $heap2,
       heap_bytes_per_msg: (($heap1 - $heap0) / $shown),
       heap_bytes_per_msg_with_jsonl: (($heap2 - $heap0) / $shown)}')"
  bench_unmount
}

# sec_scale_ls_budget SIZE SCALE SYNC: a cold `ls -R` at Cliq's budgets,
# compressed by SCALE on both sides, with -o sync=SYNC.  What it needs (the
# channel list and one thread list per channel, 21 requests for 20 x 100)
# fits a window of threads.list (20): it must not wait for a request slot.
# Counted: the channel and thread lists when ls ended (with sync on, sync's
# lists are among them and ls uses them), the daemon's "waiting for" lines,
# what the emulator refused or saw over a limit in a window.
sec_scale_ls_budget() {
  local size=$1 scale=$2 sync=$3 c t m
  IFS=x read -r c t m <<<"$size"
  blog "scale: cold ls -R of $size at Cliq's budgets (time_scale $scale), sync=$sync"
  bench_emu --synthetic "$size" --time-scale "$scale"
  emu_reset
  bench_mount "time_scale=$scale,sync=$sync"
  local t0 t1 counters dirs waits
  t0=$(now)
  ls -R "$MNT" >"$BENCH_TMP/ls.out" || bfail "scale: ls -R at budgets failed"
  t1=$(now)
  counters=$(emu_counters)
  dirs=$(grep -c ':$' "$BENCH_TMP/ls.out")
  [ "$dirs" -eq $((1 + c + c * t)) ] ||
    bfail "scale: ls -R of $size at budgets listed $dirs folders, expected $((1 + c + c * t))"
  waits=$(grep -c "waiting for " "$MNT_DIR/cliqfs.log" || true)
  res_add scale_ls_budget.jsonl "$(jq -c --arg size "$size" --arg sync "$sync" \
    --argjson scale "$scale" --argjson c "$c" --argjson t "$t" \
    --argjson sim "$(calc "($t1 - $t0) * $scale")" --argjson waits "${waits:-0}" '
      {size: $size, sync: $sync, time_scale: $scale, threads: ($c * $t),
       needed: ((($c / 100) | ceil) + $c * (($t / 100) | ceil)),
       lists: ((.apis["channels.list"].total // 0) + (.apis["threads.list"].total // 0)),
       sim_s: $sim, slot_waits: $waits, throttled: .throttled,
       over: [.windows | to_entries[] | select(.value.max_in_window > .value.limit) | .key],
       threads_list_limit: .windows["threads.list"].limit}' <<<"$counters")"
  bench_unmount
}

sec_scale() {
  local s
  for s in $SCALE_SIZES; do
    sec_scale_ls "$s"
  done
  for s in off all; do
    sec_scale_ls_budget "$SCALE_BUDGET_SIZE" "$REQ_SCALE" "$s"
  done
  for s in $MSG_SIZES; do
    sec_scale_msgs "$s"
  done
  emu_stop
}
