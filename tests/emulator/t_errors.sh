#!/usr/bin/env bash
# Unknown paths → 404, wrong methods → 405, both with the documented
# bodies; every answer with a body is JSON.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
th=$(first_thread "$ENG_ID")

for p in / /api /api/v2 /api/v2/nothing /api/v9/channels /api/v2/channels/x/y/z \
         "/api/v3/threads/$th/messages" "/api/v3/threads/$th/messages/other" /oauth/v2 /_emulatorx; do
  st=$(emu_api GET "$p")
  expect_status 404 "$st" "GET $p"
  expect_jq "404 body" --arg m "$MSG_404" '. == {"message": $m}'
done
# Unknown paths are 404 with or without a token.
st=$(EMU_AUTH= emu_api GET /api/v2/nothing)
expect_status 404 "$st" "unknown path without a token"

while read -r method path; do
  st=$(emu_api "$method" "$path")
  expect_status 405 "$st" "$method $path"
  expect_jq "405 body" --arg m "$MSG_405" '. == {"message": $m}'
done <<EOT
POST /api/v2/channels
DELETE /api/v2/channels/$ENG_ID
POST /api/v2/channels/$ENG_ID/threads
POST /api/v2/chats/$ENG_CHAT/messages
DELETE /api/v2/chats/$ENG_CHAT/messages/1_1
GET /api/v3/channels/$ENG_ID/messages
GET /api/v3/chats/$ENG_CHAT/messages
PUT /api/v3/channelsbyname/engineering/messages
POST /api/v3/threads/$th
PATCH /api/v3/threads/$th
POST /api/v3/threads/$th/messages/main
GET /api/v3/threads/$th/follow
DELETE /api/v3/threads/$th/unfollow
POST /api/v3/threads/$th/nonfollowers
POST /api/v3/chats/$th/members
GET /api/v3/chats/$th/leave
DELETE /api/v3/chats/$th/mute
PUT /api/v3/chats/$th/unmute
EOT

# Content-Type of JSON answers.
ct=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Zoho-oauthtoken $EMU_TOKEN" "$EMU_URL/api/v2/channels")
check "JSON answers say application/json ($ct)" bash -c "[[ '$ct' == application/json* ]]"
ct=$(curl -s -o /dev/null -w '%{content_type}' "$EMU_URL/api/v2/nothing")
check "404 answers say application/json ($ct)" bash -c "[[ '$ct' == application/json* ]]"
finish
