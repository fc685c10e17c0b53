#!/usr/bin/env bash
# Issue 6: what the journal holds survives the daemon.  messages.post is
# locked so that entries stay queued: 5 appends, a clean unmount (prompt,
# although a worker waits for the lock), a remount; 20 appends, `kill -9`, a
# remount: all 25 arrive exactly once, in order.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
T="general/Q1 planning"
M="$T/messages"
cat "$M" >/dev/null
texts() { thread_jq general "Q1 planning" '.messages[].text // "" | select(startswith("kept append "))'; }
arrived() { texts | wc -l; }
all_arrived() { [ "$(arrived)" = 25 ]; }
locked() { [ "$(emu_ctl GET /_emulator/counters | jq '.windows["messages.post"].locked')" = true ]; }

emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
for i in $(seq 1 5); do
  echo "kept append $i" >>"$M" || fail "append $i"
done
assert_eq "$(ls .cliqfs/outbox | wc -l)" 5 "5 entries journaled"
cd /
t0=$SECONDS
mt_unmount || fail "the daemon did not exit on unmount with entries waiting for a lock"
[ $((SECONDS - t0)) -le 5 ] || fail "unmount took $((SECONDS - t0)) s"
locked || fail "test setup: the lock ended too soon (machine too slow)"
assert_eq "$(arrived)" 0 "nothing arrived before the unmount"
ok "clean unmount with 5 entries queued behind a lock"

mt_mount time_scale=$TS
cd "$MNT"
assert_eq "$(ls .cliqfs/outbox | wc -l)" 5 "the remount shows the 5 entries"
for i in $(seq 6 25); do
  echo "kept append $i" >>"$M" || fail "append $i"
done
assert_eq "$(ls .cliqfs/outbox | wc -l)" 25 "25 entries journaled"
cd /
kill -KILL "$CLIQFS_PID"
wait "$CLIQFS_PID" 2>/dev/null
CLIQFS_PID=
fusermount3 -uz "$MNT" 2>/dev/null
mountpoint -q "$MNT" && fail "the dead mount is still there"
locked || fail "test setup: the lock ended too soon (machine too slow)"
assert_eq "$(arrived)" 0 "nothing arrived before the crash"
ok "kill -9 with 25 entries journaled"

mt_mount time_scale=$TS
cd "$MNT"
if locked; then
  assert_eq "$(ls .cliqfs/outbox | wc -l)" 25 "the remount shows the 25 entries left"
fi
wait_until 150 all_arrived || fail "only $(arrived) of 25 arrived after the remount"
assert_eq "$(texts)" "$(seq 1 25 | sed 's/^/kept append /')" "all 25 exactly once, in order"
wait_until 10 yields 0 'ls .cliqfs/outbox | wc -l' || fail "the outbox did not empty"
sleep 0.5
assert_eq "$(arrived)" 25 "still exactly once"
ok "after the remounts all 25 arrived exactly once, in order"
