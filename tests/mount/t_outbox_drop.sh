#!/usr/bin/env bash
# Issue 6: the emulator performs a POST and drops the connection before
# answering (accept_drop): the message appears exactly once.  A connection
# dropped before anything was done (drop): it still arrives, once.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
T="general/Q1 planning"
M="$T/messages"
cat "$M" >/dev/null
fault() { emu_ctl POST /_emulator/faults "{\"api\":\"$1\",\"kind\":\"$2\",\"count\":${3:-1}}" >/dev/null; }
count_text() { thread_jq general "Q1 planning" "[.messages[].text // \"\" | select(. == \"$1\")] | length"; }
once() { [ "$(count_text "$1")" = 1 ]; }
outbox_empty() { [ "$(ls .cliqfs/outbox | wc -l)" = 0 ]; }

fault messages.post accept_drop 1
p0=$(emu_count messages.post)
echo "stored, then dropped" >>"$M" || fail "close after accept_drop"
wait_until 60 outbox_empty || fail "the entry did not leave the outbox: $(ls .cliqfs/outbox)"
assert_eq "$(count_text "stored, then dropped")" 1 "exactly once at the emulator"
assert_eq "$(emu_count messages.post)" "$((p0 + 1))" "the message was found, not sent again"
jq -e '.outbox.checks >= 1 and .outbox.found >= 1' .cliqfs/status >/dev/null ||
  fail "status does not show the check: $(jq -c .outbox .cliqfs/status)"
wait_until 10 yields 1 "grep -c ': stored, then dropped\$' \"\$M\"" ||
  fail "messages shows it $(grep -c ': stored, then dropped$' "$M") times"
ok "accept_drop: the message appears exactly once"

fault messages.post drop 1
echo "dropped before stored" >>"$M" || fail "close after drop"
wait_until 60 outbox_empty || fail "the entry did not leave the outbox"
assert_eq "$(count_text "dropped before stored")" 1 "exactly once at the emulator"
echo "after the drops" >>"$M" || fail "a later append"
wait_until 10 once "after the drops" || fail "a later append did not arrive"
ok "drop: sent again after the check, exactly once; later appends go on"
