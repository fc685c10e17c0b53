#!/usr/bin/env bash
# The cliqfs command line as a user meets it (suite 'cli'):
#   --help / --version, mistakes on the command line and in the config file,
#   `cliqfs auth` against the emulator, tokens kept out of /proc/PID/cmdline,
#   and `cliqfs --demo`: mount, ls, unmount, and nothing left behind.
# Needs: CLIQFS (the binary), CLIQ_EMULATOR, EMU_HARNESS, CLIQFS_VERSION.
set -uo pipefail

for v in CLIQFS CLIQ_EMULATOR EMU_HARNESS CLIQFS_VERSION; do
  if [ -z "${!v:-}" ]; then echo "FATAL: $v is not set" >&2; exit 1; fi
done
. "$EMU_HARNESS"

T=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-cli-test.XXXXXX")
# Everything cliqfs would touch in $HOME goes in here instead.
export XDG_CONFIG_HOME=$T/config XDG_STATE_HOME=$T/state XDG_CACHE_HOME=$T/cache
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"

FAILS=0
MOUNTS=()     # mount points to unmount at exit
PIDS=()       # processes to stop at exit
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

cleanup() {
  local rc=$?
  local m p
  for m in "${MOUNTS[@]}"; do
    if is_mounted "$m"; then fusermount3 -u -z "$m" 2>/dev/null; fi
  done
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null
  done
  nothing_left_under "$T" || rc=1
  rm -rf "$T"
  emu_cleanup
  exit "$rc"
}
trap cleanup EXIT

# wait_for SECONDS COMMAND...: polls until the command succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  while ! "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    nap 0.05
  done
}

alive() {
  # A zombie counts as gone: it runs nothing and holds nothing.
  [ -e "/proc/$1" ] && ! grep -qE '^State:[[:space:]]+[ZX]' "/proc/$1/status" 2>/dev/null
}
gone() { ! alive "$1"; }
wait_gone() { wait_for "$2" gone "$1"; }

# pids_with_arg STRING: processes whose command line contains STRING (our
# mount points are unique temporary paths).
# Read by the shell (mapfile), with no process per /proc entry: polls call it.
pids_with_arg() {
  local d a
  local -a args
  for d in /proc/[0-9]*; do
    mapfile -d '' -t args <"$d/cmdline" 2>/dev/null || continue
    for a in "${args[@]}"; do
      if [ "$a" = "$1" ]; then
        echo "${d#/proc/}"
        break
      fi
    done
  done
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# run OUT ERR ARGS...: runs cliqfs, stdout to OUT, stderr to ERR; returns its status.
run() {
  local out=$1 err=$2; shift 2
  "$CLIQFS" "$@" >"$out" 2>"$err"
}

expect_fail_with() { # WHAT NEEDLE ARGS...
  local what=$1 needle=$2; shift 2
  if run "$T/out" "$T/err" "$@"; then
    fail "$what: exited 0"
  elif grep -qF -- "$needle" "$T/err"; then
    ok "$what"
  else
    fail "$what: stderr lacks '$needle': $(cat "$T/err")"
  fi
}

MNT=$T/mnt
mkdir -p "$MNT"

# ---- --help and --version ---------------------------------------------------
if run "$T/help" "$T/err" --help; then ok "--help exits 0"; else fail "--help exit status"; fi
for want in "config=FILE" "dc=DC" "client_id=ID" "client_secret=SECRET" \
            "refresh_token=TOKEN" "access_token=TOKEN" "api_url=URL" \
            "accounts_url=URL" "history=N" "max_wait=SECONDS" "timeout=SECONDS" "time_scale=N" \
            "limit.API=N/SECONDS" "limit.chats.messages" "= 15/60" \
            "(default: 100)" "(default: 60)" "(default: us)" "(default: 1)" \
            "-f " "-d " "-s " "allow_other" "default_permissions" "--demo" \
            "auth" "--version" "$XDG_CONFIG_HOME/cliqfs/config"; do
  grep -qF -- "$want" "$T/help" || fail "--help does not mention '$want'"
done
# Every option line of cliqfs's own keys says its default.
n_opts=$(grep -cE '^  -o [a-zA-Z_.]+=' "$T/help")
n_defaults=$(awk '/^  -o [a-z_.A-Z]+=/{inopt=1} inopt && /default/{d++; inopt=0} END{print d+0}' "$T/help")
if [ "$n_opts" -ge 12 ] && [ "$n_defaults" -ge "$n_opts" ]; then
  ok "--help: $n_opts -o options, each with its default"
else
  fail "--help: $n_opts -o options but $n_defaults defaults"
fi
run "$T/h2" "$T/err" -h && cmp -s "$T/help" "$T/h2" && ok "-h is --help" || fail "-h differs from --help"

if run "$T/version" "$T/err" --version; then
  first=$(sed -n 1p "$T/version")
  [ "$first" = "cliqfs $CLIQFS_VERSION" ] && ok "--version: $first" || fail "--version first line: '$first'"
  grep -qE '^libfuse 3\.[0-9]+' "$T/version" && ok "--version names libfuse" || fail "--version lacks libfuse: $(cat "$T/version")"
else
  fail "--version exit status"
fi
run "$T/ah" "$T/err" auth --help && grep -qF -- "--client-secret" "$T/ah" && grep -qF -- "--accounts-url" "$T/ah" \
  && ok "auth --help" || fail "auth --help"

# ---- Mistakes, before anything is mounted --------------------------------------
expect_fail_with "no mount point" "no MOUNTPOINT" -o dc=eu
expect_fail_with "missing mount point folder" "mkdir -p" "$T/nowhere"
expect_fail_with "unknown option" "unknown option '--bogus'" --bogus "$MNT"
expect_fail_with "too many arguments" "too many arguments" a b "$MNT"
expect_fail_with "bad dc in -o" "dc = 'mars' is not a Zoho data centre" -o dc=mars "$MNT"
expect_fail_with "-o needs a value" "-o history needs a value" -o history "$MNT"
expect_fail_with "bad limit API" "unknown API 'chats.nope'" -o access_token=x,limit.chats.nope=1/60 "$MNT"
expect_fail_with "bad limit value" "N/SECONDS" -o access_token=x,limit.chats.messages=fast "$MNT"
expect_fail_with "non-loopback http" "api_url = 'http://example.com' is refused" -o access_token=x,api_url=http://example.com "$MNT"
expect_fail_with "missing config= file" "$T/none.conf: the config file does not exist" -o "config=$T/none.conf" "$MNT"
expect_fail_with "no credentials" "cliqfs auth" "$MNT"

printf 'dc = eu\n# fine so far\nhistory = lots\n' >"$T/bad.conf"
expect_fail_with "file:line of a bad value" "$T/bad.conf:3: history = 'lots'" -o "config=$T/bad.conf" "$MNT"
printf 'dc = eu\ncolour = blue\n' >"$T/unknown.conf"
expect_fail_with "file:line of an unknown key" "$T/unknown.conf:2: unknown key 'colour'" -o "config=$T/unknown.conf" "$MNT"

SECRET_VALUE=1000.do-not-print-me-$RANDOM$RANDOM
printf 'client_id = 1000.ID\nclient_secret = s\nrefresh_token = %s\n' "$SECRET_VALUE" >"$T/open.conf"
chmod 644 "$T/open.conf"
expect_fail_with "world-readable secret refused" "readable by others (mode 0644); run chmod 600 $T/open.conf" -o "config=$T/open.conf" "$MNT"
grep -qF "$SECRET_VALUE" "$T/err" && fail "the refused file's secret was printed"
chmod 640 "$T/open.conf"
expect_fail_with "group-readable secret refused" "readable by its group" -o "config=$T/open.conf" "$MNT"
# The default config file is checked the same way.
mkdir -p "$XDG_CONFIG_HOME/cliqfs"
cp "$T/open.conf" "$XDG_CONFIG_HOME/cliqfs/config"
chmod 644 "$XDG_CONFIG_HOME/cliqfs/config"
expect_fail_with "default config, world-readable" "chmod 600 $XDG_CONFIG_HOME/cliqfs/config" "$MNT"
rm -f "$XDG_CONFIG_HOME/cliqfs/config"
is_mounted "$MNT" && fail "a failed start left a mount"

# ---- cliqfs auth against the emulator -----------------------------------------
emu_start --quiet || { echo "FATAL: no emulator" >&2; exit 1; }
AUTH=(auth --dc us --client-id emulator-client --client-secret emulator-secret --accounts-url "$EMU_URL")

CONF=$T/authdir/nested/config
if run "$T/out" "$T/err" "${AUTH[@]}" --api-url "$EMU_URL" --code emulator-code --config "$CONF"; then
  ok "auth with a good code"
  [ "$(stat -c %a "$CONF")" = 600 ] && ok "config written 0600" || fail "config mode $(stat -c %a "$CONF")"
  [ "$(stat -c %a "$T/authdir/nested")" = 700 ] && ok "folder created 0700" || fail "folder mode $(stat -c %a "$T/authdir/nested")"
  grep -qE '^refresh_token = .+' "$CONF" && ok "config holds refresh_token" || fail "no refresh_token in: $(sed 's/=.*/= .../' "$CONF")"
  grep -qxF "client_id = emulator-client" "$CONF" || fail "client_id not stored"
  grep -qxF "accounts_url = $EMU_URL" "$CONF" || fail "accounts_url not stored"
  grep -qxF "dc = us" "$CONF" || fail "dc not stored"
  refresh=$(sed -n 's/^refresh_token = //p' "$CONF")
  grep -qF -- "$refresh" "$T/out" "$T/err" && fail "auth printed the refresh token"
  grep -qF "cliqfs -o config=$CONF ~/cliq" "$T/out" && ok "auth says what to do next" || fail "no next steps: $(cat "$T/out")"
  ls "$T/authdir/nested" | grep -q '\.tmp' && fail "temporary file left next to the config"
else
  fail "auth with a good code: $(cat "$T/err")"
fi

# The code is single use: a second exchange is refused, clearly, and writes nothing.
expect_fail_with "used code refused" "the code was refused (invalid_code)" "${AUTH[@]}" --code emulator-code --config "$T/again/config"
[ -e "$T/again/config" ] && fail "a refused code wrote a config"
expect_fail_with "bad code refused" "generate a new one" "${AUTH[@]}" --code wrong-code --config "$T/bad/config"
[ -e "$T/bad/config" ] && fail "a bad code wrote a config" || ok "bad code: no file"
expect_fail_with "bad secret refused" "the client was refused (invalid_client_secret)" \
  auth --client-id emulator-client --client-secret nope --code x --accounts-url "$EMU_URL" --config "$T/bad/config"
expect_fail_with "wrong client (wrong DC) explained" "data centre where the Self Client" \
  auth --dc eu --client-id other --client-secret s --code x --accounts-url "$EMU_URL" --config "$T/bad/config"
emu_ctl POST /_emulator/faults '{"api":"oauth.token","kind":"throttle","count":1}' >/dev/null
expect_fail_with "throttled auth explained" "too many token requests" "${AUTH[@]}" --code x --config "$T/bad/config"
emu_ctl POST /_emulator/unlock '{"api":"*"}' >/dev/null
expect_fail_with "unreachable accounts server" "could not get a token from http://127.0.0.1:1" \
  auth --client-id a --client-secret b --code c --accounts-url http://127.0.0.1:1 --config "$T/bad/config"
expect_fail_with "auth refuses non-loopback http" "--accounts-url http://accounts.example.com" \
  auth --client-id a --client-secret b --code c --accounts-url http://accounts.example.com --config "$T/bad/config"
expect_fail_with "auth: unknown dc" "--dc mars is not a Zoho data centre" \
  auth --dc mars --client-id a --client-secret b --code c --config "$T/bad/config"
expect_fail_with "auth: missing code" "--code is missing" auth --client-id a --client-secret b
[ -e "$T/bad/config" ] && fail "a failed auth wrote a config"

# ---- Mounting with what auth stored (refresh token) ---------------------------
if [ -f "$CONF" ]; then
  "$CLIQFS" -f -o "config=$CONF" "$MNT" 2>"$T/mount.log" &
  MPID=$!; PIDS+=("$MPID"); MOUNTS+=("$MNT")
  if wait_for 15 is_mounted "$MNT"; then
    if wait_for 15 bash -c "ls '$MNT' | grep -q ."; then
      ok "mount with the stored refresh token lists channels: $(ls "$MNT" | tr '\n' ' ')"
    else
      fail "ls of the refresh-token mount is empty: $(cat "$T/mount.log")"
    fi
    fusermount3 -u "$MNT" || fail "fusermount3 -u"
    wait_gone "$MPID" 10 && ok "foreground cliqfs exits at unmount" || fail "cliqfs $MPID still running after unmount"
  else
    fail "refresh-token mount did not appear: $(cat "$T/mount.log")"
  fi
fi

# ---- Tokens stay out of /proc/PID/cmdline ----------------------------------------
TOKEN=tok-$RANDOM$RANDOM$RANDOM
emu_start --quiet --access-token "$TOKEN" || { echo "FATAL: no emulator" >&2; exit 1; }
MNT2=$T/mnt-token
mkdir -p "$MNT2"
# Foreground, so that $! is the process serving the mount.
"$CLIQFS" -f -o "api_url=$EMU_URL,access_token=$TOKEN,accounts_url=$EMU_URL" "$MNT2" 2>"$T/token.log" &
TPID=$!; PIDS+=("$TPID"); MOUNTS+=("$MNT2")
if wait_for 15 is_mounted "$MNT2"; then
  wait_for 15 bash -c "ls '$MNT2' | grep -q ." && ok "token mount serves" || fail "token mount: ls empty: $(cat "$T/token.log")"
  cmd=$(cmdline_of "$TPID")
  if [[ "$cmd" == *"$TOKEN"* ]]; then fail "token visible in /proc/$TPID/cmdline"; else ok "token not in /proc/PID/cmdline"; fi
  [[ "$cmd" == *"access_token=****"* ]] && ok "cmdline shows the key, value wiped" || fail "cmdline: $cmd"
  [[ "$(ps -o args= -p "$TPID")" == *"$TOKEN"* ]] && fail "token visible to ps"
  fusermount3 -u "$MNT2"
  wait_gone "$TPID" 10 || fail "token mount still running after unmount"
else
  fail "token mount did not appear: $(cat "$T/token.log")"
fi
# The same as a daemon (the process serving the mount is a fork of the one
# started), with a config file whose token is wrong: -o wins over the file.
printf 'api_url = %s\naccess_token = wrong-token\nhistory = 5\n' "$EMU_URL" >"$T/token.conf"
chmod 600 "$T/token.conf"
if run "$T/out" "$T/err" -o "config=$T/token.conf,access_token=$TOKEN" "$MNT2"; then
  MOUNTS+=("$MNT2")
  if wait_for 15 is_mounted "$MNT2"; then
    daemon=$(pids_with_arg "$MNT2" | head -n 1)
    if [ -n "$daemon" ]; then
      PIDS+=("$daemon")
      [[ "$(cmdline_of "$daemon")" == *"$TOKEN"* ]] && fail "token in the daemon's cmdline" || ok "daemon's cmdline has no token"
      # Listing works only with the -o token (the emulator refuses the file's).
      wait_for 15 bash -c "ls '$MNT2' | grep -q general" && ok "-o access_token overrides the config file" \
        || fail "daemon mount with -o token: ls: $(ls "$MNT2" 2>&1)"
    else
      fail "daemon of $MNT2 not found"
    fi
    fusermount3 -u "$MNT2"
    [ -n "$daemon" ] && { wait_gone "$daemon" 10 || fail "daemon still running after unmount"; }
  else
    fail "daemon mount did not appear: $(cat "$T/err")"
  fi
else
  fail "daemon mount: $(cat "$T/err")"
fi

# As an /etc/fstab line of type fuse.cliqfs mounts it: mount.fuse3 runs
# `cliqfs SOURCE MOUNTPOINT -o OPTIONS` with cliqfs found in PATH.
printf 'api_url = %s\naccess_token = %s\n' "$EMU_URL" "$TOKEN" >"$T/fstab.conf"
chmod 600 "$T/fstab.conf"
if PATH=$(dirname "$CLIQFS"):$PATH mount.fuse3 cliqfs "$MNT2" -t cliqfs -o "noauto,ro,config=$T/fstab.conf" 2>"$T/err"; then
  MOUNTS+=("$MNT2")
  if wait_for 15 is_mounted "$MNT2" && wait_for 15 bash -c "ls '$MNT2' | grep -q general"; then
    ok "mount.fuse3 (fstab) mount lists channels"
  else
    fail "mount.fuse3 mount: $(ls "$MNT2" 2>&1)"
  fi
  # A FUSE option (ro) reached FUSE; cliqfs's own (config=) did not.
  opts=$(awk -v m="$MNT2" '$5 == m { print $6 " " $NF }' /proc/self/mountinfo)
  [[ "$opts" == ro,* ]] && ok "-o ro passed through to FUSE" || fail "mount options: $opts"
  [[ "$opts" == *config=* ]] && fail "config= reached the kernel's mount options: $opts"
  daemon=$(pids_with_arg "$MNT2" | head -n 1)
  [ -n "$daemon" ] && PIDS+=("$daemon")
  fusermount3 -u "$MNT2"
  [ -n "$daemon" ] && { wait_gone "$daemon" 10 || fail "fstab daemon still running after unmount"; }
else
  fail "mount.fuse3 cliqfs: $(cat "$T/err")"
fi
emu_stop

# ---- cliqfs --demo ---------------------------------------------------------------
# emulator_child_of PID: the cliq-emulator process whose parent is PID.
emulator_child_of() {
  local d st
  local -a args
  for d in /proc/[0-9]*; do
    IFS= read -r st <"$d/stat" 2>/dev/null || continue
    st=${st##*) }
    st=${st#* }
    [ "${st%% *}" = "$1" ] || continue
    mapfile -d '' -t args <"$d/cmdline" 2>/dev/null || continue
    [[ "${args[*]}" == *cliq-emulator* ]] && echo "${d#/proc/}"
  done
}

demo_round() { # WHAT daemon|foreground [more cliqfs options...]
  local what=$1 mode=$2; shift 2
  local mnt=$T/demo-$RANDOM daemon emulator tmp fg_pid=
  mkdir -p "$mnt"
  # Found without $CLIQ_EMULATOR: the build tree's emulator.
  if [ "$mode" = foreground ]; then
    env -u CLIQ_EMULATOR "$CLIQFS" --demo -f "$@" "$mnt" >"$T/demo.out" 2>"$T/demo.err" &
    fg_pid=$!
    PIDS+=("$fg_pid")
  elif ! env -u CLIQ_EMULATOR "$CLIQFS" --demo "$@" "$mnt" >"$T/demo.out" 2>"$T/demo.err"; then
    fail "$what: cliqfs --demo failed: $(cat "$T/demo.err")"
    return
  fi
  MOUNTS+=("$mnt")
  if ! wait_for 20 is_mounted "$mnt"; then
    fail "$what: no mount appeared: $(cat "$T/demo.err")"
    return
  fi
  daemon=${fg_pid:-$(pids_with_arg "$mnt" | head -n 1)}
  [ -n "$daemon" ] || { fail "$what: daemon not found"; return; }
  PIDS+=("$daemon")
  if wait_for 20 bash -c "[ \$(ls '$mnt' | wc -l) -ge 2 ]"; then
    ok "$what: ls shows channels: $(ls "$mnt" | tr '\n' ' ')"
  else
    fail "$what: ls shows $(ls "$mnt" | wc -l) entries: $(cat "$T/demo.err")"
  fi
  emulator=$(emulator_child_of "$daemon" | head -n 1)
  [ -n "$emulator" ] && ok "$what: emulator $emulator is the daemon's child" || fail "$what: no emulator child of $daemon"
  [ -n "$emulator" ] && PIDS+=("$emulator")
  tmp=$(ls -d "$TMPDIR"/cliqfs-demo-* 2>/dev/null | head -n 1)
  [ -n "$tmp" ] && [ -d "$tmp/state" ] && ok "$what: private state folder $tmp" || fail "$what: no private folder in $TMPDIR"

  fusermount3 -u "$mnt" || fail "$what: fusermount3 -u"
  wait_gone "$daemon" 10 && ok "$what: cliqfs gone" || fail "$what: cliqfs $daemon still running"
  if [ -n "$fg_pid" ]; then
    wait "$fg_pid"; local rc=$?
    [ "$rc" -eq 0 ] && ok "$what: exit status 0 after unmount" || fail "$what: exit status $rc"
  fi
  if [ -n "$emulator" ]; then
    wait_gone "$emulator" 10 && ok "$what: emulator gone" || fail "$what: emulator $emulator still running"
  fi
  is_mounted "$mnt" && fail "$what: stale mount" || ok "$what: no mount left"
  if [ -n "$tmp" ]; then
    wait_for 5 test ! -e "$tmp" && ok "$what: private folder removed" || fail "$what: $tmp left behind"
  fi
}
demo_round "demo" daemon
demo_round "demo -f -s" foreground -s

# A daemon killed outright takes its emulator with it.
mnt=$T/demo-kill
mkdir -p "$mnt"
if "$CLIQFS" --demo "$mnt" 2>"$T/demo.err"; then
  MOUNTS+=("$mnt")
  if wait_for 20 is_mounted "$mnt"; then
    daemon=$(pids_with_arg "$mnt" | head -n 1)
    emulator=$([ -n "$daemon" ] && emulator_child_of "$daemon" | head -n 1)
    if [ -n "$daemon" ] && [ -n "$emulator" ]; then
      PIDS+=("$daemon" "$emulator")
      kill -KILL "$daemon"
      wait_gone "$emulator" 10 && ok "emulator dies with a killed daemon" || fail "emulator $emulator outlived its daemon"
    else
      fail "kill test: daemon '$daemon' or emulator '$emulator' not found"
    fi
    fusermount3 -u -z "$mnt" 2>/dev/null
    rm -rf "$TMPDIR"/cliqfs-demo-*
  else
    fail "kill test: no mount"
  fi
else
  fail "kill test: $(cat "$T/demo.err")"
fi

if [ "$FAILS" -ne 0 ]; then
  echo "$FAILS check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
