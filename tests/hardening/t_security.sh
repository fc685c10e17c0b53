#!/usr/bin/env bash
# Security:
#  1. tokens and secrets (static token; client secret, refresh token and the
#     access tokens issued from them) never appear in the daemon's log (with
#     -d), .cliqfs/errors, .cliqfs/status, /proc/PID/cmdline or environ, ps,
#     or the cache, also while requests fail and tokens are refreshed;
#  2. plain http to a non-loopback address is refused at mount, before any
#     connection is attempted (strace: no AF_INET/AF_INET6 connect at all);
#  3. TLS certificates are verified: a self-signed server on 127.0.0.1 gives
#     EIO (and the server sees the client reject its certificate), while curl
#     trusting that certificate gets an answer from it;
#  4. another local user cannot read the mount unless allow_other was given;
#  5. state files are created 0600 and state folders 0700 (cache too), with
#     the daemon started under umask 000 so that nothing relies on the umask.
. "$MOUNT_LIB"
set -o pipefail
: "${FSOP:?}"

CHECKS=0
fails=0
check() { # WHAT COMMAND...
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then
    echo "ok - $what"
  else
    echo "FAIL: $what" >&2
    fails=$((fails + 1))
  fi
}

TOKEN=h5tok-$RANDOM$RANDOM$RANDOM$RANDOM
CSECRET=h5sec-$RANDOM$RANDOM$RANDOM$RANDOM
RTOKEN=h5ref-$RANDOM$RANDOM$RANDOM$RANDOM
ISSUED_RE='1000\.[0-9a-f]{32}\.[0-9a-f]{32}'
# The daemon must not find the secrets in its environment by our doing.
export -n EMU_TOKEN

# no_secret_in WHAT FILE...: none of the secrets (nor an issued access token)
# is in the files.
no_secret_in() {
  local what=$1 f hits=
  shift
  for f in "$@"; do
    [ -e "$f" ] || continue
    if grep -rqaF -e "$TOKEN" -e "$CSECRET" -e "$RTOKEN" -- "$f" ||
       grep -rqaE -- "$ISSUED_RE" "$f"; then
      hits="$hits $f"
    fi
  done
  [ -z "$hits" ] || { echo "secret found in$hits ($what)" >&2; return 1; }
}

proc_clean() { # PID
  local f
  for f in cmdline environ; do
    tr '\0' '\n' <"/proc/$1/$f" >"$MT_DIR/proc.$f" 2>/dev/null || return 1
  done
  ps -o args= -p "$1" >"$MT_DIR/ps.txt"      # the emulator's own arguments hold them
  no_secret_in "/proc/$1/cmdline, environ, ps" "$MT_DIR/proc.cmdline" "$MT_DIR/proc.environ" "$MT_DIR/ps.txt"
}

fault() { emu_ctl POST /_emulator/faults "{\"api\":\"$1\",\"kind\":\"$2\",\"count\":${3:-1}}" >/dev/null; }

# The mounts run without background sync (sync=off): an injected fault goes
# to the next request of its API, which must be the read under test.

emu_start --synthetic 2x4x6 --time-scale 20 --access-token "$TOKEN" \
  --client-secret "$CSECRET" --refresh-token "$RTOKEN" || fail "emulator did not start"

# ---- 1a and 5: static token, -d, umask 000 ------------------------------------------------
(umask 000 && exec "$CLIQFS" -f -d -o "api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$TOKEN,time_scale=20,sync=off" "$MNT") 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount within 10 s"
CH=synthetic-001
mapfile -t TH < <(ls "$MNT/$CH" | grep -v -e '^info$' -e '^messages$')
[ "${#TH[@]}" -ge 3 ] || fail "expected threads in $CH"
cat "$MNT/$CH/${TH[0]}/messages" "$MNT/$CH/${TH[0]}/members" >/dev/null || fail "reading"
printf 'security check %s\n' "$RANDOM" | "$FSOP" write "$MNT/$CH/${TH[0]}/messages" -a >/dev/null || fail "posting"
printf 'x%.0s' $(seq 1 5001) | "$FSOP" write "$MNT/$CH/${TH[0]}/messages" -a >/dev/null
fault threads.followers.get 401
"$FSOP" read "$MNT/$CH/${TH[1]}/followers" >/dev/null
fault messages.post 500
printf 'will fail\n' | "$FSOP" write "$MNT/$CH/${TH[1]}/messages" -a >/dev/null
fault threads.get invalid_json
"$FSOP" read "$MNT/$CH/${TH[2]}/info" >/dev/null
mkdir "$MNT/$CH/Security draft" && printf 'draft main\n' | "$FSOP" write "$MNT/$CH/Security draft/main" -t >/dev/null &&
  printf 'first reply\n' | "$FSOP" write "$MNT/$CH/Security draft/messages" -a >/dev/null || fail "making a thread"
printf 'close\n' | "$FSOP" write "$MNT/$CH/${TH[2]}/state" -t >/dev/null || fail "closing a thread"
cp "$MNT/.cliqfs/errors" "$MT_DIR/errors.txt"
cp "$MNT/.cliqfs/status" "$MT_DIR/status.txt"
logged_all() { # FILE ENAME...: a line for each errno
  local f=$1 e
  shift
  for e in "$@"; do grep -qE $'\t'"$e"$'\t' "$f" || { echo "no $e line in .cliqfs/errors" >&2; return 1; }; done
}
check "static token: failures were logged (401: EACCES, invalid JSON: EIO, EMSGSIZE)" \
  logged_all "$MT_DIR/errors.txt" EACCES EIO EMSGSIZE
check "static token: not in .cliqfs/errors, .cliqfs/status or the daemon's log (-d)" \
  no_secret_in "errors, status, log" "$MT_DIR/errors.txt" "$MT_DIR/status.txt" "$MT_LOG"
check "static token: not in /proc/PID/cmdline, environ or ps" proc_clean "$CLIQFS_PID"
check "static token: not in the cache or state folders" \
  no_secret_in "cache, state" "$XDG_CACHE_HOME" "$XDG_STATE_HOME"

modes_ok() { # ROOT: files 0600, folders 0700 below ROOT/cliqfs
  local bad
  [ -d "$1/cliqfs" ] || { echo "no $1/cliqfs" >&2; return 1; }
  bad=$(find "$1/cliqfs" \( -type f ! -perm 600 \) -o \( -type d ! -perm 700 \) -printf '%m %p\n')
  [ -z "$bad" ] || { echo "wrong modes:" >&2; echo "$bad" >&2; return 1; }
}
n_state=$(find "$XDG_STATE_HOME/cliqfs" -type f | wc -l)
check "state: $n_state files 0600 and folders 0700 under umask 000" modes_ok "$XDG_STATE_HOME"
check "state: the folder holds something after writes" test "$n_state" -ge 1
check "cache: files 0600 and folders 0700 under umask 000" modes_ok "$XDG_CACHE_HOME"
mt_unmount || fail "unmounting"

# ---- 1b: refresh token from a config file, refreshed and refused -----------------------------
CONF=$MT_DIR/security.conf
printf 'client_id = emulator-client\nclient_secret = %s\nrefresh_token = %s\n' "$CSECRET" "$RTOKEN" >"$CONF"
chmod 600 "$CONF"
"$CLIQFS" -f -d -o "config=$CONF,api_url=$EMU_URL,accounts_url=$EMU_URL,time_scale=20,sync=off" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount within 10 s (refresh token)"
# Files of the second channel, never read before (nothing cached).
CH2=synthetic-002
mapfile -t U < <(ls "$MNT/$CH2" | grep -v -e '^info$' -e '^messages$')
[ "${#U[@]}" -ge 3 ] || fail "listing $CH2 with a refresh token"
n_tok=$(emu_count oauth.token)
emu_ctl POST /_emulator/expire-tokens >/dev/null
cat "$MNT/$CH2/${U[0]}/members" >/dev/null || fail "reading after the tokens expired"
fault chats.messages 401 2                          # refresh, then refused again
out1=$("$FSOP" read "$MNT/$CH2/${U[1]}/messages")
emu_ctl POST /_emulator/expire-tokens >/dev/null
fault oauth.token 500 5                             # every refresh fails
out2=$("$FSOP" read "$MNT/$CH2/${U[2]}/followers")
emu_ctl DELETE /_emulator/faults >/dev/null
check "refresh token: tokens were refreshed ($(($(emu_count oauth.token) - n_tok)) token requests)" \
  test "$(emu_count oauth.token)" -ge $((n_tok + 2))
check "refresh token: refused after a refresh [$out1], refresh refused [$out2]" \
  bash -c "[[ '$out1' == EACCES@* ]] && [[ '$out2' == E*@* ]]"
cp "$MNT/.cliqfs/errors" "$MT_DIR/errors2.txt"
cp "$MNT/.cliqfs/status" "$MT_DIR/status2.txt"
check "refresh token: the refusals were logged" \
  test "$(grep -cE $'\t(EACCES|EIO)\t' "$MT_DIR/errors2.txt")" -ge 2
check "client secret, refresh token, issued tokens: not in errors, status or the log (-d)" \
  no_secret_in "errors, status, log" "$MT_DIR/errors2.txt" "$MT_DIR/status2.txt" "$MT_LOG"
check "client secret, refresh token, issued tokens: not in /proc/PID/cmdline, environ or ps" \
  proc_clean "$CLIQFS_PID"
check "client secret, refresh token, issued tokens: not in the cache" no_secret_in cache "$XDG_CACHE_HOME"
check "state and cache modes after the refresh-token mount" \
  bash -c "$(declare -f modes_ok); modes_ok '$XDG_STATE_HOME' && modes_ok '$XDG_CACHE_HOME'"

# ---- 4: another local user -----------------------------------------------------------------
OTHER=cliqfs-h5-other
CREATED_USER=
cleanup_user() {
  [ -n "$CREATED_USER" ] && userdel "$OTHER" 2>/dev/null
  CREATED_USER=
}
if [ "$(id -u)" != 0 ]; then
  fail "acting as another local user needs root (useradd, su)"
fi
if ! id "$OTHER" >/dev/null 2>&1; then
  useradd --no-create-home --shell /usr/sbin/nologin "$OTHER" || fail "useradd $OTHER"
  CREATED_USER=1
fi
trap 'rc=$?; cleanup_user; (exit $rc); mt_cleanup' EXIT
chmod 755 "$MT_DIR"                                  # the way to $MNT is open
as_other() { su -s /bin/sh -c "$1" "$OTHER" 2>&1; }
out=$(as_other "ls '$MNT'")
check "another user cannot list the mount: [$out]" \
  bash -c "[[ \"\$1\" == *'Permission denied'* ]]" _ "$out"
out=$(as_other "cat '$MNT/.cliqfs/status'")
check "another user cannot read .cliqfs/status: [$(printf %s "$out" | head -c 120)]" \
  bash -c "[[ \"\$1\" == *'Permission denied'* ]]" _ "$out"
out=$(as_other "stat '$MNT/$CH'")
check "another user cannot stat a channel" bash -c "[[ \"\$1\" == *'Permission denied'* ]]" _ "$out"
mt_unmount || fail "unmounting"
# Control: with allow_other the same user can list it, so the refusal above
# came from the mount and not from the way to it.
"$CLIQFS" -f -o "config=$CONF,api_url=$EMU_URL,accounts_url=$EMU_URL,time_scale=20,allow_other" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no allow_other mount within 10 s"
out=$(as_other "ls '$MNT'")
check "with allow_other another user lists the mount: [$(echo $out)]" \
  bash -c "[[ \"\$1\" == *$CH* ]]" _ "$out"
mt_unmount || fail "unmounting"
chmod 700 "$MT_DIR"
cleanup_user
check "the user made for the test is gone" bash -c "! id '$OTHER' >/dev/null 2>&1 || [ -z '$CREATED_USER' ]"

# ---- 2: plain http to a non-loopback address: refused before any connection -------------------
SCRATCH=$MT_DIR/scratch
mkdir -p "$SCRATCH"
refused_without_connect() { # WHAT ARGS...
  local what=$1 rc
  shift
  timeout -k 2 20 strace -f -qq -e trace=connect -o "$MT_DIR/strace.log" \
    "$CLIQFS" "$@" >"$MT_DIR/refused.out" 2>&1
  rc=$?
  if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then
    echo "$what: exit $rc, expected a refusal" >&2
    fusermount3 -uz "$SCRATCH" 2>/dev/null
    return 1
  fi
  grep -q 'refused\|loopback' "$MT_DIR/refused.out" || { echo "$what: no reason given: $(cat "$MT_DIR/refused.out")" >&2; return 1; }
  if grep -E 'AF_INET6?' "$MT_DIR/strace.log" >&2; then
    echo "$what: a network connection was attempted (above)" >&2
    return 1
  fi
  ! is_mounted "$SCRATCH" || { fusermount3 -uz "$SCRATCH"; echo "$what: mounted" >&2; return 1; }
}
check "api_url=http://10.0.0.1 refused, no connect()" \
  refused_without_connect api_url -f -o "api_url=http://10.0.0.1,accounts_url=$EMU_URL,access_token=x" "$SCRATCH"
check "accounts_url=http://10.0.0.1 refused, no connect()" \
  refused_without_connect accounts_url -f -o "api_url=$EMU_URL,accounts_url=http://10.0.0.1,client_id=a,client_secret=b,refresh_token=c" "$SCRATCH"
check "api_url=http://example.com refused, no DNS lookup or connect()" \
  refused_without_connect hostname -f -o "api_url=http://example.com,access_token=x" "$SCRATCH"
check "api_url=http://[::ffff:10.0.0.1] refused, no connect()" \
  refused_without_connect mapped -f -o "api_url=http://[::ffff:10.0.0.1],access_token=x" "$SCRATCH"
check "api_url=http://127.0.0.1.nip.io (a name, not a loopback address) refused, no connect()" \
  refused_without_connect name-to-loopback -f -o "api_url=http://127.0.0.1.nip.io,access_token=x" "$SCRATCH"
printf 'api_url = http://10.0.0.1\naccess_token = x\n' >"$MT_DIR/http.conf"
chmod 600 "$MT_DIR/http.conf"
check "api_url = http://10.0.0.1 in the config file refused, no connect()" \
  refused_without_connect config-file -f -o "config=$MT_DIR/http.conf" "$SCRATCH"
check "cliqfs auth --accounts-url http://10.0.0.1 refused, no connect()" \
  refused_without_connect auth auth --client-id a --client-secret b --code c \
  --accounts-url http://10.0.0.1 --config "$MT_DIR/auth.conf"

# ---- 3: TLS verification ----------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -days 1 -keyout "$MT_DIR/tls.key" -out "$MT_DIR/tls.crt" >/dev/null 2>&1 || fail "making a certificate"
openssl s_server -accept 127.0.0.1:0 -cert "$MT_DIR/tls.crt" -key "$MT_DIR/tls.key" -www \
  >"$MT_DIR/s_server.log" 2>&1 </dev/null &
SSERVER_PID=$!
MT_PIDS+=("$SSERVER_PID")
wait_until 10 grep -q '^ACCEPT' "$MT_DIR/s_server.log" || fail "openssl s_server did not start"
TLS_PORT=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$MT_DIR/s_server.log")
check "control: curl trusting the certificate gets an answer from the TLS server" \
  test "$(curl -sS --cacert "$MT_DIR/tls.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$TLS_PORT/")" = 200
: >"$MT_DIR/s_server.log.mark"
"$CLIQFS" -f -o "api_url=https://127.0.0.1:$TLS_PORT,accounts_url=https://127.0.0.1:$TLS_PORT,access_token=$TOKEN" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount against the TLS server"
out=$(timeout -k 2 40 "$FSOP" read "$MNT/.cliqfs/status" >/dev/null; timeout -k 2 40 ls "$MNT" 2>&1)
rc=$?
check "a self-signed server: ls fails with EIO [$out]" \
  bash -c "[ $rc != 0 ] && [[ \"\$1\" == *'Input/output error'* ]]" _ "$out"
check "a self-signed server: .cliqfs/errors says EIO and why (certificate)" \
  bash -c "grep -E $'\tEIO\t' '$MNT/.cliqfs/errors' | grep -qi certificate"
check "a self-signed server: the server saw its certificate rejected (unknown ca)" \
  grep -q 'unknown ca' "$MT_DIR/s_server.log"
check "the token did not leak in the TLS failure's messages" \
  no_secret_in "TLS errors" "$MNT/.cliqfs/errors" "$MT_LOG"
mt_unmount || fail "unmounting"
kill "$SSERVER_PID" 2>/dev/null

echo "SUMMARY hardening-security: $CHECKS checks, $((CHECKS - fails)) passed, $fails failed" \
  "(secrets grepped in log/errors/status/cmdline/environ/ps/cache, 7 non-loopback http refusals" \
  "without connect, TLS verification, another user, file modes)"
[ "$fails" = 0 ] || fail "$fails security check(s) failed"
