#!/usr/bin/env bash
# Start-up as a daemon: `cliqfs MOUNTPOINT` (no -f) exits 0 only once the
# daemon serves the mount, and exits non-zero with the daemon's reason when
# start-up fails after the fork (state folder, --demo's emulator), leaving
# no mount and no process behind.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
OPTS="api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN,time_scale=20"
daemon_of() { pgrep -f -- " $MNT\$" | head -n 1; }
no_daemon() { [ -z "$(daemon_of)" ]; }

# ---- a state folder that cannot be made: the reason, a non-zero exit --------------
touch "$MT_DIR/not-a-folder"
rc=0
XDG_STATE_HOME="$MT_DIR/not-a-folder" "$CLIQFS" -o "$OPTS" "$MNT" >"$MT_DIR/out" 2>"$MT_DIR/err" || rc=$?
[ "$rc" -ne 0 ] || fail "cliqfs exited 0 although the daemon could not start: $(cat "$MT_DIR/err")"
grep -q "^cliqfs: .*not-a-folder" "$MT_DIR/err" || fail "the daemon's reason is not shown: [$(cat "$MT_DIR/err")]"
mountpoint -q "$MNT" && fail "a mount was left behind"
wait_until 5 no_daemon || fail "a daemon was left behind: $(daemon_of)"
ok "start-up failure in the daemon: exit $rc with [$(head -n 1 "$MT_DIR/err")]"

# ---- --demo whose emulator cannot start -----------------------------------------
rc=0
CLIQ_EMULATOR=/bin/false "$CLIQFS" --demo "$MNT" >"$MT_DIR/out" 2>"$MT_DIR/err" || rc=$?
[ "$rc" -ne 0 ] || fail "cliqfs --demo exited 0 with an emulator that fails"
grep -q "demo" "$MT_DIR/err" || fail "--demo's reason is not shown: [$(cat "$MT_DIR/err")]"
mountpoint -q "$MNT" && fail "a --demo mount was left behind"
wait_until 5 no_daemon || fail "a --demo daemon was left behind"
ok "--demo start-up failure: exit $rc with the reason"

# ---- a FUSE option the kernel refuses at INIT ----------------------------------------
rc=0
"$CLIQFS" -o "$OPTS,max_read=4096" "$MNT" >"$MT_DIR/out" 2>"$MT_DIR/err" || rc=$?
[ "$rc" -ne 0 ] || fail "cliqfs -o max_read=4096 exited 0: [$(cat "$MT_DIR/err")]"
grep -q "^cliqfs: the kernel did not take the mount" "$MT_DIR/err" ||
  fail "no reason for the refused option: [$(cat "$MT_DIR/err")]"
grep -q "max.* read size" "$MT_DIR/err" || fail "libfuse's own reason is not relayed: [$(cat "$MT_DIR/err")]"
mountpoint -q "$MNT" && fail "a mount was left behind after a refused option"
wait_until 5 no_daemon || fail "a daemon was left behind after a refused option"
ok "an option refused at INIT (max_read=4096): exit $rc with [$(tail -n 1 "$MT_DIR/err")]"

# ---- success: exit 0 once the mount serves ---------------------------------------
"$CLIQFS" -o "$OPTS" "$MNT" 2>"$MT_DIR/err" || fail "daemon mount: $(cat "$MT_DIR/err")"
CLIQFS_PID=$(daemon_of)
[ -n "$CLIQFS_PID" ] || fail "no daemon serving $MNT"
mountpoint -q "$MNT" || fail "no mount when cliqfs returned"
ls "$MNT/general" >/dev/null || fail "the mount does not serve at once"
[ -s "$MT_DIR/err" ] && fail "a successful start printed: $(cat "$MT_DIR/err")"
echo "from the daemon" >>"$MNT/general/Q1 planning/messages" || fail "append"
assert_eq "$(thread_jq general "Q1 planning" '.messages[-1].text')" "from the daemon" "the daemon delivers"
fusermount3 -u "$MNT" || fail "unmount"
wait_until 10 no_daemon || fail "the daemon did not exit at unmount"
CLIQFS_PID=
ok "daemon mount: exit 0 when serving, delivers, exits at unmount"
