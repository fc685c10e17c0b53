#!/usr/bin/env bash
# Issue 6: a reply to a thread closed meanwhile lands in .cliqfs/failed/ with
# an errors line; nothing else is blocked by it; rm discards it.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
W="general/Welcome Lucy!"
Q="general/Q1 planning"
wid=$(thread_jq general "Welcome Lucy!" .chat_id)
count_text() { thread_jq "$1" "$2" "[.messages[].text // \"\" | select(. == \"$3\")] | length"; }
arrived() { [ "$(count_text "$1" "$2" "$3")" = 1 ]; }
failed_count() { ls .cliqfs/failed | wc -l; }

assert_eq "$(cat "$W/state")" open "listed open"
cat "$W/messages" "$Q/messages" >/dev/null
# closed at Cliq behind our back, while messages.post is locked: both
# replies wait in the journal, in order, and go out when the lock ends
assert_eq "$(emu_api PUT "/api/v3/threads/$wid" '{"action":"close"}')" 204 "closed behind our back"
emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
echo "too late" >>"$W/messages" || fail "the close of a queued reply returns 0"
echo "still fine" >>"$Q/messages" || fail "a reply to another thread"
assert_eq "$(ls .cliqfs/outbox | wc -l)" 2 "both wait in the outbox"
wait_until 120 arrived general "Q1 planning" "still fine" || fail "the other reply did not arrive"
wait_until 10 yields 1 failed_count || fail "nothing in .cliqfs/failed: $(ls .cliqfs/failed)"
name=$(ls .cliqfs/failed)
case "$name" in *"-$wid") ;; *) fail "failed entry [$name] is not named by the thread" ;; esac
assert_eq "$(cat ".cliqfs/failed/$name")" "too late" "the failed file holds the text"
assert_eq "$(count_text general "Welcome Lucy!" "too late")" 0 "nothing stored at the emulator"
grep -q $'/general/Welcome Lucy!/messages\tEACCES\toperation_not_allowed\t.*'"$name" .cliqfs/errors ||
  fail "no errors line with path, errno, Cliq code and the failed entry: $(tail -n 3 .cliqfs/errors)"
assert_eq "$(grep -c "$name" .cliqfs/errors)" 1 "one errors line"
assert_eq "$(jq .outbox.failed .cliqfs/status)" 1 "status counts the failed entry"
assert_eq "$(ls .cliqfs/outbox | wc -l)" 0 "the outbox is empty"
assert_eq "$(cat "$W/state")" closed "the refusal taught us the thread is closed"
ok "a queued reply to a thread closed meanwhile: failed/ and an errors line; the other reply arrived"

# the same thread goes on after a refusal once it is open again
assert_eq "$(emu_api PUT "/api/v3/threads/$wid" '{"action":"reopen"}')" 204 "reopened behind our back"
assert_eq "$(thread_jq general "Welcome Lucy!" .state)" open "open at the emulator"
echo reopen >"$W/state" || fail "reopen through state (already open at Cliq)"
echo "after reopen" >>"$W/messages" || fail "reply after reopen"
wait_until 30 arrived general "Welcome Lucy!" "after reopen" || fail "the reply after the refusal did not arrive"
ok "a refusal does not block its thread"

# a refusal known at once (not queued) is the close's error too
assert_eq "$(emu_api PUT "/api/v3/threads/$wid" '{"action":"close"}')" 204 "closed again behind our back"
# (shells ignore close errors: the helper shows what close returned)
assert_eq "$("$FSYNC_WRITE" -c "$W/messages" "refused at close" | grep close=)" close=EACCES \
  "close returns EACCES"
wait_until 5 yields 2 failed_count || fail "second refusal not in failed/"
ok "a refusal while the close waits is the close's EACCES"

# rm discards a failed entry; nothing else can be removed
expect_errno "Operation not permitted" "rm -f '$MNT/$Q/messages'"
rm ".cliqfs/failed/$name" || fail "rm of a failed entry"
[ -e ".cliqfs/failed/$name" ] && fail "still there after rm"
assert_eq "$(failed_count)" 1 "one left"
rm -f .cliqfs/failed/* || fail "rm -f of the rest"
assert_eq "$(failed_count)" 0 "failed/ is empty"
assert_eq "$(jq .outbox.failed .cliqfs/status)" 0 "status after rm"
expect_errno "No such file or directory" "rm '$MNT/.cliqfs/failed/$name'"
ok "rm discards failed entries"
