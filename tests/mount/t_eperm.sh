#!/usr/bin/env bash
# Everything else that would change the tree fails with EPERM, and nothing is
# sent to Cliq.
. "$(dirname "$0")/lib.sh"

# Real time: the cached lists stay fresh for the whole test (a minute), so
# that any request counted below was caused by a refused operation, not by
# a list growing stale on a slow machine.
emu_start --demo || fail "emulator did not start"
mt_mount
cd "$MNT"
T="general/Q1 planning"
ls -lR . >/dev/null
cat "$T/info" "$T/main" >/dev/null
t0=$(emu_total)

E="Operation not permitted"
expect_errno "$E" "rm '$MNT/$T/messages'"
expect_errno "$E" "rm -f '$MNT/general/info'"
expect_errno "$E" "mv '$MNT/$T' '$MNT/general/Renamed'"
expect_errno "$E" "mv '$MNT/$T/title' '$MNT/$T/title2'"
expect_errno "$E" "chmod 600 '$MNT/$T/messages'"
expect_errno "$E" "chown 1:1 '$MNT/$T/messages'"
expect_errno "$E" "ln '$MNT/$T/messages' '$MNT/$T/hard'"
expect_errno "$E" "ln -s messages '$MNT/$T/soft'"
expect_errno "$E" "mkfifo '$MNT/$T/fifo'"
expect_errno "$E" "touch '$MNT/$T/newfile'"
expect_errno "$E" "echo x >'$MNT/general/newfile'"
expect_errno "$E" "touch '$MNT/$T/messages'"
expect_errno "$E" "rmdir '$MNT/$T'"
expect_errno "$E" "rm -rf '$MNT/$T'"
expect_errno "$E" "mkdir '$MNT/.cliqfs/x'"
expect_errno "$E" "truncate -s 10 '$MNT/$T/messages'"
expect_errno "$E" "truncate -s 0 '$MNT/$T/messages'"
expect_errno "$E" "truncate -s 0 '$MNT/general/messages'"
assert_eq "$(emu_total)" "$t0" "nothing was sent to Cliq"
# mkdir: names that cannot be a title, or that reach a thread by its chat id.
I="Invalid argument"
expect_errno "$I" "mkdir \"\$(printf '%s/general/Plan\nB\e[31m' '$MNT')\""
expect_errno "$I" "mkdir '$MNT/general/   '"
ls general | grep -q 'Plan' && fail "a thread with control characters appeared"
grep -q $'\tEINVAL\t.*control characters' .cliqfs/errors || fail "mkdir refusal not logged"
grep -q $'\e' .cliqfs/errors && fail "an escape character reached .cliqfs/errors"
assert_eq "$(emu_total)" "$t0" "nothing was sent to Cliq"
grep -c $'\tEPERM\t' .cliqfs/errors >/dev/null || fail "EPERM not logged"
expect_errno "Permission denied" "echo x >>'$MNT/$T/title'"
expect_errno "Permission denied" "echo x >>'$MNT/$T/info'"
expect_errno "Permission denied" "echo x >>'$MNT/.cliqfs/status'"
assert_eq "$(emu_total)" "$t0" "nothing was sent to Cliq"
ok "rm, mv, chmod, chown, ln, ln -s, mkfifo, touch, create, rmdir: EPERM; read-only files: EACCES"
# mkdir of a chat id's shape (the kernel looks the name up first: a chat id's shape is asked of Cliq).
expect_errno "$I" "mkdir '$MNT/general/CT_1_2-T-1291567019566800077'"
ok "mkdir of a chat id's shape: EINVAL"
