#!/usr/bin/env bash
# the naming rules of cliqfs(1) THE TREE, on an organization written for them.
. "$(dirname "$0")/lib.sh"

CH=CT_100_200
long=$(printf 'é%.0s' $(seq 150))        # 300 bytes
org=$MT_DIR/org.json
jq -n --arg ch "$CH" --arg long "$long" '
  def msg($id; $t; $s; $text): {id: $id, time: $t, sender: $s, text: $text};
  def thread($n; $title; $parent):
    {chat_id: ($ch + "-T-" + $n), thread_message_id: $parent, title: $title,
     followers: ["100"], members: ["100", "101"],
     messages: [msg(((1790000100000 + ($n | .[-3:] | tonumber)) | tostring) + "_" + $n; 1790000100000 + ($n | .[-3:] | tonumber); "101"; "reply in " + $n)]};
  [ ["1000000000000000001", "a/b"], ["1000000000000000002", "tab\there\u0001x\u007f"],
    ["1000000000000000003", ""], ["1000000000000000004", "."], ["1000000000000000005", ".."],
    ["1000000000000111006", "Dup"], ["1000000000000222007", "Dup"],
    ["1000000000000000008", $long], ["1000000000000000009", "info"],
    ["1000000000000000010", "Plain"] ] as $t
  | {me: "100",
     users: [{user_id: "100", email_id: "mia@zylker.com", name: "Mia Ever"},
             {user_id: "101", email_id: "bob@zylker.com", name: "Bob Stone"}],
     channels: [
       {channel_id: "O100", chat_id: $ch, unique_name: "team", name: "#Team",
        members: ["100", "101"],
        messages: ([range(0; $t | length) as $i
                    | msg(((1790000000000 + $i) | tostring) + "_" + ($i | tostring); 1790000000000 + $i; "100"; "parent " + ($i | tostring))]
                   + [{id: "1790000000500_77", time: 1790000000500, sender: "101", type: "file",
                       file: {name: "plan.pdf"}}]),
        threads: [range(0; $t | length) as $i
                  | thread($t[$i][0]; $t[$i][1]; ((1790000000000 + $i) | tostring) + "_" + ($i | tostring))]},
       {channel_id: "O101", chat_id: "CT_100_201", unique_name: "ops/2", name: "#Ops",
        members: ["100"], messages: [msg("1790000000000_90"; 1790000000000; "100"; "hello ops")]}]}' >"$org"

emu_start --org "$org" || fail "emulator did not start"
mt_mount
cd "$MNT"

assert_eq "$(ls | tr '\n' '|')" "ops∕2|team|" "channel names ('/' becomes U+2215)"
want=$(printf '%s\n' "a∕b" "tabherex" 1000000000000000003 1000000000000000004 \
  1000000000000000005 "Dup (111006)" "Dup (222007)" "$(printf 'é%.0s' $(seq 127))" \
  "info (000009)" "Plain" info messages | sort)
got=$(ls team | sort)
assert_eq "$got" "$want" "thread directory names"
long_name=$(ls team | grep 'é')
assert_eq "$(printf %s "$long_name" | wc -c)" 254 "long title cut at a UTF-8 boundary within 255 bytes"
ok "/ -> U+2215, control characters dropped, empty/./.. -> id, duplicates suffixed, long names cut"

assert_eq "$(cat "team/a∕b/title")" "a/b" "title keeps the real title"
assert_eq "$(cat "team/Dup (222007)/messages" | cut -d' ' -f2-)" "Bob Stone: reply in 1000000000000222007" \
  "duplicate titled threads reach their own thread"
assert_eq "$(jq -r .unique_name 'ops∕2/info')" "ops/2" "channel info"
grep -q 'Bob Stone: \[file: plan.pdf\]' team/messages || fail "file message not rendered as [file: name]: $(cat team/messages)"
ok "named directories reach the right thread; [file: name] rendering"

assert_eq "$(cat "team/$CH-T-1000000000000000002/title")" $'tab\there^Ax^?' "thread by chat id (title shown as cat -v does)"
ok "chat id lookup of a renamed thread"
