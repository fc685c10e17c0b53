#!/usr/bin/env bash
# Other local users: a config file that another user can change is refused
# before anything is sent; through -o allow_other, another user (nobody)
# cannot post, close a thread or write ctl, and nothing reaches Cliq, while
# the owner still can.
. "$MOUNT_LIB"
id nobody >/dev/null 2>&1 || fail "needs the user nobody"

emu_start --demo --time-scale 20 || fail "emulator did not start"
thread="general/Q1 planning"
chmod 755 "$MT_DIR"   # let nobody walk to the mount point

# 1. A config writable by the group (0620): refused, with the fix, and not
#    a single request is made (the attacker's accounts_url gets nothing).
conf=$MT_DIR/config/cliqfs/config
mkdir -p "$(dirname "$conf")"
printf 'api_url = %s\naccounts_url = %s\nclient_id = c\nclient_secret = s\nrefresh_token = r\n' \
  "$EMU_URL" "$EMU_URL" >"$conf"
chmod 0620 "$conf"
before=$(emu_total)
if msg=$("$CLIQFS" -f "$MNT" 2>&1); then fail "a 0620 config was accepted"; fi
grep -q 'chmod go-w' <<<"$msg" || fail "0620 config: [$msg]"
mountpoint -q "$MNT" && fail "mounted with a 0620 config"
assert_eq "$(emu_total)" "$before" "requests made with a 0620 config"
ok "a 0620 config is refused before any request: $msg"
chmod 0600 "$conf"
rm -f "$conf"

# 2. allow_other: nobody reads, but cannot write as the owner.
mt_mount "time_scale=20,allow_other"
grep -q "default_permissions" <<<"$(grep " $MNT " /proc/mounts)" ||
  fail "allow_other without default_permissions: $(grep " $MNT " /proc/mounts)"
runuser -u nobody -- cat "$MNT/$thread/messages" >/dev/null ||
  fail "nobody cannot read through allow_other"
posts=$(emu_count messages.post)
updates=$(emu_count threads.update)
runuser -u nobody -- bash -c "echo 'as nobody' >> '$MNT/$thread/messages'" 2>/dev/null &&
  fail "nobody posted through allow_other"
runuser -u nobody -- bash -c "echo close > '$MNT/$thread/state'" 2>/dev/null &&
  fail "nobody closed a thread through allow_other"
runuser -u nobody -- bash -c "echo unfollow > '$MNT/$thread/ctl'" 2>/dev/null &&
  fail "nobody wrote ctl through allow_other"
runuser -u nobody -- mkdir "$MT_DIR/mnt/general/new by nobody" 2>/dev/null &&
  fail "nobody created a thread through allow_other"
assert_eq "$(ls "$MNT/.cliqfs/outbox" | wc -l)" 0 "outbox entries after nobody's writes"
sleep 0.5
assert_eq "$(emu_count messages.post)" "$posts" "posts after nobody's writes"
assert_eq "$(emu_count threads.update)" "$updates" "thread updates after nobody's writes"
ok "nobody reads through allow_other but cannot post, close, write ctl or mkdir"

echo "from the owner" >>"$MNT/$thread/messages" || fail "the owner cannot post"
posted() { [ "$(emu_count messages.post)" -gt "$posts" ]; }
wait_until 20 posted || fail "the owner's post did not reach Cliq"
ok "the owner still posts"
