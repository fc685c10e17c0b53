#!/usr/bin/env bash
# Issue 6: `kill -9` of the daemon with 20 messages journaled (messages.post
# locked, so they stay queued), then a remount: all 20 arrive exactly once,
# in order.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
T="general/Q1 planning"
M="$T/messages"
cat "$M" >/dev/null
texts() { thread_jq general "Q1 planning" '.messages[].text // "" | select(startswith("crash append "))'; }
arrived() { texts | wc -l; }
all_arrived() { [ "$(arrived)" = 20 ]; }

emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
for i in $(seq 1 20); do
  echo "crash append $i" >>"$M" || fail "append $i"
done
assert_eq "$(ls .cliqfs/outbox | wc -l)" 20 "20 entries journaled"
cd /
kill -KILL "$CLIQFS_PID"
wait "$CLIQFS_PID" 2>/dev/null
CLIQFS_PID=
fusermount3 -uz "$MNT" 2>/dev/null
mountpoint -q "$MNT" && fail "the dead mount is still there"
assert_eq "$(arrived)" 0 "nothing arrived before the crash"
ok "kill -9 with 20 messages journaled"

mt_mount time_scale=$TS
cd "$MNT"
if [ "$(emu_ctl GET /_emulator/counters | jq '.windows["messages.post"].locked')" = true ]; then
  assert_eq "$(ls .cliqfs/outbox | wc -l)" 20 "the remount shows the 20 entries left"
fi
wait_until 150 all_arrived || fail "only $(arrived) of 20 arrived after the remount"
assert_eq "$(texts)" "$(seq 1 20 | sed 's/^/crash append /')" "all 20 exactly once, in order"
wait_until 10 test "$(ls .cliqfs/outbox | wc -l)" = 0 || fail "the outbox did not empty"
sleep 0.5
assert_eq "$(arrived)" 20 "still exactly once"
ok "after a remount all 20 arrived exactly once, in order"
