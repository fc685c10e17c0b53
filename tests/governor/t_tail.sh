#!/usr/bin/env bash
# Issue 5: one tail -f, or ten on the same file, costs at most one messages
# request per freshness window -- and still shows what others post.
. "$(dirname "$0")/lib.sh"

SCALE=10                      # messages stay fresh 10 s / 10 = 1 s
FRESH=$(awk -v k=$SCALE 'BEGIN { printf "%.3f", 10 / k }')
PERIOD=5                      # seconds measured, about 5 freshness windows
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE
cd "$MNT"
T="marketing/Social calendar December"
tid=$(thread_jq marketing "Social calendar December" .chat_id)
priya=$(emu_state '.users[] | select(.email_id=="priya.raman@zylker.com") | .user_id')
post() {
  emu_ctl POST /_emulator/post "{\"chat_id\":\"$tid\",\"sender_id\":\"$priya\",\"text\":\"$1\"}" >/dev/null ||
    fail "post at the emulator"
}
fetched_once() { [ "$(gv_count chats.messages)" -ge 1 ]; }
shows() { [ "$(grep -c "Priya Raman: $2\$" "$1")" = 1 ]; }

# measure READERS: counts chats.messages requests over PERIOD seconds while
# READERS tails follow the file and a message is posted at its start;
# checks the bound and that every tail shows the message exactly once.
measure() {
  local readers=$1 text="ping for $1" start n e bound i
  gv_reset
  start=$(gv_now)
  post "$text"
  for i in $(seq 1 "$readers"); do
    wait_until $((PERIOD + 3)) shows "$MT_DIR/tail.$i" "$text" ||
      fail "tail $i of $readers did not show \"$text\": $(tail -n 3 "$MT_DIR/tail.$i")"
  done
  while awk -v s="$start" -v p="$PERIOD" -v n="$(gv_now)" 'BEGIN { exit !(n - s < p) }'; do
    nap 0.2
  done
  n=$(gv_count chats.messages)
  e=$(gv_elapsed_since "$start")
  bound=$(awk -v e="$e" -v f="$FRESH" 'BEGIN { printf "%d", e / f + 1 }')
  [ "$n" -le "$bound" ] ||
    fail "$readers tail -f: $n messages requests in ${e}s, more than one per ${FRESH}s window ($bound)"
  [ "$n" -ge 1 ] || fail "$readers tail -f: no refresh at all in ${e}s"
  gv_assert_within_budget "$readers tail -f"
  ok "$readers tail -f: $n messages requests in ${e}s (at most $bound), the post shown by each"
}

mt_bg tail -n 0 -f "$T/messages" >"$MT_DIR/tail.1"
wait_until 5 fetched_once || fail "tail -f never read the file"
measure 1

for i in $(seq 2 10); do
  mt_bg tail -n 0 -f "$T/messages" >"$MT_DIR/tail.$i"
done
measure 10
