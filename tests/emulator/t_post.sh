#!/usr/bin/env bash
# POST /api/v3/{channels/ID | chats/CHAT | channelsbyname/NAME}/messages:
# channel posts, thread creation (thread list + parent's thread_information),
# replies, sync_message 200/204, and the body checks (text missing, empty,
# over 5000 characters, bad thread_message_id, closed thread).
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
ME=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r .me)

last_text() { emu_api GET "/api/v2/chats/$1/messages?limit=1" >/dev/null; bval '.data[-1].content.text'; }
count_of() { emu_ctl GET '/_emulator/state?messages=0' | jq --arg c "$1" '[.channels[] | (., .threads[]) | select(.chat_id == $c) | .message_count][0]'; }

# Plain channel posts on the three paths.
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" '{"text":"Hello from the tests","sync_message":true}')
expect_status 200 "$st" "post by channel id, sync"
expect_jq "answer is {message_id}" '(keys == ["message_id"]) and (.message_id | test("^[0-9]+_[0-9]+$"))'
mid=$(bval .message_id)
st=$(emu_api GET "/api/v2/chats/$GENERAL_CHAT/messages?limit=1")
expect_jq "posted message is the newest, sent by me" --arg id "$mid" --arg me "$ME" \
  '.data[-1].id == $id and .data[-1].sender.id == $me and .data[-1].content.text == "Hello from the tests"'
before=$(count_of "$GENERAL_CHAT")
st=$(emu_api POST "/api/v3/chats/$GENERAL_CHAT/messages" '{"text":"via chat id"}')
expect_status 204 "$st" "post by chat id without sync_message"
check "204 has an empty body" test ! -s "$EMU_BODY"
check "the 204 post was stored" test "$(last_text "$GENERAL_CHAT")" = "via chat id"
st=$(emu_api POST /api/v3/channelsbyname/general/messages '{"text":"via unique name","sync_message":true}')
expect_status 200 "$st" "post by unique name"
check "message count grew by 2" test "$(count_of "$GENERAL_CHAT")" -eq $((before + 2))

budget_reset
# Unicode and newlines survive; 5000 characters (not bytes) is the limit.
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" '{"text":"line 1\nline 2 — ünïcödé 🎉","sync_message":true}')
expect_status 200 "$st" "multi-line unicode post"
check "multi-line unicode stored exactly" test "$(last_text "$GENERAL_CHAT")" = $'line 1\nline 2 — ünïcödé 🎉'
e5000=$(printf 'é%.0s' $(seq 1 5000))
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" "{\"text\":\"$e5000\",\"sync_message\":true}")
expect_status 200 "$st" "5000 two-byte characters accepted"
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" "{\"text\":\"${e5000}é\",\"sync_message\":true}")
expect_status 400 "$st" "5001 characters refused"
expect_jq "over-long: invalid_inputs" '.code == "invalid_inputs" and (.message | type == "string")'
a5001=$(printf 'a%.0s' $(seq 1 5001))
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" "{\"text\":\"$a5001\"}")
expect_status 400 "$st" "5001 ASCII characters refused"

budget_reset
before=$(count_of "$GENERAL_CHAT")
for body in '{"sync_message":true}' '{"text":""}' '{"text":42}' '{"text":' '[]' ''; do
  st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" "$body")
  expect_status 400 "$st" "bad body '$body'"
  body_jq '(.code | type == "string") and (.message | type == "string")' || fail "400 body shape for '$body'"
done
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" '{"sync_message":true}')
expect_jq "missing text: param_missing" '.code == "param_missing"'
check "refused posts stored nothing" test "$(count_of "$GENERAL_CHAT")" -eq "$before"

st=$(emu_api POST /api/v3/channels/O0000000000000/messages '{"text":"x"}')
expect_status 404 "$st" "post to an unknown channel"
st=$(emu_api POST /api/v3/channelsbyname/no-such-channel/messages '{"text":"x"}')
expect_status 404 "$st" "post to an unknown unique name"
st=$(emu_api POST /api/v3/channelsbyname/sales-emea/messages '{"text":"x"}')
expect_status 403 "$st" "post to a channel I have not joined"

budget_reset
# Thread creation from a fresh parent message.
st=$(emu_api POST "/api/v3/channels/$ENG_ID/messages" '{"text":"Shall we plan the 4.13 release?","sync_message":true}')
parent=$(bval .message_id)
st=$(emu_api POST "/api/v3/channels/$ENG_ID/messages" \
  "{\"text\":\"Kicking off the plan\",\"thread_message_id\":\"$parent\",\"thread_title\":\"Release plan 4.13\",\"post_in_parent\":false,\"sync_message\":true}")
expect_status 200 "$st" "create a thread"
first=$(bval .message_id)
st=$(emu_api GET "/api/v2/chats/$ENG_CHAT/messages/$parent")
expect_jq "parent now carries thread_information" '.thread_information.title == "Release plan 4.13" and .thread_information.message_count == 1'
tchat=$(bval .thread_information.chat_id)
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?limit=100")
expect_jq "new thread in the channel's thread list" --arg c "$tchat" --arg p "$parent" \
  'any(.data[]; .chat_id == $c and .thread_message_id == $p and .title == "Release plan 4.13" and .thread_state == "open" and .is_follower == true)'
st=$(emu_api GET "/api/v2/chats/$tchat/messages")
expect_jq "thread holds the first reply" --arg id "$first" '.data == [.data[0]] and .data[0].id == $id and .data[0].content.text == "Kicking off the plan"'
st=$(emu_api GET "/api/v3/threads/$tchat")
expect_status 200 "$st" "new thread has details"

# Replies: posting to the thread chat id.
st=$(emu_api POST "/api/v3/chats/$tchat/messages" "{\"text\":\"First reply\",\"reply_to\":\"$first\",\"sync_message\":true}")
expect_status 200 "$st" "reply in the thread"
st=$(emu_api POST "/api/v3/chats/$tchat/messages" '{"text":"Second reply"}')
expect_status 204 "$st" "reply without sync_message"
st=$(emu_api GET "/api/v2/chats/$tchat/messages")
expect_jq "replies appear in order" '[.data[].content.text] == ["Kicking off the plan","First reply","Second reply"]'
st=$(emu_api POST "/api/v3/chats/$tchat/messages" '{"text":"Also in the channel","post_in_parent":true}')
check "post_in_parent also posts to the channel" test "$(last_text "$ENG_CHAT")" = "Also in the channel"

budget_reset
# A second thread_message_id post to the same parent goes into that thread;
# the %20 form of the id is accepted; the other create paths work.
spaced=${parent/_/%20}
st=$(emu_api POST "/api/v3/chats/$ENG_CHAT/messages" "{\"text\":\"Into the same thread\",\"thread_message_id\":\"$spaced\",\"thread_title\":\"ignored\"}")
expect_status 204 "$st" "thread_message_id of an existing thread (chat path, %20 id)"
check "landed in the existing thread" test "$(last_text "$tchat")" = "Into the same thread"
st=$(emu_api POST /api/v3/channelsbyname/engineering/messages '{"text":"Another parent","sync_message":true}')
p2=$(bval .message_id)
st=$(emu_api POST /api/v3/channelsbyname/engineering/messages "{\"text\":\"Thread by name\",\"thread_message_id\":\"$p2\",\"thread_title\":\"By name\",\"sync_message\":true}")
expect_status 200 "$st" "create a thread by unique name"
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?limit=100")
expect_jq "thread created by name listed" 'any(.data[]; .title == "By name")'

budget_reset
# thread_message_id must name a message of that channel.
gparent=$(emu_api GET "/api/v2/chats/$GENERAL_CHAT/messages?limit=1" >/dev/null; bval '.data[0].id')
for bad in "1_1" "$gparent" "not-an-id"; do
  st=$(emu_api POST "/api/v3/channels/$ENG_ID/messages" "{\"text\":\"x\",\"thread_message_id\":\"$bad\",\"thread_title\":\"x\"}")
  expect_status 400 "$st" "thread_message_id $bad refused"
  expect_jq "bad thread_message_id: invalid_inputs" '.code == "invalid_inputs"'
done

budget_reset
# Closed threads refuse replies and keep their messages unchanged.
closed=$(first_thread "$ENG_ID" closed)
n=$(count_of "$closed")
st=$(emu_api POST "/api/v3/chats/$closed/messages" '{"text":"Too late?","sync_message":true}')
expect_status 400 "$st" "reply to a closed thread"
expect_jq "operation_not_allowed" '.code == "operation_not_allowed" and (.message | type == "string")'
check "closed thread unchanged" test "$(count_of "$closed")" -eq "$n"
finish
