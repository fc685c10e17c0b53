#!/usr/bin/env bash
# Issue 6: fsync blocks until delivery and returns the error of a message
# refused for good (and keeps returning it for that open file); fsync on a
# state file and on folders (fsyncdir) waits the same way.
. "$(dirname "$0")/lib.sh"

TS=40
emu_start --demo --time-scale $TS || fail "emulator did not start"
mt_mount time_scale=$TS
cd "$MNT"
T="general/Q1 planning"
M="$T/messages"
W="general/Welcome Lucy!"
wid=$(thread_jq general "Welcome Lucy!" .chat_id)
cat "$M" "$W/messages" >/dev/null
count_text() { thread_jq "$1" "$2" "[.messages[].text // \"\" | select(. == \"$3\")] | length"; }
field() { grep "^$1=" <<<"$2" | cut -d= -f2; }
locked() { [ "$(emu_ctl GET /_emulator/counters | jq ".windows[\"$1\"].locked")" = true ]; }

# ---- fsync waits out a lock, then the message is there ------------------------
emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
lock_s=$(emu_ctl GET /_emulator/counters | jq '.windows["messages.post"].lock_ms / 1000')
echo "queued before" >>"$M" || fail "append"
out=$("$FSYNC_WRITE" "$M" "synced reply") || fail "fsync-write: $out"
assert_eq "$(field write "$out")" OK "write"
assert_eq "$(field fsync "$out")" OK "fsync after the lock"
locked messages.post && fail "fsync returned while the API was still locked"
assert_eq "$(count_text general "Q1 planning" "synced reply")" 1 "delivered when fsync returned"
assert_eq "$(count_text general "Q1 planning" "queued before")" 1 "what the thread queued before too"
awk -v t="$(field fsync_s "$out")" -v l="$lock_s" 'BEGIN { exit !(t > l / 2) }' ||
  fail "fsync took $(field fsync_s "$out")s of a ${lock_s}s lock: it did not wait"
assert_eq "$(field close "$out")" OK "close after fsync"
ok "fsync on messages blocks through a ${lock_s}s lock until delivered ($(field fsync_s "$out")s)"

# ---- a refusal is fsync's error, at every later fsync of that open too ----------
assert_eq "$(emu_api PUT "/api/v3/threads/$wid" '{"action":"close"}')" 204 "closed behind our back"
out=$("$FSYNC_WRITE" "$W/messages" "refused reply") || fail "fsync-write: $out"
assert_eq "$(field fsync "$out")" EACCES "fsync returns the refusal"
assert_eq "$(field fsync2 "$out")" EACCES "a later fsync of the same open still does"
assert_eq "$(count_text general "Welcome Lucy!" "refused reply")" 0 "nothing stored"
assert_eq "$(ls .cliqfs/failed | wc -l)" 1 "the refusal is in failed/"
grep -q $'/general/Welcome Lucy!/messages\tEACCES' .cliqfs/errors || fail "no errors line"
ok "fsync returns EACCES for a refused message, and again on the next fsync"

# ---- state, read-only opens and folders ----------------------------------------------
out=$("$FSYNC_WRITE" "$T/state" "close") || fail "fsync-write state: $out"
assert_eq "$(field fsync "$out")" OK "fsync on state"
assert_eq "$(thread_jq general "Q1 planning" .state)" closed "closed when fsync returned"
out=$("$FSYNC_WRITE" "$T/state" "reopen") || fail "fsync-write state: $out"
assert_eq "$(thread_jq general "Q1 planning" .state)" open "reopened when fsync returned"
ok "fsync on state waits for the state change"

emu_ctl POST /_emulator/lock '{"api":"messages.post"}' >/dev/null
for i in 1 2 3; do echo "dir sync $i" >>"$M" || fail "append $i"; done
echo "channel sync" >>general/messages || fail "post to the channel"
out=$("$FSYNC_WRITE" -r "$M") || fail "fsync-write -r: $out"
assert_eq "$(field fsync "$out")" OK "fsync of a read-only open"
assert_eq "$(count_text general "Q1 planning" "dir sync 3")" 1 "the thread's queue was delivered"
out=$("$FSYNC_WRITE" -d "$MNT") || fail "fsync-write -d: $out"
assert_eq "$(field fsync "$out")" OK "fsync of the mount's root"
assert_eq "$(emu_state '[.channels[] | select(.unique_name=="general") | .messages[].text // "" | select(. == "channel sync")] | length')" 1 \
  "the channel post was delivered when the root's fsync returned"
assert_eq "$(ls .cliqfs/outbox | wc -l)" 0 "nothing left in the outbox"
ok "fsync of a read-only messages and of a folder wait for their queues"
