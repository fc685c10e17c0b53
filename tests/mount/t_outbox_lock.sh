#!/usr/bin/env bash
# Issue 6: 100 appends to one thread while Cliq has locked messages.post.
# Each close returns at once (journaled), .cliqfs/outbox shows them, and once
# the lock ends all 100 arrive exactly once, in order.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
T="general/Q1 planning"
M="$T/messages"
cat "$M" >/dev/null
tid=$(thread_jq general "Q1 planning" .chat_id)
arrived() { thread_jq general "Q1 planning" '[.messages[].text // "" | select(startswith("locked append "))] | length'; }
all_arrived() { [ "$(arrived)" = 100 ]; }
now_s() { date +%s.%N; }

emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
lock_s=$(emu_ctl GET /_emulator/counters | jq '.windows["messages.post"].lock_ms / 1000')
t0=$(now_s)
for i in $(seq 1 100); do
  echo "locked append $i" >>"$M" || fail "append $i: close failed"
done
t1=$(now_s)
loop_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
# "at once": the whole loop takes a fraction of the lock, which is still on
awk -v l="$loop_s" -v k="$lock_s" 'BEGIN { exit !(l < k / 2) }' ||
  fail "100 appends took ${loop_s}s, the lock is ${lock_s}s: closes waited for the lock"
assert_eq "$(emu_ctl GET /_emulator/counters | jq '.windows["messages.post"].locked')" true "the lock is still on"
assert_eq "$(arrived)" 0 "nothing arrived during the lock"
ok "100 closes returned in ${loop_s}s of a ${lock_s}s lock"

assert_eq "$(ls .cliqfs/outbox | wc -l)" 100 ".cliqfs/outbox lists every entry"
first=$(ls .cliqfs/outbox | head -n 1)
last=$(ls .cliqfs/outbox | tail -n 1)
case "$first" in *"-$tid") ;; *) fail "entry name [$first] does not end with the thread's chat id" ;; esac
assert_eq "$(cat ".cliqfs/outbox/$first")" "locked append 1" "the oldest entry holds the first text"
assert_eq "$(cat ".cliqfs/outbox/$last")" "locked append 100" "the newest entry holds the last text"
assert_eq "$(stat -c %s ".cliqfs/outbox/$first")" 16 "entry size is its text and a newline"
assert_eq "$(jq .outbox.depth .cliqfs/status)" 100 "status shows the outbox depth"
expect_errno "Operation not permitted" "rm -f '$MNT/.cliqfs/outbox/$first'"
expect_errno "Permission denied" "echo x >>'$MNT/.cliqfs/outbox/$first'"
ok ".cliqfs/outbox: one read-only file per entry, named by id and target; status depth"

wait_until 150 all_arrived || fail "only $(arrived) of 100 arrived after the lock"
texts=$(thread_jq general "Q1 planning" '.messages[].text // "" | select(startswith("locked append "))')
assert_eq "$texts" "$(seq 1 100 | sed 's/^/locked append /')" "all 100 exactly once, in order"
wait_until 10 yields 0 'ls .cliqfs/outbox | wc -l' || fail "the outbox did not empty"
assert_eq "$(jq .outbox.depth .cliqfs/status)" 0 "status depth after delivery"
assert_eq "$(jq .outbox.failed .cliqfs/status)" 0 "nothing failed"
ok "after the lock: 100 arrived exactly once, in order; the outbox is empty"

# the log shows each once (appended from the answers, then refreshed)
wait_until 10 yields 100 "grep -c 'locked append ' \"\$M\"" ||
  fail "messages shows $(grep -c 'locked append ' "$M") of 100"
sleep 0.5                        # more than one freshness window (10 s / $TS)
cat "$M" >/dev/null
assert_eq "$(grep -c 'locked append ' "$M")" 100 "each once after a refresh"
assert_eq "$(grep -c ': locked append 100$' "$M")" 1 "the last once"
ok "messages shows every delivered message once"
