#!/usr/bin/env bash
# Organizations: --org FILE (and its errors), state round trip, the demo
# organization's promised content, --synthetic sizes and determinism
# (including 100x100x1000 in little memory).
. "$(dirname "$0")/t_lib.sh"

cat >"$EMU_DIR/org.json" <<'JSON'
{
  "me": "100",
  "users": [
    {"user_id": "100", "email_id": "ann@example.com", "name": "Ann Example"},
    {"user_id": "200", "email_id": "bob@example.com", "name": "Bob Example"},
    {"user_id": "300", "email_id": "cy@example.com", "name": "Cy Example"}
  ],
  "channels": [ {
    "channel_id": "O1000000000001", "chat_id": "CT_1000000000000000001_10000000001",
    "unique_name": "team", "name": "#Team", "description": "Our team",
    "members": ["100", "200", "300"],
    "messages": [
      {"id": "1700000000000_11111111111111", "time": 1700000000000, "sender": "200", "text": "Plan for next week?"},
      {"id": "1700000100000_22222222222222", "time": 1700000100000, "sender": "100", "type": "file",
       "file": {"name": "plan.pdf", "type": "application/pdf", "size": 1234}}
    ],
    "threads": [ {
      "chat_id": "CT_1000000000000000001_10000000001-T-1000000000000000042",
      "thread_message_id": "1700000000000_11111111111111",
      "title": "Next week / plan", "state": "closed",
      "messages": [
        {"time": 1700000200000, "sender": "100", "text": "Monday: planning"},
        {"time": 1700000300000, "sender": "300", "text": "Works for me\nSee you then"}
      ] } ] },
    { "unique_name": "quiet", "joined": false } ]
}
JSON
emu_start --quiet --org "$EMU_DIR/org.json" || die "start with --org"
TCHAT=CT_1000000000000000001_10000000001-T-1000000000000000042
st=$(emu_api GET /api/v2/channels)
expect_jq "two channels, one joined" '(.channels | length == 2) and ([.channels[] | select(.joined)] | length == 1)'
expect_jq "defaults for the second channel" 'any(.channels[]; .unique_name == "quiet" and .name == "#quiet" and (.chat_id | startswith("CT_")))'
st=$(emu_api GET /api/v2/channels/O1000000000001/threads)
expect_jq "the thread as given" --arg c "$TCHAT" '.data == [.data[0]] and .data[0].chat_id == $c and .data[0].title == "Next week / plan" and .data[0].thread_state == "closed" and .data[0].message_count == 2'
expect_jq "followers default to the people in the thread" '.data[0].follower_count == 3 and .data[0].is_follower == true'
st=$(emu_api GET "/api/v2/chats/$TCHAT/messages")
expect_jq "thread messages as given" '[.data[].content.text] == ["Monday: planning","Works for me\nSee you then"] and [.data[].sender.name] == ["Ann Example","Cy Example"]'
st=$(emu_api GET "/api/v2/chats/CT_1000000000000000001_10000000001/messages")
expect_jq "file message" '.data[1].type == "file" and .data[1].content.file.name == "plan.pdf" and .data[0].thread_information.title == "Next week / plan"'
st=$(emu_api POST "/api/v3/chats/$TCHAT/messages" '{"text":"x"}')
expect_status 400 "$st" "closed thread from the file refuses replies"

# Round trip: the state loads back as an --org file and dumps the same.
emu_ctl GET /_emulator/state >"$EMU_DIR/state1.json"
emu_start --quiet --org "$EMU_DIR/state1.json" || die "start with a dumped state"
emu_ctl GET /_emulator/state >"$EMU_DIR/state2.json"
check "org file → state → org file is stable" test "$(jq -S . "$EMU_DIR/state1.json")" = "$(jq -S . "$EMU_DIR/state2.json")"

# Broken files are refused with a message naming the problem.
bad() {
  local what=$1 filter=$2
  jq "$filter" "$EMU_DIR/org.json" >"$EMU_DIR/bad.json"
  "$CLIQ_EMULATOR" --port 0 --org "$EMU_DIR/bad.json" >/dev/null 2>"$EMU_DIR/bad.err"
  local rc=$?
  check "$what refused (status $rc)" test "$rc" -ne 0
  check "$what: message says why ($(head -c 150 "$EMU_DIR/bad.err"))" test -s "$EMU_DIR/bad.err"
}
bad "thread_message_id naming no channel message" '.channels[0].threads[0].thread_message_id = "1_1"'
bad "unknown sender" '.channels[0].messages[0].sender = "999"'
bad "unknown me" '.me = "999"'
bad "no users" '.users = []'
bad "bad thread state" '.channels[0].threads[0].state = "archived"'
echo '{ not json' >"$EMU_DIR/bad.json"
"$CLIQ_EMULATOR" --port 0 --org "$EMU_DIR/bad.json" >/dev/null 2>&1
check "invalid JSON refused" test $? -ne 0
"$CLIQ_EMULATOR" --port 0 --org "$EMU_DIR/missing.json" >/dev/null 2>&1
check "missing file refused" test $? -ne 0

# The demo organization (the default).
emu_start --quiet || die "start demo"
s=$(emu_ctl GET /_emulator/state)
check "demo: 8-12 people" jqt '.users | length >= 8 and length <= 12' <<<"$s"
check "demo: at least 5 joined channels" jqt '[.channels[] | select(.joined)] | length >= 5' <<<"$s"
check "demo: about 40 threads" jqt '[.channels[].threads[]] | length >= 36' <<<"$s"
check "demo: conversations of 5 to 40 messages" jqt 'all(.channels[].threads[]; .message_count >= 5 and .message_count <= 40)' <<<"$s"
check "demo: some long conversations (≥ 25)" jqt '[.channels[].threads[] | select(.message_count >= 25)] | length >= 2' <<<"$s"
check "demo: a few closed threads" jqt '[.channels[].threads[] | select(.state == "closed")] | length >= 3' <<<"$s"
check "demo: file messages" jqt '[.. | objects | select(.type? == "file")] | length >= 2' <<<"$s"
check "demo: a title with a slash" jqt 'any(.channels[].threads[]; .title | contains("/"))' <<<"$s"
check "demo: two threads of one channel share a title" jqt 'any(.channels[]; [.threads[].title] | length != (unique | length))' <<<"$s"
check "demo: multi-line messages" jqt '[.. | objects | .text? | strings | select(contains("\n"))] | length >= 3' <<<"$s"

# Synthetic: sizes, determinism.
emu_start --quiet --synthetic 3x7x25 --seed 5 || die "synthetic"
s=$(emu_ctl GET '/_emulator/state?messages=0')
check "3 channels" jqt '.channels | length == 3' <<<"$s"
check "7 threads each" jqt 'all(.channels[]; .threads | length == 7)' <<<"$s"
check "25 messages per thread" jqt 'all(.channels[].threads[]; .message_count == 25)' <<<"$s"
cid=$(jq -r '.channels[1].channel_id' <<<"$s"); th=$(jq -r '.channels[1].threads[3].chat_id' <<<"$s")
st=$(emu_api GET "/api/v2/channels/$cid/threads?limit=100")
expect_jq "API lists 7 threads" '.data | length == 7'
st=$(emu_api GET "/api/v2/chats/$th/messages?limit=100")
expect_jq "API gives 25 messages, ascending, with text" '(.data | length == 25) and ([.data[].time] == ([.data[].time] | sort)) and all(.data[]; .content.text | length > 10)'
cp "$EMU_BODY" "$EMU_DIR/seed5.json"
emu_start --quiet --synthetic 3x7x25 --seed 5 || die "synthetic again"
st=$(emu_api GET "/api/v2/chats/$th/messages?limit=100")
check "same seed, same messages" test "$(jq -S . "$EMU_BODY")" = "$(jq -S . "$EMU_DIR/seed5.json")"
emu_start --quiet --synthetic 3x7x25 --seed 6 || die "synthetic seed 6"
s6=$(emu_ctl GET '/_emulator/state?messages=0')
check "another seed, other ids" test "$(jq -r '.channels[1].threads[3].chat_id' <<<"$s6")" != "$th"

# 100 × 100 × 1000 = 10 million messages, made on demand.
emu_start --quiet --synthetic 100x100x1000 || die "big synthetic"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$EMU_PID/status")
check "10M messages in $rss kB (< 200 MB)" test "$rss" -lt 204800
s=$(emu_ctl GET '/_emulator/state?messages=0')
check "100 channels × 100 threads × 1000" jqt '(.channels | length == 100) and all(.channels[]; (.threads | length == 100)) and all(.channels[].threads[]; .message_count == 1000)' <<<"$s"
th=$(jq -r '.channels[99].threads[99].chat_id' <<<"$s")
st=$(emu_api GET "/api/v2/chats/$th/messages?limit=100")
expect_jq "newest 100 of a big thread" '.data | length == 100'
last=$(bval '.data[-1].id')
first_t=$(bval '.data[0].time')
st=$(emu_api GET "/api/v2/chats/$th/messages/$last")
expect_status 200 "$st" "a generated message by id"
st=$(emu_api GET "/api/v2/chats/$th/messages?totime=$((first_t - 1))&limit=100")
expect_jq "paging back with totime" --argjson t "$first_t" '(.data | length == 100) and .data[-1].time < $t'
finish
