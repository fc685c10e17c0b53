# Shell harness for tests that need a Cliq emulator.  Source it (bash):
#
#   . "$EMU_HARNESS"            # or tests/emulator/harness.sh
#   emu_start --time-scale 60   # exports EMU_PID EMU_PORT EMU_URL
#   st=$(emu_api GET /api/v2/channels)    # HTTP status; body in "$EMU_BODY"
#   emu_ctl POST /_emulator/faults '{"api":"*","kind":"503","count":1}'
#   n=$(emu_count chats.messages)
#   emu_stop                    # also done by the EXIT trap
#
# The emulator comes from $CLIQ_EMULATOR.  Its stderr goes to
# $EMU_DIR/emulator.log (printed by emu_dump_log, and on a failing exit).
# The EXIT trap stops the emulator by PID and removes $EMU_DIR; a test that
# sets its own EXIT trap should call emu_cleanup from it.

EMU_TOKEN=${EMU_TOKEN:-emulator-token}
EMU_DIR=$(mktemp -d "${TMPDIR:-/tmp}/emu-test.XXXXXX")
EMU_BODY=$EMU_DIR/body
EMU_PID=
EMU_PORT=
EMU_URL=
export EMU_DIR EMU_BODY EMU_TOKEN

emu_dump_log() {
  if [ -s "$EMU_DIR/emulator.log" ]; then
    echo "---- emulator log (last 60 lines) ----" >&2
    tail -n 60 "$EMU_DIR/emulator.log" >&2
  fi
}

# emu_stop: SIGTERM, wait (10 s at most, then SIGKILL).  The exit status is
# left in EMU_EXIT; EMU_BAD_EXITS counts emulators that did not exit 0 (a
# crash, a sanitizer or valgrind error, a hang).
EMU_EXIT=
EMU_BAD_EXITS=0
emu_stop() {
  if [ -n "$EMU_PID" ]; then
    kill -TERM "$EMU_PID" 2>/dev/null
    local i
    for ((i = 0; i < 200; i++)); do
      kill -0 "$EMU_PID" 2>/dev/null || break
      nap 0.05
    done
    kill -KILL "$EMU_PID" 2>/dev/null
    wait "$EMU_PID" 2>/dev/null
    EMU_EXIT=$?
    if [ "$EMU_EXIT" -ne 0 ]; then
      EMU_BAD_EXITS=$((EMU_BAD_EXITS + 1))
      echo "emu_stop: emulator $EMU_PID exited with status $EMU_EXIT" >&2
    fi
    EMU_PID=
  fi
}

emu_cleanup() {
  local rc=$?
  emu_stop
  [ "$rc" -ne 0 ] && emu_dump_log
  rm -rf "$EMU_DIR"
  return "$rc"
}
trap emu_cleanup EXIT

# emu_start [args…]: starts "$CLIQ_EMULATOR --port 0 args…", waits (10 s at
# most) for the port line.  Returns non-zero if it does not come.
emu_start() {
  if [ -z "${CLIQ_EMULATOR:-}" ]; then
    echo "emu_start: CLIQ_EMULATOR is not set" >&2
    return 1
  fi
  emu_stop
  : >"$EMU_DIR/port"
  "$CLIQ_EMULATOR" --port 0 "$@" >"$EMU_DIR/port" 2>>"$EMU_DIR/emulator.log" &
  EMU_PID=$!
  local deadline=$((SECONDS + 10))
  EMU_PORT=
  while [ "$SECONDS" -le "$deadline" ]; do
    IFS= read -r EMU_PORT <"$EMU_DIR/port" && [ -n "$EMU_PORT" ] && break
    EMU_PORT=
    if ! kill -0 "$EMU_PID" 2>/dev/null; then
      echo "emu_start: emulator exited before listening" >&2
      emu_dump_log
      EMU_PID=
      return 1
    fi
    nap 0.02
  done
  if ! [[ "$EMU_PORT" =~ ^[0-9]+$ ]]; then
    echo "emu_start: no port line from the emulator" >&2
    emu_stop
    return 1
  fi
  EMU_URL=http://127.0.0.1:$EMU_PORT
  export EMU_PID EMU_PORT EMU_URL
}

# nap SECONDS: sleeps without starting a process (a read that times out on a
# pipe nobody writes to).  Tests poll often, and on two cores a sleep(1)
# process per poll adds up.
EMU_NAP_FD=
nap() {
  [ -n "$EMU_NAP_FD" ] || exec {EMU_NAP_FD}<> <(:)
  read -r -t "$1" -u "$EMU_NAP_FD" _ || true
}

# opts_sync_off OPTIONS: cliqfs -o options with sync=off added unless they
# say sync=: background sync is on by default and would add its own requests
# to what the tests and benchmarks of a user's actions count; the sync tests
# and benchmarks turn it on.
opts_sync_off() {
  case ",$1," in
    *,sync=*) printf '%s' "$1" ;;
    ,,) printf 'sync=off' ;;
    *) printf '%s,sync=off' "$1" ;;
  esac
}

# nothing_left_under DIR: no mount under DIR and no cliqfs process with DIR
# in its command line (one could still mount there).  A test's cleanup runs
# it last: what it finds it reports (the path names the test), clears, and
# returns non-zero, so that a leak fails its own test and never meets the next.
nothing_left_under() {
  local dir=${1%/} clean=0 line point rest fstype pid args
  for pid in $(pgrep -x cliqfs); do
    args=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
    case "$args" in *"$dir"/*)
      echo "FAIL: a cliqfs process outlived the test: $pid $args" >&2
      kill -KILL "$pid" 2>/dev/null
      clean=1 ;;
    esac
  done
  # Read whole before unmounting: what is unmounted leaves the table.
  local -a table=()
  mapfile -t table </proc/self/mountinfo
  for line in "${table[@]}"; do
    read -r _ _ _ _ point rest <<<"$line"
    case "$point" in "$dir"/*) ;; *) continue ;; esac
    fstype=${rest#* - }                  # after the optional fields
    echo "FAIL: a mount was left behind: $point (${fstype%% *})" >&2
    fusermount3 -uz "$point" 2>/dev/null || umount -l "$point" 2>/dev/null
    clean=1
  done
  return $clean
}

# is_mounted DIR: DIR is in the mount table (read by the shell, no process).
# Unlike mountpoint -q, also when the mount's daemon is gone.  DIR as
# mountinfo spells it: no space or backslash in it.
is_mounted() {
  local id parent dev root point rest
  while read -r id parent dev root point rest; do
    [ "$point" = "$1" ] && return 0
  done </proc/self/mountinfo
  return 1
}

# emu_ctl METHOD PATH [JSON]: the control path; prints the answer's body.
# HTTP/1.0 over bash's /dev/tcp: tests call it in polls, and a curl costs
# about 25 ms of CPU to start.  Exit status 7 (as curl's) when nothing
# listens.
emu_ctl() {
  local LC_ALL=C
  local method=$1 path=$2 body=${3-} fd line
  exec {fd}<>"/dev/tcp/127.0.0.1/$EMU_PORT" || return 7
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$path" "$EMU_PORT" "${#body}" "$body" >&"$fd"
  {
    while IFS= read -r line && [ "$line" != $'\r' ] && [ -n "$line" ]; do :; done
    cat
  } <&"$fd"
  exec {fd}<&-
}

# emu_total_of COUNTERS API [VAR]: API's total in a /_emulator/counters
# answer (0 when absent; API "" for the total of every API), printed, or
# stored in VAR (no subshell).  Read by the shell, not by jq: polls call it
# often, and a jq costs about 30 ms of CPU to start.
emu_total_of() {
  local re='^[{]"total":([0-9]+)' n=0
  [ -n "$2" ] && re="\"${2//./[.]}\":[{]\"total\":([0-9]+)"
  [[ $1 =~ $re ]] && n=${BASH_REMATCH[1]}
  if [ -n "${3:-}" ]; then
    printf -v "$3" '%s' "$n"
  else
    echo "$n"
  fi
}

# emu_total: every Cliq request the emulator served.
emu_total() {
  emu_total_of "$(emu_ctl GET /_emulator/counters)" ""
}

# emu_count API: how many requests the emulator counted for that API class.
emu_count() {
  emu_total_of "$(emu_ctl GET /_emulator/counters)" "$1"
}

# emu_api METHOD PATH [JSON]: a Cliq API call with the static token.  Prints
# the HTTP status (000 when there was no answer); the body is in $EMU_BODY.
# EMU_AUTH overrides the whole Authorization header value ("" = none).
emu_api() {
  local method=$1 path=$2
  local -a args=(-s -o "$EMU_BODY" -w '%{http_code}' -X "$method")
  local auth=${EMU_AUTH-Zoho-oauthtoken $EMU_TOKEN}
  [ -n "$auth" ] && args+=(-H "Authorization: $auth")
  if [ $# -ge 3 ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$3")
  fi
  curl "${args[@]}" "$EMU_URL$path"
}
