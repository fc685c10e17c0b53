#!/usr/bin/env bash
# Two mounts of one account share their state and cache folders (as two
# mounts by one user do).  Run after run, from a cold cache, mount A greps
# every thread's messages while mount B cats every thread's messages: no read
# may come back empty or short (a cache record of the other mount taken as
# "fresh, nothing to fetch" before its messages were there served an empty
# log).  RUNS rounds (default 100).
. "$MOUNT_LIB"

RUNS=${RUNS:-100}
MNT_B=$MT_DIR/mnt-b
B_PID=
mkdir -p "$MNT_B"

b_unmount() {
  if mountpoint -q "$MNT_B" 2>/dev/null; then fusermount3 -u "$MNT_B" 2>/dev/null; fi
  if [ -n "$B_PID" ]; then
    local i
    for i in $(seq 100); do kill -0 "$B_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$B_PID" 2>/dev/null
    wait "$B_PID" 2>/dev/null
    B_PID=
  fi
  mountpoint -q "$MNT_B" 2>/dev/null && fusermount3 -uz "$MNT_B" 2>/dev/null
  return 0
}
trap 'rc=$?; b_unmount; (exit $rc); mt_cleanup' EXIT

# The emulator's windows are a millisecond: it never throttles here.  The
# mounts keep real freshness (a record stays fresh for 10 s) and a budget
# that is never the limit.
emu_start --demo --time-scale 60000 || fail "emulator did not start"
OPTS="limit.chats.messages=100000/60,limit.threads.list=100000/60,limit.channels.list=100000/60"
OPTS="$OPTS,limit.threads.get=100000/60,limit.chats.members=100000/60"
OPTS="$OPTS,limit.threads.followers.get=100000/60,limit.threads.nonfollowers=100000/60"
OPTS="$OPTS,limit.threads.main=100000/60"

mapfile -t THREADS < <(emu_state '.channels[] | select(.joined) | .unique_name as $c | .threads as $all
             | .threads[] | select((.messages | length) > 0) | .title as $t
             | select(($t | contains("/") | not) and ([$all[] | select(.title == $t)] | length) == 1)
             | "\($c)/\($t)"')
[ "${#THREADS[@]}" -ge 10 ] || fail "the demo has only ${#THREADS[@]} usable threads"

b_mount() {
  "$CLIQFS" -f -o "api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN,$OPTS" \
    "$MNT_B" 2>>"$MT_DIR/cliqfs-b.log" &
  B_PID=$!
  wait_until 10 mountpoint -q "$MNT_B" || fail "mount B did not come"
}

empty=0 short=0 reads=0
t0=$SECONDS
for run in $(seq 1 "$RUNS"); do
  rm -rf "$XDG_CACHE_HOME/cliqfs"
  mt_mount "$OPTS"
  b_mount
  # A greps every thread's messages, in the order opposite to B's.
  ( cd "$MNT" && for ((i = ${#THREADS[@]} - 1; i >= 0; i--)); do
      c=$(grep -c . "${THREADS[i]}/messages" 2>>"$MT_DIR/grep.err")
      printf '%s:%s:%s\n' "${THREADS[i]}/messages" "$?" "$c"
    done >"$MT_DIR/grep" ) &
  gpid=$!
  for t in "${THREADS[@]}"; do
    n=$(wc -l <"$MNT_B/$t/messages" 2>>"$MT_DIR/wc.err")
    reads=$((reads + 1))
    if [ "$n" -eq 0 ]; then
      empty=$((empty + 1))
      echo "run $run: B read $t/messages empty" >&2
    fi
  done
  wait "$gpid"
  for t in "${THREADS[@]}"; do
    n=$(grep -F "$t/messages:" "$MT_DIR/grep" | awk -F: '{print $NF}')
    reads=$((reads + 1))
    if [ "${n:-0}" -eq 0 ]; then
      short=$((short + 1))
      echo "run $run: A's grep found nothing in $t/messages ($(grep -F "$t/messages:" "$MT_DIR/grep"))" >&2
    fi
  done
  cd /
  mt_unmount || fail "run $run: unmount A"
  b_unmount
done
if [ "$empty" -ne 0 ] || [ "$short" -ne 0 ]; then
  echo "---- errors of the readers ----" >&2
  cat "$MT_DIR/grep.err" "$MT_DIR/wc.err" >&2 2>/dev/null
  echo "---- mount A's log (last 40 lines) ----" >&2
  tail -n 40 "$MT_DIR/cliqfs.log" >&2 2>/dev/null
  echo "---- mount B's log (last 40 lines) ----" >&2
  tail -n 40 "$MT_DIR/cliqfs-b.log" >&2
fi
echo "two mounts, $RUNS runs, $reads reads of messages in $((SECONDS - t0)) s: $empty empty at B, $short empty at A"
[ "$empty" -eq 0 ] && [ "$short" -eq 0 ] || fail "empty reads with two mounts sharing a cache: $empty at B, $short at A"
ok "two mounts sharing state and cache: no empty read in $reads reads over $RUNS cold runs"
