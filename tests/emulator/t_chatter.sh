#!/usr/bin/env bash
# --chatter SECONDS: other people post now and then (mean interval scaled by
# --time-scale); posts appear through the API; config chatter 0 stops it.
. "$(dirname "$0")/t_lib.sh"

total_messages() { emu_ctl GET '/_emulator/state?messages=0' | jq '[.channels[] | .message_count, (.threads[] | .message_count)] | add'; }

emu_start --quiet --chatter 10 --time-scale 20 || die "start"
ME=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r .me)
start_ms=$(date +%s%3N)
n0=$(total_messages)
deadline=$((SECONDS + 40))
n=$n0
while [ $SECONDS -lt $deadline ]; do
  n=$(total_messages)
  [ "$n" -ge $((n0 + 3)) ] && break
  sleep 0.3
done
check "chatter posted at least 3 messages ($n0 → $n)" test "$n" -ge $((n0 + 3))
s=$(emu_ctl GET /_emulator/state)
new=$(jq --argjson t "$start_ms" --arg me "$ME" '[.channels[] | (.messages[], .threads[].messages[]) | select(.time >= $t)]' <<<"$s")
check "the new messages are from other people" jqt --arg me "$ME" 'length >= 3 and all(.[]; .sender != $me)' <<<"$new"
check "none in closed threads" jqt --argjson t "$start_ms" '[.channels[].threads[] | select(.state == "closed") | .messages[] | select(.time >= $t)] | length == 0' <<<"$s"
check "none in channels not joined" jqt --argjson t "$start_ms" '[.channels[] | select(.joined | not) | (.messages[], .threads[].messages[]) | select(.time >= $t)] | length == 0' <<<"$s"
# …and they are visible through the Cliq API.
chat=$(jq -r --argjson t "$start_ms" '[.channels[] | (select(any(.messages[]; .time >= $t)) | .chat_id), (.threads[] | select(any(.messages[]; .time >= $t)) | .chat_id)][0]' <<<"$s")
st=$(emu_api GET "/api/v2/chats/$chat/messages?fromtime=$start_ms")
expect_jq "chatter visible through the API" --arg me "$ME" '(.data | length >= 1) and all(.data[]; .sender.id != $me)'

emu_ctl POST /_emulator/config '{"chatter":0}' >/dev/null
n1=$(total_messages)
# Use the emulator's own activity as the clock: 40 requests later, no post.
for _ in $(seq 1 20); do emu_ctl GET /_emulator/counters >/dev/null; sleep 0.1; done
check "chatter 0 stops the posts" test "$(total_messages)" -eq "$n1"
finish
