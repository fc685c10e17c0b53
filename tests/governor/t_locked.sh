#!/usr/bin/env bash
# Issue 5: with an API locked at the emulator, cached files still read (also
# once they are stale), .cliqfs/status shows locked_until, nothing more is
# sent to that API, and reads with nothing cached fail with EAGAIN; with the
# budget spent, an uncached read fails with EAGAIN once max_wait cannot be
# met.  Both throttle styles (429, and 400 request_limit_exceeded).
. "$(dirname "$0")/lib.sh"

SCALE=10                      # windows of 6 s; messages fresh 1 s (4 s stretched)
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE,max_wait=1
cd "$MNT"
mapfile -t THREADS < <(emu_state '.channels[] | select(.joined) | .unique_name as $c | .threads as $all
             | .threads[] | .title as $t
             | select(($t | contains("/") | not) and ([$all[] | select(.title == $t)] | length) == 1)
             | "\($c)/\($t)"')
[ "${#THREADS[@]}" -ge 24 ] || fail "the demo has only ${#THREADS[@]} usable threads"
A=${THREADS[0]} B=${THREADS[1]} C=${THREADS[2]}

status_locked_until() {
  jq -r --arg a "$1" '.apis[$a].locked_until' "$MNT/.cliqfs/status"
}
# status_shows_lock API: locked_until lies in the future.
status_shows_lock() {
  local until
  until=$(status_locked_until "$1")
  awk -v u="$until" -v n="$(gv_now)" 'BEGIN { exit !(u > n) }'
}

# ---- chats.messages locked (429) -----------------------------------------------
cat "$A/messages" >"$MT_DIR/A.1" || fail "cat \"$A/messages\""
[ -s "$MT_DIR/A.1" ] || fail "\"$A/messages\" is empty"
read_at=$(gv_now)
status_shows_lock chats.messages && fail "locked before the emulator locked anything"
emu_ctl POST /_emulator/lock '{"api":"chats.messages","seconds":600}' >/dev/null || fail "lock"

# The daemon learns of the lock from the answer to its next request.
expect_errno "Resource temporarily unavailable" cat "\"$B/messages\""
status_shows_lock chats.messages ||
  fail ".cliqfs/status shows no lock for chats.messages: $(jq -c '.apis["chats.messages"]' "$MNT/.cliqfs/status")"
sent=$(gv_count chats.messages)
ok "an uncached read of a locked API fails with EAGAIN; status shows locked_until $(status_locked_until chats.messages)"

# Past the freshness of A (even stretched 4x), A still reads, from the cache.
stale() { awk -v r="$read_at" -v n="$(gv_now)" -v k=$SCALE 'BEGIN { exit !(n - r > 4.5 * 10 / k) }'; }
wait_until 10 stale
cat "$A/messages" >"$MT_DIR/A.2" 2>"$MT_DIR/A.err" || fail "stale cached read while locked: $(cat "$MT_DIR/A.err")"
cmp -s "$MT_DIR/A.1" "$MT_DIR/A.2" || fail "the cached read while locked differs"
expect_errno "Resource temporarily unavailable" cat "\"$C/messages\""
assert_eq "$(gv_count chats.messages)" "$sent" "messages requests sent to the locked API after the lock was known"
ok "locked: a stale cached file still reads, another uncached read fails with EAGAIN, nothing more is sent"

# ---- threads.get locked, the 400 style ------------------------------------------
cat "$A/info" >"$MT_DIR/info.1" || fail "cat \"$A/info\""
emu_ctl POST /_emulator/config '{"throttle_style":"400"}' >/dev/null || fail "config"
emu_ctl POST /_emulator/lock '{"api":"threads.get","seconds":600}' >/dev/null || fail "lock"
expect_errno "Resource temporarily unavailable" cat "\"$B/info\""
status_shows_lock threads.get ||
  fail ".cliqfs/status shows no lock for threads.get after a 400 request_limit_exceeded"
sent=$(gv_count threads.get)
cat "$A/info" >"$MT_DIR/info.2" || fail "cached info while threads.get is locked"
cmp -s "$MT_DIR/info.1" "$MT_DIR/info.2" || fail "cached info differs"
expect_errno "Resource temporarily unavailable" cat "\"$C/info\""
assert_eq "$(gv_count threads.get)" "$sent" "threads.get requests after the lock was known"
ok "400 request_limit_exceeded: cached info reads, uncached fails with EAGAIN, status shows the lock"

# ---- budget spent (no lock): EAGAIN after max_wait --------------------------------
gv_reset
LIMIT=$(gv_counters | jq -r '.windows["threads.main"].limit')
for t in "${THREADS[@]:3:LIMIT}"; do
  cat "$t/main" >/dev/null || fail "cat \"$t/main\" within the budget"
done
expect_errno "Resource temporarily unavailable" cat "\"${THREADS[$((LIMIT + 3))]}/main\""
status_shows_lock threads.main && fail "threads.main locked: the budget was exceeded"
assert_eq "$(gv_count threads.main)" "$LIMIT" "threads.main requests"
gv_assert_within_budget "budget spent"
ok "budget spent: the next uncached read fails with EAGAIN (max_wait 1 s), nothing throttled"
