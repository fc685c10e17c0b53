#!/usr/bin/env bash
# The log: -o log=FILE with -f and as a daemon, -o verbose=3 traces every
# HTTP request (method, path, API, status, time) and the OAuth refresh, and
# no line holds a token, the client secret or the refresh token.
. "$(dirname "$0")/lib.sh"

SECRET=cs-$RANDOM-$RANDOM-secret
REFRESH=rt-$RANDOM-$RANDOM-refresh
emu_start --demo --time-scale 20 --client-secret "$SECRET" --refresh-token "$REFRESH" ||
  fail "emulator did not start"
msgs="general/Q1 planning/messages"
log=$MT_DIR/trace.log

# 1. -f with a log file and the HTTP trace, signed in with a refresh token.
oauth="api_url=$EMU_URL,accounts_url=$EMU_URL,client_id=emulator-client,client_secret=$SECRET,refresh_token=$REFRESH,time_scale=20"
"$CLIQFS" -f -o "$oauth,log=$log,verbose=3" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount"
cat "$MNT/$msgs" >/dev/null || fail "cat messages"
wait_until 10 grep -q 'http: GET /api/v2/chats/.* (chats.messages) -> 200' "$log" ||
  fail "no HTTP trace line for the messages fetch: $(tail -n 5 "$log")"
grep -q 'http: POST /oauth/v2/token (oauth.token) -> 200' "$log" ||
  grep -q 'http: POST /oauth/v2/token .* -> 200' "$log" ||
  fail "no trace line of the token refresh: $(head -n 5 "$log")"
# A refused read is a note in the log too.
cat "$MNT/general/no such thread/messages" 2>/dev/null
access=$(emu_ctl GET /_emulator/state | jq -r '.. | .access_token? // empty' | head -n 1)
for secret in "$SECRET" "$REFRESH" ${access:+"$access"}; do
  grep -qF -- "$secret" "$log" && fail "the log holds a secret ($secret)"
done
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z cliqfs\[[0-9]+\] http: ' "$log" ||
  fail "log lines have no time stamp and level: $(head -n 2 "$log")"
assert_eq "$(stat -c %a "$log")" 600 "mode of the log file"
ok "-f -o log=FILE,verbose=3: $(grep -c ' http: ' "$log") HTTP lines, no secret, mode 0600"
sed 's/^/  /' "$log"
mt_unmount || fail "unmount"

# 2. As a daemon, at the default level: the trace is off, notes still come.
: >"$log"
"$CLIQFS" -o "$oauth,log=$log" "$MNT" 2>>"$MT_LOG" || fail "daemon mount"
wait_until 10 mountpoint -q "$MNT" || fail "no daemon mount"
CLIQFS_PID=$(pgrep -n -f -- "log=$log" || true)
emu_ctl POST /_emulator/lock '{"api":"chats.messages","seconds":600}' >/dev/null
cat "$MNT/general/Holiday party 2026/messages" >/dev/null 2>&1
wait_until 10 grep -q ' note: .*Holiday party 2026/messages' "$log" ||
  fail "no note for the refused read: $(cat "$log")"
grep -q ' http: ' "$log" && fail "HTTP trace at the default level"
ok "daemon -o log=FILE: the refused read is a note, no HTTP trace by default"

# 3. Values refused with a reason.
mkdir -p "$MT_DIR/other"
expect_errno "absolute path" "'$CLIQFS' -f -o '$oauth,log=relative.log' '$MT_DIR/other'"
expect_errno "verbose = '9'" "'$CLIQFS' -f -o '$oauth,verbose=9' '$MT_DIR/other'"
ok "log= must be absolute, verbose= 0 to 3"
