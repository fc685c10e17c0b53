#!/usr/bin/env bash
# Rate limits from api/endpoints.h in a sliding window: the 21st request in a
# minute to a 20/min API (threads.get, lock 5 min) gets the 429 body, and the
# API then stays locked for its lock period.  --time-scale 20: window 3 s,
# lock 15 s.  Other APIs are not affected; refused requests are counted.
. "$(dirname "$0")/t_lib.sh"

now_ms() { date +%s%3N; }
emu_start --quiet --time-scale 20 || die "start"
th=$(first_thread "$ENG_ID")
emu_ctl POST /_emulator/counters/reset >/dev/null
budget_reset

# The limits the emulator applies are the table's.
c=$(emu_ctl GET /_emulator/counters)
check "threads.get limit 20" test "$(jq '.windows["threads.get"].limit' <<<"$c")" = 20
check "chats.messages limit 15" test "$(jq '.windows["chats.messages"].limit' <<<"$c")" = 15
check "channels.list limit 30" test "$(jq '.windows["channels.list"].limit' <<<"$c")" = 30
check "threads.get lock 300 s scaled to 15 s" test "$(jq '.windows["threads.get"].lock_ms' <<<"$c")" = 15000
check "window 60 s scaled to 3 s" test "$(jq '.windows["threads.get"].window_ms' <<<"$c")" = 3000

# 21 requests back to back on one connection; bodies of each kept.
urls=()
for i in $(seq 1 21); do urls+=(-o "$EMU_DIR/r$i" "$EMU_URL/api/v3/threads/$th"); done
t0=$(now_ms)
codes=$(curl -s -H "Authorization: Zoho-oauthtoken $EMU_TOKEN" -w '%{http_code}\n' "${urls[@]}" | tr '\n' ' ')
read -r -a code <<<"$codes"
first20=$(printf '%s\n' "${code[@]:0:20}" | sort -u | tr -d '\n')
inwin=$(emu_ctl GET /_emulator/counters | jq '.windows["threads.get"].max_in_window')
check "the 21 requests fell in one window (max_in_window $inwin)" test "$inwin" -ge 21
check "requests 1-20 answered 200 (got ${code[*]:0:20})" test "$first20" = 200
check "request 21 answered 429 (got ${code[20]})" test "${code[20]}" = 429
check "the 429 body is the documented one" \
  jqt --arg m "$MSG_429" '. == {"message": $m}' "$EMU_DIR/r21"

# Locked: refused now, also once the 3 s window has slid past; other APIs fine.
st=$(emu_api GET "/api/v3/threads/$th")
expect_status 429 "$st" "threads.get right after"
st=$(emu_api GET "/api/v3/threads/$th/followers")
expect_status 200 "$st" "another API (threads.followers.get) unaffected"
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads")
expect_status 200 "$st" "threads.list unaffected"
c=$(emu_ctl GET /_emulator/counters)
check "counters: locked" test "$(jq '.windows["threads.get"].locked' <<<"$c")" = true

# Wait until the window has passed (no request needed for that) and check the
# lock holds beyond it.
while [ $(( $(now_ms) - t0 )) -lt 3500 ]; do sleep 0.2; done
st=$(emu_api GET "/api/v3/threads/$th")
expect_status 429 "$st" "still locked after the window slid past (lock ≠ window)"

# Poll until unlocked: not before 15 s after the 21st request.
unlocked=
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
  st=$(emu_api GET "/api/v3/threads/$th")
  if [ "$st" = 200 ]; then unlocked=$(now_ms); break; fi
  [ "$st" = 429 ] || fail "unexpected HTTP $st while locked"
  sleep 0.5
done
if [ -z "$unlocked" ]; then fail "threads.get never unlocked"; else
  check "locked at least 15 s (scaled 5 min); unlocked after $((unlocked - t0)) ms" test $((unlocked - t0)) -ge 15000
fi
c=$(emu_ctl GET /_emulator/counters)
n429=$(jq '.apis["threads.get"].status["429"]' <<<"$c")
check "every refused request counted as 429 ($n429)" test "$n429" -ge 3
check "throttled total counts them" test "$(jq .throttled <<<"$c")" -eq "$n429"

# The 16th request in a window to chats.messages (15/min) is refused too.
murls=()
for i in $(seq 1 16); do murls+=(-o "$EMU_DIR/m$i" "$EMU_URL/api/v2/chats/$th/messages?limit=1"); done
codes=$(curl -s -H "Authorization: Zoho-oauthtoken $EMU_TOKEN" -w '%{http_code}\n' "${murls[@]}" | tr '\n' ' ')
read -r -a code <<<"$codes"
check "chats.messages: 15 × 200 then 429 (got ${code[*]})" \
  test "$(printf '%s ' "${code[@]:0:15}")${code[15]}" = "$(printf '200 %.0s' $(seq 1 15))429"
finish
