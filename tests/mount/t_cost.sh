#!/usr/bin/env bash
# What listing and reading cost at Cliq: ls -lR cold = the channel list plus
# one thread list per channel, warm = 0; cat */state costs no more; a second
# grep -r within the freshness costs 0.
. "$(dirname "$0")/lib.sh"

emu_start --demo || fail "emulator did not start"
mt_mount
cd "$MNT"
channels=$(emu_state '[.channels[] | select(.joined)] | length')
count() { emu_ctl GET /_emulator/counters | jq -r ".apis[\"$1\"].total // 0"; }

ls -lR . >/dev/null || fail "ls -lR"
find . -type f >/dev/null
stat general/*/* >/dev/null
assert_eq "$(count channels.list)" 1 "cold ls -lR: channel list requests"
assert_eq "$(count threads.list)" "$channels" "cold ls -lR: one thread list per channel"
assert_eq "$(emu_total)" "$((1 + channels))" "cold ls -lR, find, stat: nothing else"
ok "cold ls -lR, find, stat cost the channel list and one thread list per channel"

emu_ctl POST /_emulator/counters/reset >/dev/null
ls -lR . >/dev/null
cat */*/state */*/title >/dev/null
assert_eq "$(emu_total)" 0 "warm ls -lR and cat */*/state"
ok "warm ls -lR and cat */*/state, */*/title cost nothing"

grep -r "budget" engineering >/dev/null
[ $? -le 1 ] || fail "grep -r reported an error"
n=$(emu_total)
[ "$n" -gt 0 ] || fail "the first grep -r fetched nothing"
emu_ctl POST /_emulator/counters/reset >/dev/null
grep -r "budget" engineering >/dev/null
[ $? -le 1 ] || fail "the second grep -r reported an error"
assert_eq "$(emu_total)" 0 "second grep -r within the freshness"
ok "grep -r: $n requests cold, 0 warm"
