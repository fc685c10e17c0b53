#!/usr/bin/env bash
# GET /api/v2/chats/{CHAT_ID}/messages (fromtime/totime inclusive, limit ≤ 100,
# ascending) and GET /api/v2/chats/{CHAT_ID}/messages/{MESSAGE_ID}.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"

th=$(first_thread "$ENG_ID")
st=$(emu_api GET "/api/v2/chats/$th/messages")
expect_status 200 "$st" "thread messages"
expect_jq "envelope {data:[…]}" '(keys == ["data"]) and (.data | type == "array" and length > 0)'
expect_jq "message shape" '
  all(.data[];
    (.id | test("^[0-9]+_[0-9]+$")) and (.time | type == "number") and
    (.type == "text" or .type == "file") and
    (.sender | (.id | type == "string") and (.name | type == "string")) and
    (.content | type == "object"))'
expect_jq "ascending by time" '[.data[].time] as $t | $t == ($t | sort)'
expect_jq "text messages carry content.text" 'all(.data[] | select(.type == "text"); .content.text | type == "string")'

# Channel messages: thread parents carry thread_information.
st=$(emu_api GET "/api/v2/chats/$ENG_CHAT/messages?limit=100")
expect_status 200 "$st" "channel messages"
expect_jq "parents carry thread_information" --arg p "$ENG_CHAT" '
  [.data[] | select(has("thread_information"))] | length > 0 and
  all(.[]; .thread_information | (.chat_id | startswith($p + "-T-")) and
      (.thread_message_id | type == "string") and (.title | type == "string") and
      (.message_count | type == "number") and (.follower_count | type == "number") and
      (.is_follower | type == "boolean"))'

# A file message and a multi-line message in the demo.
gth=$(emu_ctl GET /_emulator/state | jq -r '.channels[] | select(.unique_name == "general") | .threads[] | select(.title == "Q1 planning") | .chat_id')
st=$(emu_api GET "/api/v2/chats/$gth/messages?limit=100")
expect_jq "file message: type file, content.file.name" 'any(.data[]; .type == "file" and (.content.file.name | endswith(".xlsx")))'
st=$(emu_api GET "/api/v2/chats/$GENERAL_CHAT/messages?limit=100")
emu_ctl GET /_emulator/state | jq -e '[.. | objects | select(has("text")) | .text | select(test("\n"))] | length > 0' >/dev/null
check "the demo has multi-line messages" test $? -eq 0

# One message: time as an epoch-ms string; %20 separator accepted.
st=$(emu_api GET "/api/v2/chats/$th/messages")
mid=$(bval '.data[0].id'); mtime=$(bval '.data[0].time'); mtext=$(bval '.data[0].content.text')
st=$(emu_api GET "/api/v2/chats/$th/messages/$mid")
expect_status 200 "$st" "one message"
expect_jq "same id, time as a string of the same ms" --arg id "$mid" --arg t "$mtime" '.id == $id and .time == $t'
expect_jq "same text" --arg x "$mtext" '.content.text == $x'
spaced=${mid/_/%20}
st=$(emu_api GET "/api/v2/chats/$th/messages/$spaced")
expect_status 200 "$st" "one message with %20 separator"
expect_jq "%20 form names the same message" --arg id "$mid" '.id == $id'
st=$(emu_api GET "/api/v2/chats/$th/messages/1_1")
expect_status 404 "$st" "unknown message"
expect_jq "message_not_found" '.code == "message_not_found"'
st=$(emu_api GET "/api/v2/chats/CT_1_2/messages")
expect_status 404 "$st" "unknown chat"
expect_jq "chat_not_found" '.code == "chat_not_found"'
parent=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?limit=1" >/dev/null; bval '.data[0].thread_message_id')
tchat=$(bval '.data[0].chat_id')
st=$(emu_api GET "/api/v2/chats/$ENG_CHAT/messages/$parent")
expect_jq "one parent message carries thread_information.chat_id" --arg c "$tchat" '.thread_information.chat_id == $c'

# fromtime / totime / limit on a synthetic thread of 120 messages.
emu_start --quiet --synthetic 1x1x120 || die "synthetic"
th=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r '.channels[0].threads[0].chat_id')
emu_ctl GET /_emulator/state | jq '[.channels[0].threads[0].messages[].time]' >"$EMU_DIR/times"
t() { jq -r ".[$1]" "$EMU_DIR/times"; }
st=$(emu_api GET "/api/v2/chats/$th/messages")
expect_jq "default limit 50: the newest 50" --argjson last "$(t 119)" --argjson first "$(t 70)" \
  '(.data | length == 50) and .data[0].time == $first and .data[-1].time == $last'
st=$(emu_api GET "/api/v2/chats/$th/messages?limit=100")
expect_jq "limit=100 gives the newest 100" --argjson first "$(t 20)" '(.data | length == 100) and .data[0].time == $first'
st=$(emu_api GET "/api/v2/chats/$th/messages?fromtime=$(t 10)&limit=5")
expect_jq "fromtime is inclusive, oldest first" --argjson a "$(t 10)" --argjson b "$(t 14)" \
  '(.data | length == 5) and .data[0].time == $a and .data[-1].time == $b'
st=$(emu_api GET "/api/v2/chats/$th/messages?fromtime=$(( $(t 10) + 1 ))&limit=1")
expect_jq "fromtime just after a message skips it" --argjson b "$(t 11)" '.data[0].time == $b'
st=$(emu_api GET "/api/v2/chats/$th/messages?totime=$(t 30)&limit=3")
expect_jq "totime is inclusive, newest up to it" --argjson a "$(t 28)" --argjson b "$(t 30)" \
  '(.data | length == 3) and .data[0].time == $a and .data[-1].time == $b'
st=$(emu_api GET "/api/v2/chats/$th/messages?fromtime=$(t 5)&totime=$(t 9)&limit=100")
expect_jq "fromtime..totime" --argjson a "$(t 5)" --argjson b "$(t 9)" \
  '(.data | length == 5) and .data[0].time == $a and .data[-1].time == $b'
st=$(emu_api GET "/api/v2/chats/$th/messages?fromtime=$(( $(t 119) + 1 ))")
expect_jq "nothing after the newest" '.data == []'
for q in limit=0 limit=101 limit=x fromtime=abc "fromtime=$(t 9)&totime=$(t 5)"; do
  st=$(emu_api GET "/api/v2/chats/$th/messages?$q")
  expect_status 400 "$st" "bad query $q"
done
finish
