#!/usr/bin/env bash
# Background sync (sync=all):
#  1. at the budget's pace (time_scale 20 on both sides) it syncs the demo
#     organization with no throttled answer and no window over its limit,
#     while a user's cold reads go first (no read waits for a slot);
#     .cliqfs/status tells its progress;
#  2. once synced, one new message in one thread re-fetches that thread's log
#     (and the channel's own chat at most), not the others; a warm remount
#     syncs again without any message request;
#  3. at real cache lifetimes (budgets lifted), grep -r over the whole
#     organization after sync sends no request;
#  4. with the emulator gone, a remount serves what was synced (grep -r gives
#     the same lines).
. "$(dirname "$0")/lib.sh"

synced() {
  jq -e '.sync.last_full_pass != null' "$MNT/.cliqfs/status" >/dev/null 2>&1
}

# ---- 1. at the budget's pace --------------------------------------------------
SCALE=20
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
THREADS=$(emu_state '[.channels[] | select(.joined) | .threads | length] | add')
mt_mount "time_scale=$SCALE,sync=all"
jq -e '.sync.mode == "all"' "$MNT/.cliqfs/status" >/dev/null || fail "status: sync mode is not all"
# The syncer runs at nice 10 (not at nice 19 nor SCHED_IDLE, which would
# hold a lock it has while busier threads run), SCHED_OTHER; every other
# thread of the daemon at nice 0.  /proc/PID/task/TID/stat: field 19 the
# nice value, field 41 the policy (0 other, 5 idle), counted after the last
# ')' (the name may hold spaces).
thread_prio() {  # thread_prio: "NICE POLICY" per thread of the daemon
  local t
  for t in /proc/"$CLIQFS_PID"/task/*/stat; do
    sed 's/.*) //' "$t" | awk '{ print $17, $39 }'
  done
}
syncer_nice() { [ "$(thread_prio | grep -c '^10 0$')" -eq 1 ]; }
wait_until 10 syncer_nice || fail "no thread of the daemon at nice 10: $(thread_prio | sort | uniq -c | tr '\n' ' ')"
others=$(thread_prio | grep -vc '^0 0$')
[ "$others" -eq 1 ] || fail "$others threads not at nice 0, SCHED_OTHER: $(thread_prio | sort | uniq -c | tr '\n' ' ')"
ok "the syncer runs at nice 10, SCHED_OTHER; the daemon's other threads at nice 0"
# A user's cold reads while sync runs: served, and never waiting for a slot.
mapfile -t T < <(cd "$MNT" && ls -d */*/ | tail -n 3)
[ "${#T[@]}" -eq 3 ] || fail "no threads to read"
for t in "${T[@]}"; do
  cat "$MNT/$t/main" "$MNT/$t/members" "$MNT/$t/messages" >/dev/null ||
    fail "cold read of $t during sync"
done
wait_until 120 synced || fail "not synced after 120 s: $(jq -c .sync "$MNT/.cliqfs/status")"
st=$(jq -c .sync "$MNT/.cliqfs/status")
assert_eq "$(jq -r .threads <<<"$st")" "$THREADS" "threads known to sync"
assert_eq "$(jq -r .threads_synced <<<"$st")" "$THREADS" "threads synced"
assert_eq "$(jq -r .eta_s <<<"$st")" 0 "estimated time left once synced"
[ "$(jq -r .requests <<<"$st")" -gt "$THREADS" ] || fail "sync sent only $(jq -r .requests <<<"$st") requests"
grep -q "waiting for" "$MT_LOG" && fail "a user's request waited for a slot: $(grep "waiting for" "$MT_LOG" | head -n 1)"
gv_assert_within_budget "sync of the demo organization"
line=$("$CLIQFS" status "$MNT" | grep '^  sync') || fail "cliqfs status has no sync line"
[[ $line == "  sync (all): $THREADS of $THREADS threads, "*"; in sync (grep -r costs nothing)"* ]] ||
  fail "cliqfs status: [$line]"
ok "synced $THREADS threads at the budget's pace: no throttle, no read waited ($st)"

# ---- 2. one list entry moves: one thread is fetched again -----------------------
TID=$(emu_state '[.channels[] | select(.joined) | .threads[]][0].chat_id')
SENDER=$(emu_state '[.users[]][1].user_id')
msgs0=$(jq -r .sync.messages "$MNT/.cliqfs/status")
gv_reset
emu_ctl POST /_emulator/post "{\"chat_id\":\"$TID\",\"sender_id\":\"$SENDER\",\"text\":\"sync sees this\"}" >/dev/null ||
  fail "post as another person"
one_more() { [ "$(jq -r .sync.messages "$MNT/.cliqfs/status")" -gt "$msgs0" ]; }
wait_until 60 one_more || fail "the new message was not synced: $(jq -c .sync "$MNT/.cliqfs/status")"
n=$(gv_count chats.messages)
[ "$n" -ge 1 ] && [ "$n" -le 2 ] ||
  fail "$n message requests after one new message in one thread (expected that thread, and its channel's chat at most)"
ok "one new message: $n message request(s), not one per thread"
cd /
mt_unmount || fail "unmount"

# ---- warm remount: no message request for threads whose entry did not move -------
# The cached thread lists go stale first (60 s / SCALE), so that the remount
# asks for every list again and checks each log against it.
nap $((60 / SCALE + 1))
gv_reset
mt_mount "time_scale=$SCALE,sync=all"
wait_until 120 synced || fail "not synced again after a remount: $(jq -c .sync "$MNT/.cliqfs/status")"
assert_eq "$(gv_count chats.messages)" 0 "message requests of a warm remount's sync"
lists=$(gv_count threads.list)
[ "$lists" -ge 5 ] || fail "the remount asked for $lists thread lists, not every channel's"
ok "warm remount: synced again with $lists thread lists and no message request"
mt_unmount || fail "unmount"
emu_stop

# ---- 3. grep -r after sync: no request ----------------------------------------------
rm -rf "$XDG_STATE_HOME/cliqfs" "$XDG_CACHE_HOME/cliqfs"
# The emulator's windows shrunk to nothing, cliqfs at its real cache
# lifetimes with budgets it cannot reach: what is measured is what grep asks.
emu_start --demo --time-scale 100000 || fail "emulator did not start"
NOLIMITS="limit.channels.list=100000/60,limit.threads.list=100000/60,limit.chats.messages=100000/60"
NOLIMITS+=",limit.threads.get=100000/60,limit.threads.main=100000/60,limit.chats.members=100000/60"
NOLIMITS+=",limit.threads.followers.get=100000/60,limit.threads.nonfollowers=100000/60"
mt_mount "sync=all,$NOLIMITS"
wait_until 60 synced || fail "not synced after 60 s: $(jq -c .sync "$MNT/.cliqfs/status")"
gv_reset
grep -r -e "the" "$MNT" --exclude-dir=.cliqfs | sort >"$MT_DIR/grep.synced" ||
  fail "grep -r over the synced tree"
assert_eq "$(emu_total)" 0 "requests for grep -r after sync"
lines=$(wc -l <"$MT_DIR/grep.synced")
[ "$lines" -gt 100 ] || fail "grep -r found only $lines lines"
ok "grep -r over the synced organization: $lines lines, 0 requests"

# ---- 4. offline remount ----------------------------------------------------------------
mt_unmount || fail "unmount"
emu_stop
mt_mount "sync=all,$NOLIMITS"
grep -r -e "the" "$MNT" --exclude-dir=.cliqfs | sort >"$MT_DIR/grep.offline" ||
  fail "grep -r over the remounted tree with Cliq unreachable"
cmp -s "$MT_DIR/grep.synced" "$MT_DIR/grep.offline" ||
  fail "offline grep -r differs: $(diff "$MT_DIR/grep.synced" "$MT_DIR/grep.offline" | head -n 3)"
ok "Cliq unreachable: a remount serves every synced file ($lines lines the same)"
