#!/usr/bin/env bash
# The whole budget, never more: a cold ls -R of 20 channels of 100 threads
# needs the channel list and 20 thread lists, which fit Cliq's budget of 20
# thread lists a minute: it is served without waiting for a slot, and the
# emulator (which counts a request when it arrives) sees no throttle and no
# window over its limit.  Then a second such task in the same window (a
# remount, cold cache, same ledger) waits instead of exceeding the budget.
. "$(dirname "$0")/lib.sh"

SCALE=10                       # windows of 6 s, on both sides
emu_start --synthetic 20x100x1 --time-scale $SCALE || fail "emulator did not start"
mt_mount "time_scale=$SCALE"
LIMIT=$(gv_counters | jq -r '.windows["threads.list"].limit')
assert_eq "$LIMIT" 20 "threads.list limit"
ls -R "$MNT" >"$MT_DIR/ls.out" || fail "ls -R"
assert_eq "$(gv_count threads.list)" 20 "thread lists for a cold ls -R"
dirs=$(grep -c '^/.*/.*:$' "$MT_DIR/ls.out")
[ "$dirs" -ge 2000 ] || fail "ls -R showed $dirs thread folders, expected 2000"
grep -q "waiting for threads.list" "$MT_LOG" &&
  fail "a thread list waited for a slot: $(grep "waiting for" "$MT_LOG" | head -n 1)"
gv_assert_within_budget "cold ls -R of 20 x 100"
ok "cold ls -R of 20 x 100: 20 thread lists, no wait, nothing throttled"

# A remount that lists everything cold again within the window knows the
# first mount's 20 lists from the ledger: it waits for slots instead of
# exceeding the budget.
mt_unmount || fail "unmount"
rm -rf "$XDG_CACHE_HOME/cliqfs"
mt_mount "time_scale=$SCALE"
ls -R "$MNT" >/dev/null || fail "ls -R (remount)"
assert_eq "$(gv_count threads.list)" 40 "thread lists for two cold ls -R"
gv_assert_within_budget "two cold ls -R in one window"
ok "a second cold ls -R in the window stays within the budget"
