#!/usr/bin/env bash
# followers: append adds, -ID removes, > replaces; unknown people EINVAL and
# nothing changes.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
T="general/Weekly sync (800006)"
F="$T/followers"
title="Weekly sync"
emu_f() { emu_state '.channels[] | select(.unique_name=="general") | .threads[] | select(.chat_id | endswith("800006")) | .followers[]' | sort | tr '\n' ' '; }
changes() { echo $(($(emu_count threads.followers.add) + $(emu_count threads.followers.remove))); }

before=$(emu_f)
assert_eq "$(cut -f1 "$F" | sort | tr '\n' ' ')" "$before" "followers as the emulator has them"
lucy=$(emu_state '.users[] | select(.email_id=="lucy.tran@zylker.com") | .user_id')
echo "lucy.tran@zylker.com" >>"$F" || fail "add by email"
echo "$before" | grep -q "$lucy" && fail "test setup: Lucy already follows"
emu_f | grep -q "$lucy" || fail "Lucy not added at the emulator: $(emu_f)"
grep -q $'^'"$lucy"$'\tlucy.tran@zylker.com\tLucy Tran$' "$F" || fail "followers file lacks Lucy: $(cat "$F")"
grep -q "$lucy" "$T/nonfollowers" && fail "Lucy still in nonfollowers"
ok "appending an email adds a follower"

echo "-$lucy" >>"$F" || fail "remove with -ID"
emu_f | grep -q "$lucy" && fail "Lucy not removed at the emulator"
grep -q "$lucy" "$F" && fail "followers file still lists Lucy"
grep -q "$lucy" "$T/nonfollowers" || fail "Lucy not back in nonfollowers"
ok "-ID removes a follower"

priya=$(emu_state '.users[] | select(.email_id=="priya.raman@zylker.com") | .user_id')
me=$(emu_state .me)
# a whole-file write, in the file's own format, makes the set exactly that
{ grep "^$me" "$F"; printf '%s\tpriya.raman@zylker.com\tPriya Raman\n' "$priya"; } >"$MT_DIR/new"
cat "$MT_DIR/new" >"$F" || fail "replace with >"
assert_eq "$(emu_f)" "$(printf '%s\n' "$me" "$priya" | sort | tr '\n' ' ')" "> makes the followers exactly the listed set"
assert_eq "$(cut -f1 "$F" | sort | tr '\n' ' ')" "$(emu_f)" "followers file after replace"
ok "> replaces the followers"

c0=$(changes)
f0=$(emu_f)
expect_errno "Invalid argument" "echo nobody@nowhere.example >>'$MNT/$F'"
expect_errno "Invalid argument" "printf 'lucy.tran@zylker.com\n999999\n' >>'$MNT/$F'"
expect_errno "Invalid argument" "printf 'lucy.tran@zylker.com\n-\n' >>'$MNT/$F'"
assert_eq "$(changes)" "$c0" "no follower request after an unknown person"
assert_eq "$(emu_f)" "$f0" "followers unchanged"
grep -q $'/followers\tEINVAL' .cliqfs/errors || fail "EINVAL not logged"
ok "unknown people: EINVAL, nothing changed"
