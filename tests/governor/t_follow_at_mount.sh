#!/usr/bin/env bash
# tail -f on ten threads a few seconds after a mount with sync on (the
# default).
# Sync's pace starts at the mount with no credit, so its first moments leave
# the messages window to the user: to the ten opens, and to the fetch of a
# message posted to a followed thread in that first window, which shows up
# long before the window slides.  (With a quarter window of credit, sync's
# first three fetches and the ten opens filled the window but for the
# reserve of reads, and the post waited for the window to slide: 60 s.)
. "$(dirname "$0")/lib.sh"

SCALE=5                        # a window (60 s) is 12 real seconds
DEADLINE_SIM=40                # the post shows within 40 simulated s
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount "time_scale=$SCALE,sync=all"
cd "$MNT"

# Ten open threads whose titles are their folder names (unique in their
# channel, printable, no '/'), one per joined channel in turn.
pick=$(emu_state "$GV_FOLLOWABLE"'
  [followable[] | to_entries[] | .value + {rank: .key}]
  | sort_by(.rank, .c) | .[0:10][] | [.c, .t, .id] | @tsv')
[ "$(printf '%s\n' "$pick" | grep -c .)" = 10 ] || fail "fewer than ten threads to follow: $pick"
chans=() titles=() ids=()
while IFS=$'\t' read -r c t id; do
  chans+=("$c") titles+=("$t") ids+=("$id")
done <<<"$pick"
sender=$(gv_other_user)
[ -n "$sender" ] || fail "no other user in the demo organization"

all_opened() {
  local i
  for i in "${!ids[@]}"; do
    [ "$(gv_chat_fetches "${ids[$i]}")" -ge 1 ] || return 1
  done
}
shows() { grep -q "$1\$" "$MT_DIR/tail.0"; }

# The user starts a few seconds after the mount, once sync has started to
# fetch messages: 5 simulated seconds after its first message request.
sync_started() { [ "$(gv_count chats.messages)" -ge 1 ]; }
wait_until 10 sync_started || fail "sync sent no messages request: $(jq -c .sync "$MNT/.cliqfs/status")"
nap "$(awk -v k=$SCALE 'BEGIN { print 5 / k }')"
for i in "${!ids[@]}"; do
  mt_bg tail -n 0 -s 0.05 -f "${chans[$i]}/${titles[$i]}/messages" >"$MT_DIR/tail.$i"
done
wait_until 10 all_opened || fail "tail -f did not open the ten files"
text="posted right after the mount"
start=$(gv_now)
emu_ctl POST /_emulator/post \
  "{\"chat_id\":\"${ids[0]}\",\"sender_id\":\"$sender\",\"text\":\"$text\"}" >/dev/null ||
  fail "post at the emulator"
wait_until "$(awk -v d=$DEADLINE_SIM -v k=$SCALE 'BEGIN { print d / k }')" shows "$text" || {
  gv_summary >&2
  fail "the post did not show within $DEADLINE_SIM simulated s of the first window: $(jq -c .sync "$MNT/.cliqfs/status")"
}
took=$(gv_elapsed_since "$start")
gv_assert_within_budget "ten tail -f right after a mount with sync on"
ok "a post in the first window showed after $(awk -v e="$took" -v k=$SCALE 'BEGIN { printf "%.1f", e * k }') simulated s; messages requests so far: $(gv_count chats.messages)"
