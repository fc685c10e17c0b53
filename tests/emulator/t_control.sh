#!/usr/bin/env bash
# The control path: /_emulator/post (another person posts), /state
# (with muted/left, messages=0), /config, unknown control paths; none of it
# needs a token or counts.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
ME=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r .me)
th=$(first_thread "$ENG_ID")
other=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r --arg me "$ME" '[.users[].user_id | select(. != $me)][2]')

out=$(emu_ctl POST /_emulator/post "{\"chat_id\":\"$th\",\"sender_id\":\"$other\",\"text\":\"Posted by someone else\"}")
check "post answers the message object" jqt --arg o "$other" '.sender.id == $o and .content.text == "Posted by someone else" and (.id | test("^[0-9]+_[0-9]+$"))' <<<"$out"
mid=$(jq -r .id <<<"$out")
st=$(emu_api GET "/api/v2/chats/$th/messages?limit=1")
expect_jq "visible in the thread" --arg id "$mid" '.data[-1].id == $id'
out=$(emu_ctl POST /_emulator/post "{\"chat_id\":\"$ENG_CHAT\",\"text\":\"Channel post, default sender\"}")
check "default sender is not me" jqt --arg me "$ME" '.sender.id != $me' <<<"$out"
st=$(emu_api GET "/api/v2/chats/$ENG_CHAT/messages?limit=1")
expect_jq "visible in the channel" '.data[-1].content.text == "Channel post, default sender"'
out=$(emu_ctl POST /_emulator/post '{"chat_id":"CT_0_0","text":"x"}')
check "unknown chat refused" jqt '.error' <<<"$out"
out=$(emu_ctl POST /_emulator/post "{\"chat_id\":\"$th\",\"sender_id\":\"1\",\"text\":\"x\"}")
check "unknown sender refused" jqt '.error' <<<"$out"
closed=$(first_thread "$ENG_ID" closed)
out=$(emu_ctl POST /_emulator/post "{\"chat_id\":\"$closed\",\"text\":\"x\"}")
check "closed thread refused" jqt '.error' <<<"$out"

s=$(emu_ctl GET /_emulator/state)
check "state: --org format with per-thread muted/left" jqt '
  (.me | type == "string") and (.users | length >= 8) and
  all(.channels[]; (.messages | type == "array") and all(.threads[]; has("muted") and has("left") and has("messages") and (.state == "open" or .state == "closed")))' <<<"$s"
s0=$(emu_ctl GET '/_emulator/state?messages=0')
check "state?messages=0 leaves messages out, keeps counts" jqt '
  all(.channels[]; (has("messages") | not) and (.message_count | type == "number") and all(.threads[]; (has("messages") | not) and .message_count >= 1))' <<<"$s0"

c=$(emu_ctl GET /_emulator/config)
check "config readable" jqt '.throttle_style == "429" and .time_scale == 1' <<<"$c"
c=$(emu_ctl POST /_emulator/config '{"time_scale":60}')
check "time_scale set at run time" jqt '.time_scale == 60' <<<"$c"
check "windows follow the new scale" test "$(emu_ctl GET /_emulator/counters | jq '.windows["threads.get"].window_ms')" = 1000
out=$(emu_ctl POST /_emulator/config '{"time_scale":0}')
check "time_scale 0 refused" jqt '.error' <<<"$out"

st=$(curl -s -o "$EMU_BODY" -w '%{http_code}' "$EMU_URL/_emulator/nothing")
expect_status 404 "$st" "unknown control path"
st=$(curl -s -o "$EMU_BODY" -w '%{http_code}' -X PUT "$EMU_URL/_emulator/counters")
expect_status 404 "$st" "wrong method on a control path"
st=$(curl -s -o "$EMU_BODY" -w '%{http_code}' -X POST -d '{not json' "$EMU_URL/_emulator/faults")
expect_status 400 "$st" "control body that is not JSON"
check "control path not counted" test "$(emu_ctl GET /_emulator/counters | jq .total)" = "$(emu_ctl GET /_emulator/counters | jq '[.apis[].total] | add')"
finish
