#!/usr/bin/env bash
# tail -f shows what another person posts within the freshness window plus
# 2 s; getattr is answered from the cache, and ten readers cost what one does.
. "$(dirname "$0")/lib.sh"

SCALE=10                      # messages freshness 10 s / 10 = 1 s
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE
cd "$MNT"
T="marketing/Social calendar December"
tid=$(thread_jq marketing "Social calendar December" .chat_id)
priya=$(emu_state '.users[] | select(.email_id=="priya.raman@zylker.com") | .user_id')

mt_bg tail -n 0 -f "$T/messages" >"$MT_DIR/tail.out"
sleep 0.5                     # tail has opened and read to the end
post() {
  emu_ctl POST /_emulator/post "{\"chat_id\":\"$tid\",\"sender_id\":\"$priya\",\"text\":\"$1\"}" >/dev/null
}
post "ping one"
wait_until 3 grep -q "Priya Raman: ping one$" "$MT_DIR/tail.out" ||
  fail "tail -f did not show the message within 1 s + 2 s: $(cat "$MT_DIR/tail.out")"
post "ping two"
wait_until 3 grep -q "Priya Raman: ping two$" "$MT_DIR/tail.out" ||
  fail "second message not shown"
assert_eq "$(grep -c "Priya Raman: ping" "$MT_DIR/tail.out")" 2 "each message shown once"
ok "tail -f shows messages posted by someone else within the window + 2 s"

# messages.jsonl grows with it
wait_until 3 grep -q '"ping two"' "$T/messages.jsonl" || fail "messages.jsonl did not grow"
assert_eq "$(tail -n 1 "$T/messages.jsonl" | jq -r .content.text)" "ping two" "jsonl last message"
ok "messages.jsonl grows too"

# ten readers on one file: at most one messages request per freshness window
for i in $(seq 9); do
  mt_bg tail -n 0 -f "$T/messages" >/dev/null
done
sleep 0.5
emu_ctl POST /_emulator/counters/reset >/dev/null
sleep 3                        # three windows of 1 s
n=$(emu_count chats.messages)
[ "$n" -le 4 ] || fail "ten tails cost $n messages requests in 3 windows"
[ "$n" -ge 1 ] || fail "no refresh at all while followed"
ok "ten tail -f: $n messages requests in 3 freshness windows"
