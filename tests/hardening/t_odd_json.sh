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
                 msg("1790000000000_5"; 1790000000000; "100"; "p5"),
                 msg("1790000000000_6"; 1790000000000; "100"; "p6"),
                 msg("1790000000000_7"; 1790000000000; "100"; "p7")],
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
               [msg("1790000100006_5"; 1790000100006; "101"; "red title")]),
        thread("1000000000000000006"; "bad@SUR@name";
               [msg("1790000100007_6"; 1790000100007; "101"; "surrogate title")]),
        thread("1000000000000000007"; "Times";
               [msg("1790000100008_7"; 1790000100008; "101"; "t-before"),
                msg("1790000100009_7"; 1790000100009; "101"; "t-huge"),
                msg("1790000100010_7"; 1790000100010; "101"; "t-after")])]},
     {channel_id: "O300", chat_id: "CT_300_400", unique_name: "broken", name: "#Broken", members: ["100"],
      messages: [], threads: []},
     {channel_id: "O500", chat_id: "CT_500_600", unique_name: "fine", name: "#Fine", members: ["100"],
      messages: [], threads: []}]}' >"$org"

emu_start --org "$org" --time-scale 20 || fail "emulator did not start"
# The organization file holds a marker; the emulator sends \u0000 for it.
emu_ctl POST /_emulator/rewrites '{"from":"@NUL@","to":"\\u0000"}' >/dev/null ||
  fail "rewrites"
# Malformed entries: a channel without chat_id, a lone surrogate in a title,
# a message time of 2^63.
emu_ctl POST /_emulator/rewrites '{"from":"\"chat_id\":\"CT_300_400\"","to":"\"chatid\":\"CT_300_400\""}' >/dev/null ||
  fail "rewrites"
emu_ctl POST /_emulator/rewrites '{"from":"@SUR@","to":"\\ud800"}' >/dev/null || fail "rewrites"
# Times as Cliq may send them: a numeric string, ISO 8601.
emu_ctl POST /_emulator/rewrites '{"from":"\"time\":1790000100010","to":"\"time\":\"1790000100010\""}' >/dev/null ||
  fail "rewrites"
emu_ctl POST /_emulator/rewrites '{"from":"\"time\":1790000100008","to":"\"time\":\"2026-09-21T14:15:00.008Z\""}' >/dev/null ||
  fail "rewrites"
emu_ctl POST /_emulator/rewrites '{"from":"\"time\":1790000100009","to":"\"time\":9223372036854775808"}' >/dev/null ||
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

# ---- Malformed entries are left out, the rest is served ----------------------------
roots=$(ls "$MNT")
grep -qx team <<<"$roots" && grep -qx fine <<<"$roots" || fail "channels beside a malformed one: [$roots]"
grep -qx broken <<<"$roots" && fail "a channel without chat_id is listed: [$roots]"
grep -q $'channel list\tEIO\t-\t1 malformed entry left out' "$MNT/.cliqfs/errors" ||
  fail "no errors line for the channel left out: $(cat "$MNT/.cliqfs/errors")"
ok "a channel without chat_id is left out with an errors line; the others are listed"

names=$(ls "$MNT/team")
grep -qx $'bad\xef\xbf\xbdname' <<<"$names" || fail "a title with a lone surrogate: [$names]"
grep -qx Times <<<"$names" || fail "threads after the surrogate: [$names]"
ok "a title with a lone surrogate shows U+FFFD; the listing is whole"

out=$(cat "$MNT/team/Times/messages") || fail "cat a log with a time of 2^63"
grep -q 't-before' <<<"$out" && grep -q 't-after' <<<"$out" || fail "log with a bad time: [$out]"
grep -q 't-huge' <<<"$out" && fail "the message with a time of 2^63 is shown: [$out]"
grep -q $'messages of CT_100_200-T-1000000000000000007\tEIO\t-\t1 malformed entry left out' \
  "$MNT/.cliqfs/errors" || fail "no errors line for the message left out: $(cat "$MNT/.cliqfs/errors")"
ok "a message with time 2^63 is left out with an errors line; the others are served"

# ---- messages.jsonl: every time in epoch milliseconds, and in ISO ------------------
# The emulator sends times as numbers and as numeric strings; the demo too.
jq -e -s 'length > 0 and all(.[]; (.time | type) == "number" and
            (.time_iso | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and
            ((.time / 1000 | floor | todate) == (.time_iso | sub("\\.[0-9]{3}Z$"; "Z"))))' \
  "$MNT/team/Times/messages.jsonl" "$MNT/team/nulbyte/messages.jsonl" >/dev/null ||
  fail "messages.jsonl times: $(jq -c '{time, time_iso}' "$MNT/team/Times/messages.jsonl" "$MNT/team/nulbyte/messages.jsonl" 2>&1)"
ok "messages.jsonl: time is epoch ms (jq '.time/1000' works on every line), time_iso the same instant"
