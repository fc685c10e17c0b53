#!/usr/bin/env bash
# The cache on disk: a remount is warm (same bytes, no requests within the
# freshness), and with the emulator gone a remount still lists and reads.
. "$(dirname "$0")/lib.sh"

emu_start --demo || fail "emulator did not start"
mt_mount
T="$MNT/general/Welcome Lucy!"
ls -lR "$MNT/general" >/dev/null
for f in messages messages.jsonl main info followers state; do
  cat "$T/$f" >"$MT_DIR/$f.1"
done
cat "$MNT/general/messages" >"$MT_DIR/ch.1"
ls -l "$MNT" "$MNT/general" "$T" >"$MT_DIR/ls1"
mt_unmount || fail "unmount"

emu_ctl POST /_emulator/counters/reset >/dev/null
mt_mount
for f in messages messages.jsonl main info followers state; do
  cmp -s "$MT_DIR/$f.1" "$T/$f" || fail "$f differs after remount"
done
cmp -s "$MT_DIR/ch.1" "$MNT/general/messages" || fail "channel messages differ after remount"
ls -l "$MNT" "$MNT/general" "$T" >"$MT_DIR/ls2"
cmp -s "$MT_DIR/ls1" "$MT_DIR/ls2" || fail "ls -l differs after remount: $(diff "$MT_DIR/ls1" "$MT_DIR/ls2")"
assert_eq "$(emu_total)" 0 "a warm remount within the freshness costs no request"
ok "remount: same bytes, same listing, zero requests"
mt_unmount || fail "unmount"

emu_stop
mt_mount
ls "$MNT/general" | grep -q "Welcome Lucy!" || fail "offline listing"
cmp -s "$MT_DIR/messages.1" "$T/messages" || fail "offline read of messages"
cmp -s "$MT_DIR/main.1" "$T/main" || fail "offline read of main"
ok "with the emulator gone, a remount lists and reads what was cached"
