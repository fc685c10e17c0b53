#!/usr/bin/env bash
# Unmounting leaves no process and no stale mount, also with readers open and
# with a request waiting for a rate slot.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"

# 1. plain fusermount3 -u after use
mt_mount time_scale=20
ls -lR "$MNT" >/dev/null
cat "$MNT/general/Q1 planning/messages" >/dev/null
pid=$CLIQFS_PID
fusermount3 -u "$MNT" || fail "fusermount3 -u"
wait_until 10 mt_daemon_gone || fail "daemon still running 10 s after unmount"
wait "$pid" 2>/dev/null
assert_eq "$?" 0 "daemon exit status after unmount"
CLIQFS_PID=
mountpoint -q "$MNT" && fail "still mounted"
grep -q " $MNT " /proc/mounts && fail "stale entry in /proc/mounts"
ok "fusermount3 -u: daemon exits 0, no mount left"

# 2. SIGTERM while a tail -f follows a file
mt_mount time_scale=20
mt_bg tail -f "$MNT/general/Q1 planning/messages" >/dev/null 2>&1
sleep 0.5
pid=$CLIQFS_PID
kill -TERM "$pid"
wait_until 10 mt_daemon_gone || fail "daemon ignores SIGTERM"
CLIQFS_PID=
mt_kill_bg
wait_until 5 bash -c "! mountpoint -q '$MNT'" || fail "mount left after SIGTERM"
ok "SIGTERM with a reader: daemon exits, mount gone"

# 3. SIGTERM while a read waits for a rate slot (budget spent, long max_wait)
mt_mount "time_scale=1,max_wait=600,limit.threads.main=1/600"
cat "$MNT/general/Q1 planning/main" >/dev/null || fail "first main"
mt_bg cat "$MNT/general/Holiday party 2026/main" >/dev/null 2>&1
sleep 1
pid=$CLIQFS_PID
kill -TERM "$pid"
wait_until 10 mt_daemon_gone || fail "daemon stuck with a read waiting for budget"
CLIQFS_PID=
mt_kill_bg
wait_until 5 bash -c "! mountpoint -q '$MNT'" || fail "mount left"
ok "SIGTERM while a read waits for budget: daemon exits"

pgrep -f "cliqfs -f -o api_url=$EMU_URL" >/dev/null && fail "a cliqfs process is left"
ok "no process left"
