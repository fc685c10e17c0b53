# tests/bench/sec_requests.sh: requests per task, cliqfs against the lower
# bound and against the curl + jq scripts of baseline/; also the tail -f
# delays (the follow task).  Sourced by run.sh; writes requests.jsonl and
# follow.jsonl.
#
# cliqfs and its emulator run at REQ_SCALE (time_scale on both sides, the real
# budgets compressed).  The curl + jq scripts run against an emulator whose
# windows are shrunk to nothing (time_scale 1e5): they handle no rate limit,
# so under a real budget they would be refused; we count what they send.

REQ_WORD=review
REQ_REPLY_TEXT="Noted, I will take a look (bench)"
BASELINE_SCALE=100000

# org_facts: facts of the demo organization from the emulator's state (the
# control path, not counted).  Prints a JSON object.
org_facts() {
  emu_ctl GET /_emulator/state |
    jq -c --arg w "$REQ_WORD" '
      [.channels[] | select(.joined != false)] as $j
      | {joined: ($j | length),
         threads: ([$j[] | .threads | length] | add),
         thread_pages: ([$j[] | ((.threads | length) / 100 | ceil) | if . < 1 then 1 else . end] | add),
         open: ([$j[] | .threads[] | select(.state != "closed")] | length),
         open_message_pages: ([$j[] | .threads[] | select(.state != "closed")
                               | (([(.messages | length), 100] | min) / 100 | ceil)
                               | if . < 1 then 1 else . end] | add),
         matches: ([$j[] | .threads[] | select(.state != "closed")
                    | select(any(.messages[]; (.text // "") | test("\\b" + $w + "\\b"; "i")))] | length)}
      | .channel_pages = ((.joined / 100 | ceil) | if . < 1 then 1 else . end)'
}

# refetches MARK: how many times a chat's messages were fetched again (the
# same chat's /messages list, beyond its first fetch) since MARK.
refetches() {
  emu_log_since "$1" | grep -oE '^GET /api/v2/chats/[^ ?]+/messages ' | sort | uniq -c |
    awk '{ n += $1 - 1 } END { print n + 0 }'
}

# req_record TASK TOOL SECONDS LOWER_BOUND [EXTRA_JSON]: one result line with
# the emulator's counters (and, since REQ_MARK, the repeated fetches).
req_record() {
  local task=$1 tool=$2 secs=$3 lb=$4 extra=${5:-"{}"}
  local c
  c=$(emu_counters)
  extra=$(jq -c --argjson r "$(refetches "$REQ_MARK")" '. + {refetches: $r}' <<<"$extra")
  res_add requests.jsonl "$(jq -c --arg task "$task" --arg tool "$tool" \
    --argjson secs "$secs" --argjson lb "$lb" --argjson extra "$extra" '
      {task: $task, tool: $tool, seconds: $secs, lower_bound: $lb,
       requests: .total, throttled: .throttled,
       apis: (.apis | map_values(.total))} + $extra' <<<"$c")"
}

baseline_env() {
  CLIQ_API=$EMU_URL CLIQ_TOKEN=$EMU_TOKEN "$@"
}

req_browse() {
  local facts lb t0 t1 lines
  bench_emu --demo --time-scale "$REQ_SCALE"
  facts=$(org_facts)
  lb=$(jq '.channel_pages + .thread_pages' <<<"$facts")
  emu_reset
  REQ_MARK=$(emu_log_mark)
  bench_mount "time_scale=$REQ_SCALE"
  t0=$(now)
  ls -lR "$MNT" >"$BENCH_TMP/browse.out" || bfail "ls -lR failed"
  t1=$(now)
  lines=$(grep -c . "$BENCH_TMP/browse.out")
  # Every thread of every joined channel is listed.
  local dirs
  dirs=$(find "$MNT" -mindepth 2 -maxdepth 2 -type d ! -path '*/.cliqfs*' | wc -l)
  [ "$dirs" -eq "$(jq .threads <<<"$facts")" ] ||
    bfail "browse: $dirs thread folders, the organization has $(jq .threads <<<"$facts")"
  req_record browse cliqfs "$(calc "$t1 - $t0")" "$lb" "{\"lines\":$lines}"
  bench_unmount

  bench_emu --demo --time-scale "$BASELINE_SCALE"
  emu_reset
  REQ_MARK=$(emu_log_mark)
  t0=$(now)
  baseline_env bash "$BENCH_SRC/baseline/browse.sh" >"$BENCH_TMP/browse.base" ||
    bfail "baseline/browse.sh failed"
  t1=$(now)
  req_record browse curl+jq "$(calc "$t1 - $t0")" "$lb" \
    "{\"lines\":$(grep -c . "$BENCH_TMP/browse.base")}"
}

req_states() {
  local facts lb t0 t1 n
  bench_emu --demo --time-scale "$REQ_SCALE"
  facts=$(org_facts)
  lb=$(jq '.channel_pages + .thread_pages' <<<"$facts")
  emu_reset
  REQ_MARK=$(emu_log_mark)
  bench_mount "time_scale=$REQ_SCALE"
  t0=$(now)
  cat "$MNT"/*/*/state >"$BENCH_TMP/states.out" || bfail "cat */*/state failed"
  t1=$(now)
  n=$(grep -cE '^(open|closed)$' "$BENCH_TMP/states.out")
  [ "$n" -eq "$(jq .threads <<<"$facts")" ] || bfail "states: $n states read"
  req_record states cliqfs "$(calc "$t1 - $t0")" "$lb" "{\"states\":$n}"
  bench_unmount

  bench_emu --demo --time-scale "$BASELINE_SCALE"
  emu_reset
  REQ_MARK=$(emu_log_mark)
  t0=$(now)
  baseline_env bash "$BENCH_SRC/baseline/states.sh" >"$BENCH_TMP/states.base" ||
    bfail "baseline/states.sh failed"
  t1=$(now)
  req_record states curl+jq "$(calc "$t1 - $t0")" "$lb" \
    "{\"states\":$(grep -cE ': (open|closed)$' "$BENCH_TMP/states.base")}"
}

# replies_in_state: replies of ours with the bench text in the emulator.
replies_in_state() {
  emu_ctl GET /_emulator/state |
    jq --arg t "$REQ_REPLY_TEXT" '[.channels[].threads[].messages[] | select(.text == $t)] | length'
}

_posts_done() {
  outbox_empty && [ "$(emu_status_count messages.post 200)" -ge "$1" ]
}

req_reply() {
  local facts lb t0 t1 matches replied
  bench_emu --demo --time-scale "$REQ_SCALE"
  facts=$(org_facts)
  matches=$(jq .matches <<<"$facts")
  lb=$(jq '.channel_pages + .thread_pages + .open_message_pages + .matches' <<<"$facts")
  emu_reset
  REQ_MARK=$(emu_log_mark)
  bench_mount "time_scale=$REQ_SCALE"
  t0=$(now)
  (
    cd "$MNT" || exit 1
    for d in */*/; do
      [ "$(cat "$d/state")" = open ] || continue
      if grep -qiw "$REQ_WORD" "$d/messages"; then
        echo "$REQ_REPLY_TEXT" >>"$d/messages" || exit 1
      fi
    done
  ) || bfail "reply loop failed"
  # Delivered (the outbox empties) and answered.
  wait_for 120 _posts_done "$matches" || bfail "reply: the replies were not delivered"
  t1=$(now)
  replied=$(replies_in_state)
  req_record reply cliqfs "$(calc "$t1 - $t0")" "$lb" "{\"replies\":$replied,\"matches\":$matches}"
  bench_unmount

  bench_emu --demo --time-scale "$BASELINE_SCALE"
  emu_reset
  REQ_MARK=$(emu_log_mark)
  t0=$(now)
  baseline_env bash "$BENCH_SRC/baseline/reply.sh" "$REQ_WORD" "$REQ_REPLY_TEXT" \
    >"$BENCH_TMP/reply.base" || bfail "baseline/reply.sh failed"
  t1=$(now)
  replied=$(replies_in_state)
  req_record reply curl+jq "$(calc "$t1 - $t0")" "$lb" "{\"replies\":$replied,\"matches\":$matches}"
}

# ---- follow: tail -f on FOLLOW_N threads for FOLLOW_SIM simulated seconds ----

# follow_pick N: N open threads, two per joined channel, whose titles are
# their folder names (unique in the channel, nothing to make safe).  Lines
# "channel<TAB>title<TAB>chat_id<TAB>sender" (sender: a member other than me).
follow_pick() {
  emu_ctl GET /_emulator/state | jq -r --argjson n "$1" '
    .me as $me
    | [.channels[] | select(.joined != false)
       | .unique_name as $c
       | (.threads | group_by(.title) | map(select(length == 1) | .[0]) | map(.title)) as $unique
       | [.threads[] | select(.state != "closed")
          | select(.title as $t | $unique | index($t))
          | select(.title | test("^[ -~]+$") and (test("/") | not))
          | {c: $c, t: .title, id: .chat_id,
             s: ([.members[]? | select(. != $me)][0] // $me)}][0:2][]]
    | .[0:$n][] | [.c, .t, .id, .s] | @tsv'
}

_total_at_least() {
  [ "$(emu_total)" -ge "$1" ]
}

stamp_lines() {
  local line
  while IFS= read -r line; do
    printf '%s\t%s\n' "$EPOCHREALTIME" "$line"
  done
}

# _tail_opened PID...: every one of these processes has a messages file open.
_tail_opened() {
  local p
  for p in "$@"; do
    [[ $'\n'$(readlink /proc/"$p"/fd/* 2>/dev/null)$'\n' == *$'/messages\n'* ]] || return 1
  done
}

# _all_arrived DIR POSTS: the lines of posts 0..POSTS-1 are in DIR/out.*.
# Polled every 20 ms while the measured daemon works: one grep per poll.
_all_arrived() {
  [ "$(grep -ohE 'bench-follow-[0-9]+$' "$1"/out.* | sort -u | wc -l)" -ge "$2" ]
}

# follow_run TOOL [POLL]: runs one follow measurement (cliqfs, or the curl+jq
# script polling every POLL simulated seconds, default 10) and records it.
# The emulator and (for cliqfs) the mount are already up.
follow_run() {
  local tool=$1 poll=${2:-10}
  local dir=$BENCH_TMP/follow-$tool
  mkdir -p "$dir"
  local -a chans=() titles=() chats=() senders=()
  local c t id s
  while IFS=$'\t' read -r c t id s; do
    chans+=("$c") titles+=("$t") chats+=("$id") senders+=("$s")
  done < <(follow_pick "$FOLLOW_N")
  local n=${#chats[@]}
  [ "$n" -eq "$FOLLOW_N" ] || bfail "follow: only $n threads to follow"
  local n_chan chan_pages
  n_chan=$(printf '%s\n' "${chans[@]}" | sort -u | wc -l)
  # Thread-list pages of the followed channels (100 threads a page).
  chan_pages=$(emu_ctl GET '/_emulator/state?messages=0' | jq --argjson c \
    "$(printf '%s\n' "${chans[@]}" | sort -u | jq -R . | jq -sc .)" '
      [.channels[] | select(.unique_name as $n | $c | index($n))
       | ((.threads | length) / 100 | ceil) | if . < 1 then 1 else . end] | add')

  emu_reset
  local mark
  mark=$(emu_log_mark)
  local -a tail_pids=()
  local i
  if [[ $tool == cliqfs* ]]; then
    # tail's poll interval (1 s) compressed like everything else.
    local ts
    ts=$(calc "1 / $REQ_SCALE")
    for i in $(seq 0 $((n - 1))); do
      mkfifo "$dir/fifo.$i"
      stamp_lines <"$dir/fifo.$i" >"$dir/out.$i" &
      bench_bg_add $!
      tail -s "$ts" -f "$MNT/${chans[$i]}/${titles[$i]}/messages" >"$dir/fifo.$i" &
      tail_pids+=($!)
      bench_bg_add $!
    done
    wait_for 60 _tail_opened "${tail_pids[@]}" || bfail "follow: tail -f did not open the files"
  else
    local -a args=()
    for i in $(seq 0 $((n - 1))); do
      args+=("${chans[$i]}/${titles[$i]}")
    done
    mkfifo "$dir/fifo.0"
    stamp_lines <"$dir/fifo.0" >"$dir/out.0" &
    bench_bg_add $!
    CLIQ_API=$EMU_URL CLIQ_TOKEN=$EMU_TOKEN POLL_SECONDS=$(calc "$poll / $REQ_SCALE") \
      DURATION_SECONDS=0 bash "$BENCH_SRC/baseline/follow.sh" "${args[@]}" >"$dir/fifo.0" &
    bench_bg_add $!
    # Its start-up requests: channel list, thread lists, one message each.
    wait_for 60 _total_at_least $((1 + n_chan + n)) ||
      bfail "follow: the curl script did not start"
  fi

  local t_start setup setup_apis
  t_start=$(now)
  setup=$(emu_total)
  setup_apis=$(emu_api_counts)
  local posts=$((FOLLOW_SIM / 20))
  # One post in every 20 s, at a moment drawn in 1..19 s of it (the same
  # moments for every tool: a fixed seed).  At a fixed moment of each 20 s
  # every post would land at the same phase of any poller whose period
  # divides 20 s, and the delays would measure that phase, not the tool.
  local -a post_at
  mapfile -t post_at < <(awk -v n="$posts" 'BEGIN { srand(20);
    for (k = 0; k < n; k++) printf "%.3f\n", 20 * k + 1 + 18 * rand() }')
  local k post_times=()
  for k in $(seq 0 $((posts - 1))); do
    sleep_until "$(calc "$t_start + ${post_at[$k]} / $REQ_SCALE")"
    i=$((k % n))
    post_times+=("$(now)")
    emu_ctl POST /_emulator/post "$(jq -nc --arg c "${chats[$i]}" --arg s "${senders[$i]}" \
      --arg t "bench-follow-$k" '{chat_id: $c, sender_id: $s, text: $t}')" >/dev/null
  done
  sleep_until "$(calc "$t_start + $FOLLOW_SIM / $REQ_SCALE")"
  local c_end per_chat
  c_end=$(emu_counters)
  # Fetches of each followed thread's messages (set-up and following).
  per_chat=$(emu_log_since "$mark" | grep -oE '^GET /api/v2/chats/[^ ?]+/messages ' |
    sort | uniq -c | awk '{ print $1 }' | jq -sc 'sort')
  local t_end
  t_end=$(now)
  # Let the last posts arrive (they are not counted as requests any more).
  wait_for "$(calc "$FOLLOW_GRACE / $REQ_SCALE")" _all_arrived "$dir" "$posts"
  bench_bg_stop

  # Delays (simulated seconds = real seconds x time scale).
  local delays=()
  for k in $(seq 0 $((posts - 1))); do
    local at
    at=$(grep -hE "bench-follow-$k\$" "$dir"/out.* | head -n 1 | cut -f 1)
    if [ -n "$at" ]; then
      delays+=("$(calc "($at - ${post_times[$k]}) * $REQ_SCALE")")
    fi
  done
  local delays_json
  delays_json=$(printf '%s\n' "${delays[@]}" | jq -sc 'map(select(. != null))')
  local sim_minutes
  sim_minutes=$(calc "($t_end - $t_start) * $REQ_SCALE / 60")
  res_add follow.jsonl "$(jq -c --arg tool "$tool" --argjson setup "$setup" \
    --argjson delays "$delays_json" --argjson posts "$posts" \
    --argjson threads "$n" --argjson chans "$n_chan" --argjson mins "$sim_minutes" \
    --argjson pages "$chan_pages" --argjson setup_apis "$setup_apis" \
    --argjson per_chat "$per_chat" \
    --argjson scale "$REQ_SCALE" '
      {tool: $tool, threads: $threads, channels: $chans, channel_pages: $pages, posts: $posts,
       setup_apis: $setup_apis, fetches_per_thread: $per_chat,
       arrived: ($delays | length), delays_sim: $delays, time_scale: $scale,
       sim_minutes: $mins, setup_requests: $setup, requests: .total,
       following_requests: (.total - $setup),
       requests_per_min: ((.total - $setup) / $mins),
       throttled: .throttled, apis: (.apis | map_values(.total)),
       limits: (.windows | map_values(.limit)),
       windows: (.windows | with_entries(select(.value.max_in_window > 0))
                 | map_values({max_in_window, limit}))}' <<<"$c_end")"
}

req_follow() {
  # cliqfs twice: with sync off, the followed threads alone (what following
  # costs); with sync on (the default), the tail -f opens right after the
  # mount, while sync starts to fetch the organization.
  bench_emu --demo --time-scale "$REQ_SCALE"
  bench_mount "time_scale=$REQ_SCALE"
  follow_run cliqfs
  bench_unmount
  bench_emu --demo --time-scale "$REQ_SCALE"
  bench_mount "time_scale=$REQ_SCALE,sync=all"
  follow_run "cliqfs, sync=all"
  bench_unmount

  # The loop at two fixed intervals: as fresh as it gets at 10 s, and at
  # 20 s, half the requests.
  bench_emu --demo --time-scale "$BASELINE_SCALE"
  follow_run curl+jq 10
  bench_emu --demo --time-scale "$BASELINE_SCALE"
  follow_run "curl+jq (20 s)" 20
}

sec_requests() {
  BENCH_EMU_LOG=1
  blog "requests: browse"
  req_browse
  blog "requests: states"
  req_states
  blog "requests: reply"
  req_reply
  blog "requests: follow ($FOLLOW_N threads, $FOLLOW_SIM simulated s)"
  req_follow
  emu_stop
  BENCH_EMU_LOG=0
}
