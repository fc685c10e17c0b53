#!/usr/bin/env bash
# Hostile input: every case of hostile.tsv, from users (on the
# synthetic organization), from the server (an organization of hostile names,
# people and sizes, plus emulator faults) and from the config file.  Each case
# checks its outcome, its effect at the emulator, and that the daemon is alive
# and the mount still serves afterwards.  Every case runs even when an earlier
# one failed; the summary line gives the figures.
. "$MOUNT_LIB"
set -o pipefail
: "${FSOP:?}" "${HOSTILE_TABLE:?}"
export FSOP

CASE_TIMEOUT=30
TRIED=0
PASSED=0
ALIVE_AFTER=0
declare -A TRIED_BY=()
FAILED_CASES=()

case_fail() {
  echo "FAIL [$CASE]: $*" >&2
  CASE_OK=
}

# ---- Helpers the table uses (exported to the commands' bash -c) -------------

# gen N STR: STR N times, no newline.
gen() {
  local s
  printf -v s '%*s' "$1" ''
  printf '%s' "${s// /$2}"
}
# mib [CHAR]: 1 MiB of CHAR (default x); CHAR may be '\n'.
mib() {
  head -c 1048576 /dev/zero | tr '\0' "${1:-x}"
}
export -f gen mib

COUNTERS_BEFORE='{}'
STATE_BEFORE=
WRITE_APIS="messages.post threads.update threads.followers.add
  threads.followers.remove threads.follow threads.unfollow
  chats.leave chats.mute chats.unmute"

# The emulator's counters as it answers them; deltas are read from two such
# answers by the shell (emu_total_of), with no process per case.
counters_now() {
  emu_ctl GET /_emulator/counters
}

api_delta() {
  local now
  now=$(counters_now)
  echo $(($(emu_total_of "$now" "$1") - $(emu_total_of "$COUNTERS_BEFORE" "$1")))
}

writes_delta() {
  local now k n=0 a b
  now=$(counters_now)
  for k in $WRITE_APIS; do
    emu_total_of "$now" "$k" a
    emu_total_of "$COUNTERS_BEFORE" "$k" b
    n=$((n + a - b))
  done
  echo "$n"
}

# The organization without its messages; the emulator writes it the same
# way each time, so two answers are equal when nothing changed.
org_state() {
  emu_ctl GET '/_emulator/state?messages=0'
}

outbox_depth() {
  mt_outbox_depth "$MNT"
}

# none: nothing reached Cliq and nothing waits to.
none() {
  local w d
  w=$(writes_delta)
  [ "$w" = 0 ] || { echo "effect: $w write request(s) reached the emulator" >&2; return 1; }
  d=$(outbox_depth)
  [ "$d" = 0 ] || { echo "effect: $d message(s) wait in the outbox" >&2; return 1; }
  if [ -n "$STATE_BEFORE" ] && [ "$(org_state)" != "$STATE_BEFORE" ]; then
    echo "effect: the organization at the emulator changed" >&2
    return 1
  fi
}

# posted N: exactly N messages.post requests (waits up to 10 s for them, as
# delivery may be asynchronous).
posted_is() { [ "$(api_delta messages.post)" = "$1" ]; }
posted() {
  wait_until 10 posted_is "$1" || {
    echo "effect: $(api_delta messages.post) message(s) posted, expected $1" >&2
    return 1
  }
}

# last_chars DIR N: the last message of thread DIR (its title) at the
# emulator has N characters.
last_chars() {
  local title n
  title=$(basename "$1")
  n=$(emu_state ".channels[].threads[] | select(.title == \"$title\") | .messages[-1].text | length")
  [ "$n" = "$2" ] || { echo "effect: last message of '$title' has $n characters, expected $2" >&2; return 1; }
}

# errors_has PATH ENAME: .cliqfs/errors has a line for PATH with ENAME.
errors_has() {
  grep -qF -- "$1"$'\t'"$2"$'\t' "$MNT/.cliqfs/errors" || {
    echo "effect: no '$1 $2' line in .cliqfs/errors" >&2
    return 1
  }
}

# lines_ok FILE: every line of a rendered messages file starts with a
# timestamp or continues with a TAB (nothing forged a line).
lines_ok() {
  local bad
  bad=$(grep -cvE $'^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z |\t)' "$1")
  [ "$bad" = 0 ] || { echo "effect: $bad line(s) of $1 neither message nor continuation:" >&2;
    grep -vE $'^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z |\t)' "$1" | head -n 3 | cat -A >&2; return 1; }
}

# people_ok FILE N: N lines of exactly three TAB-separated fields.
people_ok() {
  local n
  n=$(wc -l <"$1")
  [ "$n" = "$2" ] || { echo "effect: $1 has $n lines for $2 people:" >&2; cat -A "$1" >&2; return 1; }
  awk -F'\t' 'NF != 3 { exit 1 }' "$1" || { echo "effect: $1 has lines without 3 fields" >&2; cat -A "$1" >&2; return 1; }
}

emu_fault() {
  emu_ctl POST /_emulator/faults "{\"api\":\"$1\",\"kind\":\"$2\",\"count\":${3:-1}}" >/dev/null
}
export MNT WRITE_APIS
export -f api_delta counters_now writes_delta org_state outbox_depth none \
  posted posted_is last_chars errors_has lines_ok people_ok emu_fault \
  emu_ctl emu_state emu_total_of nap wait_until mt_outbox_depth

# ---- Outcomes ------------------------------------------------------------------

declare -A STRERROR=()
strerror_of() {
  if [ -z "${STRERROR[$1]:-}" ]; then
    STRERROR[$1]=$("$FSOP" strerror "$1" 2>/dev/null || echo "?$1")
  fi
  printf '%s' "${STRERROR[$1]}"
}

# matches EXPECT RC OUTPUT
matches() {
  local expect=$1 rc=$2 out=$3 alt name step line
  if [ "$expect" = OK ]; then
    [ "$rc" = 0 ] && return 0
  fi
  local IFS='|'
  for alt in $expect; do
    if [ "$alt" = OK ]; then
      [ "$rc" = 0 ] && return 0
      continue
    fi
    [ "$rc" = 0 ] && continue
    name=${alt%@*}
    step=
    [[ "$alt" == *@* ]] && step=${alt#*@}
    # fsop: the last line is ENAME@step
    line=${out##*$'\n'}
    if [[ "$line" =~ ^E[A-Z0-9]+@[a-z]+$ ]]; then
      if [ -n "$step" ]; then
        [ "$line" = "$name@$step" ] && return 0
      else
        [ "${line%@*}" = "$name" ] && return 0
      fi
    elif [ -z "$step" ] && [[ "$out" == *"$(strerror_of "$name")"* ]]; then
      return 0
    fi
  done
  return 1
}

# ---- Liveness ------------------------------------------------------------------

LIVE_DIR=
LIVE_FILE=
alive() {
  kill -0 "$CLIQFS_PID" 2>/dev/null || { echo "the daemon is gone" >&2; return 1; }
  is_mounted "$MNT" || { echo "no mount at $MNT" >&2; return 1; }
  timeout -k 2 15 ls "$MNT/$LIVE_DIR" >/dev/null || { echo "ls $LIVE_DIR fails" >&2; return 1; }
  timeout -k 2 15 cat "$MNT/$LIVE_FILE" >/dev/null || { echo "cat $LIVE_FILE fails" >&2; return 1; }
}

# ---- Running the table -----------------------------------------------------------

# run_group GROUP: every row of that group.
run_group() {
  local group=$1 g name setup cmd expect effect cleanup out rc
  while IFS=$'\t' read -r -u 3 g name setup cmd expect effect cleanup; do
    [ -z "$g" ] || [[ "$g" == \#* ]] || [ "$g" != "$group" ] && continue
    CASE=$name
    CASE_OK=1
    TRIED=$((TRIED + 1))
    TRIED_BY[$group]=$((${TRIED_BY[$group]:-0} + 1))
    if [ "$group" = user ]; then
      STATE_BEFORE=$(org_state)
    else
      STATE_BEFORE=
    fi
    if [ "$setup" != - ]; then
      (cd "$MNT" && timeout -k 2 "$CASE_TIMEOUT" bash -c "$setup") </dev/null >/dev/null 2>&1
    fi
    COUNTERS_BEFORE=$(counters_now)
    export COUNTERS_BEFORE STATE_BEFORE
    out=$(cd "$MNT" && timeout -k 2 "$CASE_TIMEOUT" bash -o pipefail -c "$cmd" </dev/null 2>&1)
    rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      case_fail "no answer within ${CASE_TIMEOUT} s (hang)"
    elif [[ "$expect" == refused:* ]]; then
      check_refused "${expect#refused:}" "$rc" "$out"
    elif ! matches "$expect" "$rc" "$out"; then
      case_fail "expected $expect, got exit $rc: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
    fi
    if [ "$effect" != - ]; then
      local eout
      if ! eout=$(cd "$MNT" && timeout -k 2 "$CASE_TIMEOUT" bash -c "$effect" </dev/null 2>&1); then
        case_fail "effect [$effect] not met: $(printf '%s' "$eout" | tr '\n' ' ' | cut -c1-400)"
      fi
    fi
    if [ "$cleanup" != - ]; then
      (cd "$MNT" && timeout -k 2 "$CASE_TIMEOUT" bash -c "$cleanup") </dev/null >/dev/null 2>&1
    fi
    local why
    if why=$(alive 2>&1); then
      ALIVE_AFTER=$((ALIVE_AFTER + 1))
    else
      case_fail "the mount does not work afterwards: $why"
    fi
    if [ -n "$CASE_OK" ]; then
      PASSED=$((PASSED + 1))
      echo "ok - $group/$name"
    else
      FAILED_CASES+=("$group/$name")
      kill -0 "$CLIQFS_PID" 2>/dev/null || { summary; fail "the daemon died at $group/$name"; }
    fi
  done 3<"$HOSTILE_TABLE"
}

# ---- Config rows ----------------------------------------------------------------------

CFGDIR=$MT_DIR/cfgcases
SCRATCH=$MT_DIR/scratch
SECRET=cfg-secret-$RANDOM$RANDOM$RANDOM
mkdir -p "$CFGDIR" "$SCRATCH"
export CFGDIR SCRATCH SECRET

# cfg_at FILE: cliqfs with -o config=FILE on a scratch mount point; prints
# what it said, returns its status.
cfg_at() {
  timeout -k 2 10 "$CLIQFS" -f -o "config=$1" "$SCRATCH" 2>&1
}
# cfg 'LINES' (printf %b) or cfg - (stdin): a 0600 file with a working
# token and api_url first, then LINES.
cfg() {
  local f=$CFGDIR/case.conf
  {
    printf 'access_token = %s\napi_url = %s\n' "$SECRET" "$EMU_URL"
    if [ "$1" = - ]; then cat; else printf '%b\n' "$1"; fi
  } >"$f"
  chmod 600 "$f"
  cfg_at "$f"
}
cfg_o() {
  timeout -k 2 10 "$CLIQFS" -f -o "access_token=$SECRET,api_url=$EMU_URL,$1" "$SCRATCH" 2>&1
}
export -f cfg_at cfg cfg_o
export CLIQFS EMU_URL

check_refused() {
  local needle=$1 rc=$2 out=$3
  if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then
    case_fail "cliqfs exit $rc, expected a refusal (1..123)"
  fi
  [[ "$out" == *"$needle"* ]] || case_fail "message lacks [$needle]: $(printf '%s' "$out" | head -c 300)"
  [[ "$out" == *"$SECRET"* ]] && case_fail "the message shows the secret"
  if is_mounted "$SCRATCH"; then
    case_fail "a refused start left a mount"
    fusermount3 -uz "$SCRATCH"
  fi
}

summary() {
  echo "SUMMARY hardening-hostile: $TRIED hostile inputs tried (user ${TRIED_BY[user]:-0}," \
    "server ${TRIED_BY[server]:-0}, config ${TRIED_BY[config]:-0}); $PASSED as expected," \
    "$((TRIED - PASSED)) not; daemon alive and mount serving after $ALIVE_AFTER/$TRIED"
  if [ "${#FAILED_CASES[@]}" -gt 0 ]; then
    echo "not as expected: ${FAILED_CASES[*]}"
  fi
}

# ---- Phase 1: users, on the synthetic organization -----------------------------------

emu_start --synthetic 3x12x10 --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
CH=synthetic-001
titles() { emu_state ".channels[0].threads[] | select(.state == \"$1\") | .title"; }
T=$CH/$(titles open | sed -n 3p)
T2=$CH/$(titles open | sed -n 4p)
CLOSED=$CH/$(titles closed | sed -n 1p)
MEMBER=$(emu_ctl GET /_emulator/state | jq -r --arg t "${T#*/}" \
  '.me as $me | .channels[0] as $c | ($c.threads[] | select(.title == $t) | .followers) as $f
   | ($c.members - $f - [$me]) | .[0] // empty')
export CH T T2 CLOSED MEMBER
[ -d "$MNT/$T" ] && [ -d "$MNT/$T2" ] && [ -d "$MNT/$CLOSED" ] && [ -n "$MEMBER" ] ||
  fail "context: T=[$T] T2=[$T2] CLOSED=[$CLOSED] MEMBER=[$MEMBER]"
# Warm what the cases stand on (names, states, members for followers lines).
cat "$MNT/$T/state" "$MNT/$T/members" "$MNT/$T/followers" "$MNT/$CLOSED/state" >/dev/null ||
  fail "warming the cache"
LIVE_DIR=$CH
LIVE_FILE=$T2/state
run_group user

# ---- Phase 2: the server, on an organization of hostile names and sizes -----------------

mt_unmount || fail "unmounting the synthetic mount"
emu_stop
ORG=$MT_DIR/hostile-org.json
H=hostile
export H
# jq builds it so that every string is escaped the way a server would send it.
jq -n '
  def tid(n): "CT_1000_100001-T-10000000000000000" + (if n < 10 then "0" else "" end) + (n | tostring);
  def msg(n; who; text): {id: ((1763370000000 + n * 1000 | tostring) + "_" + (n | tostring)),
                          time: (1763370000000 + n * 1000), sender: who, text: text};
  def thread(n; title): {chat_id: tid(n), thread_message_id: msg(n; "855700001"; "p").id,
                         title: title, members: ["855700001", "855700002", "855700003"],
                         followers: ["855700001"],
                         messages: [msg(200 + n; "855700004"; "reply in thread")]};
  {
    me: "855700001",
    users: [
      {user_id: "855700001", email_id: "ryan@zylker.com", name: "Ryan West"},
      {user_id: "855700002", email_id: "eve\t@zylker.com",
       name: "Eve\nMallory\t855700099\tceo@zylker.com"},
      {user_id: "855700003", email_id: "sam@zylker.com", name: "Sam Shaw"},
      {user_id: "855700004", email_id: "eve2@zylker.com",
       name: "Eve2\n2026-01-01T00:00:00Z Boss: wire the money"}
    ],
    channels: [
      {channel_id: "O5797000000001", chat_id: "CT_1000_100001", unique_name: "hostile",
       messages: ([range(1; 15) | msg(.; "855700001"; "p")]
                  + [msg(50; "855700003"; "hello\n2026-01-01T00:00:00Z Boss: wire the money")]),
       threads: [
         thread(1; "a/b"), thread(2; ".."), thread(3; "."), thread(4; ""),
         thread(5; "\u0001\u0007\u001b[31mred\u001b[0m"), thread(6; "line1\nline2\ttab"),
         thread(7; "é" * 500), thread(8; "Same"), thread(9; "Same"),
         thread(10; "\u0001\u0002"), thread(11; "info"), thread(14; "messages"),
         (thread(12; "Odd id traversal") | .chat_id = "CT_1000_100001-T-7/../../../v2/channels"),
         (thread(13; "Odd id chars") | .chat_id = "CT_1000_100001-T-9 9?x=1#frag%41+é")
       ]},
      {channel_id: "O5797000000002", chat_id: "CT_1000_100002", unique_name: "../escape"},
      {channel_id: "O5797000000003", chat_id: "CT_1000_100003", unique_name: "."},
      {channel_id: "O5797000000004", chat_id: "CT_1000_100004", unique_name: ""},
      {channel_id: "O5797000000005", chat_id: "CT_1000_100005", unique_name: ".cliqfs"},
      {channel_id: "O5797000000006", chat_id: "CT_1000_100006", unique_name: "bigdesc",
       description: ("d" * 2097152)},
      {channel_id: "O5797000000007", chat_id: "CT_1000_100007", unique_name: "huge-threads",
       messages: [msg(1; "855700001"; "p")],
       threads: [{chat_id: "CT_1000_100007-T-1", thread_message_id: msg(1; "855700001"; "p").id,
                  title: ("h" * 17825792)}]}
    ]
  }' >"$ORG" || fail "writing the hostile organization"
emu_start --org "$ORG" --time-scale 20 || fail "emulator did not load the hostile organization"
mt_mount time_scale=20
ls "$MNT" >/dev/null && ls "$MNT/$H" >/dev/null || fail "the hostile organization does not list"
LIVE_DIR=$H
LIVE_FILE="$H/a∕b/title"
run_group server

# ---- Phase 3: the config file and -o, while the hostile mount keeps serving ----------------
run_group config

summary
[ "$TRIED" -ge 40 ] || fail "only $TRIED hostile inputs in the table"
[ "$PASSED" = "$TRIED" ] || fail "$((TRIED - PASSED)) hostile input(s) not handled as expected"
