#!/usr/bin/env bash
# -o history=400 on a thread of 450 messages: exactly the newest 400, in four
# pages of 100 (each page ends just before the oldest message of the last one,
# so no page repeats a message).
. "$(dirname "$0")/lib.sh"

emu_start --synthetic 1x1x450 --seed 11 || fail "emulator did not start"
mt_mount history=400
cd "$MNT"
ch=$(ls | head -n 1)
T="$ch/$(ls "$ch" | grep -v -x -e info -e messages | head -n 1)"
tid=$(jq -r .chat_id "$T/info")
total=$(emu_state ".channels[].threads[] | select(.chat_id==\"$tid\") | .messages | length")
assert_eq "$total" 450 "test setup: messages in the thread"
count() { emu_ctl GET /_emulator/counters | jq -r ".apis[\"$1\"].total // 0"; }
emu_ctl POST /_emulator/counters/reset >/dev/null

assert_eq "$(grep -vc $'^\t' "$T/messages")" 400 "messages rendered with history=400"
assert_eq "$(jq -s length "$T/messages.jsonl")" 400 "history=400 messages"
assert_eq "$(jq -r .id "$T/messages.jsonl" | tr '\n' ' ')" \
  "$(emu_state ".channels[].threads[] | select(.chat_id==\"$tid\") | .messages[-400:][].id" | tr '\n' ' ')" \
  "the most recent 400, in order"
assert_eq "$(count chats.messages)" 4 "chats.messages requests for 400 messages"
ok "history=400 takes the last 400 of 450 messages in 4 requests"
