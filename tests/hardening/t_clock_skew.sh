#!/usr/bin/env bash
# Exactly once does not depend on the two clocks agreeing: with the server's
# clock 5 minutes behind ours, a post whose answer was lost (the server
# stored it, the connection dropped) and whose daemon was then killed is
# checked for after the remount, found, and not sent again.
. "$MOUNT_LIB"

emu_start --demo --time-scale 20 || fail "emulator did not start"
emu_ctl POST /_emulator/config '{"clock_offset_s":-300}' >/dev/null || fail "config"
mt_mount time_scale=20
T="general/Q1 planning"
cat "$MNT/$T/messages" >/dev/null || fail "cat"

posts0=$(emu_count messages.post)
emu_ctl POST /_emulator/faults '{"api":"messages.post","kind":"accept_drop","count":1}' >/dev/null ||
  fail "fault"
echo "posted while the clocks disagree" >>"$MNT/$T/messages" || fail "append"
stored() { [ "$(emu_count messages.post)" -gt "$posts0" ]; }
wait_until 10 stored || fail "the post never reached the server"
# The daemon dies with the outcome unknown.
kill -KILL "$CLIQFS_PID"
wait "$CLIQFS_PID" 2>/dev/null
CLIQFS_PID=
fusermount3 -uz "$MNT" 2>/dev/null
mt_mount time_scale=20
depth() { mt_outbox_depth; }
drained() { [ "$(depth)" = 0 ]; }
wait_until 60 drained || fail "the outbox still holds $(depth)"
copies=$(thread_jq general "Q1 planning" '[.messages[] | select(.text == "posted while the clocks disagree")] | length')
assert_eq "$copies" 1 "copies at the server after a crash with its clock 5 minutes behind"
assert_eq "$(jq -r '.outbox.found' "$MNT/.cliqfs/status")" 1 "outbox: found by the check"
ok "server clock 5 min behind, answer lost, daemon killed: the check finds the post, it is there once"
