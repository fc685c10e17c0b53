#!/usr/bin/env bash
# Odd but legal JSON from the server: a NUL (\u0000) in a thread's title and
# in a message, terminal control sequences (ESC, OSC 52, CR, C1 CSI) in
# message text, and a whitespace-only title.  The listing and the log are
# served, with the other threads and messages; control characters reach
# `messages` escaped as cat -v shows them; messages.jsonl keeps the text.
. "$MOUNT_LIB"

CH=CT_100_200
org=$MT_DIR/org.json
jq -n --arg ch "$CH" '
  def msg($id; $t; $s; $text): {id: $id, time: $t, sender: $s, text: $text};
  def thread($n; $title; $msgs):
    {chat_id: ($ch + "-T-" + $n), thread_message_id: ("1790000000000_" + ($n | .[-1:])), title: $title,
     followers: ["100"], members: ["100", "101"], messages: $msgs};
  {me: "100",
   users: [{user_id: "100", email_id: "mia@zylker.com", name: "Mia Ever"},
           {user_id: "101", email_id: "bob@zylker.com", name: "Bob Stone"}],
   channels: [
     {channel_id: "O100", chat_id: $ch, unique_name: "team", name: "#Team", members: ["100", "101"],
      messages: [msg("1790000000000_1"; 1790000000000; "100"; "p1"),
                 msg("1790000000000_2"; 1790000000000; "100"; "p2"),
                 msg("1790000000000_3"; 1790000000000; "100"; "p3"),
                 msg("1790000000000_4"; 1790000000000; "100"; "p4"),
                 msg("1790000000000_5"; 1790000000000; "100"; "p5")],
      threads: [
        thread("1000000000000000001"; "nul@NUL@byte";
               [msg("1790000100000_1"; 1790000100000; "101"; "before"),
                msg("1790000100001_1"; 1790000100001; "101"; "has@NUL@nul"),
                msg("1790000100002_1"; 1790000100002; "101"; "after")]),
        thread("1000000000000000002"; "Later";
               [msg("1790000100003_2"; 1790000100003; "101"; "later reply")]),
        thread("1000000000000000003"; "   ";
               [msg("1790000100004_3"; 1790000100004; "101"; "blank title")]),
        thread("1000000000000000004"; "Terminal";
               [msg("1790000100005_4"; 1790000100005; "101";
                    "clear\u001b[2J\u001b]0;owned\u0007 clip\u001b]52;c;cm0gLXJmIH4=\u0007 x\rFAKE csi\u009b31m end")]),
        thread("1000000000000000005"; "T\u001b[31mred";
               [msg("1790000100006_5"; 1790000100006; "101"; "red title")])]}]}' >"$org"

emu_start --org "$org" --time-scale 20 || fail "emulator did not start"
# The organization file holds a marker; the emulator sends \u0000 for it.
emu_ctl POST /_emulator/rewrites '{"from":"@NUL@","to":"\\u0000"}' >/dev/null ||
  fail "rewrites"
raw=$(curl -s -H "Authorization: Zoho-oauthtoken $EMU_TOKEN" "$EMU_URL/api/v2/channels/O100/threads")
grep -qF 'nul\u0000byte' <<<"$raw" || fail "the emulator does not send \\u0000: $raw"
mt_mount time_scale=20
cd "$MNT/team" || fail "cd team"

names=$(ls)
grep -qx "nulbyte" <<<"$names" || fail "thread titled nul\\u0000byte not listed as nulbyte: [$names]"
grep -qx "Later" <<<"$names" || fail "the thread after the NUL title is hidden: [$names]"
grep -qx "1000000000000000003" <<<"$names" || fail "a blank title is not its numeric id: [$names]"
ok "listing with a NUL in a title: every thread shown; a blank title is its id"

out=$(cat nulbyte/messages) || fail "cat the log with a NUL"
grep -q 'before' <<<"$out" && grep -q 'has^@nul' <<<"$out" && grep -q 'after' <<<"$out" ||
  fail "log with a NUL: [$out]"
ok "log with a NUL: every message, the NUL shown as ^@"

t=$(cat Terminal/messages) || fail "cat Terminal/messages"
[ "$(tr -dc '\033\007\r' <<<"$t" | wc -c)" = 0 ] || fail "raw ESC, BEL or CR in messages: $(od -c <<<"$t" | head)"
grep -q $'\xc2\x9b' <<<"$t" && fail "raw C1 CSI in messages"
grep -qF 'clear^[[2J^[]0;owned^G clip^[]52;c;cm0gLXJmIH4=^G x^MFAKE csiM-^[31m end' <<<"$t" ||
  fail "not escaped as cat -v: [$t]"
jq -r '.. | strings' Terminal/messages.jsonl | grep -qF $'clear\e[2J' || fail "messages.jsonl lost the exact text: $(head -c 300 Terminal/messages.jsonl)"
ok "ESC, OSC 0/52, BEL, CR and C1 CSI escaped in messages (^[, ^G, ^M, M-^[); jsonl exact"
title=$(cat "T[31mred/title") || fail "cat title of a title with ESC"
assert_eq "$title" 'T^[[31mred' "title file of a title with ESC"
ok "a title with ESC: the folder drops it, the title file shows ^["
