#!/usr/bin/env bash
# GET /_emulator/counters: every Cliq request per API class and status,
# total and throttled, max_in_window per API; reset; the control path itself
# is not counted.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"
c=$(emu_ctl GET /_emulator/counters)
check "fresh: total 0" test "$(jq .total <<<"$c")" = 0
check "fresh: every API has a window entry" test "$(jq '.windows | length' <<<"$c")" -ge 20

emu_api GET /api/v2/channels >/dev/null
emu_api GET /api/v2/channels >/dev/null
EMU_AUTH= emu_api GET /api/v2/channels >/dev/null
emu_api GET "/api/v2/channels/$ENG_ID/threads" >/dev/null
emu_api GET "/api/v2/channels/$ENG_ID/threads?limit=0" >/dev/null
emu_api GET /api/v2/nothing >/dev/null
emu_api POST /api/v2/channels >/dev/null
curl -s -o /dev/null "$EMU_URL/oauth/v2/token" -d grant_type=refresh_token
emu_ctl GET /_emulator/state >/dev/null
c=$(emu_ctl GET /_emulator/counters)

check "channels.list: 4 requests" test "$(jq '.apis["channels.list"].total' <<<"$c")" = 4
check "channels.list by status" jqt '.apis["channels.list"].status == {"200":2,"401":1,"405":1}' <<<"$c"
check "threads.list: 200 and 400" jqt '.apis["threads.list"] == {"total":2,"status":{"200":1,"400":1}}' <<<"$c"
check "unknown path counted under unknown" jqt '.apis.unknown == {"total":1,"status":{"404":1}}' <<<"$c"
check "oauth.token counted" jqt '.apis["oauth.token"].total == 1' <<<"$c"
check "total is the sum, control path not counted" test "$(jq .total <<<"$c")" = 8
# The 405 is counted but not charged to the window: it names no API call.
check "max_in_window of channels.list" jqt '.windows["channels.list"].max_in_window == 3 and .windows["channels.list"].limit == 30' <<<"$c"
check "emu_count helper" test "$(emu_count threads.list)" = 2
check "emu_count of an unused API is 0" test "$(emu_count chats.leave)" = 0

emu_ctl POST /_emulator/counters/reset >/dev/null
c=$(emu_ctl GET /_emulator/counters)
check "reset: total 0, no apis" jqt '.total == 0 and .throttled == 0 and .apis == {}' <<<"$c"
check "reset: max_in_window 0" jqt '.windows["channels.list"].max_in_window == 0' <<<"$c"

# Faulted requests are counted too: drops under status 0.
emu_ctl POST /_emulator/faults '{"api":"channels.list","kind":"drop"}' >/dev/null
emu_ctl POST /_emulator/faults '{"api":"channels.list","kind":"503"}' >/dev/null
emu_api GET /api/v2/channels >/dev/null
emu_api GET /api/v2/channels >/dev/null
c=$(emu_ctl GET /_emulator/counters)
check "drop counted as status 0, 503 as 503" jqt '.apis["channels.list"].status == {"0":1,"503":1}' <<<"$c"
finish
