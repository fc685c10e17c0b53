#!/usr/bin/env bash
# GET/PUT /api/v3/threads/{THREAD_CHAT_ID} and GET …/messages/main: the
# example body's keys and types, close/reopen/follow/unfollow, id errors.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
ME=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r .me)
th=$(first_thread "$ENG_ID")
tmid=$(bval '.data[0].thread_message_id')
title=$(bval '.data[0].title')

st=$(emu_api GET "/api/v3/threads/$th")
expect_status 200 "$st" "thread details"
expect_jq "details: the example body's keys and types" --arg c "$th" --arg p "$ENG_CHAT" '
  .url == "/api/v3/threads/" + $c and .type == "chat_thread" and
  (.data | keys == (["chat_id","parent_chat_id","thread_message_id","title","follower_count","is_follower","parent_participant","thread_state"] | sort)) and
  .data.chat_id == $c and .data.parent_chat_id == $p and
  (.data.follower_count | type == "number") and (.data.is_follower | type == "boolean") and
  (.data.parent_participant | type == "boolean") and .data.thread_state == "open"'
expect_jq "thread_message_id with the %20 separator" --arg m "${tmid/_/%20}" '.data.thread_message_id == $m'
expect_jq "title" --arg t "$title" '.data.title == $t'

st=$(emu_api GET /api/v3/threads/not-a-thread-id)
expect_status 400 "$st" "malformed thread chat id"
expect_jq "thread_chatid_invalid, documented message" \
  '. == {"code":"thread_chatid_invalid","message":"The thread chat ID given is not according to the format."}'
st=$(emu_api GET "/api/v3/threads/${ENG_CHAT}-T-1")
expect_status 404 "$st" "unknown thread"
expect_jq "chat_not_found" '.code == "chat_not_found"'

# Main message: ISO 8601 time with offset, thread_information, state info.
st=$(emu_api GET "/api/v3/threads/$th/messages/main")
expect_status 200 "$st" "main message"
expect_jq "main message shape" --arg m "$tmid" --arg c "$th" '
  .id == $m and (.time | type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}$")) and
  .thread_information.chat_id == $c and .thread_state_information.thread_state == "open" and
  (.sender.id | type == "string") and (.content.text | type == "string")'
parent_ms=${tmid%%_*}
iso=$(bval .time)
check "ISO time is the parent's time to the second" test "$(date -d "$iso" +%s)" = "${parent_ms:0:-3}"
st=$(emu_api GET /api/v3/threads/garbage/messages/main)
expect_status 400 "$st" "main of a malformed id"

# close → replies refused, listed closed; reopen → replies work.
st=$(emu_api PUT "/api/v3/threads/$th" '{"action":"close"}')
expect_status 204 "$st" "close"
st=$(emu_api GET "/api/v3/threads/$th")
expect_jq "details say closed" '.data.thread_state == "closed"'
st=$(emu_api GET "/api/v3/threads/$th/messages/main")
expect_jq "main says closed" '.thread_state_information.thread_state == "closed"'
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?type=closed&limit=100")
expect_jq "listed as closed" --arg c "$th" 'any(.data[]; .chat_id == $c)'
st=$(emu_api POST "/api/v3/chats/$th/messages" '{"text":"after close"}')
expect_status 400 "$st" "reply after close"
expect_jq "operation_not_allowed" '.code == "operation_not_allowed"'
st=$(emu_api PUT "/api/v3/threads/$th" '{"action":"reopen"}')
expect_status 204 "$st" "reopen"
st=$(emu_api POST "/api/v3/chats/$th/messages" '{"text":"after reopen","sync_message":true}')
expect_status 200 "$st" "reply after reopen"

# follow / unfollow through PUT.
st=$(emu_api PUT "/api/v3/threads/$th" '{"action":"unfollow"}')
expect_status 204 "$st" "unfollow"
st=$(emu_api GET "/api/v3/threads/$th")
expect_jq "not a follower" '.data.is_follower == false'
n=$(bval .data.follower_count)
st=$(emu_api PUT "/api/v3/threads/$th" '{"action":"follow"}')
expect_status 204 "$st" "follow"
st=$(emu_api GET "/api/v3/threads/$th")
expect_jq "follower again, count +1" --argjson n "$n" '.data.is_follower == true and .data.follower_count == $n + 1'
st=$(emu_api GET "/api/v3/threads/$th/followers")
expect_jq "me among the followers" --arg me "$ME" 'any(.data[]; .user_id == $me)'

for body in '{"action":"archive"}' '{}' '{"action":7}' 'nope'; do
  st=$(emu_api PUT "/api/v3/threads/$th" "$body")
  expect_status 400 "$st" "PUT body '$body'"
done
st=$(emu_api PUT "/api/v3/threads/${ENG_CHAT}-T-1" '{"action":"close"}')
expect_status 404 "$st" "PUT on an unknown thread"
st=$(emu_api DELETE "/api/v3/threads/$th")
expect_status 405 "$st" "DELETE a thread"
finish
