#!/usr/bin/env bash
# -o uid=,gid=,umask=: the owner and modes `stat` shows, and who the kernel
# lets in with allow_other and default_permissions (the owner reads, a user
# of no class with a bit left is refused).
. "$(dirname "$0")/lib.sh"
id nobody >/dev/null 2>&1 && id daemon >/dev/null 2>&1 || fail "needs users nobody and daemon"

emu_start --demo --time-scale 20 || fail "emulator did not start"
msgs="general/Q1 planning/messages"

# The modes without the options, to take the umask away from.
mt_mount time_scale=20
declare -A base
for f in . general "general/Q1 planning" "$msgs" .cliqfs/status; do
  base[$f]=$(stat -c %a "$MNT/$f") || fail "stat $f"
done
assert_eq "$(stat -c %u "$MNT/general")" "$(id -u)" "owner without uid="
mt_unmount || fail "unmount"

nobody_uid=$(id -u nobody)
nobody_gid=$(id -g nobody)
mt_mount "time_scale=20,uid=$nobody_uid,gid=$nobody_gid,umask=027,allow_other,default_permissions"
for f in . general "general/Q1 planning" "$msgs" .cliqfs/status; do
  want=$(printf '%o' $((8#${base[$f]} & ~8#027)))
  got=$(stat -c '%u %g %a' "$MNT/$f")
  assert_eq "$got" "$nobody_uid $nobody_gid $want" "stat of $f"
done
ok "stat shows uid=$nobody_uid gid=$nobody_gid and modes without 027"

# Keep mktemp's 0700 folder from stopping the other users on the way in.
chmod 755 "$MT_DIR"
runuser -u nobody -- cat "$MNT/$msgs" >/dev/null || fail "the owner (nobody) cannot read"
ok "the owner reads through allow_other"
if runuser -u daemon -- cat "$MNT/$msgs" >/dev/null 2>&1; then
  fail "a user outside owner and group read a 0$(printf '%o' $((8#${base[$msgs]} & ~8#027))) file"
fi
ok "another user is refused by the modes"
