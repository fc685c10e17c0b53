#!/usr/bin/env bash
# ctl verbs, one per line; bad verbs EINVAL and nothing sent.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
T="engineering/Postgres 16 upgrade"
C="$T/ctl"
tj() { thread_jq engineering "Postgres 16 upgrade" "$1"; }
me=$(emu_state .me)

echo mute >"$C" || fail "mute"
assert_eq "$(tj .muted)" true "muted at the emulator"
echo unmute >>"$C" || fail "unmute"
assert_eq "$(tj .muted)" false "unmuted"
echo unfollow >"$C" || fail "unfollow"
tj '.followers[]' | grep -qx "$me" && fail "still following after unfollow"
grep -q "^$me" "$T/followers" && fail "followers file still lists me after unfollow"
echo follow >"$C" || fail "follow"
tj '.followers[]' | grep -qx "$me" || fail "not following after follow"
ok "mute, unmute, unfollow, follow"

printf 'close\nreopen\nclose\n' >"$C" || fail "several verbs, one per line"
assert_eq "$(tj .state)" closed "close, reopen, close in order"
assert_eq "$(cat "$T/state")" closed "state file follows ctl"
echo reopen >"$C" || fail "reopen"
assert_eq "$(tj .state)" open "reopened"
ok "close and reopen through ctl, in order"

t0=$(emu_total)
expect_errno "Invalid argument" "echo dance >'$MNT/$C'"
expect_errno "Invalid argument" "printf 'mute\nexplode\n' >'$MNT/$C'"
assert_eq "$(emu_total)" "$t0" "nothing sent for a bad verb (not even the good one before it)"
assert_eq "$(tj .muted)" false "not muted"
assert_eq "$(cat "$C" | wc -c)" 0 "ctl holds nothing"
ok "bad verbs: EINVAL, nothing sent; ctl reads empty"

echo leave >"$C" || fail "leave"
assert_eq "$(tj .left)" true "left at the emulator"
ok "leave"
