#!/usr/bin/env bash
# Issue 5: unmount and remount within a window -- the remounted daemon stays
# within the budget (the window is remembered on disk), and re-reading what
# was read before costs 0 requests within its freshness; with the emulator
# stopped, a remount still lists and reads what was cached.
. "$(dirname "$0")/lib.sh"

# Thread directories (channel/title) of the joined channels whose directory
# is their title: unique in the channel, no "/".
thread_paths() {
  emu_state '.channels[] | select(.joined) | .unique_name as $c | .threads as $all
             | .threads[] | .title as $t
             | select(($t | contains("/") | not) and ([$all[] | select(.title == $t)] | length) == 1)
             | "\($c)/\($t)"'
}

# ---- the window survives a remount ---------------------------------------------
SCALE=5                       # windows of 12 s; messages fresh for 2 s
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mapfile -t THREADS < <(thread_paths)
[ "${#THREADS[@]}" -ge 30 ] || fail "the demo has only ${#THREADS[@]} usable threads"
LIMIT=$(gv_counters | jq -r '.windows["chats.messages"].limit')
BUDGET=$LIMIT                 # the governor spends the whole budget

mt_mount time_scale=$SCALE
cd "$MNT"
for t in "${THREADS[@]:0:BUDGET}"; do
  cat "$t/messages" >/dev/null || fail "first mount: cat \"$t/messages\""
done
cd /
mt_unmount || fail "unmount"
mt_mount time_scale=$SCALE
used=$(jq -r '.apis["chats.messages"].used' "$MNT/.cliqfs/status")
[ "$used" -ge "$BUDGET" ] ||
  fail "the remounted daemon counts $used messages requests in the window, the first mount sent $BUDGET"
cd "$MNT"
for t in "${THREADS[@]:BUDGET:BUDGET}"; do
  cat "$t/messages" >/dev/null 2>>"$MT_DIR/remount.err" ||
    fail "remounted: cat \"$t/messages\": $(tail -n 1 "$MT_DIR/remount.err")"
done
# Background refreshes of what was just read may come on top.
n=$(gv_count chats.messages)
[ "$n" -ge $((2 * BUDGET)) ] || fail "both mounts sent $n messages requests for $((2 * BUDGET)) cold reads"
gv_assert_within_budget "remount within a window"
ok "remount within a window: the daemon knew of $used requests and stayed within the budget"

# ---- warm remount, then offline ---------------------------------------------------
cd /
mt_unmount || fail "unmount"
rm -rf "$XDG_STATE_HOME/cliqfs" "$XDG_CACHE_HOME/cliqfs"
emu_start --demo || fail "emulator did not start"   # time_scale 1: fresh for 10 s and more
mt_mount
cd "$MNT"
T=${THREADS[0]}
C=${T%%/*}
FILES=("$T/messages" "$T/messages.jsonl" "$T/main" "$T/info" "$T/members" "$T/followers"
  "$T/nonfollowers" "$T/state" "$T/title" "$C/messages" "$C/info")
ls -lR . >/dev/null || fail "ls -lR"
i=0
for f in "${FILES[@]}"; do
  cat "$f" >"$MT_DIR/read.$i" || fail "cat \"$f\""
  [ -s "$MT_DIR/read.$i" ] || fail "\"$f\" read empty"
  i=$((i + 1))
done
ls -lR . >"$MT_DIR/ls.1" || fail "ls -lR"
cd /
mt_unmount || fail "unmount"

gv_reset
mt_mount
cd "$MNT"
i=0
for f in "${FILES[@]}"; do
  cat "$f" >"$MT_DIR/again.$i" || fail "remounted: cat \"$f\""
  cmp -s "$MT_DIR/read.$i" "$MT_DIR/again.$i" || fail "\"$f\" differs after the remount"
  i=$((i + 1))
done
ls -lR . >"$MT_DIR/ls.2" || fail "remounted: ls -lR"
cmp -s "$MT_DIR/ls.1" "$MT_DIR/ls.2" ||
  fail "ls -lR differs after the remount: $(diff "$MT_DIR/ls.1" "$MT_DIR/ls.2" | head -n 10)"
n=$(emu_total)
[ "$n" = 0 ] || { gv_summary >&2; fail "re-reading after a remount within the freshness cost $n requests"; }
ok "remount: ${#FILES[@]} files and ls -lR read again with 0 requests, same bytes"
cd /
mt_unmount || fail "unmount"

emu_stop
mt_mount
cd "$MNT"
ls -lR . >"$MT_DIR/ls.3" 2>"$MT_DIR/ls.3.err" || fail "offline ls -lR: $(head -n 3 "$MT_DIR/ls.3.err")"
cmp -s "$MT_DIR/ls.1" "$MT_DIR/ls.3" ||
  fail "offline ls -lR differs: $(diff "$MT_DIR/ls.1" "$MT_DIR/ls.3" | head -n 10)"
i=0
for f in "${FILES[@]}"; do
  cat "$f" >"$MT_DIR/offline.$i" 2>"$MT_DIR/offline.err" ||
    fail "offline: cat \"$f\": $(cat "$MT_DIR/offline.err")"
  cmp -s "$MT_DIR/read.$i" "$MT_DIR/offline.$i" || fail "offline: \"$f\" differs"
  i=$((i + 1))
done
ok "emulator stopped: a remount lists everything cached and reads ${#FILES[@]} files, same bytes"
U=${THREADS[1]}
if timeout 60 cat "$U/main" >/dev/null 2>"$MT_DIR/uncached.err"; then
  fail "offline: an uncached read succeeded"
fi
grep -qE "Input/output error|Resource temporarily unavailable" "$MT_DIR/uncached.err" ||
  fail "offline: the uncached read failed with [$(cat "$MT_DIR/uncached.err")], expected EIO or EAGAIN"
ok "emulator stopped: an uncached read fails ($(sed 's/.*: //' "$MT_DIR/uncached.err"))"
