#!/usr/bin/env bash
# API auth: Zoho-oauthtoken and Bearer accepted; anything else 401 with the
# documented body; --no-static-token, --access-token; issued tokens expire
# after their (scaled) lifetime and on /_emulator/expire-tokens.
. "$(dirname "$0")/t_lib.sh"

now_ms() { date +%s%3N; }

emu_start --quiet --token-lifetime 3600 --time-scale 1800 || die "start"

for path in /api/v2/channels "/api/v2/channels/$GENERAL_ID/threads" \
            "/api/v2/chats/$GENERAL_CHAT/messages"; do
  st=$(EMU_AUTH= emu_api GET "$path")
  expect_status 401 "$st" "no Authorization on $path"
  expect_jq "401 body is the documented one" --arg m "$MSG_401" '. == {"message": $m}'
done
st=$(EMU_AUTH= emu_api POST "/api/v3/channels/$GENERAL_ID/messages" '{"text":"x","sync_message":true}')
expect_status 401 "$st" "POST without token"
st=$(EMU_AUTH="Zoho-oauthtoken not-a-token" emu_api GET /api/v2/channels)
expect_status 401 "$st" "unknown token"
st=$(EMU_AUTH="Basic ZW11bGF0b3I6eA==" emu_api GET /api/v2/channels)
expect_status 401 "$st" "other scheme"
st=$(EMU_AUTH="Zoho-oauthtoken " emu_api GET /api/v2/channels)
expect_status 401 "$st" "empty token"
st=$(EMU_AUTH="Bearer emulator-token" emu_api GET /api/v2/channels)
expect_status 200 "$st" "Bearer static token"
st=$(emu_api GET /api/v2/channels)
expect_status 200 "$st" "Zoho-oauthtoken static token"

# An issued token: lifetime 3600 s reported, 2 s real (scaled by 1800).
t0=$(now_ms)
curl -sS -o "$EMU_BODY" "$EMU_URL/oauth/v2/token" \
  -d grant_type=refresh_token -d client_id=emulator-client \
  -d client_secret=emulator-secret -d refresh_token=emulator-refresh
expect_jq "expires_in is the unscaled lifetime" '.expires_in == 3600'
tok=$(bval .access_token)
st=$(EMU_AUTH="Zoho-oauthtoken $tok" emu_api GET /api/v2/channels)
expect_status 200 "$st" "fresh issued token"
deadline=$((SECONDS + 30))
expired=
while [ $SECONDS -lt $deadline ]; do
  st=$(EMU_AUTH="Zoho-oauthtoken $tok" emu_api GET /api/v2/channels)
  if [ "$st" = 401 ]; then expired=$(now_ms); break; fi
  sleep 0.2
done
if [ -z "$expired" ]; then
  fail "issued token never expired"
else
  elapsed=$((expired - t0))
  check "token lived at least its scaled lifetime (2000 ms; saw $elapsed ms)" test "$elapsed" -ge 2000
  expect_jq "expired-token body" --arg m "$MSG_401" '. == {"message": $m}'
fi

# expire-tokens: issued tokens die at once, the static one lives on.
curl -sS -o "$EMU_BODY" "$EMU_URL/oauth/v2/token" \
  -d grant_type=refresh_token -d client_id=emulator-client \
  -d client_secret=emulator-secret -d refresh_token=emulator-refresh
tok=$(bval .access_token)
st=$(EMU_AUTH="Bearer $tok" emu_api GET /api/v2/channels)
expect_status 200 "$st" "second issued token"
emu_ctl POST /_emulator/expire-tokens >/dev/null
st=$(EMU_AUTH="Bearer $tok" emu_api GET /api/v2/channels)
expect_status 401 "$st" "issued token after expire-tokens"
st=$(emu_api GET /api/v2/channels)
expect_status 200 "$st" "static token after expire-tokens"

# --no-static-token and --access-token.
emu_start --quiet --no-static-token || die "start 2"
st=$(emu_api GET /api/v2/channels)
expect_status 401 "$st" "static token refused with --no-static-token"
emu_start --quiet --access-token my-own-token || die "start 3"
st=$(emu_api GET /api/v2/channels)
expect_status 401 "$st" "default token refused with --access-token"
st=$(EMU_AUTH="Zoho-oauthtoken my-own-token" emu_api GET /api/v2/channels)
expect_status 200 "$st" "--access-token accepted"
finish
