#!/usr/bin/env bash
# Close: only an open that can write gets a FLUSH (the others are opened with
# FOPEN_NOFLUSH, a request less per cat); a write still posts on close, and
# close still returns a refusal.  The state file keeps its attributes in the
# kernel, and they follow every change: our writes through state or ctl.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
T="general/Q1 planning"
W="general/Welcome Lucy!"
flushes() { jq -r .fuse.flush .cliqfs/status; }
files="state title info main members followers messages messages.jsonl ctl"

for f in $files; do cat "$T/$f" >/dev/null || fail "cat $f"; done
f0=$(flushes)
[ "$f0" -ge 0 ] 2>/dev/null || fail "no fuse.flush in .cliqfs/status: [$f0]"
for i in 1 2 3; do
  for f in $files; do cat "$T/$f" >/dev/null || fail "cat $f ($i)"; done
done
assert_eq "$("$FSYNC_WRITE" -r "$T/main" | grep close=)" close=OK "close of a read-only open"
assert_eq "$(cat "$T/state")" open "state reads"
assert_eq "$(cat "$T/title")" "Q1 planning" "title reads"
assert_eq "$(flushes)" "$f0" "FLUSH requests for read-only opens"
ok "read-only opens read and close without a FLUSH"

p0=$(emu_count messages.post)
echo "posted at close" >>"$T/messages" || fail "append"
assert_eq "$(emu_count messages.post)" "$((p0 + 1))" "posted by the time close returned"
f1=$(flushes)
[ "$f1" -gt "$f0" ] || fail "no FLUSH for a write open ($f0 -> $f1)"
assert_eq "$(thread_jq general "Q1 planning" '.messages[-1].text')" "posted at close" "the text at the emulator"
# an open for reading and writing can write: it keeps its FLUSH
exec 3<>"$T/messages" || fail "open O_RDWR"
exec 3>&-
[ "$(flushes)" -gt "$f1" ] || fail "no FLUSH for an O_RDWR open"
ok "a write posts on close (FLUSH kept for opens that can write)"

wid=$(thread_jq general "Welcome Lucy!" .chat_id)
assert_eq "$(cat "$W/state")" open "listed open"
assert_eq "$(emu_api PUT "/api/v3/threads/$wid" '{"action":"close"}')" 204 "closed behind our back"
# (shells ignore close errors: the helper shows what close returned)
assert_eq "$("$FSYNC_WRITE" -c "$W/messages" "refused at close" | grep close=)" close=EACCES \
  "close returns the refusal"
ok "close returns a refusal"

# state: attributes kept, exact after our own changes
stat "$T/state" >/dev/null
assert_eq "$(stat -c %s "$T/state")" 5 "size of open"
echo close >"$T/state" || fail "echo close > state"
assert_eq "$(stat -c %s "$T/state")" 7 "size right after echo close > state"
assert_eq "$(cat "$T/state")" closed "reads closed"
echo reopen >"$T/ctl" || fail "echo reopen > ctl"
assert_eq "$(thread_jq general "Q1 planning" .state)" open "reopened at the emulator"
# the change reaches the kernel as an invalidation (its own thread)
wait_until 5 size_is "$T/state" 5 || fail "state size after reopen through ctl: $(stat -c %s "$T/state")"
assert_eq "$(cat "$T/state")" open "reads open"
ok "state size follows writes to state and ctl"
