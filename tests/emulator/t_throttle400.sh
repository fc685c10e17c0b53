#!/usr/bin/env bash
# --throttle-style 400: an exceeded limit answers HTTP 400
# {"code":"request_limit_exceeded",…}; switchable at run time through
# /_emulator/config; /_emulator/lock and /unlock.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet --throttle-style 400 --time-scale 10 || die "start"
urls=()
for i in $(seq 1 31); do urls+=(-o "$EMU_DIR/r$i" "$EMU_URL/api/v2/channels/$ENG_ID"); done
codes=$(curl -s -H "Authorization: Zoho-oauthtoken $EMU_TOKEN" -w '%{http_code}\n' "${urls[@]}" | tr '\n' ' ')
read -r -a code <<<"$codes"
check "31st channels.get request answered 400 (got ${code[30]})" test "${code[30]}" = 400
check "first 30 answered 200" test "$(printf '%s\n' "${code[@]:0:30}" | sort -u | tr -d '\n')" = 200
check "request_limit_exceeded body" jqt \
  '. == {"code":"request_limit_exceeded","message":"You have exceeded the URL throttle limits."}' "$EMU_DIR/r31"
st=$(emu_api GET "/api/v2/channels/$ENG_ID")
expect_status 400 "$st" "locked: still 400"
check "counted as throttled" test "$(emu_ctl GET /_emulator/counters | jq .throttled)" -ge 2

emu_ctl POST /_emulator/config '{"throttle_style":"429"}' >/dev/null
st=$(emu_api GET "/api/v2/channels/$ENG_ID")
expect_status 429 "$st" "style switched at run time"
expect_jq "429 body" --arg m "$MSG_429" '. == {"message": $m}'
emu_ctl POST /_emulator/unlock '{"api":"channels.get"}' >/dev/null
st=$(emu_api GET "/api/v2/channels/$ENG_ID")
expect_status 200 "$st" "unlocked through the control path"

# /_emulator/lock with explicit seconds (unscaled), then it ends by itself.
emu_ctl POST /_emulator/config '{"throttle_style":"400"}' >/dev/null
emu_ctl POST /_emulator/lock '{"api":"threads.list","seconds":1}' >/dev/null
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads")
expect_status 400 "$st" "threads.list locked by the control path"
expect_jq "400 throttle body" '.code == "request_limit_exceeded"'
deadline=$((SECONDS + 20)); st=
while [ $SECONDS -lt $deadline ]; do
  st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads")
  [ "$st" = 200 ] && break
  sleep 0.2
done
expect_status 200 "$st" "lock of 1 s ended"
st=$(emu_ctl POST /_emulator/config '{"throttle_style":"418"}')
check "bad style refused by config" jqt '.error' <<<"$st"
finish
