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

# Page cache: a stable file or a log read again with the same content is
# served by the kernel (keep_cache), no READ reaches cliqfs; a content that
# changed is read again.
reads() { jq -r ".fuse.read[\"$1\"]" .cliqfs/status; }
inval_done() { [ "$(jq -r .fuse.invalidations_pending .cliqfs/status)" = 0 ]; }
for f in title main state members messages; do
  # A first read of a file whose size the kernel did not know goes direct;
  # the second fills the page cache.  What the first read learned is sent
  # to the kernel as an invalidation by another thread, which may land
  # after the second: once none is pending, one more read fills the cache.
  cat "$T/$f" "$T/$f" >/dev/null
  wait_until 10 inval_done || fail "invalidations still pending after reading $f"
  cat "$T/$f" >/dev/null
  r0=$(reads "$f")
  for i in 1 2 3; do cat "$T/$f" >/dev/null; done
  r1=$(reads "$f")
  assert_eq "$((r1 - r0))" 0 "READ requests for 3 more cats of $f"
done
ok "title, main, state, members, messages: read again from the page cache"

# A read of cached pages does not ask for the attributes again, even of a
# file whose attributes time out at once: dd in 64-byte reads of messages
# costs a GETATTR for the read that reaches its end (and the one at it), not
# one per read (the kernel's automatic revalidation of pages is off).
size=$(stat -c %s "$T/messages")
[ "$((size / 64))" -ge 10 ] || fail "messages is too small for this check: $size bytes"
cat "$T/messages" >/dev/null
g0=$(getattrs messages)
r0=$(reads messages)
dd if="$T/messages" of=/dev/null bs=64 2>/dev/null || fail "dd of messages"
g1=$(getattrs messages)
r1=$(reads messages)
assert_eq "$((r1 - r0))" 0 "READ requests for dd of cached messages"
[ "$((g1 - g0))" -le 3 ] ||
  fail "dd of messages in $((size / 64 + 1)) reads cost $((g1 - g0)) GETATTR (at most 3)"
ok "dd of cached messages in $((size / 64 + 1)) reads: $((g1 - g0)) GETATTR, no READ"

assert_eq "$(cat "$T/state")" open "state before close"
r0=$(reads state)
echo close >"$T/state"
state_closed() { [ "$(cat "$T/state")" = closed ]; }
wait_until 20 state_closed || fail "state still says $(cat "$T/state") after close"
r1=$(reads state)
[ "$((r1 - r0))" -ge 1 ] || fail "state changed but no READ reached cliqfs"
ok "a state that changed is read again ($((r1 - r0)) READ)"

# The FUSE loop: one worker per CPU the daemon may use (nproc) and one
# more, made odd, at most 15 (requests cycle through the idle workers; an
# even count made cached reads slower).
cpus=$(nproc)
want=$((cpus + 1 > 15 ? 15 : cpus + 1))
want=$((want % 2 ? want : want + 1))
assert_eq "$(jq -r .fuse.workers .cliqfs/status)" "$want" "fuse.workers on $cpus CPUs"
ok "fuse.workers is $want on $cpus CPUs"
