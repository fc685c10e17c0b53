#!/usr/bin/env bash
# Credentials Cliq refuses: the error says what to do, status says
# "rejected".  A static access token the API rejects (401), and a refresh
# token the token endpoint refuses (revoked).
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"

# ---- a rejected static token --------------------------------------------------------
"$CLIQFS" -f -o "api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=not-the-token" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount"
expect_errno "Permission denied" ls "$MNT"
line=$(grep -m 1 $'\tEACCES\t' "$MNT/.cliqfs/errors") || fail "no errors line: $(cat "$MNT/.cliqfs/errors")"
case "$line" in
  *"put a new one in the config, or run cliqfs auth"*) ;;
  *) fail "the errors line does not say what to do: [$line]" ;;
esac
assert_eq "$(jq -r .auth "$MNT/.cliqfs/status")" rejected "status auth after a 401 on a static token"
ok "a rejected access token: [$(cut -f 5 <<<"$line")], status auth rejected"
cd /
mt_unmount || fail "unmount"

# ---- a refresh token the token endpoint refuses -----------------------------------
CONF=$MT_DIR/revoked.conf
printf 'client_id = emulator-client\nclient_secret = emulator-secret\nrefresh_token = revoked-long-ago\n' >"$CONF"
chmod 600 "$CONF"
"$CLIQFS" -f -o "config=$CONF,api_url=$EMU_URL,accounts_url=$EMU_URL,time_scale=20" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount with a revoked refresh token"
expect_errno "Permission denied" ls "$MNT"
line=$(grep -m 1 $'\tEACCES\t' "$MNT/.cliqfs/errors") || fail "no errors line: $(cat "$MNT/.cliqfs/errors")"
case "$line" in
  *"refused the credentials"*"run cliqfs auth again"*) ;;
  *) fail "the errors line does not say what to do: [$line]" ;;
esac
grep -q "revoked-long-ago" "$MNT/.cliqfs/errors" "$MT_LOG" && fail "the refresh token is in a log"
assert_eq "$(jq -r .auth "$MNT/.cliqfs/status")" rejected "status auth after a refused refresh token"
ok "a refused refresh token: [$(cut -f 5 <<<"$line")], status auth rejected"
