#!/usr/bin/env bash
# Issue 5: two simultaneous mounts of one account under load together get
# zero throttled answers: they share the rate window (the ledger under the
# state folder), so that together they stay within every budget.  Both
# mounts read in loops (each its own channels, and ls -lR of everything) and
# append to the same thread; every append arrives exactly once.
. "$(dirname "$0")/lib.sh"

SCALE=40                       # windows of 1.5 s
SIM_SECONDS=600                # 10 simulated minutes of load
APPENDS=20                     # per mount
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE
gv_mount2 time_scale=$SCALE

T=$(emu_state '.channels[] | select(.unique_name == "engineering") | .threads[]
               | select(.state == "open") | .title' | grep -v / | head -n 1)
[ -n "$T" ] || fail "no open thread in engineering"
T="engineering/$T"

# read_loop MOUNT NAME CHANNEL...: cat over every readable file of the
# channels, again and again, and ls -lR of everything.
read_loop() {
  local n=0 full=0 mnt=$1 name=$2
  shift 2
  cd "$mnt" || return
  while :; do
    if find "$@" -type f ! -name ctl -print0 |
      xargs -0 cat >/dev/null 2>>"$MT_DIR/$name.err"; then
      full=$((full + 1))
    fi
    n=$((n + 1))
    # Renamed into place: the loop is killed at any moment, and a count
    # file caught between truncation and write would read as empty.
    echo "$n $full" >"$MT_DIR/$name.count.new" && mv -f "$MT_DIR/$name.count.new" "$MT_DIR/$name.count"
    ls -lR . >/dev/null 2>&1
    nap 0.1
  done
}
# appends MOUNT NAME
appends() {
  local i
  for i in $(seq 1 $APPENDS); do
    echo "$2 append $i" >>"$1/$T/messages" || echo "$2 append $i failed" >>"$MT_DIR/append.err"
  done
  echo done >"$MT_DIR/$2.appended"
}
gv_group read_loop "$MNT" one general engineering
gv_group read_loop "$MNT2" two zylker-support marketing design
gv_group appends "$MNT" one
gv_group appends "$MNT2" two

start=$(gv_now)
end_at=$(awk -v s="$start" -v d="$SIM_SECONDS" -v k="$SCALE" 'BEGIN { printf "%.3f", s + d / k }')
while awk -v e="$end_at" -v n="$(gv_now)" 'BEGIN { exit !(n < e) }'; do
  nap 0.5
done
wait_until 60 test -e "$MT_DIR/one.appended" || fail "the first mount's appends did not finish"
wait_until 60 test -e "$MT_DIR/two.appended" || fail "the second mount's appends did not finish"
gv_kill_groups
elapsed=$(gv_elapsed_since "$start")

echo "two mounts under load for ${elapsed}s real at time_scale $SCALE:"
gv_summary
gv_assert_within_budget "two mounts of one account"
ok "two mounts of one account under load: zero throttled answers, every API within its limit"

[ ! -s "$MT_DIR/append.err" ] || fail "appends failed: $(head -n 5 "$MT_DIR/append.err")"
# How many times each append arrived in the thread (one look at the state).
declare -A ARRIVED=()
while IFS= read -r text; do
  ARRIVED[$text]=$((${ARRIVED[$text]:-0} + 1))
done < <(thread_jq engineering "${T#*/}" '.messages[] | .text // empty')
for who in one two; do
  for i in $(seq 1 $APPENDS); do
    n=${ARRIVED["$who append $i"]:-0}
    [ "$n" = 1 ] || fail "\"$who append $i\" arrived $n times"
  done
done
ok "each of the $((2 * APPENDS)) appends of the two mounts arrived exactly once"

for who in one two; do
  [ -e "$MT_DIR/$who.count" ] || fail "mount $who: the read loop never finished a pass"
  read -r passes full <"$MT_DIR/$who.count"
  [ "$full" -ge 1 ] ||
    fail "mount $who: no pass of the read loop without an error ($passes passes): $(sort -u "$MT_DIR/$who.err" | head -n 3)"
done
ok "both mounts read every file: $(cut -d' ' -f2 "$MT_DIR/one.count") and $(cut -d' ' -f2 "$MT_DIR/two.count") full passes"
