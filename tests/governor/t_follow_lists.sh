#!/usr/bin/env bash
# tail -f on several threads of one channel is watched through the channel's
# thread list (each entry carries the thread's last message time), between
# two polls of it through each thread's parent message (messages.get counts
# the thread's messages), and with what the messages lane has spare through
# polls of the threads' messages: threads nobody posts to cost messages
# requests only within that spare (the lane's background share less two
# slots a window), every post still shows up, and nothing shows that nobody
# posted.
. "$(dirname "$0")/lib.sh"

SCALE=10                      # messages stay fresh 10 s / 10 = 1 s
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE
cd "$MNT"

# The first joined channel with three open threads whose titles are their
# folder names (unique, printable, no '/').
pick=$(emu_state "$GV_FOLLOWABLE"'
  [followable[] | select(length >= 3) | .[0:3]][0][] | [.c, .t, .id] | @tsv')
[ "$(printf '%s\n' "$pick" | grep -c .)" = 3 ] || fail "no channel with three open threads: $pick"
chans=() titles=() ids=()
while IFS=$'\t' read -r c t id; do
  chans+=("$c") titles+=("$t") ids+=("$id")
done <<<"$pick"
sender=$(gv_other_user)
[ -n "$sender" ] || fail "no other user in the demo organization"

all_opened() {
  local i
  for i in 0 1 2; do
    [ "$(gv_chat_fetches "${ids[$i]}")" -ge 1 ] || return 1
  done
}
shows() { grep -q "$2\$" "$MT_DIR/tail.$1"; }

for i in 0 1 2; do
  mt_bg tail -n 0 -s 0.1 -f "${chans[$i]}/${titles[$i]}/messages" >"$MT_DIR/tail.$i"
done
wait_until 10 all_opened || fail "tail -f did not open the three files"
before=()
for i in 0 1 2; do before+=("$(gv_chat_fetches "${ids[$i]}")"); done
gv_reset

post() {
  emu_ctl POST /_emulator/post \
    "{\"chat_id\":\"${ids[0]}\",\"sender_id\":\"$sender\",\"text\":\"$1\"}" >/dev/null ||
    fail "post at the emulator"
}
start=$(gv_now)
post "follow-lists one"
wait_until 15 shows 0 "follow-lists one" || fail "the first post did not show in tail -f"
post "follow-lists two"
wait_until 15 shows 0 "follow-lists two" || fail "the second post did not show in tail -f"
# A few more freshness windows of quiet following.
while awk -v s="$start" -v n="$(gv_now)" 'BEGIN { exit !(n - s < 5) }'; do
  nap 0.2
done
e=$(gv_elapsed_since "$start")

changed=$(($(gv_chat_fetches "${ids[0]}") - before[0]))
quiet=$(($(gv_chat_fetches "${ids[1]}") - before[1] + $(gv_chat_fetches "${ids[2]}") - before[2]))
lists=$(gv_count threads.list)
probes=$(gv_count messages.get)
# The polls' share of chats.messages a window (docs/governor.md): the budget
# less the background lane's reserve (a quarter, at least 2), less the two
# slots left to the fetches that lists and probes ask for.
limit=$(gv_counters | jq -r '.windows["chats.messages"].limit')
share=$(awk -v l="$limit" 'BEGIN { r = int((l + 3) / 4); if (r < 2) r = 2; print l - r - 2 }')
windows=$(awk -v e="$e" -v k=$SCALE 'BEGIN { printf "%d", e * k / 60 + 1 }')
[ "$quiet" -ge 1 ] ||
  fail "the two threads without posts were never polled in ${e}s of following"
[ "$quiet" -le $((share * windows)) ] ||
  fail "the two threads without posts were fetched $quiet times in ${e}s, more than the polls' share ($share a window, $windows windows)"
[ "$changed" -ge 1 ] && [ $((changed + quiet)) -le $((2 + share * windows)) ] ||
  fail "the thread with 2 posts was fetched $changed times, the quiet ones $quiet (expected at most 2 + $((share * windows)))"
[ "$lists" -ge 1 ] || fail "no thread-list poll in ${e}s of following"
[ "$probes" -ge 1 ] || fail "no probe of a parent message in ${e}s of following"
for i in 1 2; do
  [ ! -s "$MT_DIR/tail.$i" ] || fail "tail $i shows lines nobody posted: $(head -n 2 "$MT_DIR/tail.$i")"
done
gv_assert_within_budget "tail -f on three threads of ${chans[0]}"
ok "3 followed threads of ${chans[0]} for ${e}s: $lists thread-list polls, $probes probes, $changed fetches of the thread with 2 posts, $quiet polls of the other two"
