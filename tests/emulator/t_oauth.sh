#!/usr/bin/env bash
# /oauth/v2/token: refresh_token and authorization_code grants, Zoho-style
# errors with HTTP 200, and its own 10-per-10-minutes limit (HTTP 400
# "Access Denied"), shown with --time-scale 60 (window and lock 10 s).
. "$(dirname "$0")/t_lib.sh"

now_ms() { date +%s%3N; }
# token FORM-ARGS…: POST form-encoded; status printed, body in $EMU_BODY.
token() { curl -s -o "$EMU_BODY" -w '%{http_code}' "$EMU_URL/oauth/v2/token" "$@"; }
REFRESH=(-d grant_type=refresh_token -d client_id=emulator-client -d client_secret=emulator-secret -d refresh_token=emulator-refresh)

emu_start --quiet --time-scale 60 || die "start"

st=$(token "${REFRESH[@]}")
expect_status 200 "$st" "refresh grant"
expect_jq "refresh answer shape" '
  (.access_token | type == "string" and startswith("1000.")) and
  (.expires_in == 3600) and (.token_type == "Bearer") and
  (.api_domain | type == "string") and (.scope | type == "string") and
  (has("refresh_token") | not) and (has("error") | not)'
tok=$(bval .access_token)
st=$(EMU_AUTH="Zoho-oauthtoken $tok" emu_api GET /api/v2/channels)
expect_status 200 "$st" "issued token works"

# Parameters in the query string work too (Zoho accepts both).
st=$(curl -s -o "$EMU_BODY" -w '%{http_code}' -X POST \
  "$EMU_URL/oauth/v2/token?grant_type=refresh_token&client_id=emulator-client&client_secret=emulator-secret&refresh_token=emulator-refresh")
expect_status 200 "$st" "query-string parameters"
expect_jq "query-string grant gives a token" '.access_token | startswith("1000.")'

st=$(token -d grant_type=refresh_token -d client_id=emulator-client -d client_secret=nope -d refresh_token=emulator-refresh)
expect_status 200 "$st" "wrong secret answers 200"
expect_jq "invalid_client_secret" '. == {"error":"invalid_client_secret"}'
st=$(token -d grant_type=refresh_token -d client_id=someone -d client_secret=emulator-secret -d refresh_token=emulator-refresh)
expect_jq "invalid_client" '. == {"error":"invalid_client"}'
st=$(token -d grant_type=refresh_token -d client_id=emulator-client -d client_secret=emulator-secret -d refresh_token=stale)
expect_jq "wrong refresh token: invalid_code" '. == {"error":"invalid_code"}'
st=$(token -d grant_type=password -d client_id=emulator-client -d client_secret=emulator-secret)
expect_jq "unknown grant" '. == {"error":"unsupported_grant_type"}'

# authorization_code: single use, returns the refresh token.
st=$(token -d grant_type=authorization_code -d client_id=emulator-client -d client_secret=emulator-secret -d code=wrong-code)
expect_jq "wrong code: invalid_code" '. == {"error":"invalid_code"}'
st=$(token -d grant_type=authorization_code -d client_id=emulator-client -d client_secret=emulator-secret -d code=emulator-code)
expect_status 200 "$st" "code grant"
expect_jq "code grant gives access and refresh token" '
  (.access_token | startswith("1000.")) and .refresh_token == "emulator-refresh" and .expires_in == 3600'
st=$(token -d grant_type=authorization_code -d client_id=emulator-client -d client_secret=emulator-secret -d code=emulator-code)
expect_jq "code reused: invalid_code" '. == {"error":"invalid_code"}'

st=$(curl -s -o "$EMU_BODY" -w '%{http_code}' "$EMU_URL/oauth/v2/token")
expect_status 405 "$st" "GET on the token endpoint"

# The limit: 10 requests per (scaled) 10 minutes, every request counts.
emu_start --quiet --time-scale 60 || die "restart"
for i in $(seq 1 10); do
  st=$(token "${REFRESH[@]}")
  [ "$st" = 200 ] && body_jq '.access_token' || fail "request $i of 10 refused: $st $(cat "$EMU_BODY")"
done
t0=$(now_ms)
st=$(token "${REFRESH[@]}")
expect_status 400 "$st" "11th token request"
expect_jq "Access Denied body" '.error == "Access Denied" and .status == "failure" and
  (.error_description | test("too many requests"))'
st=$(token "${REFRESH[@]}")
expect_status 400 "$st" "token endpoint stays locked"
deadline=$((SECONDS + 60))
unlocked=
while [ $SECONDS -lt $deadline ]; do
  st=$(token "${REFRESH[@]}")
  if [ "$st" = 200 ]; then unlocked=$(now_ms); break; fi
  sleep 0.5
done
if [ -z "$unlocked" ]; then fail "token endpoint never unlocked"; else
  check "locked at least its scaled lock period (10000 ms; saw $((unlocked - t0)) ms)" \
    test $((unlocked - t0)) -ge 10000
fi
check "oauth.token counted" test "$(emu_count oauth.token)" -ge 13
finish
