#!/usr/bin/env bash
# Issue 6: a new thread written while messages.post is locked.  main, the
# first append (the thread's creation) and later appends wait in the journal
# on the draft's target; after the lock the thread is created from main with
# the directory's name, the replies follow in order, and the directory
# becomes the thread.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
D="design/Queued plan"
nthreads() { emu_state '.channels[] | select(.unique_name=="design") | .threads | length'; }
created() { [ "$(nthreads)" = "$((n0 + 1))" ]; }
thread() { emu_state '.channels[] | select(.unique_name=="design") | .threads[] | select(.title == "Queued plan")'; }
replies() { thread | jq -r '.messages[].text'; }
two_replies() { [ "$(replies | wc -l)" = 2 ]; }

ls design >/dev/null
n0=$(nthreads)
emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
mkdir "$D" || fail "mkdir"
echo "The plan, queued" >"$D/main" || fail "write main"
assert_eq "$(stat -c %a "$D/main")" 444 "main is written once, even while queued"
grep -q "The plan, queued" "$D/main" || fail "main shows the queued text: $(cat "$D/main")"
expect_errno "Permission denied" "echo again >'$MNT/$D/main'"
echo "First queued reply" >>"$D/messages" || fail "first append"
echo "Second queued reply" >>"$D/messages" || fail "second append"
assert_eq "$(cat "$D/state")" draft "still a draft"
assert_eq "$(ls .cliqfs/outbox | wc -l)" 3 "main, the creation and a reply wait"
ls .cliqfs/outbox | grep -q -- "-draft:.*Queued plan$" || fail "entries are named by the draft's target: $(ls .cliqfs/outbox)"
expect_errno "Device or resource busy" "rmdir '$MNT/$D'"
assert_eq "$(nthreads)" "$n0" "nothing at Cliq yet"
ok "main and appends of a new thread wait in the journal"

wait_until 150 created || fail "the thread was not created after the lock"
wait_until 30 two_replies || fail "replies: $(replies)"
th=$(thread)
parent=$(emu_state '.channels[] | select(.unique_name=="design") | .messages[] | select(.text == "The plan, queued")')
assert_eq "$(echo "$th" | jq -r .thread_message_id)" "$(echo "$parent" | jq -r .id)" "the thread grows from main"
assert_eq "$(replies)" "$(printf 'First queued reply\nSecond queued reply')" "replies in order, once each"
wait_until 10 yields open 'cat "$D/state"' || fail "state after creation: $(cat "$D/state")"
assert_eq "$(ls design | grep -c '^Queued plan')" 1 "listed once, under the draft's name"
wait_until 10 grep -q "Second queued reply" "$D/messages" || fail "messages: $(cat "$D/messages")"
echo "Third reply" >>"$D/messages" || fail "a later append"
wait_until 10 yields "Third reply" 'replies | tail -n 1' || fail "third reply: $(replies)"
assert_eq "$(ls .cliqfs/outbox | wc -l)" 0 "the outbox is empty"
ok "after the lock: thread from main with the directory's name, replies in order"
