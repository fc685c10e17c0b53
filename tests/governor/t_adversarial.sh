#!/usr/bin/env bash
# Issue 5: an adversarial workload -- tail -f on 10 threads, loops of ls -lR
# and of cat over every file, 100 appends -- for 10 simulated minutes gets
# zero throttled answers, and no API ever receives more than its limit in any
# sliding window (counted at the emulator).  The workload must also have
# worked: every append arrives exactly once, the tails show the appends to
# their threads, and the cat loop read every file at least once.
. "$(dirname "$0")/lib.sh"

SCALE=40                       # 10 simulated minutes = 15 s; windows of 1.5 s
SIM_SECONDS=600
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE
cd "$MNT"

# Open threads of the joined channels whose directory is their title (unique
# in the channel, no "/"), as paths.
emu_state '.channels[] | select(.joined) | .unique_name as $c | .threads as $all
           | .threads[] | select(.state == "open") | .title as $t
           | select(($t | contains("/") | not) and ([$all[] | select(.title == $t)] | length) == 1)
           | "\($c)/\($t)"' >"$MT_DIR/open"
mapfile -t OPEN <"$MT_DIR/open"
[ "${#OPEN[@]}" -ge 10 ] || fail "the demo has only ${#OPEN[@]} open threads"
for t in "${OPEN[@]:0:10}"; do
  [ -d "$t" ] || fail "no directory for thread \"$t\" (names differ from titles?)"
done

# tail -f on 10 threads.
for i in $(seq 0 9); do
  mt_bg tail -n 0 -f "${OPEN[$i]}/messages" >"$MT_DIR/tail.$i"
done

# ls -lR in a loop.
ls_loop() {
  local n=0
  while :; do
    ls -lR . >/dev/null 2>&1
    n=$((n + 1))
    echo "$n" >"$MT_DIR/ls.count"
    nap 0.1
  done
}
# cat over every readable file in a loop; a pass counts when every cat
# succeeded (an EAGAIN would make it fail: reads must wait for budget).
cat_loop() {
  local n=0 full=0
  while :; do
    if find . -path ./.cliqfs -prune -o -type f ! -name ctl -print0 |
      xargs -0 cat >/dev/null 2>>"$MT_DIR/cat.err"; then
      full=$((full + 1))
    fi
    n=$((n + 1))
    echo "$n $full" >"$MT_DIR/cat.count"
    nap 0.1
  done
}
# 100 appends to 5 of the tailed threads, one after the other.
appender() {
  local i
  for i in $(seq 1 100); do
    echo "adversarial append $i" >>"${OPEN[$((i % 5))]}/messages" ||
      echo "append $i failed" >>"$MT_DIR/append.err"
  done
  echo done >"$MT_DIR/append.done"
}
gv_group ls_loop
gv_group cat_loop
gv_group appender

start=$(gv_now)
# The workload runs for the simulated duration.
end_at=$(awk -v s="$start" -v d="$SIM_SECONDS" -v k="$SCALE" 'BEGIN { printf "%.3f", s + d / k }')
while awk -v e="$end_at" -v n="$(gv_now)" 'BEGIN { exit !(n < e) }'; do
  sleep 0.5
done
# The appends are writes: they wait for budget however long.  They are given
# the rest of a generous deadline.
wait_until 120 test -e "$MT_DIR/append.done" || fail "the 100 appends did not finish"
gv_kill_groups                 # the tails stay until they are checked
elapsed=$(gv_elapsed_since "$start")

echo "workload ran ${elapsed}s real at time_scale $SCALE; requests at the emulator:"
gv_summary
gv_assert_within_budget "adversarial workload"
ok "adversarial workload: zero throttled answers, every API within its limit in every window"

[ ! -s "$MT_DIR/append.err" ] || fail "appends failed: $(head -n 5 "$MT_DIR/append.err")"
# Every appended message the emulator holds, as "N<TAB>channel/title" (one
# look at its state for the 100).
declare -A ARRIVED=() WHERE=()
while IFS=$'\t' read -r i t; do
  ARRIVED[$i]=$((${ARRIVED[$i]:-0} + 1))
  WHERE[$i]+="[$t]"
done < <(emu_ctl GET /_emulator/state | jq -r '.channels[] | .unique_name as $c
  | .threads[] | "\($c)/\(.title)" as $t | .messages[]
  | select((.text // "") | startswith("adversarial append "))
  | "\(.text | ltrimstr("adversarial append "))\t\($t)"')
for i in $(seq 1 100); do
  t=${OPEN[$((i % 5))]}
  [ "${ARRIVED[$i]:-0}" = 1 ] && [ "${WHERE[$i]}" = "[$t]" ] ||
    fail "append $i arrived ${ARRIVED[$i]:-0} times, in ${WHERE[$i]:-no thread}; expected once in [$t]"
done
ok "each of the 100 appends arrived exactly once"

read -r passes full <"$MT_DIR/cat.count"
[ "$full" -ge 1 ] || fail "no pass of the cat loop read every file without an error ($passes passes): $(sort -u "$MT_DIR/cat.err" | head -n 5)"
ok "cat loop: $passes passes, $full without an error; ls -lR loop: $(cat "$MT_DIR/ls.count") passes"

# Each of the first 5 tailed threads got 20 appends.
tail_shows_all() {
  [ "$(grep -c "Ryan West: adversarial append " "$MT_DIR/tail.$1")" = 20 ]
}
for i in $(seq 0 4); do
  wait_until 10 tail_shows_all "$i" ||
    fail "tail -f of \"${OPEN[$i]}\" showed $(grep -c "Ryan West: adversarial append " "$MT_DIR/tail.$i") of its 20 appends (a cat of the file now: $(grep -c "Ryan West: adversarial append " "${OPEN[$i]}/messages"))"
done
mt_kill_bg
gv_assert_within_budget "adversarial workload, then the tails alone"
ok "tail -f showed every append to its thread"
