#!/usr/bin/env bash
# state: close/reopen (and closed/open), through the shell's truncate; a closed
# thread's messages is 0444 and refuses appends with EACCES.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
T="general/Q1 planning"
emu_st() { thread_jq general "Q1 planning" .state; }
updates() { emu_count threads.update; }

assert_eq "$(cat "$T/state")" open "state before"
assert_eq "$(stat -c %a "$T/messages")" 644 "messages mode of an open thread"
echo close >"$T/state" || fail "echo close > state"
assert_eq "$(emu_st)" closed "the emulator shows the thread closed"
assert_eq "$(cat "$T/state")" closed "state reads closed"
assert_eq "$(stat -c %s "$T/state")" 7 "state size follows"
assert_eq "$(stat -c %a "$T/messages")" 444 "messages of a closed thread is 0444"
p0=$(emu_count messages.post)
expect_errno "Permission denied" "echo nope >>'$MNT/$T/messages'"
assert_eq "$(emu_count messages.post)" "$p0" "nothing posted to a closed thread"
grep -q $'/general/Q1 planning/messages\tEACCES' .cliqfs/errors || fail "EACCES not logged"
ok "echo close > state closes; messages 0444; append EACCES"

printf '  reopen \n' >"$T/state" || fail "reopen with white space"
assert_eq "$(emu_st)" open "reopened at the emulator"
assert_eq "$(stat -c %a "$T/messages")" 644 "messages writable again"
echo "after reopen" >>"$T/messages" || fail "reply after reopen"
echo closed >"$T/state" || fail "closed as a synonym"
assert_eq "$(emu_st)" closed "closed synonym"
echo open >>"$T/state" || fail "open as a synonym (append works too)"
assert_eq "$(emu_st)" open "open synonym"
ok "reopen, closed, open; surrounding white space ignored"

u0=$(updates)
expect_errno "Invalid argument" "echo shut >'$MNT/$T/state'"
expect_errno "Invalid argument" "echo 'close now' >'$MNT/$T/state'"
: >"$T/state" || fail "truncating state is accepted"
truncate -s 0 "$T/state" || fail "truncate -s 0 state is accepted"
assert_eq "$(updates)" "$u0" "nothing sent for bad verbs or a bare truncate"
assert_eq "$(emu_st)" open "state unchanged"
ok "bad verbs fail with EINVAL at write; truncation alone changes nothing"

# a thread closed at Cliq: replies are refused with EACCES
C="general/Parking registration"
assert_eq "$(cat "$C/state")" closed "a closed thread of the demo"
expect_errno "Permission denied" "echo hi >>'$MNT/$C/messages'"
# closed by someone else after we listed it: Cliq refuses the reply (close
# fails with EACCES, which the shell does not show), and from then on we know
W="general/Welcome Lucy!"
assert_eq "$(cat "$W/state")" open "listed open"
wid=$(thread_jq general "Welcome Lucy!" .chat_id)
assert_eq "$(emu_api PUT "/api/v3/threads/$wid" '{"action":"close"}')" 204 "closed behind our back"
p0=$(emu_count messages.post)
echo "too late" >>"$W/messages"
assert_eq "$(thread_jq general "Welcome Lucy!" '.messages[-1].text')" \
  "$(thread_jq general "Welcome Lucy!" '.messages[-1].text' | grep -v '^too late$')" "nothing stored"
grep -q $'/general/Welcome Lucy!/messages\tEACCES\toperation_not_allowed' .cliqfs/errors ||
  fail "the refusal is not logged with Cliq's code: $(tail -n 2 .cliqfs/errors)"
assert_eq "$(cat "$W/state")" closed "the refusal taught us the thread is closed"
assert_eq "$(stat -c %a "$W/messages")" 444 "messages now 0444"
expect_errno "Permission denied" "echo again >>'$MNT/$W/messages'"
assert_eq "$(emu_count messages.post)" "$((p0 + 1))" "one refused request, then none"
ok "replies to closed threads: EACCES (known, or learnt from Cliq's refusal)"
