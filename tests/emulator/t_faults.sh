#!/usr/bin/env bash
# Fault injection through POST /_emulator/faults: each kind happens, for the
# named API only (or every API with "*"), for the next N requests.
. "$(dirname "$0")/t_lib.sh"

now_ms() { date +%s%3N; }
fault() { emu_ctl POST /_emulator/faults "$1" | jq -e '.id | numbers' >/dev/null || fail "fault $1 not accepted"; }
AUTH=(-H "Authorization: Zoho-oauthtoken $EMU_TOKEN")

emu_start --quiet || die "start"
th=$(first_thread "$ENG_ID")
state_has_text() { emu_ctl GET /_emulator/state | jq -e --arg t "$1" '[.. | objects | select(.text? == $t)] | length > 0' >/dev/null; }

# 500 for the next 2 requests to channels.list only.
fault '{"api":"channels.list","kind":"500","count":2}'
st=$(emu_api GET "/api/v2/channels/$ENG_ID")
expect_status 200 "$st" "channels.get not affected by a channels.list fault"
st=$(emu_api GET /api/v2/channels)
expect_status 500 "$st" "500 #1"
expect_jq "500 body" --arg m "$MSG_500" '. == {"message": $m}'
st=$(emu_api GET /api/v2/channels)
expect_status 500 "$st" "500 #2"
st=$(emu_api GET /api/v2/channels)
expect_status 200 "$st" "fault spent after count"

fault '{"api":"threads.list","kind":"503"}'
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads")
expect_status 503 "$st" "503"
expect_jq "503 body is JSON with a message" '.message | type == "string"'

fault '{"api":"threads.get","kind":"401"}'
st=$(emu_api GET "/api/v3/threads/$th")
expect_status 401 "$st" "401 with a valid token"
expect_jq "401 body" --arg m "$MSG_401" '. == {"message": $m}'
st=$(emu_api GET "/api/v3/threads/$th")
expect_status 200 "$st" "next request fine"

# delay: answers normally after at least delay_ms.
fault '{"api":"threads.get","kind":"delay","delay_ms":1500}'
t0=$(now_ms)
st=$(emu_api GET "/api/v3/threads/$th")
t1=$(now_ms)
expect_status 200 "$st" "delayed answer"
expect_jq "delayed answer is the normal body" '.type == "chat_thread"'
check "took at least 1500 ms ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 1500

# drop: connection closed without an answer (curl exit 52); nothing done.
fault '{"api":"messages.post","kind":"drop"}'
curl -s -o /dev/null "${AUTH[@]}" -H 'Content-Type: application/json' \
  --data '{"text":"dropped message","sync_message":true}' "$EMU_URL/api/v3/chats/$th/messages"
rc=$?
check "drop: curl exit 52 (empty reply), got $rc" test "$rc" -eq 52
if state_has_text 'dropped message'; then fail "dropped message stored"; else ok "dropped message not stored"; fi

# accept_drop: stored, then the connection is closed without an answer.
fault '{"api":"messages.post","kind":"accept_drop"}'
curl -s -o /dev/null "${AUTH[@]}" -H 'Content-Type: application/json' \
  --data '{"text":"accepted then dropped","sync_message":true}' "$EMU_URL/api/v3/chats/$th/messages"
rc=$?
check "accept_drop: curl exit 52, got $rc" test "$rc" -eq 52
if state_has_text 'accepted then dropped'; then ok "accept_drop: message is in the state"; else fail "accept_drop: message missing"; fi
st=$(emu_api GET "/api/v2/chats/$th/messages?limit=1")
expect_jq "accept_drop: message visible through the API" '.data[-1].content.text == "accepted then dropped"'

# truncate: a valid answer cut in half (jq cannot parse it).
st=$(emu_api GET "/api/v2/channels/$ENG_ID")
cp "$EMU_BODY" "$EMU_DIR/full"
fault '{"api":"channels.get","kind":"truncate"}'
st=$(emu_api GET "/api/v2/channels/$ENG_ID")
expect_status 200 "$st" "truncated answer keeps its status"
if jq . "$EMU_BODY" >/dev/null 2>&1; then fail "truncated body still parses"; else ok "truncated body does not parse"; fi
full=$(wc -c <"$EMU_DIR/full"); cut=$(wc -c <"$EMU_BODY")
check "truncated to about half ($cut of $full bytes)" test "$cut" -gt 0 -a "$cut" -lt "$full"
check "truncated body is a prefix of the full one" test "$(head -c "$cut" "$EMU_DIR/full")" = "$(cat "$EMU_BODY")"

# invalid_json.
fault '{"api":"chats.messages","kind":"invalid_json"}'
st=$(emu_api GET "/api/v2/chats/$th/messages")
expect_status 200 "$st" "invalid_json status"
if jq . "$EMU_BODY" >/dev/null 2>&1; then fail "invalid_json parses"; else ok "invalid_json does not parse"; fi

# throttle: the throttle answer, and the API stays locked afterwards.
fault '{"api":"threads.main","kind":"throttle"}'
st=$(emu_api GET "/api/v3/threads/$th/messages/main")
expect_status 429 "$st" "throttle fault"
expect_jq "429 body" --arg m "$MSG_429" '. == {"message": $m}'
st=$(emu_api GET "/api/v3/threads/$th/messages/main")
expect_status 429 "$st" "locked after the throttle fault"
check "counters show the lock" test "$(emu_ctl GET /_emulator/counters | jq '.windows["threads.main"].locked')" = true
emu_ctl POST /_emulator/unlock '{"api":"*"}' >/dev/null
st=$(emu_api GET "/api/v3/threads/$th/messages/main")
expect_status 200 "$st" "unlocked"

# "*" hits any API; faults are listed and can be cleared.
fault '{"api":"*","kind":"503","count":3}'
s1=$(emu_api GET /api/v2/channels); s2=$(emu_api GET "/api/v3/threads/$th"); s3=$(emu_api GET "/api/v2/chats/$th/messages")
check "'*' faults three different APIs ($s1 $s2 $s3)" test "$s1$s2$s3" = 503503503
fault '{"api":"*","kind":"500","count":5}'
check "pending fault listed" test "$(emu_ctl GET /_emulator/faults | jq '.faults[0].count')" = 5
emu_ctl DELETE /_emulator/faults >/dev/null
st=$(emu_api GET /api/v2/channels)
expect_status 200 "$st" "faults cleared"
check "fault list empty" test "$(emu_ctl GET /_emulator/faults | jq '.faults | length')" = 0

# The token endpoint can be faulted too.
fault '{"api":"oauth.token","kind":"drop"}'
curl -s -o /dev/null "$EMU_URL/oauth/v2/token" -d grant_type=refresh_token
check "oauth.token drop: exit 52" test $? -eq 52

for bad in '{"api":"nope","kind":"500"}' '{"api":"*","kind":"teapot"}' '{"kind":"500"}' '{"api":"*","kind":"delay","delay_ms":"x"}'; do
  out=$(emu_ctl POST /_emulator/faults "$bad")
  check "bad fault $bad refused" jqt '.error' <<<"$out"
done
finish
