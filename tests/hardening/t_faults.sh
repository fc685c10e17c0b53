#!/usr/bin/env bash
# Fault matrix: every emulator fault kind during every kind of
# operation (list, read, append, state change, follower change, thread
# creation), on a mount that authenticates with a refresh token (so that a
# 401 is refreshed and retried).  Each cell checks: the daemon is alive, the
# command finished within its deadline (no hang), the outcome is success or
# the errno cliqfs(1) ERRORS gives for that fault, and a
# failure left its line in .cliqfs/errors.  Writes are checked at the
# emulator once the faults are cleared and the outbox has drained: a write
# whose close returned 0 arrived exactly once (not lost, not doubled), a
# write whose close failed never arrived ("phantom": the user was told it
# failed, so a retry would double it; for the idempotent state and follower
# changes this is only reported).
#
# Every target is fresh (never read before), so that the fault meets a
# request of the operation itself rather than a cached answer.  The mount's
# request timeout is short (-o timeout) so that a delayed request is given up
# in seconds; the delay cells also run in parallel.
. "$MOUNT_LIB"
set -o pipefail
: "${FSOP:?}"

TS=120
CLIENT_TIMEOUT_S=5            # the mount's -o timeout
# A delayed request lands half a second after the client gave up on it.
DELAY_MS=$((CLIENT_TIMEOUT_S * 1000 + 500))
KINDS=(500 503 drop truncate invalid_json 401 accept_drop delay throttle throttle400)
OPS=(list read append state follow create)
declare -A OP_API=([list]=threads.list [read]=chats.messages [append]=messages.post
  [state]=threads.update [follow]=threads.followers.add [create]=messages.post)
RUN=$RANDOM$RANDOM

# What the manual's ERRORS table gives when the operation fails under each fault.
expected_errno() {
  case $1 in
    500 | 503 | drop | truncate | invalid_json | accept_drop) echo EIO ;;
    delay) echo ETIMEDOUT ;;
    401) echo NONE ;;                 # refreshed and retried: must succeed
    throttle | throttle400) echo EAGAIN ;;
  esac
}
# How many requests in a row get the fault: a read is retried after a 5xx or
# a dropped connection (by cliqfs, and by libcurl on a reused connection), so
# the fault repeats to reach the errno; a write is retried by the outbox
# (a dropped write is retried only after its outcome is checked, 30 s later).
count_of() { # KIND OP
  case $1/$2 in
    500/* | 503/* | drop/list | drop/read) echo 3 ;;
    *) echo 1 ;;
  esac
}
# Deadline of one command (s): the fault's own wait plus a margin.
deadline_of() {
  case $1 in
    delay) echo $((CLIENT_TIMEOUT_S + 15)) ;;
    throttle | throttle400) echo 30 ;;   # a write may wait out the lock (600 s / TS)
    *) echo 15 ;;
  esac
}

CELLS=0
CELLS_OK=0
INJECTED=0
REACHED=0
SURVIVED=0
FAILED_WITH_ERRNO=0
SUCCEEDED=0
BAD_CELLS=()

cell_bad() {
  echo "FAIL [$1]: $2" >&2
  BAD_CELLS+=("$1")
}

daemon_alive() {
  kill -0 "$CLIQFS_PID" 2>/dev/null && mountpoint -q "$MNT"
}

# The counts of the faults still pending, added up by the shell (polled).
pending_faults() {
  local f n=0 re='"count":([0-9]+)(.*)'
  f=$(emu_ctl GET /_emulator/faults)
  while [[ $f =~ $re ]]; do
    n=$((n + BASH_REMATCH[1]))
    f=${BASH_REMATCH[2]}
  done
  echo "$n"
}

faults_consumed() { [ "$(pending_faults)" = 0 ]; }

inject() { # API KIND COUNT
  local kind=$2 body
  [ "$kind" = throttle400 ] && kind=throttle
  body="{\"api\":\"$1\",\"kind\":\"$kind\",\"count\":$3"
  [ "$kind" = delay ] && body="$body,\"delay_ms\":$DELAY_MS"
  emu_ctl POST /_emulator/faults "$body}" >/dev/null || fail "injecting $kind on $1"
  INJECTED=$((INJECTED + $3))
}

# ---- Mount with a refresh token ------------------------------------------------------
# Without background sync: each injected fault must meet the request under test.

emu_start --synthetic 12x12x10 --time-scale "$TS" || fail "emulator did not start"
CONF=$MT_DIR/faults.conf
printf 'client_id = emulator-client\nclient_secret = emulator-secret\nrefresh_token = emulator-refresh\n' >"$CONF"
chmod 600 "$CONF"
"$CLIQFS" -f -o "config=$CONF,api_url=$EMU_URL,accounts_url=$EMU_URL,time_scale=$TS,timeout=$CLIENT_TIMEOUT_S,sync=off" "$MNT" 2>>"$MT_LOG" &
CLIQFS_PID=$!
wait_until 10 mountpoint -q "$MNT" || fail "no mount within 10 s"

STATE_JSON=$MT_DIR/state.json
emu_ctl GET /_emulator/state >"$STATE_JSON"
ME=$(jq -r .me "$STATE_JSON")
channel_name() { jq -r ".channels[$1].unique_name" "$STATE_JSON"; }
open_titles() { jq -r ".channels[$1].threads[] | select(.state == \"open\") | .title" "$STATE_JSON"; }
LIST_CH=()
for i in $(seq 0 9); do LIST_CH+=("$(channel_name "$i")"); done
CHR=$(channel_name 10)
CHW=$(channel_name 11)
mapfile -t R_T < <(open_titles 10 | head -n 10)
mapfile -t W_T < <(open_titles 11 | head -n 10)
[ "${#R_T[@]}" = 10 ] && [ "${#W_T[@]}" = 10 ] || fail "not enough open threads"
# A channel member who does not follow each write thread yet.
W_M=()
for t in "${W_T[@]}"; do
  W_M+=("$(jq -r --arg t "$t" --arg me "$ME" '.channels[11] as $c
    | ($c.threads[] | select(.title == $t) | .followers) as $f
    | ($c.members - $f - [$me]) | .[0] // empty' "$STATE_JSON")")
done

# Only the channel list and two channels' thread lists are fetched here; the
# ten list channels stay unlisted.
ls "$MNT" >/dev/null && ls "$MNT/$CHR" "$MNT/$CHW" >/dev/null || fail "warming up"
for k in "${!KINDS[@]}"; do
  d="$MNT/$CHW/Fault ${KINDS[$k]}"
  mkdir "$d" || fail "mkdir $d"
  out=$(printf 'fault %s main %s\n' "${KINDS[$k]}" "$RUN" | "$FSOP" write "$d/main" -t)
  [ "$out" = OK ] || fail "writing main of $d: $out"
done
emu_ctl DELETE /_emulator/faults >/dev/null
ok "mounted with a refresh token; 10 drafts with their main written"

# ---- The cells -----------------------------------------------------------------------

# cell_cmd OP K: prints the command of operation OP for fault index K.
cell_cmd() {
  local op=$1 k=$2 kind=${KINDS[$2]}
  case $op in
    list) printf 'ls %q >/dev/null' "$MNT/${LIST_CH[$k]}" ;;
    read) printf '%q read %q' "$FSOP" "$MNT/$CHR/${R_T[$k]}/messages" ;;
    append) printf 'printf "fault-%s-append-%s\\n" | %q write %q -a' "$kind" "$RUN" "$FSOP" "$MNT/$CHW/${W_T[$k]}/messages" ;;
    state) printf 'printf "close\\n" | %q write %q -t' "$FSOP" "$MNT/$CHR/${R_T[$k]}/state" ;;
    follow) printf 'printf "%%s\\n" %q | %q write %q -a' "${W_M[$k]}" "$FSOP" "$MNT/$CHW/${W_T[$k]}/followers" ;;
    create) printf 'printf "fault-%s-create-%s\\n" | %q write %q -a' "$kind" "$RUN" "$FSOP" "$MNT/$CHW/Fault $kind/messages" ;;
  esac
}

# The path .cliqfs/errors names for a cell.
cell_path() {
  local op=$1 k=$2
  case $op in
    list) echo "/${LIST_CH[$k]}" ;;
    read) echo "/$CHR/${R_T[$k]}/messages" ;;
    append) echo "/$CHW/${W_T[$k]}/messages" ;;
    state) echo "/$CHR/${R_T[$k]}/state" ;;
    follow) echo "/$CHW/${W_T[$k]}/followers" ;;
    create) echo "/$CHW/Fault ${KINDS[$k]}/messages" ;;
  esac
}

RES=$MT_DIR/results
mkdir -p "$RES"

# start_cell OP K: runs the cell's command in the background; its outcome
# (exit status, output, seconds) lands in $RES/OP.K.
start_cell() {
  local op=$1 k=$2 cmd dl
  cmd=$(cell_cmd "$op" "$k")
  dl=$(deadline_of "${KINDS[$k]}")
  (
    t0=$(date +%s%N)
    out=$(timeout -k 5 "$dl" bash -o pipefail -c "$cmd" </dev/null 2>&1)
    rc=$?
    t1=$(date +%s%N)
    printf '%s\n%s\n%s\n' "$rc" "$(( (t1 - t0) / 1000000 ))" "$(printf '%s' "$out" | tail -n 1)" >"$RES/$op.$k.tmp"
    mv "$RES/$op.$k.tmp" "$RES/$op.$k"
  ) &
  CELL_PIDS+=($!)
}

# judge_cell OP K: checks one finished cell.
judge_cell() {
  local op=$1 k=$2 kind=${KINDS[$2]} name="${KINDS[$2]}/$1" rc ms out want dl good=1
  { read -r rc; read -r ms; read -r out; } <"$RES/$op.$k"
  [ "$op" = read ] && LAST_READ_MS=$(now_ms)
  want=$(expected_errno "$kind")
  dl=$(deadline_of "$kind")
  CELLS=$((CELLS + 1))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    cell_bad "$name" "no answer within $dl s (hang)"
    good=
  elif [ "$rc" = 0 ]; then
    SUCCEEDED=$((SUCCEEDED + 1))
    echo "OK" >"$RES/$op.$k.outcome"
  else
    local got=${out%@*}
    if [ "$op" = list ]; then
      # ls says it in words
      got=
      for e in EIO ETIMEDOUT EAGAIN EACCES ENOENT EINVAL; do
        [[ "$out" == *"$("$FSOP" strerror "$e")"* ]] && got=$e && break
      done
    fi
    echo "$got" >"$RES/$op.$k.outcome"
    if [ "$got" = "$want" ]; then
      FAILED_WITH_ERRNO=$((FAILED_WITH_ERRNO + 1))
      local p
      p=$(cell_path "$op" "$k")
      grep -qF -- "$p"$'\t'"$got"$'\t' "$MNT/.cliqfs/errors" ||
        { cell_bad "$name" "failed with $got but left no '$p $got' line in .cliqfs/errors"; good=; }
    else
      cell_bad "$name" "expected success or $want, got [$out] (exit $rc)"
      good=
    fi
  fi
  if daemon_alive; then
    SURVIVED=$((SURVIVED + 1))
  else
    cell_bad "$name" "the daemon died"
    good=
  fi
  [ -n "$good" ] && CELLS_OK=$((CELLS_OK + 1))
  printf 'cell %-12s %-6s -> %-9s %6d ms\n' "$kind" "$op" "$(cat "$RES/$op.$k.outcome" 2>/dev/null || echo HANG)" "$ms"
}

# run_kind K: every operation under fault K, one after another (each with its
# own fault, injected right before it), or all at once for delay.
run_kind() {
  local k=$1 kind=${KINDS[$1]} op before after
  CELL_PIDS=()
  if [ "$kind" = throttle400 ]; then
    emu_ctl POST /_emulator/config '{"throttle_style":"400"}' >/dev/null
  fi
  # A background refresh of a messages file still open from the last cell
  # would take the fault meant for the next read: leave the reads a margin.
  wait_until 10 log_quiet
  if [ "$kind" = delay ]; then
    DELAY_INJECTED_AT=$SECONDS
    before=0
    for api in threads.list chats.messages threads.update threads.followers.add; do
      inject "$api" delay 1
      before=$((before + 1))
    done
    inject messages.post delay 2
    before=$((before + 2))
    for op in "${OPS[@]}"; do start_cell "$op" "$k"; done
    wait "${CELL_PIDS[@]}"
    wait_until "$(deadline_of "$kind")" faults_consumed
    after=$(pending_faults)
    REACHED=$((REACHED + before - after))
    for op in "${OPS[@]}"; do judge_cell "$op" "$k"; done
    # The emulator performs a delayed request once its delay is over, after
    # the client gave up: let those land before the next fault locks an API.
    wait_until 60 delay_landed
  else
    for op in "${OPS[@]}"; do
      [ "$op" = read ] && wait_until 10 log_quiet
      inject "${OP_API[$op]}" "$kind" "$(count_of "$kind" "$op")"
      start_cell "$op" "$k"
      wait "${CELL_PIDS[-1]}"
      # A write may be delivered after close returned (the outbox): its
      # fault is met when the delivery sends it.
      case $op in
        append | state | follow | create) wait_until "$(deadline_of "$kind")" faults_consumed ;;
      esac
      after=$(pending_faults)
      REACHED=$((REACHED + $(count_of "$kind" "$op") - after))
      emu_ctl DELETE /_emulator/faults >/dev/null
      judge_cell "$op" "$k"
    done
  fi
  emu_ctl DELETE /_emulator/faults >/dev/null
  if [ "$kind" = throttle400 ]; then
    emu_ctl POST /_emulator/config '{"throttle_style":"429"}' >/dev/null
  fi
  case $kind in
    throttle | throttle400) wait_until 40 no_locks || fail "locks did not end within 40 s" ;;
  esac
  timeout -k 2 15 ls "$MNT/$CHR" >/dev/null || cell_bad "$kind/after" "ls $CHR fails after the $kind cells"
}

FOLLOW_QUIET_MS=$((60 * 1000 / TS * 5 / 2))   # 2.5 budget windows / TS
LAST_READ_MS=0
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
log_quiet() { [ $(($(now_ms) - LAST_READ_MS)) -ge "$FOLLOW_QUIET_MS" ]; }

delay_landed() { [ $((SECONDS - DELAY_INJECTED_AT)) -ge $((DELAY_MS / 1000 + 2)) ]; }

no_locks() {
  [[ $(emu_ctl GET /_emulator/counters) != *'"locked":true'* ]] &&
    jq -e '[.apis[] | select(.locked_until > now)] | length == 0' "$MNT/.cliqfs/status" >/dev/null
}

for k in "${!KINDS[@]}"; do
  run_kind "$k"
done
ok "matrix done: $CELLS cells"

# ---- Nothing lost, nothing doubled -------------------------------------------------------

# The delayed requests land DELAY_MS after their injection; then every queued
# write is flushed (fsync on the thread's messages) and the outbox must drain.
wait_until 60 delay_landed
for t in "${W_T[@]}"; do
  timeout -k 2 60 "$FSOP" write "$MNT/$CHW/$t/messages" -a -s </dev/null >/dev/null
done
for kind in "${KINDS[@]}"; do
  timeout -k 2 60 "$FSOP" write "$MNT/$CHW/Fault $kind/messages" -a -s </dev/null >/dev/null
done
outbox_empty() { [ "$(mt_outbox_depth)" = 0 ]; }
wait_until 60 outbox_empty || cell_bad outbox "the outbox did not drain within 60 s"
emu_ctl GET /_emulator/state >"$STATE_JSON"

LOST=0
DOUBLED=0
PHANTOM=0
APPLIED_ANYWAY=0
WRITES=0
# effect_count OP K: how many times the cell's effect is at the emulator.
effect_count() {
  local op=$1 k=$2 kind=${KINDS[$2]}
  case $op in
    append) jq --arg t "${W_T[$k]}" --arg x "fault-$kind-append-$RUN" \
      '[.channels[11].threads[] | select(.title == $t) | .messages[] | select(.text == $x)] | length' "$STATE_JSON" ;;
    create) jq --arg t "Fault $kind" --arg x "fault-$kind-create-$RUN" \
      '[.channels[11].threads[] | select(.title == $t)] as $th
       | if ($th | length) > 1 then ($th | length)
         else [$th[].messages[] | select(.text == $x)] | length end' "$STATE_JSON" ;;
    state) jq --arg t "${R_T[$k]}" \
      '[.channels[10].threads[] | select(.title == $t and .state == "closed")] | length' "$STATE_JSON" ;;
    follow) jq --arg t "${W_T[$k]}" --arg m "${W_M[$k]}" \
      '[.channels[11].threads[] | select(.title == $t) | .followers[] | select(. == $m)] | length' "$STATE_JSON" ;;
  esac
}
for k in "${!KINDS[@]}"; do
  for op in append state follow create; do
    WRITES=$((WRITES + 1))
    n=$(effect_count "$op" "$k")
    outcome=$(cat "$RES/$op.$k.outcome" 2>/dev/null || echo HANG)
    name="${KINDS[$k]}/$op"
    if [ "$outcome" = OK ]; then
      if [ "$n" = 0 ]; then
        LOST=$((LOST + 1)); cell_bad "$name" "close returned 0 but it never arrived (lost)"
      elif [ "$n" -gt 1 ]; then
        DOUBLED=$((DOUBLED + 1)); cell_bad "$name" "arrived $n times (doubled)"
      fi
    elif [ "$n" != 0 ]; then
      case $op in
        append | create)
          PHANTOM=$((PHANTOM + 1))
          cell_bad "$name" "close failed with $outcome but it arrived $n time(s): a retry would double it" ;;
        *)
          # Idempotent: a retry does no harm, but the user was misinformed.
          APPLIED_ANYWAY=$((APPLIED_ANYWAY + 1))
          echo "note [$name]: close failed with $outcome but the change was made" ;;
      esac
    fi
  done
done

# The mount still serves everything it served before the faults.
timeout -k 2 15 ls "$MNT/$CHR" "$MNT/$CHW" >/dev/null || cell_bad final "listing after the matrix fails"
timeout -k 2 15 cat "$MNT/$CHR/${R_T[0]}/state" >/dev/null || cell_bad final "reading after the matrix fails"
daemon_alive || cell_bad final "the daemon is gone"

echo "SUMMARY hardening-faults: ${#KINDS[@]} fault kinds x ${#OPS[@]} operations = $CELLS cells;" \
  "$INJECTED faults injected, $REACHED consumed by a request, $SURVIVED/$CELLS survived (daemon alive," \
  "no hang); outcomes: $FAILED_WITH_ERRNO failed with the documented errno, $SUCCEEDED succeeded;" \
  "writes checked $WRITES: lost $LOST, doubled $DOUBLED, phantom messages $PHANTOM" \
  "(told failed, delivered), idempotent changes made though told failed $APPLIED_ANYWAY;" \
  "cells not as expected: ${#BAD_CELLS[@]}"
if [ "${#BAD_CELLS[@]}" -gt 0 ]; then
  echo "not as expected: ${BAD_CELLS[*]}"
  fail "${#BAD_CELLS[@]} cell(s) not as expected"
fi
