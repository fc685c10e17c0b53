#!/usr/bin/env bash
# Load: 16 concurrent readers (cat, ls -l, stat, grep, grep -r, jq on
# .cliqfs/status) and 4 writers (appends to four threads the readers also
# read) for 2 simulated minutes (time_scale 10: 12 s), while 4 cold readers
# read 12 threads of a channel never listed (each read waits for budget the
# others spend) and a probe times stat and a cached cat every 0.2 s.  No
# command may fail, everything must finish within a deadline (no deadlock),
# a messages file never shrinks while it is read, and every appended line
# arrives exactly once at the emulator and shows in its thread's messages.
# The emulator must never have to refuse a request (the budget holds under
# load).  The summary gives the cold reads' and the probe's longest times.
. "$MOUNT_LIB"
set -o pipefail
: "${FSOP:?}"

TS=10
SIM_SECONDS=120
LOAD_S=$((SIM_SECONDS / TS))
READERS=16
WRITERS=4
CMD_TIMEOUT=30                  # one command; longer is a hang
FINISH_DEADLINE=$((LOAD_S + 2 * CMD_TIMEOUT))

emu_start --synthetic 3x12x20 --time-scale "$TS" || fail "emulator did not start"
mt_mount "time_scale=$TS"
cd "$MNT"
CHS=(synthetic-001 synthetic-002)
mapfile -t T1 < <(emu_state ".channels[0].threads[] | select(.state == \"open\") | .title" | head -n 4)
mapfile -t T2 < <(emu_state ".channels[1].threads[] | select(.state == \"open\") | .title" | head -n 4)
FILES=()
for t in "${T1[@]}"; do FILES+=("${CHS[0]}/$t"); done
for t in "${T2[@]}"; do FILES+=("${CHS[1]}/$t"); done
[ "${#FILES[@]}" = 8 ] || fail "expected 8 open threads, got ${#FILES[@]}"
WT=("${FILES[0]}" "${FILES[2]}" "${FILES[4]}" "${FILES[6]}")
# Cold: a channel nobody lists or reads before the load starts.
COLD_CH=synthetic-003
mapfile -t COLD < <(emu_state ".channels[2].threads[].title" | head -n 12)
[ "${#COLD[@]}" = 12 ] || fail "expected 12 threads in $COLD_CH, got ${#COLD[@]}"
COLD_READERS=4

# Warm what the readers read, so that a read can always be served (stale if
# need be) and never has to wait for a budget that the writers spend.
for ch in "${CHS[@]}"; do
  timeout -k 2 120 grep -r -c . "$ch" >/dev/null || fail "warming $ch"
done
for f in "${FILES[@]}"; do
  timeout -k 2 60 cat "$f/messages" "$f/messages.jsonl" >/dev/null || fail "warming $f"
done
emu_ctl POST /_emulator/counters/reset >/dev/null
ok "warm: ${#FILES[@]} threads in ${CHS[*]}"

LOGS=$MT_DIR/load
mkdir -p "$LOGS"
END_AT=$(($(date +%s) + LOAD_S))

# reader N: random commands until END_AT; one line per failure in
# $LOGS/reader.N.err, the number of commands in $LOGS/reader.N.count.
reader() {
  local n=$1 count=0 f ch out i size
  local -A seen=()
  RANDOM=$((n * 7919))
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    f=${FILES[RANDOM % ${#FILES[@]}]}
    ch=${f%%/*}
    i=$((RANDOM % 9))
    case $i in
      0) out=$(timeout -k 2 $CMD_TIMEOUT cat "$f/messages" 2>&1 >/dev/null) ;;
      1) out=$(timeout -k 2 $CMD_TIMEOUT ls -l "$ch" 2>&1 >/dev/null) ;;
      2) out=$(timeout -k 2 $CMD_TIMEOUT stat -c %s "$f/messages" 2>&1)
         if [[ "$out" =~ ^[0-9]+$ ]]; then
           size=$out
           out=
           if [ -n "${seen[$f]:-}" ] && [ "$size" -lt "${seen[$f]}" ]; then
             out="$f/messages shrank from ${seen[$f]} to $size bytes"
           fi
           seen[$f]=$size
         fi ;;
      3) out=$(timeout -k 2 $CMD_TIMEOUT grep -c . "$f/messages" 2>&1 >/dev/null) ;;
      4) out=$(timeout -k 2 $CMD_TIMEOUT cat "$f/state" "$f/title" "$f/members" 2>&1 >/dev/null) ;;
      5) out=$(timeout -k 2 $CMD_TIMEOUT grep -r -c load "$ch" 2>&1 >/dev/null) ;;
      6) out=$(timeout -k 2 $CMD_TIMEOUT ls "$f" 2>&1 >/dev/null) ;;
      7) out=$(timeout -k 2 $CMD_TIMEOUT jq -e .apis .cliqfs/status 2>&1 >/dev/null) ;;
      8) out=$(timeout -k 2 $CMD_TIMEOUT wc -l "$f/messages.jsonl" 2>&1 >/dev/null) ;;
    esac
    local rc=$?
    # grep: 1 = no line matched, not an error
    if [ "$rc" = 1 ] && { [ "$i" = 3 ] || [ "$i" = 5 ]; }; then rc=0; fi
    count=$((count + 1))
    if [ "$rc" != 0 ] || [ -n "$out" ]; then
      echo "reader $n, command $i on $f: exit $rc: $out" >>"$LOGS/reader.$n.err"
    fi
  done
  echo "$count" >"$LOGS/reader.$n.count"
}

# writer N: appends numbered lines to its thread until END_AT; each line and
# what close said go to $LOGS/writer.N.
writer() {
  local n=$1 k=0 line out
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    k=$((k + 1))
    line="load-w$n-$k-$RUN_ID"
    out=$(printf '%s\n' "$line" | timeout -k 2 $CMD_TIMEOUT "$FSOP" write "${WT[$n]}/messages" -a 2>&1)
    printf '%s\t%s\n' "$line" "$out" >>"$LOGS/writer.$n"
  done
}

now_s() { date +%s.%N; }

# cold reader N: reads its share of the cold threads once each; one line per
# read in $LOGS/cold.N: seconds taken, exit status, thread.
cold_reader() {
  local n=$1 i t0 rc
  for ((i = n; i < ${#COLD[@]}; i += COLD_READERS)); do
    t0=$(now_s)
    timeout -k 2 $CMD_TIMEOUT cat "$COLD_CH/${COLD[i]}/messages" >/dev/null 2>>"$LOGS/cold.$n.err"
    rc=$?
    printf '%s\t%s\t%s\n' "$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.3f", b - a }')" \
      "$rc" "${COLD[i]}" >>"$LOGS/cold.$n"
  done
}

# probe: stat and a cached cat, timed, every 0.2 s until END_AT.
probe() {
  local t0
  while [ "$(date +%s)" -lt "$END_AT" ]; do
    t0=$(now_s)
    stat "${FILES[1]}/messages" >/dev/null && cat "${FILES[1]}/messages" >/dev/null ||
      echo "probe failed" >>"$LOGS/probe.err"
    awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.3f\n", b - a }' >>"$LOGS/probe"
    nap 0.2
  done
}

RUN_ID=$RANDOM$RANDOM
PIDS=()
for n in $(seq 0 $((COLD_READERS - 1))); do
  cold_reader "$n" &
  PIDS+=($!)
done
probe &
PIDS+=($!)
for n in $(seq 0 $((READERS - 1))); do
  reader "$n" &
  PIDS+=($!)
done
for n in $(seq 0 $((WRITERS - 1))); do
  writer "$n" &
  PIDS+=($!)
done
MT_PIDS+=("${PIDS[@]}")
t0=$SECONDS
all_done() {
  local p
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done
  return 0
}
if ! wait_until "$FINISH_DEADLINE" all_done; then
  echo "still running after $FINISH_DEADLINE s (deadlock?):" >&2
  ps -o pid,stat,etimes,args --ppid "$$" >&2
  fail "readers or writers did not finish within $FINISH_DEADLINE s"
fi
wait "${PIDS[@]}" 2>/dev/null
ELAPSED=$((SECONDS - t0))
kill -0 "$CLIQFS_PID" || fail "the daemon died under load"

# ---- Figures and checks ------------------------------------------------------------------------
READS=$(cat "$LOGS"/reader.*.count | awk '{ s += $1 } END { print s + 0 }')
READ_ERRORS=$(cat "$LOGS"/reader.*.err 2>/dev/null | wc -l)
WRITES=$(cat "$LOGS"/writer.* | wc -l)
WRITE_ERRORS=$(awk -F'\t' '$2 != "OK"' "$LOGS"/writer.* | wc -l)
COLD_READS=$(cat "$LOGS"/cold.[0-9]* | wc -l)
COLD_ERRORS=$(awk -F'\t' '$2 != 0' "$LOGS"/cold.[0-9]* | wc -l)
COLD_MAX=$(cut -f 1 "$LOGS"/cold.[0-9]* | sort -g | tail -n 1)
PROBES=$(wc -l <"$LOGS/probe")
PROBE_MAX=$(sort -g "$LOGS/probe" | tail -n 1)
PROBE_ERRORS=$(cat "$LOGS/probe.err" 2>/dev/null | wc -l)

# Deliveries finish: fsync each written thread, then the outbox is empty.
# The deadline follows the write budget (messages.post: 19 a scaled minute):
# what was queued cannot drain faster, plus a generous margin for a loaded
# machine (and the sanitizer build).
DRAIN_S=$(( 60 + 2 * WRITES * 60 / (19 * TS) ))
for t in "${WT[@]}"; do
  timeout -k 2 "$DRAIN_S" "$FSOP" write "$t/messages" -a -s </dev/null >/dev/null ||
    fail "fsync $t/messages (deadline $DRAIN_S s for $WRITES appends)"
done
outbox_empty() { [ "$(mt_outbox_depth)" = 0 ]; }
wait_until "$DRAIN_S" outbox_empty || fail "the outbox did not drain"

emu_ctl GET /_emulator/state >"$LOGS/state.json"
LOST=0
DOUBLED=0
PHANTOM=0
for n in $(seq 0 $((WRITERS - 1))); do
  title=${WT[$n]#*/}
  jq -r --arg t "$title" '.channels[].threads[] | select(.title == $t) | .messages[].text' \
    "$LOGS/state.json" | grep "^load-w$n-" | sort | uniq -c >"$LOGS/arrived.$n"
  while IFS=$'\t' read -r line out; do
    c=$(awk -v l="$line" '$2 == l { print $1 }' "$LOGS/arrived.$n")
    c=${c:-0}
    if [ "$out" = OK ]; then
      [ "$c" = 0 ] && { LOST=$((LOST + 1)); echo "lost: $line" >&2; }
      [ "$c" -gt 1 ] && { DOUBLED=$((DOUBLED + 1)); echo "doubled ($c): $line" >&2; }
    elif [ "$c" != 0 ]; then
      PHANTOM=$((PHANTOM + 1))
      echo "arrived though close said $out: $line" >&2
    fi
  done <"$LOGS/writer.$n"
done
# Readers see every delivered line, once, in the thread's messages.
delivered_shown() {
  local n title want got
  for n in $(seq 0 $((WRITERS - 1))); do
    want=$(awk -F'\t' '$2 == "OK"' "$LOGS/writer.$n" | wc -l)
    got=$(grep -c "load-w$n-.*-$RUN_ID\$" "${WT[$n]}/messages")
    [ "$got" = "$want" ] || { echo "${WT[$n]}/messages shows $got of $want lines" >"$LOGS/shown"; return 1; }
  done
}
SHOWN_OK=yes
wait_until 20 delivered_shown || SHOWN_OK="no: $(cat "$LOGS/shown")"
THROTTLED=$(emu_ctl GET /_emulator/counters | jq .throttled)

echo "SUMMARY hardening-load: $READERS readers and $WRITERS writers for $SIM_SECONDS simulated s" \
  "($LOAD_S s at time_scale $TS, all done after $ELAPSED s): $READS reads, $READ_ERRORS errors;" \
  "$WRITES appends, $WRITE_ERRORS errors; at the emulator: lost $LOST, doubled $DOUBLED," \
  "phantom $PHANTOM, throttled $THROTTLED; every delivered line shown in messages: $SHOWN_OK;" \
  "$COLD_READS cold reads (waiting for budget), $COLD_ERRORS errors, longest $COLD_MAX s;" \
  "$PROBES probes (stat + cached cat), $PROBE_ERRORS errors, longest $PROBE_MAX s"
if [ "$READ_ERRORS" != 0 ]; then
  echo "first read errors:" >&2
  cat "$LOGS"/reader.*.err | head -n 10 >&2
fi
if [ "$WRITE_ERRORS" != 0 ]; then
  echo "first write errors:" >&2
  awk -F'\t' '$2 != "OK"' "$LOGS"/writer.* | head -n 10 >&2
fi
[ "$READ_ERRORS" = 0 ] || fail "$READ_ERRORS read error(s) under load"
[ "$COLD_READS" = 12 ] && [ "$COLD_ERRORS" = 0 ] ||
  fail "cold reads: $COLD_READS of 12, $COLD_ERRORS failed: $(cat "$LOGS"/cold.*.err 2>/dev/null | head -n 5)"
[ "$PROBE_ERRORS" = 0 ] || fail "$PROBE_ERRORS probe(s) failed under load"
[ "$WRITE_ERRORS" = 0 ] || fail "$WRITE_ERRORS write error(s) under load"
[ "$LOST" = 0 ] && [ "$DOUBLED" = 0 ] && [ "$PHANTOM" = 0 ] || fail "lost $LOST, doubled $DOUBLED, phantom $PHANTOM"
[ "$WRITES" -ge "$WRITERS" ] || fail "only $WRITES appends in $LOAD_S s"
[ "$THROTTLED" = 0 ] || fail "the emulator refused $THROTTLED request(s) for the rate limit under load"
[ "$SHOWN_OK" = yes ] || fail "delivered lines missing from messages: $SHOWN_OK"
ok "load: no error, no deadlock, nothing lost or doubled"
