#!/usr/bin/env bash
# One open is one message, also when child processes share the descriptor:
# the shell forms people write post exactly one message each (date and tail
# in a { ...; } group, /bin/echo in a ( ... ) subshell, a child that writes
# after the opener closed), and a bad write anywhere in the open journals
# nothing, also after a child's close.  Checked at the emulator.
. "$MOUNT_LIB"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT" || fail "cd $MNT"
T="general/Q1 planning"
M="$T/messages"
cat "$M" >/dev/null || fail "cat $M"

posts() { emu_count messages.post; }
last_text() { thread_jq general "Q1 planning" '.messages[-1].text'; }
printf 'build 1 ok\nbuild 2 FAILED: 3 tests\nbuild 3 FAILED: linker\n' >"$MT_DIR/build.log"

# ---- { date; echo; tail; echo; } >> messages --------------------------------------
p0=$(posts)
{ date -u +%F; echo "Nightly failed:"; tail -n 2 "$MT_DIR/build.log"; echo "-- end"; } >>"$M" ||
  fail "group >> messages"
assert_eq "$(posts)" "$((p0 + 1))" "{ date; echo; tail; echo; } >> messages: messages posted"
want="$(date -u +%F)
Nightly failed:
build 2 FAILED: 3 tests
build 3 FAILED: linker
-- end"
assert_eq "$(last_text)" "$want" "the group's message"
ok "{ date -u +%F; echo; tail -n 2; echo; } >> messages posts one message of 5 lines"

# ---- ( echo; /bin/echo; echo ) >> messages ----------------------------------------
p0=$(posts)
( echo one; /bin/echo two; echo three ) >>"$M" || fail "subshell >> messages"
assert_eq "$(posts)" "$((p0 + 1))" "( echo; /bin/echo; echo ) >> messages: messages posted"
assert_eq "$(last_text)" "one
two
three" "the subshell's message"
ok "( echo one; /bin/echo two; echo three ) >> messages posts one message"

# ---- several children, xargs and a pipeline inside one redirection ----------------
p0=$(posts)
{ /bin/echo a; printf 'b\n' | cat; seq 3 | xargs /bin/echo; } >>"$M" || fail "children >> messages"
assert_eq "$(posts)" "$((p0 + 1))" "three children: messages posted"
assert_eq "$(last_text)" "a
b
1 2 3" "the children's message"
ok "a group of several child processes posts one message"

# ---- a bad write after a child's close journals nothing ---------------------------
p0=$(posts)
d0=$(jq -r '.outbox.depth' .cliqfs/status)
{ /bin/echo "first part"; printf 'bad \xff\n'; } >>"$M" 2>"$MT_DIR/bad.err"
grep -q "Invalid or incomplete multibyte" "$MT_DIR/bad.err" ||
  fail "the bad write was not refused: $(cat "$MT_DIR/bad.err")"
assert_eq "$(posts)" "$p0" "a bad write after a child's close: messages posted"
assert_eq "$(jq -r '.outbox.depth' .cliqfs/status)" "$d0" "a bad write after a child's close: outbox"
assert_eq "$(ls .cliqfs/outbox | wc -l)" "$d0" "outbox entries"
ok "an invalid write after a child's close: nothing journaled, nothing posted"

# ---- a child that writes after the opener closed ----------------------------------
p0=$(posts)
marker=$MT_DIR/closed
bash -c '
  exec 3>>"$1"
  ( while [ ! -e "$2" ]; do sleep 0.05; done; echo "late from a child" >&3 ) &
  exec 3>&-
  : >"$2"
  wait' _ "$M" "$marker" || fail "child after the opener"
arrived() { [ "$(last_text)" = "late from a child" ]; }
wait_until 10 arrived || fail "the child's late write was not posted: last is [$(last_text)]"
assert_eq "$(posts)" "$((p0 + 1))" "a child writing after the opener closed: messages posted"
ok "a child writing after the opener closed posts its message once (at the last close)"

# ---- the other writable files follow the same rule ---------------------------------
c0=$(emu_count threads.update)
{ /bin/echo close; } >"$T/state" || fail "state"
assert_eq "$(thread_jq general "Q1 planning" '.state')" "closed" "state after a child's write"
{ echo reopen; } >"$T/state" || fail "reopen"
assert_eq "$(emu_count threads.update)" "$((c0 + 2))" "threads.update requests"
ok "state written by a child process: one change per open"

# ---- our own reply shows at once ---------------------------------------------------
echo "shown at once" >>"$M" || fail "post"
last=$(tail -n 1 "$M")
case "$last" in
  *": shown at once") ;;
  *) fail "our reply is not the last line of messages right after close: [$last]" ;;
esac
grep -c '"shown at once"' "$T/messages.jsonl" | grep -qx 1 || fail "our reply not once in messages.jsonl"
ok "our own reply is in messages and messages.jsonl as soon as close returns"
