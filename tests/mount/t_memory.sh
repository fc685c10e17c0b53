#!/usr/bin/env bash
# Memory bound on message logs: after syncing an organization whose messages
# take more than the budget (100 threads of 500 messages, ~23 MB of logs),
# the messages of idle logs are in memory only up to the budget
# (.cliqfs/status "memory"); the others are on disk only, yet stat tells
# their exact size and reading them gives every message, the same bytes
# before and after they were dropped again, and after a warm remount.
. "$(dirname "$0")/lib.sh"

emu_start --synthetic 4x25x500 --time-scale 100000 || fail "emulator did not start"
NOLIMITS="limit.channels.list=100000/60,limit.threads.list=100000/60,limit.chats.messages=100000/60"
NOLIMITS+=",limit.threads.get=100000/60,limit.threads.main=100000/60,limit.chats.members=100000/60"
NOLIMITS+=",limit.threads.followers.get=100000/60,limit.threads.nonfollowers=100000/60"
mt_mount "sync=all,history=500,$NOLIMITS"
S=$MNT/.cliqfs/status
synced() { jq -e '.sync.last_full_pass != null' "$S" >/dev/null 2>&1; }
wait_until 120 synced || fail "not synced after 120 s: $(jq -c .sync "$S")"
bounded() {
  jq -e '.memory.log_bytes <= .memory.log_bytes_budget and .memory.logs_on_disk_only > 0' "$S" >/dev/null
}
wait_until 30 bounded || fail "log memory not brought within the budget: $(jq -c .memory "$S")"
ok "synced 50000 messages; logs in memory within the budget: $(jq -c .memory "$S")"

cd "$MNT"
sizes=$(stat -c %s */*/messages | awk '{ s += $1 } END { print s }')
cat */*/messages >"$MT_DIR/all.1" || fail "cat of every messages file"
assert_eq "$(wc -c <"$MT_DIR/all.1")" "$sizes" "bytes read against the sizes stat told (on-disk-only logs included)"
assert_eq "$(wc -l <"$MT_DIR/all.1")" 50000 "messages read"
wait_until 30 bounded || fail "log memory not back within the budget after reading: $(jq -c .memory "$S")"
cat */*/messages >"$MT_DIR/all.2" || fail "second cat of every messages file"
cmp -s "$MT_DIR/all.1" "$MT_DIR/all.2" || fail "messages differ after their logs were dropped and loaded again"
ok "every log read back from disk: 50000 messages, sizes as stat told, the same bytes twice"

# A warm remount: sync looks at every log through its record, loading none
# of them (the memory stays within the budget all along), and reading gives
# the same bytes.
cd /
mt_unmount || fail "unmount"
mt_mount "sync=all,history=500,$NOLIMITS"
wait_until 60 synced || fail "not synced after the remount: $(jq -c .sync "$S")"
mem=$(jq -c .memory "$S")
jq -e '.log_bytes <= .log_bytes_budget and .logs_on_disk_only >= 90' <<<"$mem" >/dev/null ||
  fail "the remount's sync loaded the logs: $mem"
cat "$MNT"/*/*/messages >"$MT_DIR/all.3" || fail "cat after the remount"
cmp -s "$MT_DIR/all.1" "$MT_DIR/all.3" || fail "messages differ after a remount"
ok "warm remount: synced with the logs left on disk ($mem), the same bytes read"
