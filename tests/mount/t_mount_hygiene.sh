#!/usr/bin/env bash
# Mount hygiene: a second mount on a cliqfs mount point is refused (no
# stacked mounts), a folder with files in it is refused unless -o nonempty,
# and a mount whose daemon died is named with the command that clears it.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
opts="api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN,time_scale=20"

mt_mount time_scale=20
ls "$MNT" >/dev/null || fail "ls"
# 1. Mounting again on the same mount point.
if msg=$("$CLIQFS" -o "$opts" "$MNT" 2>&1); then fail "a second mount on $MNT succeeded"; fi
grep -q 'is already a cliqfs mount' <<<"$msg" || fail "stacked mount: [$msg]"
n=$(grep -c " $MNT " /proc/mounts)
assert_eq "$n" 1 "mounts on $MNT"
ok "a second mount on a cliqfs mount point is refused: $msg"

# 2. A folder with a file in it.
full=$MT_DIR/full
mkdir -p "$full" && echo keep >"$full/notes.txt"
if msg=$("$CLIQFS" -o "$opts" "$full" 2>&1); then
  fusermount3 -u "$full"; fail "mounted over a folder with files"
fi
grep -q 'is not empty' <<<"$msg" && grep -q 'nonempty' <<<"$msg" ||
  fail "non-empty folder: [$msg]"
mountpoint -q "$full" && fail "$full is mounted"
ok "a non-empty folder is refused: $msg"
"$CLIQFS" -o "$opts,nonempty" "$full" || fail "-o nonempty refused"
wait_until 10 mountpoint -q "$full" || fail "-o nonempty: no mount"
ls "$full/general" >/dev/null || fail "ls through the nonempty mount"
fusermount3 -u "$full" || fail "unmount the nonempty mount"
assert_eq "$(cat "$full/notes.txt")" keep "the covered file after unmount"
ok "-o nonempty mounts over the files, which come back at unmount"

# 3. The daemon dies: the next mount names the fix.
kill -KILL "$CLIQFS_PID"
wait "$CLIQFS_PID" 2>/dev/null
CLIQFS_PID=
if msg=$("$CLIQFS" -o "$opts" "$MNT" 2>&1); then fail "mounted over a dead mount"; fi
grep -q "daemon is gone" <<<"$msg" && grep -qF "fusermount3 -u $MNT" <<<"$msg" ||
  fail "dead mount: [$msg]"
fusermount3 -u "$MNT" || fail "fusermount3 -u of the dead mount"
mt_mount time_scale=20
ls "$MNT/general" >/dev/null || fail "ls after the remount"
ok "a dead mount is named with its fix, and mounting works after it: $msg"
