#!/usr/bin/env bash
# `cliqfs status`: what a user sees of a running mount from another terminal:
# the budgets used, a lock Cliq put on an API with its end as an ISO time and
# the seconds left, the outbox, the last errors; --json; the mounts found
# without an argument; a folder that is no mount; a mount whose daemon died.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount "time_scale=20,max_wait=0,limit.threads.main=1/600"

ls "$MNT/general" >/dev/null || fail "ls general"
out=$("$CLIQFS" status "$MNT") || fail "cliqfs status MOUNTPOINT exit status"
case "$out" in *"cliqfs at $MNT"*) ;; *) fail "no heading in [$out]" ;; esac
grep -qE '^ +threads\.list +[0-9]+ of 20 used' <<<"$out" ||
  fail "threads.list budget not shown: [$out]"
grep -q 'outbox: 0 waiting' <<<"$out" || fail "no outbox line: [$out]"
grep -q 'sign-in: static' <<<"$out" || fail "no sign-in line: [$out]"
grep -qx '  sync: off' <<<"$out" || fail "no sync line: [$out]"
ok "status MOUNTPOINT: budgets used, outbox, sign-in, sync"

# Without an argument it finds this mount.  Other tests' mounts may show too,
# and one of theirs may be a dead daemon's (exit 1, a line about it): only
# this mount's own lines count here.
out=$("$CLIQFS" status 2>"$MT_DIR/status.err")
rc=$?
grep -qF "cliqfs at $MNT" <<<"$out" || fail "mount not found: [$out]"
if [ "$rc" != 0 ]; then
  { [ -s "$MT_DIR/status.err" ] && ! grep -qF -- "$MNT" "$MT_DIR/status.err"; } ||
    fail "cliqfs status (no argument) exit $rc: $(cat "$MT_DIR/status.err")"
fi
ok "status without MOUNTPOINT finds the mount"

# --json is the status document itself.
"$CLIQFS" status --json "$MNT" | jq -e '.apis["threads.list"].limit == 20' \
  >/dev/null || fail "--json is not the status document"
ok "status --json"

# Cliq locks chats.messages for 10 minutes: a read is refused, and status says
# which API, that it is Cliq's lock, until when and how long is left.
emu_ctl POST /_emulator/lock '{"api":"chats.messages","seconds":600}' >/dev/null
cat "$MNT/general/Q1 planning/messages" >/dev/null 2>&1 &&
  fail "read while chats.messages is locked succeeded"
out=$("$CLIQFS" status "$MNT")
line=$(grep 'chats.messages' <<<"$out")
[[ $line =~ LOCKED\ by\ Cliq\ until\ [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\ \(([0-9]+)\ s\ left\) ]] ||
  fail "lock not shown: [$out]"
left=${BASH_REMATCH[1]}
[ "$left" -gt 0 ] && [ "$left" -le 600 ] || fail "seconds left: $left"
grep -A5 'last errors' <<<"$out" | grep -q 'Cliq locked chats.messages until 20' ||
  fail "the refused read's error does not name Cliq's lock: [$out]"
ok "status shows Cliq's lock with its end ($left s left) and the error"

# Our own budget: the error says so, with its use.
cat "$MNT/general/Q1 planning/main" >/dev/null || fail "first main"
cat "$MNT/general/Holiday party 2026/main" >/dev/null 2>&1 &&
  fail "second main within a budget of 1 succeeded"
grep -q 'our rate budget for threads.main is spent (1 of 1 requests' "$MNT/.cliqfs/errors" ||
  fail "own budget not named: $(tail -n 2 "$MNT/.cliqfs/errors")"
ok "a refusal for our own budget says so, with its use"

# Unmounting with a message queued: the log says it is kept and goes out at
# the next mount; `cliqfs status` lists it while the account is not mounted.
emu_ctl POST /_emulator/lock '{"api":"messages.post","seconds":600}' >/dev/null
echo "queued at unmount" >>"$MNT/general/Q1 planning/messages" || fail "append"
queued() { [ "$(mt_outbox_depth)" = 1 ]; }
wait_until 10 queued || fail "the message is not queued"
out=$("$CLIQFS" status "$MNT")
grep -qE '^  outbox: 1 waiting to be delivered, .*; the oldest waits since [0-9-]{10}T[0-9:]{8}Z \([0-9]+ s\)$' <<<"$out" ||
  fail "the outbox line does not give the oldest message's time: [$(grep outbox <<<"$out")]"
cd /
mt_unmount || fail "unmount"
grep -q "unmounted with 1 message queued: kept in .*, they go out at the next mount of this account" "$MT_LOG" ||
  fail "no log line about the queued message: $(tail -n 3 "$MT_LOG")"
out=$("$CLIQFS" status 2>/dev/null)
grep -q "^1 message queued for the account of $XDG_STATE_HOME/cliqfs/.*: delivered at its next mount\$" <<<"$out" ||
  fail "cliqfs status does not list the queued message: [$out]"
ok "unmount with a message queued: [$(grep -o 'unmounted with.*' "$MT_LOG" | head -n 1)]; status: [$(grep 'message queued' <<<"$out")]"
mt_mount "time_scale=20,max_wait=0,limit.threads.main=1/600"

# A folder that is not a cliqfs mount.
if msg=$("$CLIQFS" status "$MT_DIR" 2>&1); then fail "status of a plain folder succeeded"; fi
grep -q 'is not a cliqfs mount' <<<"$msg" || fail "plain folder: [$msg]"
ok "status of a plain folder: exit 1, says so"

# The daemon is stopped (Ctrl-Z on cliqfs -f): status gives up after its
# few seconds and says so instead of hanging like df on a stuck mount.
kill -STOP "$CLIQFS_PID"
start=${EPOCHREALTIME/./}
msg=$(timeout -k 5 60 "$CLIQFS" status "$MNT" 2>&1)
rc=$?
took=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
kill -CONT "$CLIQFS_PID"
assert_eq "$rc" 1 "exit status of status with the daemon stopped"
grep -q 'did not answer within 5 s' <<<"$msg" && grep -q 'kill -CONT' <<<"$msg" ||
  fail "stopped daemon: [$msg]"
"$CLIQFS" status "$MNT" >/dev/null || fail "status once the daemon continues"
ok "status of a stopped daemon: exit 1 after ${took} ms, says how to continue it"

# The daemon dies: status names the fix.
kill -KILL "$CLIQFS_PID"
wait "$CLIQFS_PID" 2>/dev/null
CLIQFS_PID=
if msg=$("$CLIQFS" status "$MNT" 2>&1); then fail "status of a dead mount succeeded"; fi
grep -qF "fusermount3 -u $MNT" <<<"$msg" || fail "dead mount: [$msg]"
ok "status of a dead mount: says fusermount3 -u"
