#!/usr/bin/env bash
# Issue 5: what listing and reading cost, counted at the emulator.
#  - cat */*/state over a channel of 50 threads: at most 2 requests cold, 0 warm;
#  - a cold ls -lR costs exactly the channel list plus one thread list per
#    channel (pages included, derived from the organization), a warm one 0 --
#    for the demo organization and for one that needs second pages;
#  - grep -r over a channel that is not cached completes without an error,
#    also when it must wait for budget; a second grep -r within the
#    freshness costs 0.
. "$(dirname "$0")/lib.sh"

# restart EMULATOR_ARGS... -- MOUNT_OPTIONS: a fresh emulator and daemon (the
# cache and state folders are emptied: every part starts cold).
restart() {
  local -a emu_args=()
  while [ "$1" != "--" ]; do
    emu_args+=("$1")
    shift
  done
  shift
  cd /
  mt_unmount || fail "unmount"
  rm -rf "$XDG_STATE_HOME/cliqfs" "$XDG_CACHE_HOME/cliqfs"
  emu_start "${emu_args[@]}" || fail "emulator did not start"
  mt_mount "${1:-}"
  cd "$MNT"
}

# ---- cat */*/state over a channel of 50 threads -----------------------------
restart --synthetic 1x50x2 --
cat */*/state >"$MT_DIR/state.cold" || fail "cat */*/state (cold)"
cold=$(emu_total)
[ "$cold" -le 2 ] || { gv_summary >&2; fail "cold cat */*/state cost $cold requests, expected at most 2"; }
assert_eq "$(wc -l <"$MT_DIR/state.cold")" 50 "lines of cat */*/state"
want=$(emu_state '[.channels[0].threads[] | select(.state == "closed")] | length')
assert_eq "$(grep -c '^closed$' "$MT_DIR/state.cold")" "$want" "closed threads in cat */*/state"
assert_eq "$(grep -c '^open$' "$MT_DIR/state.cold")" "$((50 - want))" "open threads in cat */*/state"
gv_reset
cat */*/state >"$MT_DIR/state.warm" || fail "cat */*/state (warm)"
cmp -s "$MT_DIR/state.cold" "$MT_DIR/state.warm" || fail "warm cat */*/state differs"
assert_eq "$(emu_total)" 0 "warm cat */*/state: requests"
ok "cat */*/state over 50 threads: $cold requests cold, 0 warm"

# ---- cold and warm ls -lR ------------------------------------------------------
list_cost_check() {
  local what=$1 expected channels_pages
  expected=$(gv_list_cost)
  channels_pages=$(emu_ctl GET '/_emulator/state?messages=0' |
    jq '[.channels[] | select(.joined != false)] | length | if . == 0 then 1 else ((. + 99) / 100 | floor) end')
  ls -lR . >"$MT_DIR/ls.cold" || fail "$what: cold ls -lR"
  assert_eq "$(gv_count channels.list)" "$channels_pages" "$what: channel list requests"
  assert_eq "$(gv_count threads.list)" "$((expected - channels_pages))" "$what: thread list requests"
  assert_eq "$(emu_total)" "$expected" "$what: cold ls -lR, every request"
  # Every thread of every joined channel is listed.
  local dirs want
  dirs=$(find . -mindepth 2 -maxdepth 2 -type d ! -path './.cliqfs/*' | wc -l)
  want=$(emu_ctl GET '/_emulator/state?messages=0' | jq '[.channels[] | select(.joined != false) | .threads[]] | length')
  assert_eq "$dirs" "$want" "$what: thread directories"
  gv_reset
  ls -lR . >"$MT_DIR/ls.warm" || fail "$what: warm ls -lR"
  assert_eq "$(emu_total)" 0 "$what: warm ls -lR"
  ok "$what: cold ls -lR cost $expected requests (derived from the organization), warm 0"
}
restart --demo --
list_cost_check "demo organization"
# 130 threads per channel: the thread lists take two pages each.
restart --synthetic 2x130x1 --
list_cost_check "2 channels of 130 threads"

# ---- grep -r over a channel that is not cached --------------------------------
# 30 threads: their messages alone need two windows of chats.messages (limit
# 15), so the reads must wait for budget (time_scale 20: windows of 3 s).
restart --synthetic 1x30x3 --time-scale 20 -- time_scale=20
ch=synthetic-001
if ! grep -r "Message 3:" "$ch" >"$MT_DIR/grep.out" 2>"$MT_DIR/grep.err"; then
  fail "grep -r over $ch failed (status $?): $(head -n 5 "$MT_DIR/grep.err")"
fi
[ ! -s "$MT_DIR/grep.err" ] || fail "grep -r reported errors: $(head -n 5 "$MT_DIR/grep.err")"
matched=$(grep -c '/messages:' "$MT_DIR/grep.out")
assert_eq "$matched" 30 "threads whose messages matched"
n=$(gv_count chats.messages)
[ "$n" -gt 15 ] || fail "the grep fetched only $n message logs: it never had to wait"
gv_assert_within_budget "grep -r over 30 threads"
ok "cold grep -r over 30 threads waited for budget, no error ($n messages requests)"

# Within the freshness (time_scale 1: messages stay fresh 10 s) the second
# grep -r costs nothing.
restart --demo --
grep -r "budget" engineering >"$MT_DIR/grep1.out" 2>"$MT_DIR/grep1.err"
[ $? -le 1 ] || fail "grep -r engineering: $(head -n 5 "$MT_DIR/grep1.err")"
[ ! -s "$MT_DIR/grep1.err" ] || fail "grep -r reported errors: $(head -n 5 "$MT_DIR/grep1.err")"
cold=$(emu_total)
[ "$cold" -gt 0 ] || fail "the first grep -r fetched nothing"
gv_reset
grep -r "budget" engineering >"$MT_DIR/grep2.out" 2>"$MT_DIR/grep2.err"
[ $? -le 1 ] || fail "second grep -r: $(head -n 5 "$MT_DIR/grep2.err")"
cmp -s "$MT_DIR/grep1.out" "$MT_DIR/grep2.out" || fail "the second grep -r found something else"
assert_eq "$(emu_total)" 0 "second grep -r within the freshness: requests"
ok "grep -r over engineering: $cold requests cold, 0 within the freshness"
