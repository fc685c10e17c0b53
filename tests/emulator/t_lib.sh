# Helpers for the emulator's own tests (suite 'emulator').  Sourced by t_*.sh.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/harness.sh"

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
die() { echo "FATAL: $*" >&2; exit 1; }

# check DESCRIPTION COMMAND…: runs the command, fails the test if it fails.
check() {
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

# expect_status WANT GOT WHAT
expect_status() {
  if [ "$2" = "$1" ]; then ok "$3: HTTP $2"; else
    fail "$3: HTTP $2, expected $1; body: $(head -c 400 "$EMU_BODY" 2>/dev/null)"; fi
}

# body_jq FILTER: runs jq -e on the last body (exit status = truthiness).
body_jq() { jq -e "$@" "$EMU_BODY" >/dev/null 2>&1; }
# bval FILTER: prints jq -r FILTER of the last body.
bval() { jq -r "$@" "$EMU_BODY"; }

# expect_jq WHAT FILTER [jq args…]: the last body satisfies FILTER.
expect_jq() {
  local what=$1; shift
  if body_jq "$@"; then ok "$what"; else
    fail "$what: $* not true of $(head -c 600 "$EMU_BODY")"; fi
}

# The documented bodies (threads-api-v3-extract.txt).
MSG_400='The request cannot be performed. Usually because of malformed parameter or missing parameter.'
MSG_401='Request was rejected because of invalid AuthToken.'
MSG_404='The URL you'"'"'ve sent is wrong. It'"'"'s possible that the resource you'"'"'ve requested has been moved to another URL.'
MSG_405='The requested resource does not support the HTTP method used. For example, requesting List of all customers API with PUT as the HTTP method.'
MSG_429='Too many requests within a certain time frame.'
MSG_500='Cliq server encountered an error which prevents it from fulfilling the request.'

# Names of the demo organization (demo.c).
GENERAL_ID=O5797000000001
GENERAL_CHAT=CT_1207124526552602201_60002085301
ENG_ID=O5797000000002
ENG_CHAT=CT_1207124526552602202_60002085302

# first_thread CHANNEL_ID [state]: chat id of one thread (open by default).
first_thread() {
  local want=${2:-open}
  emu_api GET "/api/v2/channels/$1/threads?limit=100&type=$want" >/dev/null
  bval '.data[0].chat_id'
}

finish() {
  emu_stop
  [ "$EMU_BAD_EXITS" -eq 0 ] || fail "$EMU_BAD_EXITS emulator(s) did not exit cleanly with status 0"
  if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}

command -v jq >/dev/null || die "jq is needed"
command -v curl >/dev/null || die "curl is needed"

# These tests make more than a minute's budget of some APIs: clear the
# sliding windows (not what they test) between sections.
budget_reset() { emu_ctl POST /_emulator/unlock '{"api":"*"}' >/dev/null; }
# jqt ARGS…: jq -e quietly (for check).
jqt() { jq -e "$@" >/dev/null 2>&1; }
