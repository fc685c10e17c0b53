#!/usr/bin/env bash
# GET /api/v3/chats/{CHAT_ID}/members (fields), POST …/leave, …/mute,
# …/unmute, and their effect in /_emulator/state.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
ME=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r .me)
th=$(first_thread "$ENG_ID")
tstate() { emu_ctl GET '/_emulator/state?messages=0' | jq -c --arg c "$th" '.channels[].threads[] | select(.chat_id == $c)'; }

st=$(emu_api GET "/api/v3/chats/$th/members")
expect_status 200 "$st" "thread members"
expect_jq "{members:[{user_id,email_id,name}]}" '(keys == ["members"]) and (.members | length > 0) and
  all(.members[]; keys == ["email_id","name","user_id"])'
expect_jq "members are the state's members" --argjson m "$(tstate | jq -c '.members | sort')" '[.members[].user_id] | sort == $m'
st=$(emu_api GET "/api/v3/chats/$th/members?fields=user_id,name")
expect_jq "fields=user_id,name" 'all(.members[]; keys == ["name","user_id"])'
st=$(emu_api GET "/api/v3/chats/$th/members?fields=user_id")
expect_jq "fields=user_id" 'all(.members[]; keys == ["user_id"])'
st=$(emu_api GET "/api/v3/chats/$th/members?fields=phone")
expect_status 400 "$st" "unknown field"
st=$(emu_api GET "/api/v3/chats/$ENG_CHAT/members")
expect_status 200 "$st" "channel members"
expect_jq "channel members: 11 demo people" '.members | length == 11'
st=$(emu_api GET "/api/v3/chats/${ENG_CHAT}-T-1/members")
expect_status 404 "$st" "members of an unknown chat"

# mute / unmute.
st=$(emu_api POST "/api/v3/chats/$th/mute")
expect_status 204 "$st" "mute"
check "state: muted" bash -c "[ \"\$(echo '$(tstate)' | jq .muted)\" = true ]"
st=$(emu_api POST "/api/v3/chats/$th/unmute")
expect_status 204 "$st" "unmute"
check "state: unmuted" bash -c "[ \"\$(echo '$(tstate)' | jq .muted)\" = false ]"

# leave: not a member nor a follower any more.
emu_api POST "/api/v3/threads/$th/follow" >/dev/null
st=$(emu_api POST "/api/v3/chats/$th/leave")
expect_status 204 "$st" "leave"
s=$(tstate)
check "state: left" test "$(jq .left <<<"$s")" = true
check "state: me not a member" test "$(jq --arg me "$ME" '.members | index($me)' <<<"$s")" = null
check "state: me not a follower" test "$(jq --arg me "$ME" '.followers | index($me)' <<<"$s")" = null
st=$(emu_api GET "/api/v3/chats/$th/members")
expect_jq "members endpoint agrees" --arg me "$ME" 'all(.members[]; .user_id != $me)'
st=$(emu_api GET "/api/v3/threads/$th")
expect_jq "details: not a follower" '.data.is_follower == false'
# Replying brings me back, as in Cliq.
st=$(emu_api POST "/api/v3/chats/$th/messages" '{"text":"back again"}')
expect_status 204 "$st" "reply after leaving"
check "state: replying rejoins" test "$(tstate | jq --arg me "$ME" '.left == false and (.members | index($me)) != null')" = true

# Leaving a channel: no longer joined, posting refused.
st=$(emu_api POST "/api/v3/chats/$GENERAL_CHAT/leave")
expect_status 204 "$st" "leave a channel"
st=$(emu_api GET '/api/v2/channels?joined=true')
expect_jq "left channel not in joined=true" 'all(.channels[]; .unique_name != "general")'
st=$(emu_api POST "/api/v3/channels/$GENERAL_ID/messages" '{"text":"x"}')
expect_status 403 "$st" "post to a left channel"

for verb in leave mute unmute; do
  st=$(emu_api POST "/api/v3/chats/${ENG_CHAT}-T-1/$verb")
  expect_status 404 "$st" "$verb an unknown chat"
  st=$(emu_api GET "/api/v3/chats/$th/$verb")
  expect_status 405 "$st" "GET on $verb"
done
finish
