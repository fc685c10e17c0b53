#!/usr/bin/env bash
# New threads: mkdir makes a draft; main posts the parent message; the first
# append opens the thread with the directory's name as title; rmdir discards.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
D="design/Release plan"
nthreads() { emu_state '.channels[] | select(.unique_name=="design") | .threads | length'; }

n0=$(nthreads)
ls design >/dev/null          # the lists are cached: a draft then costs nothing
t0=$(emu_total)
mkdir "$D" || fail "mkdir"
assert_eq "$(cat "$D/state")" draft "a new directory is a draft"
assert_eq "$(cat "$D/title")" "Release plan" "draft title"
ls design | grep -qx "Release plan" || fail "draft listed"
assert_eq "$(stat -c %a "$D/main")" 644 "a draft's main is writable"
expect_errno "Destination address required" "echo too early >>'$MNT/$D/messages'"
assert_eq "$(emu_total)" "$t0" "a draft costs nothing at Cliq"
expect_errno "File exists" "mkdir '$MNT/$D'"
expect_errno "File exists" "mkdir '$MNT/design/Mobile icon set v1'"
ok "mkdir makes a local draft; append before main: EDESTADDRREQ"

echo "Let us plan the release" >"$D/main" || fail "write main"
parent=$(emu_state '.channels[] | select(.unique_name=="design") | .messages[-1]')
assert_eq "$(echo "$parent" | jq -r .text)" "Let us plan the release" "main posted to the channel"
grep -q "Let us plan the release" "$D/main" || fail "main shows the message: $(cat "$D/main")"
assert_eq "$(stat -c %a "$D/main")" 444 "main is written once"
expect_errno "Permission denied" "echo again >'$MNT/$D/main'"
assert_eq "$(nthreads)" "$n0" "no thread before the first append"
ok "main posts the parent message"

echo "First reply" >>"$D/messages" || fail "first append"
assert_eq "$(nthreads)" "$((n0 + 1))" "the first append opened a thread"
th=$(emu_state '.channels[] | select(.unique_name=="design") | .threads[-1]')
assert_eq "$(echo "$th" | jq -r .title)" "Release plan" "thread title is the directory's name"
assert_eq "$(echo "$th" | jq -r .thread_message_id)" "$(echo "$parent" | jq -r .id)" "thread grows from main"
assert_eq "$(echo "$th" | jq -r '.messages[0].text')" "First reply" "first reply"
assert_eq "$(cat "$D/state")" open "state after the thread opened"
echo "Second reply" >>"$D/messages" || fail "second append"
assert_eq "$(emu_state '.channels[] | select(.unique_name=="design") | .threads[-1].messages[-1].text')" \
  "Second reply" "later appends reply"
wait_until 5 grep -q "Second reply" "$D/messages" || fail "messages shows the replies: $(cat "$D/messages")"
assert_eq "$(ls design | grep -c '^Release plan')" 1 "the thread is listed once"
tid=$(echo "$th" | jq -r .chat_id)
assert_eq "$(cat "design/$tid/title")" "Release plan" "reachable by chat id"
expect_errno "Operation not permitted" "rmdir '$MNT/$D'"
ok "first append opens the thread with the directory's name; later appends reply"

mkdir "design/Scrap this" || fail "mkdir second draft"
# Counted on what a draft could send (its main, its thread): the refresher
# may still poll the thread written to above in the background meanwhile.
t0=$(emu_count messages.post)
rmdir "design/Scrap this" || fail "rmdir a draft"
[ -e "design/Scrap this" ] && fail "draft still there"
assert_eq "$(emu_count messages.post)" "$t0" "discarding a draft sends nothing"
expect_errno "Operation not permitted" "mkdir '$MNT/newchannel'"
expect_errno "Operation not permitted" "mkdir '$MNT/$D/sub'"
ok "rmdir discards a draft; mkdir elsewhere: EPERM"
