#!/usr/bin/env bash
# -o history=N: a log starts with the most recent N messages (pages of 100
# going back when N > 100), then only grows.
. "$(dirname "$0")/lib.sh"

emu_start --synthetic 1x2x260 --seed 7 || fail "emulator did not start"
mt_mount history=150
cd "$MNT"
ch=$(ls | head -n 1)
T="$ch/$(ls "$ch" | grep -v -x -e info -e messages | head -n 1)"
tid=$(jq -r .chat_id "$T/info")
total=$(emu_state ".channels[].threads[] | select(.chat_id==\"$tid\") | .messages | length")
[ "$total" -gt 200 ] || fail "test setup: $total messages"
assert_eq "$(jq -s length "$T/messages.jsonl")" 150 "history=150 messages"
assert_eq "$(jq -r .id "$T/messages.jsonl" | tr '\n' ' ')" \
  "$(emu_state ".channels[].threads[] | select(.chat_id==\"$tid\") | .messages[-150:][].id" | tr '\n' ' ')" \
  "the most recent 150, in order"
assert_eq "$(grep -vc $'^\t' "$T/messages")" 150 "150 messages rendered"
ok "history=150 takes the last 150 of $total messages (two pages)"

# then it only grows: a new message is appended, nothing before it changes
cp "$T/messages" "$MT_DIR/before"
emu_ctl POST /_emulator/post "{\"chat_id\":\"$tid\",\"sender_id\":\"$(emu_state .me)\",\"text\":\"newest\"}" >/dev/null
sleep 11                      # the log's freshness window (10 s, unscaled)
cat "$T/messages" >"$MT_DIR/after"
assert_eq "$(head -c "$(stat -c %s "$MT_DIR/before")" "$MT_DIR/after" | cmp - "$MT_DIR/before" && echo same)" same \
  "earlier bytes unchanged"
tail -n 1 "$MT_DIR/after" | grep -q ": newest$" || fail "the new message is not appended: $(tail -n 1 "$MT_DIR/after")"
assert_eq "$(jq -s length "$T/messages.jsonl")" 151 "one more message, nothing dropped"
ok "the log grows at its end"
