#!/usr/bin/env bash
# Followers: GET/POST/DELETE …/followers, …/nonfollowers, POST …/follow and
# …/unfollow stay consistent with each other and with the channel members.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
ME=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r .me)
# An open thread of #engineering with at least two channel members not following.
th=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r --arg c "$ENG_CHAT" '
  .channels[] | select(.chat_id == $c) | .members as $m |
  [.threads[] | select(.state == "open" and (($m - .followers) | length) >= 2)][0].chat_id')
[ "$th" != null ] || die "no thread with two non-followers in the demo"
members=$(emu_ctl GET '/_emulator/state?messages=0' | jq -c --arg c "$ENG_CHAT" '.channels[] | select(.chat_id == $c) | .members | sort')

followers() { emu_api GET "/api/v3/threads/$th/followers" >/dev/null; bval '[.data[].user_id] | sort | @json'; }
nonfollowers() { emu_api GET "/api/v3/threads/$th/nonfollowers" >/dev/null; bval '[.data[].user_id] | sort | @json'; }
consistent() {
  local f n
  f=$(followers); n=$(nonfollowers)
  jq -en --argjson f "$f" --argjson n "$n" --argjson m "$members" \
    '(($f + $n) | sort) == $m and ([$f[] | select(. as $x | $n | index($x))] | length == 0)' >/dev/null
}

st=$(emu_api GET "/api/v3/threads/$th/followers")
expect_status 200 "$st" "followers"
expect_jq "followers: {data:[{user_id,email_id,name}]}" '(keys == ["data"]) and (.data | length > 0) and
  all(.data[]; keys == ["email_id","name","user_id"] and (.email_id | test("@")))'
st=$(emu_api GET "/api/v3/threads/$th/nonfollowers")
expect_status 200 "$st" "nonfollowers"
expect_jq "nonfollowers: same shape" '(keys == ["data"]) and all(.data[]; keys == ["email_id","name","user_id"])'
check "followers ∪ nonfollowers = channel members, disjoint" consistent

# Add two non-followers, remove one of them.
st=$(emu_api GET "/api/v3/threads/$th/nonfollowers")
x=$(bval '.data[0].user_id'); y=$(bval '.data[1].user_id')
before=$(emu_api GET "/api/v3/threads/$th" >/dev/null; bval .data.follower_count)
st=$(emu_api POST "/api/v3/threads/$th/followers" "{\"user_ids\":[\"$x\",\"$y\"]}")
expect_status 204 "$st" "add followers"
check "added users follow" bash -c "jq -en --argjson f '$(followers)' '\$f | index(\"$x\") and index(\"$y\")' >/dev/null"
check "consistent after add" consistent
st=$(emu_api GET "/api/v3/threads/$th")
expect_jq "follower_count +2" --argjson b "$before" '.data.follower_count == $b + 2'
st=$(emu_api DELETE "/api/v3/threads/$th/followers" "{\"user_ids\":[\"$x\"]}")
expect_status 204 "$st" "remove a follower (DELETE with a body)"
check "removed user no longer follows" bash -c "jq -en --argjson f '$(followers)' '(\$f | index(\"$x\")) == null and (\$f | index(\"$y\")) != null' >/dev/null"
check "removed user is a non-follower" bash -c "jq -en --argjson n '$(nonfollowers)' '\$n | index(\"$x\") != null' >/dev/null"
check "consistent after remove" consistent

# Bad bodies change nothing.
f0=$(followers)
for body in '{"user_ids":["999999"]}' "{\"user_ids\":[\"$x\",\"999999\"]}" '{"user_ids":[]}' '{}' '{"user_ids":"x"}' 'nope'; do
  st=$(emu_api POST "/api/v3/threads/$th/followers" "$body")
  expect_status 400 "$st" "add with body '$body'"
done
st=$(emu_api DELETE "/api/v3/threads/$th/followers" '{"user_ids":["999999"]}')
expect_status 400 "$st" "remove an unknown user"
st=$(emu_api DELETE "/api/v3/threads/$th/followers")
expect_status 400 "$st" "DELETE without a body"
check "bad requests changed nothing" test "$(followers)" = "$f0"

# follow / unfollow as me.
st=$(emu_api POST "/api/v3/threads/$th/unfollow")
expect_status 204 "$st" "unfollow"
check "me not a follower" bash -c "jq -en --argjson f '$(followers)' '(\$f | index(\"$ME\")) == null' >/dev/null"
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?state=not_followed&limit=100")
expect_jq "listed under not_followed" --arg c "$th" 'any(.data[]; .chat_id == $c)'
st=$(emu_api POST "/api/v3/threads/$th/follow")
expect_status 204 "$st" "follow"
check "me a follower" bash -c "jq -en --argjson f '$(followers)' '\$f | index(\"$ME\") != null' >/dev/null"
st=$(emu_api GET "/api/v3/threads/$th")
expect_jq "details agree" '.data.is_follower == true'
check "consistent after follow" consistent

for p in followers nonfollowers; do
  st=$(emu_api GET "/api/v3/threads/${ENG_CHAT}-T-1/$p")
  expect_status 404 "$st" "$p of an unknown thread"
  st=$(emu_api GET "/api/v3/threads/bad-id/$p")
  expect_status 400 "$st" "$p of a malformed id"
done
st=$(emu_api POST "/api/v3/threads/${ENG_CHAT}-T-1/follow")
expect_status 404 "$st" "follow an unknown thread"
st=$(emu_api PUT "/api/v3/threads/$th/followers" '{"user_ids":[]}')
expect_status 405 "$st" "PUT on followers"
finish
