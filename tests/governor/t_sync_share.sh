#!/usr/bin/env bash
# Sync keeps to its share of each API's budget (sync_share), so that the
# account's other API clients keep the rest:
#  1. with sync_share=40 at the budget's pace (time_scale 20 on both sides)
#     the demo organization syncs, and no window of any API holds more than
#     40 % of that API's limit;
#  2. a throttle answer sync did not expect (someone else spends the budget)
#     halves its share on that API: .cliqfs/status shows the back-off, and
#     after the lock sync keeps to half of its share.
. "$(dirname "$0")/lib.sh"

SCALE=20
synced() {
  jq -e '.sync.last_full_pass != null' "$MNT/.cliqfs/status" >/dev/null 2>&1
}

# ---- 1. a share of 40 % --------------------------------------------------------
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount "time_scale=$SCALE,sync=all,sync_share=40"
assert_eq "$(jq -r .sync.share "$MNT/.cliqfs/status")" 40 "status: sync.share"
wait_until 200 synced || fail "not synced after 200 s: $(jq -c .sync "$MNT/.cliqfs/status")"
c=$(gv_counters)
over=$(jq -r '[.windows | to_entries[] | select(.value.max_in_window > (.value.limit * 40 / 100 | floor))
               | "\(.key) \(.value.max_in_window)/\(.value.limit)"] | join(", ")' <<<"$c")
[ -z "$over" ] || { gv_summary >&2; fail "sync took more than 40 % of a budget in a window: $over"; }
# It does use its share where there is much to fetch.
assert_eq "$(jq -r '.windows["chats.messages"].max_in_window' <<<"$c")" 6 \
  "most message requests in a window (40 % of 15)"
gv_assert_within_budget "sync at a share of 40 %"
ok "synced at 40 % of each budget: $(jq -c '[.windows | to_entries[] | select(.value.max_in_window > 0) | "\(.key) \(.value.max_in_window)/\(.value.limit)"]' <<<"$c")"
mt_unmount || fail "unmount"
emu_stop

# ---- 2. an unexpected throttle halves the share -----------------------------------
rm -rf "$XDG_STATE_HOME/cliqfs" "$XDG_CACHE_HOME/cliqfs"
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
# The first message request is answered as if another client had spent the
# budget: cliqfs locks chats.messages for its lock period (600 s / SCALE).
emu_ctl POST /_emulator/faults '{"api":"chats.messages","kind":"throttle","count":1}' >/dev/null ||
  fail "fault injection"
mt_mount "time_scale=$SCALE,sync=all,sync_share=100"
backoff() {
  [ "$(jq -r '.sync.backoff["chats.messages"] // 0' "$MNT/.cliqfs/status")" = 1 ]
}
wait_until 30 backoff || fail "no back-off after a throttle: $(jq -c .sync "$MNT/.cliqfs/status")"
gv_reset
# Once the lock ends, sync fetches messages again, at half its share: 7 of
# 15 in any window where the background lane alone would let 11 through.
# Counted over its first 20 requests (at least three windows), well before
# ten calm windows give the halving back.
twenty() { [ "$(gv_count chats.messages)" -ge 20 ]; }
wait_until 90 twenty || fail "sync did not resume after the lock: $(gv_count chats.messages) message requests"
c=$(gv_counters)
max=$(jq -r '.windows["chats.messages"].max_in_window' <<<"$c")
[ "$max" -le 7 ] || fail "after the throttle sync sent $max message requests in a window (half its share is 7)"
[ "$max" -ge 1 ] || fail "no message request in a window"
assert_eq "$(jq -r .throttled <<<"$c")" 0 "throttled answers after the lock"
ok "an unexpected throttle halved sync's share: at most $max message requests in a window after the lock"
mt_unmount || fail "unmount"
emu_stop
