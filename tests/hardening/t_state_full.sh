#!/usr/bin/env bash
# A full state folder: messages already journaled wait, an errors line says
# why, and once there is room again every one is delivered exactly once, in
# order.  The state folder is a small tmpfs filled to the last byte.
. "$MOUNT_LIB"

STATEFS=$MT_DIR/statefs
mkdir -p "$STATEFS"
mount -t tmpfs -o size=2m,mode=0700 cliqfs-test-state "$STATEFS" || fail "cannot mount a tmpfs"
trap 'rc=$?; cd /; mt_kill_bg; mt_unmount; umount -l "$STATEFS" 2>/dev/null; (exit $rc); mt_cleanup' EXIT
export XDG_STATE_HOME=$STATEFS

SCALE=100
emu_start --demo --time-scale $SCALE || fail "emulator did not start"
mt_mount time_scale=$SCALE
cd "$MNT" || fail "cd"
T="general/Q1 planning"
cat "$T/messages" >/dev/null || fail "cat"
N=10

# Cliq refuses posts for a while: the messages stay journaled.
emu_ctl POST /_emulator/lock '{"api":"messages.post","seconds":4}' >/dev/null || fail "lock"
for i in $(seq 1 $N); do
  echo "full disk $i" >>"$T/messages" || fail "append $i"
done
depth() { mt_outbox_depth; }
[ "$(depth)" -ge $((N - 1)) ] || fail "only $(depth) messages journaled"
ok "$(depth) messages journaled while posting is locked"

# The state folder fills up.
dd if=/dev/zero of="$STATEFS/fill" bs=4k 2>/dev/null
[ "$(df --output=avail "$STATEFS" | tail -n 1 | tr -d ' ')" -eq 0 ] || fail "the tmpfs is not full"
stall_line() { grep -q $'\t.cliqfs/outbox\tENOSPC\t.*deliveries wait: the state folder' "$MNT/.cliqfs/errors"; }
wait_until 60 stall_line || fail "no errors line while the state folder is full: $(cat "$MNT/.cliqfs/errors")"
ok "a full state folder is an errors line: $(grep ENOSPC "$MNT/.cliqfs/errors" | head -n 1 | cut -f 5)"

d_full=$(depth)
out=$(echo "no room" | "$FSOP" write "$MNT/$T/messages" -a)
assert_eq "$out" "ENOSPC@close" "a new message while the state folder is full"
assert_eq "$(depth)" "$d_full" "outbox depth after a message that could not be journaled"
ok "a new message that cannot be journaled fails at close with ENOSPC (and is not journaled)"

# Room again: everything goes out, once each, in order.
rm -f "$STATEFS/fill"
emptied() { [ "$(depth)" = 0 ]; }
wait_until 120 emptied || fail "the outbox still holds $(depth) after space was freed"
got=$(thread_jq general "Q1 planning" '[.messages[] | .text | select(type == "string" and startswith("full disk "))] | join(",")')
want=$(seq -f 'full disk %g' 1 $N | paste -sd,)
assert_eq "$got" "$want" "messages at Cliq after the disk was full (each once, in order; outbox $(jq -c .outbox "$MNT/.cliqfs/status"); errors: $(cat "$MNT/.cliqfs/errors"))"
ok "after space was freed: all $N delivered once, in order"
