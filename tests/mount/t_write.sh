#!/usr/bin/env bash
# Posting: one message per close, with echo, printf, tee -a, cat >>, >; the
# checks made at write (EMSGSIZE, EILSEQ); effects checked at the emulator.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
T="general/Q1 planning"
M="$T/messages"
cat "$M" >/dev/null           # the log is known: our posts are appended to it

last_text() { thread_jq general "Q1 planning" '.messages[-1].text'; }
posts() { emu_count messages.post; }

p0=$(posts)
echo "hello via echo" >>"$M" || fail "echo >> messages"
assert_eq "$(last_text)" "hello via echo" "echo >> posts the line without its newline"
printf 'via printf' >>"$M" || fail "printf >> messages"
assert_eq "$(last_text)" "via printf" "printf >> posts"
echo "via tee" | tee -a "$M" >/dev/null || fail "tee -a"
assert_eq "$(last_text)" "via tee" "tee -a posts"
printf 'line one\nline two\n\n' >"$MT_DIR/f"
cat "$MT_DIR/f" >>"$M" || fail "cat file >> messages"
assert_eq "$(thread_jq general "Q1 planning" '.messages[-1].text | @json')" '"line one\nline two\n"' \
  "cat >> posts the file, one trailing newline removed"
echo "via truncate" >"$M" || fail "echo > messages"
assert_eq "$(last_text)" "via truncate" "> also posts"
assert_eq "$(posts)" "$((p0 + 5))" "one request per close"
ok "echo >>, printf, tee -a, cat >>, > each post one message"
wait_until 10 grep -q "via truncate$" "$M" || fail "our post is not in the log"
assert_eq "$(emu_count messages.get)" 0 "no messages.get to learn who we are, over 5 posts"
ok "who we are costs no request: the next fetch of the thread shows our posts and tells"

p0=$(posts)
: >>"$M"
printf '' >>"$M"
assert_eq "$(posts)" "$p0" "an empty write posts nothing"
exec 3>>"$M"
printf 'dup once' >&3
exec 4>&3
exec 3>&-
exec 4>&-
assert_eq "$(posts)" "$((p0 + 1))" "a dup'd descriptor closed twice posts once"
assert_eq "$(last_text)" "dup once" "the dup'd post"
{ printf '\xc3'; printf '\xa9t\xc3\xa9\n'; } >>"$M" || fail "UTF-8 split across writes"
assert_eq "$(last_text)" "été" "a UTF-8 sequence split across two writes"
ok "empty posts nothing, dup'd fd posts once, split UTF-8 is fine"

# our own messages show in the file at once, rendered as Cliq would, and
# stay single after the next refresh
wait_until 5 grep -q "Ryan West: via tee$" "$M" || fail "own message not in messages: $(tail -n 3 "$M")"
sleep 1.2   # one freshness window (10 s / 20) and more
cat "$M" >/dev/null
assert_eq "$(grep -c "Ryan West: hello via echo$" "$M")" 1 "own message appears once"
assert_eq "$(grep -c '"hello via echo"' "$T/messages.jsonl")" 1 "own message once in messages.jsonl"
n=$(cat "$M" | wc -c)
assert_eq "$(stat -c %s "$M")" "$n" "messages size after posting"
ok "own messages appended once, sizes follow"

echo "to the channel" >>general/messages || fail "post to the channel"
assert_eq "$(emu_state '.channels[] | select(.unique_name=="general") | .messages[-1].text')" \
  "to the channel" "channel messages posts to the channel"
ok "channel messages: append posts to the channel"

# ---- limits checked at write ----------------------------------------------------
p0=$(posts)
expect_errno "Message too long" "head -c 5001 /dev/zero | tr '\\0' a >>'$MNT/$M'"
expect_errno "Message too long" "printf '%05001d' 0 >>'$MNT/$M'"
assert_eq "$(posts)" "$p0" "nothing posted after EMSGSIZE"
printf 'é%.0s' $(seq 5000) >"$MT_DIR/big"
echo >>"$MT_DIR/big"
cat "$MT_DIR/big" >>"$M" || fail "5000 characters (10000 bytes) + newline must post"
assert_eq "$(posts)" "$((p0 + 1))" "5000 characters post"
assert_eq "$(thread_jq general "Q1 planning" ".messages[-1].text | length")" 5000 "all 5000 characters arrived"
p0=$(posts)
expect_errno "Invalid or incomplete multibyte" "printf 'bad \\xff\\xfe' >>'$MNT/$M'"
printf 'cut \xc3' >>"$M"        # the write is fine; close finds the cut sequence
assert_eq "$(posts)" "$p0" "nothing posted for invalid UTF-8"
grep -q $'\tEMSGSIZE\t' .cliqfs/errors || fail "EMSGSIZE not in .cliqfs/errors"
grep -q $'\tEILSEQ\t' .cliqfs/errors || fail "EILSEQ not in .cliqfs/errors"
grep -q "/general/Q1 planning/messages" .cliqfs/errors || fail "errors lines carry the path"
grep -q "emulator-token" .cliqfs/errors "$MT_LOG" && fail "a token in the errors"
ok "EMSGSIZE and EILSEQ at write, nothing sent, logged in .cliqfs/errors"
