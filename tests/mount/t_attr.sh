#!/usr/bin/env bash
# Kernel caching per kind of file: growing files (messages) get fresh
# attributes on every stat; stable files (title, main once read, and state,
# whose changes are sent to the kernel as invalidations: t_close.sh) keep
# theirs in the kernel.
. "$(dirname "$0")/lib.sh"

emu_start --demo || fail "emulator did not start"
mt_mount
cd "$MNT"
T="design/Onboarding flow redesign"
cat "$T/messages" "$T/title" "$T/main" >/dev/null
stat "$T/messages" "$T/title" "$T/state" "$T/main" >/dev/null
getattrs() { jq -r ".fuse.getattr[\"$1\"]" .cliqfs/status; }
sleep 0.5                      # kernel invalidations from the first reads are sent

m0=$(getattrs messages)
t0=$(getattrs title)
s0=$(getattrs state)
a0=$(getattrs main)
for i in 1 2 3 4 5; do
  stat "$T/messages" "$T/title" "$T/state" "$T/main" >/dev/null
done
m1=$(getattrs messages)
t1=$(getattrs title)
s1=$(getattrs state)
a1=$(getattrs main)
[ "$((m1 - m0))" -ge 5 ] || fail "messages: $((m1 - m0)) getattr for 5 stats (attr_timeout must be 0)"
[ "$((t1 - t0))" -le 1 ] || fail "title: $((t1 - t0)) getattr for 5 stats (attributes must be cached)"
[ "$((a1 - a0))" -le 1 ] || fail "main: $((a1 - a0)) getattr for 5 stats (attributes must be cached)"
[ "$((s1 - s0))" -le 1 ] || fail "state: $((s1 - s0)) getattr for 5 stats (attributes must be cached)"
ok "messages: every stat reaches cliqfs ($((m1 - m0))); title, main, state: cached ($((t1 - t0)), $((a1 - a0)), $((s1 - s0)))"

# getattr of a growing file never asks Cliq
t0=$(emu_total)
for i in $(seq 20); do stat "$T/messages" >/dev/null; done
assert_eq "$(emu_total)" "$t0" "stat costs no request"
ok "stat of messages costs no request"
