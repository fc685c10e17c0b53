# tests/governor/lib.sh: helpers for the governor suite: real mounts against
# the emulator, costs counted at the emulator.
# Source it from bash with CLIQFS, CLIQ_EMULATOR and EMU_HARNESS set (meson
# does).  It builds on tests/mount/lib.sh (one mount: $MNT, mt_mount,
# mt_unmount, the EXIT trap) and adds a second mount of the same account
# ($MNT2, gv_mount2, gv_unmount2), undone by the EXIT trap as well.
#
# Counting: every assertion about cost reads GET /_emulator/counters, which
# the emulator keeps per API class; `windows.<api>.max_in_window` is the most
# requests that API received in any sliding window, refused ones included.
. "$(dirname "${BASH_SOURCE[0]}")/../mount/lib.sh"

MNT2=$MT_DIR/mnt2
CLIQFS2_PID=
mkdir -p "$MNT2"

# The state and cache folders live under $MT_DIR (XDG_*_HOME, set by
# mount/lib.sh), so a remount, or a second mount with the same api_url and
# token, is the same account and shares them.

gv_daemon2_gone() {
  ! kill -0 "$CLIQFS2_PID" 2>/dev/null
}

# gv_mount2 [OPTIONS]: a second daemon of the same account on $MNT2.
gv_mount2() {
  local extra
  extra=$(opts_sync_off "${1:-}")
  local opts="api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN"
  opts="$opts,$extra"
  "$CLIQFS" -f -o "$opts" "$MNT2" 2>>"$MT_LOG" &
  CLIQFS2_PID=$!
  local deadline=$((SECONDS + 10))
  while ! mountpoint -q "$MNT2"; do
    if gv_daemon2_gone; then
      CLIQFS2_PID=
      fail "the second cliqfs exited before mounting"
    fi
    [ "$SECONDS" -le "$deadline" ] || fail "no second mount within 10 s"
    nap 0.05
  done
}

gv_unmount2() {
  local rc=0
  if is_mounted "$MNT2"; then
    fusermount3 -u "$MNT2" 2>/dev/null || rc=1
  fi
  if [ -n "$CLIQFS2_PID" ]; then
    if ! wait_until 10 gv_daemon2_gone; then
      rc=1
      kill -TERM "$CLIQFS2_PID" 2>/dev/null
      wait_until 5 gv_daemon2_gone || kill -KILL "$CLIQFS2_PID" 2>/dev/null
    fi
    wait "$CLIQFS2_PID" 2>/dev/null
    CLIQFS2_PID=
  fi
  if is_mounted "$MNT2"; then
    fusermount3 -uz "$MNT2" 2>/dev/null
    rc=1
  fi
  return $rc
}

# gv_group COMMAND...: runs COMMAND (a shell function is fine) in the
# background in a process group of its own, so that gv_kill_groups stops it
# with everything it started (a cat blocked on the mount included).
GV_GROUPS=()
gv_group() {
  set -m
  "$@" &
  GV_GROUPS+=($!)
  set +m
}

gv_kill_groups() {
  local p
  for p in "${GV_GROUPS[@]}"; do
    kill -TERM -- "-$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  GV_GROUPS=()
}

gv_cleanup() {
  local rc=$?
  cd /
  gv_kill_groups
  mt_kill_bg
  gv_unmount2
  (exit "$rc")
  mt_cleanup # exits with rc
}
trap gv_cleanup EXIT
# meson's timeout sends SIGTERM: clean up then too.
trap 'exit 143' TERM
trap 'exit 130' INT

# gv_now: seconds since the epoch, with fractions.
gv_now() {
  date +%s.%N
}

# gv_counters: the emulator's counters (JSON).
gv_counters() {
  emu_ctl GET /_emulator/counters
}

gv_reset() {
  emu_ctl POST /_emulator/counters/reset >/dev/null || fail "counter reset"
}

# gv_count API: requests the emulator served for that API class.
gv_count() {
  gv_counters | jq -r --arg a "$1" '.apis[$a].total // 0'
}

# gv_summary: one line per API that was asked: total, max_in_window/limit.
gv_summary() {
  gv_counters | jq -r '.windows as $w | .apis | to_entries[] |
    "  \(.key): \(.value.total) requests, max in a window \($w[.key].max_in_window // "?")/\($w[.key].limit // "?")"'
}

# gv_assert_within_budget WHAT: no throttled answer, and no API received more
# than its limit in any sliding window.
gv_assert_within_budget() {
  local c throttled over
  c=$(gv_counters) || fail "$1: no counters"
  throttled=$(jq -r '.throttled' <<<"$c")
  over=$(jq -r '[.windows | to_entries[] | select(.value.max_in_window > .value.limit)
                 | "\(.key) \(.value.max_in_window)/\(.value.limit)"] | join(", ")' <<<"$c")
  if [ "$throttled" != 0 ] || [ -n "$over" ]; then
    echo "counters:" >&2
    gv_summary >&2
    fail "$1: $throttled throttled answers; over the limit in a window: [${over:-none}]"
  fi
}

# gv_list_cost: what listing every joined channel and its threads must cost,
# derived from the emulator's organization: the channel list (pages of 100,
# joined=true) plus, per joined channel, its thread list (pages of 100).
gv_list_cost() {
  emu_ctl GET '/_emulator/state?messages=0' | jq -r '
    def pages(n): if n == 0 then 1 else ((n + 99) / 100 | floor) end;
    [.channels[] | select(.joined != false)] as $j
    | pages($j | length) + ([$j[] | pages(.threads | length)] | add // 0)'
}

# gv_thread_ids CHANNEL: the thread chat ids of a channel, one a line.
gv_thread_ids() {
  emu_ctl GET '/_emulator/state?messages=0' |
    jq -r --arg c "$1" '.channels[] | select(.unique_name == $c) | .threads[].chat_id'
}

# gv_elapsed_since T0: seconds (fractional) since gv_now printed T0.
gv_elapsed_since() {
  awk -v a="$1" -v b="$(gv_now)" 'BEGIN { printf "%.3f\n", b - a }'
}

# GV_FOLLOWABLE: a jq definition to prefix to an emu_state filter.
# `followable` is, per joined channel, the array of its open threads whose
# titles are their folder names (unique in the channel, printable ASCII, no
# '/'), each {c: channel, t: title, id: chat id}, in the emulator's order.
GV_FOLLOWABLE='def followable:
  [.channels[] | select(.joined != false) | .unique_name as $c
   | (.threads | group_by(.title) | map(select(length == 1) | .[0].title)) as $unique
   | [.threads[] | select(.state != "closed")
      | select(.title as $t | $unique | index($t))
      | select(.title | test("^[ -~]+$") and (test("/") | not))
      | {c: $c, t: .title, id: .chat_id}]];'

# gv_other_user: the user id of someone in the organization other than me.
gv_other_user() {
  emu_state '.me as $me | [.users[] | select(.user_id != $me)][0].user_id'
}

# gv_chat_fetches ID: messages requests for one chat in the emulator's log
# so far.
gv_chat_fetches() {
  grep -cF "GET /api/v2/chats/$1/messages " "$EMU_DIR/emulator.log"
}
