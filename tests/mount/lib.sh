# tests/mount/lib.sh: helpers for the mount tests (suite 'mount').  Source it
# from bash with CLIQFS, CLIQ_EMULATOR and EMU_HARNESS set (meson does):
#
#   . "$(dirname "$0")/lib.sh"
#   emu_start --demo --time-scale 20      # tests/emulator/harness.sh
#   mt_mount time_scale=20                # cliqfs -f against it, waits for the mount
#   ...                                   # real tools on "$MNT"
#
# The EXIT trap unmounts (fusermount3 -u), stops the daemon and the emulator
# by PID and removes the temporary folder, also when the test fails.
set -u
export LC_ALL=C

. "$EMU_HARNESS"

# Named after the test (and its first argument: a recipe's name), so that a
# mount left behind names the test that left it.
MT_NAME=$(basename "$0" .sh)${1:+-$1}
MT_NAME=${MT_NAME//[^A-Za-z0-9_-]/_}
MT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-$MT_NAME.XXXXXX")
MNT=$MT_DIR/mnt
MT_LOG=$MT_DIR/cliqfs.log
CLIQFS_PID=
MT_PIDS=()        # background helpers (tail -f ...), killed at exit
mkdir -p "$MNT" "$MT_DIR/config" "$MT_DIR/state" "$MT_DIR/cache"
export XDG_CONFIG_HOME=$MT_DIR/config XDG_STATE_HOME=$MT_DIR/state \
  XDG_CACHE_HOME=$MT_DIR/cache

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

ok() {
  echo "ok - $*"
}

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds; fails when
# the deadline passes.  The first polls come quickly (50 ms), later ones
# every 0.4 s at most: a long wait with a costly check (a jq, a request to
# the emulator) would otherwise keep a core busy on a 2-core machine.
wait_until() {
  local limit=$1
  shift
  # EPOCHREALTIME without its dot: microseconds, and no process per poll.
  local deadline=$((${EPOCHREALTIME/./} + limit * 1000000)) ms=50 iv
  while ! "$@"; do
    [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || return 1
    printf -v iv '0.%03d' "$ms"
    nap "$iv"
    ms=$((ms * 3 / 2 > 400 ? 400 : ms * 3 / 2))
  done
}

# yields WANT CODE: the output of shell CODE (evaluated at each call, so at
# each poll of wait_until) is WANT.
yields() { [ "$(eval "$2")" = "$1" ]; }

# mt_mount [OPTIONS]: mounts $MNT against $EMU_URL (options are appended to
# -o, comma-separated; sync=off unless they say otherwise) and waits for the
# mount (10 s at most).
mt_mount() {
  local extra
  extra=$(opts_sync_off "${1:-}")
  local opts="api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN"
  opts="$opts,$extra"
  "$CLIQFS" -f -o "$opts" "$MNT" 2>>"$MT_LOG" &
  CLIQFS_PID=$!
  local deadline=$((SECONDS + 10))
  while ! is_mounted "$MNT"; do
    if ! kill -0 "$CLIQFS_PID" 2>/dev/null; then
      CLIQFS_PID=
      fail "cliqfs exited before mounting"
    fi
    [ "$SECONDS" -le "$deadline" ] || fail "no mount within 10 s"
    nap 0.05
  done
}

mt_daemon_gone() {
  ! kill -0 "$CLIQFS_PID" 2>/dev/null
}

# mt_unmount: fusermount3 -u, then waits for the daemon to exit (10 s, then
# TERM and KILL).  Returns non-zero when it had to be forced.
mt_unmount() {
  local rc=0
  # The mount table, not mountpoint(1): a mount whose daemon died is still
  # there (mountpoint says no), and left alone it would outlive the test.
  local msg
  if is_mounted "$MNT"; then
    if ! msg=$(fusermount3 -u "$MNT" 2>&1); then
      echo "mt_unmount: fusermount3 -u: $msg" >&2
      rc=1
    fi
  fi
  if [ -n "$CLIQFS_PID" ]; then
    if ! wait_until 10 mt_daemon_gone; then
      echo "mt_unmount: cliqfs $CLIQFS_PID still runs 10 s after the unmount; its threads:" >&2
      mt_threads_of "$CLIQFS_PID" >&2
      rc=1
      kill -TERM "$CLIQFS_PID" 2>/dev/null
      wait_until 5 mt_daemon_gone || kill -KILL "$CLIQFS_PID" 2>/dev/null
    fi
    wait "$CLIQFS_PID" 2>/dev/null
    CLIQFS_PID=
  fi
  if is_mounted "$MNT"; then
    fusermount3 -uz "$MNT" 2>/dev/null
    rc=1
  fi
  return $rc
}

# mt_threads_of PID: one line per thread: name, state, what it waits in.
mt_threads_of() {
  local t
  for t in /proc/"$1"/task/*; do
    { printf '  %s %s %s\n' "$(cat "$t/comm")" "$(awk '{ print $3 }' "$t/stat")" "$(cat "$t/wchan")"; } 2>/dev/null
  done
}

# mt_bg COMMAND...: runs COMMAND in the background; killed at exit.
mt_bg() {
  "$@" &
  MT_PIDS+=($!)
}

mt_kill_bg() {
  local p
  for p in "${MT_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  MT_PIDS=()
}

mt_cleanup() {
  local rc=$?
  cd /
  mt_kill_bg
  mt_unmount
  emu_stop
  # A sanitizer build reports into the daemon's log: that is a failure too.
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$MT_LOG" 2>/dev/null; then
    echo "FAIL: sanitizer report in the cliqfs log" >&2
    grep -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$MT_LOG" | head -n 60 >&2
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then
    emu_dump_log
    if [ -s "$MT_LOG" ]; then
      echo "---- cliqfs log (last 60 lines) ----" >&2
      tail -n 60 "$MT_LOG" >&2
    fi
  fi
  # Whatever else the test mounted under its folder, or a cliqfs it started
  # that still runs (and could mount after this check): a failure of this
  # test, cleared here so that it does not meet the next one.
  if ! nothing_left_under "$MT_DIR"; then rc=1; fi
  rm -rf "$EMU_DIR" "$MT_DIR"
  exit "$rc"
}
trap mt_cleanup EXIT

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
  [ "$1" == "$2" ] || fail "$3: got [$1], expected [$2]"
}

# expect_errno TEXT COMMAND...: COMMAND (run by bash -c) must fail and print
# the strerror TEXT (e.g. "Permission denied").
expect_errno() {
  local text=$1
  shift
  local out
  if out=$(bash -c "$*" 2>&1); then
    fail "[$*] succeeded, expected \"$text\""
  fi
  case "$out" in
    *"$text"*) ;;
    *) fail "[$*] failed with [$out], expected \"$text\"" ;;
  esac
}

# size_is FILE N, mtime_is FILE SECONDS: for wait_until (evaluated each poll).
size_is() { [ "$(stat -c %s "$1")" = "$2" ]; }
mtime_is() { [ "$(stat -c %Y "$1")" = "$2" ]; }

# emu_state JQ_FILTER: applies a jq filter to the emulator's whole state.
emu_state() {
  emu_ctl GET /_emulator/state | jq -r "$1"
}

# thread_jq CHANNEL TITLE FILTER: jq on one thread of the emulator's state.
thread_jq() {
  emu_state ".channels[] | select(.unique_name == \"$1\") | .threads[] | select(.title == \"$2\") | $3"
}

# mt_outbox_depth [MOUNT]: the outbox depth that MOUNT/.cliqfs/status
# shows (MOUNT defaults to $MNT), read by the shell: polls call it.
mt_outbox_depth() {
  local st='' re='"outbox": [{][^}]*"depth": ([0-9]+)'
  IFS= read -r -d '' st <"${1:-$MNT}/.cliqfs/status"
  [[ $st =~ $re ]] || return 1
  echo "${BASH_REMATCH[1]}"
}

