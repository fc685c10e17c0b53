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
mt_unmount || fail "unmount"

# 3. --demo: a random token of its own, in a 0600 file; the emulator's API
#    and control path refuse everyone without it (as nobody, and the old
#    fixed token), and the token is in no command line.
export TMPDIR=$MT_DIR/demo-tmp
mkdir -p "$TMPDIR"
"$CLIQFS" --demo "$MNT" || fail "cliqfs --demo"
wait_until 10 mountpoint -q "$MNT" || fail "no demo mount"
CLIQFS_PID=$(pgrep -n -f -- "--demo $MNT" || true)
emu=$(pgrep -n -f -- "--token-file $TMPDIR/" || true)
[ -n "$emu" ] || fail "no demo emulator with a token file"
tfile=$(ls "$TMPDIR"/cliqfs-demo-*/token)
assert_eq "$(stat -c %a "$tfile")" 600 "mode of the demo's token file"
assert_eq "$(stat -c %a "$(dirname "$tfile")")" 700 "mode of the demo's folder"
token=$(cat "$tfile")
tr '\0' ' ' <"/proc/$emu/cmdline" | grep -qF -- "$token" && fail "the token is in the emulator's command line"
# The emulator's listening port, from its socket inodes.
inodes=$(ls -l "/proc/$emu/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p')
port=
while read -r _ local _ st _ _ _ _ _ inode _; do
  [ "$st" = 0A ] || continue
  for i in $inodes; do
    [ "$i" = "$inode" ] && port=$((16#${local##*:}))
  done
done < <(tail -n +2 /proc/net/tcp)
[ -n "$port" ] || fail "cannot find the demo emulator's port"
url=http://127.0.0.1:$port
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
assert_eq "$(code -H "Authorization: Zoho-oauthtoken $token" "$url/api/v2/channels")" 200 \
  "the demo's own token"
assert_eq "$(runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' "$url/api/v2/channels")" 401 \
  "nobody without a token"
assert_eq "$(runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Zoho-oauthtoken emulator-token' "$url/api/v2/channels")" 401 \
  "nobody with the old fixed token"
assert_eq "$(runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"api":"messages.post","seconds":3600}' "$url/_emulator/lock")" 401 \
  "nobody on the control path"
runuser -u nobody -- cat "$tfile" >/dev/null 2>&1 && fail "nobody read the token file"
# Flooding without the token spends no window and sets off no lock.
for _ in $(seq 40); do
  runuser -u nobody -- curl -s -o /dev/null "$url/api/v2/channels/O1/threads"
done
assert_eq "$(code -H "Authorization: Zoho-oauthtoken $token" "$url/api/v2/channels/O5797000000001/threads")" 200 \
  "the owner after 40 requests without the token"
ls "$MNT/general" >/dev/null || fail "the owner cannot list the demo"
fusermount3 -u "$MNT" || fail "unmount the demo"
wait_until 10 bash -c "! kill -0 $emu 2>/dev/null" || fail "the demo's emulator outlived the mount"
CLIQFS_PID=
ok "--demo: random token in a 0600 file; without it (as nobody, or the fixed token) API and control path answer 401"
