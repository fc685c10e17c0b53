# tests/bench/lib.sh: helpers for the benchmark sections (sourced by run.sh).
#
# Needs CLIQFS, CLIQ_EMULATOR, BENCH_READLAT, BENCH_FLOORFS and BENCH_TMP (a
# scratch folder) set.  Every emulator, mount and background process started
# here is remembered by PID and stopped by bench_cleanup (run.sh's EXIT trap).
set -u
export LC_ALL=C

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The emulator's shell harness: emu_start, emu_stop, emu_ctl (one emulator at
# a time; its own EXIT trap is replaced by run.sh's).
# shellcheck source=../emulator/harness.sh
. "$BENCH_SRC/../emulator/harness.sh"

CLIQFS_PID=
MNT=
MNT_DIR=
BENCH_BG_PIDS=()

blog() {
  printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bfail() {
  echo "bench: FAIL: $*" >&2
  exit 1
}

# now: wall-clock seconds with microseconds (no fork).
now() {
  printf '%s' "$EPOCHREALTIME"
}

# calc EXPR: floating point arithmetic (awk).
calc() {
  awk "BEGIN { printf \"%.6f\", $* }"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds;
# returns 1 when the deadline passes.  The loop starts no process of its own
# (the clock is $EPOCHREALTIME, the pause a nap): a benchmark's waits must
# not take the CPU that the measured daemon needs.
wait_for() {
  local limit=$1
  shift
  local deadline
  deadline=$(calc "$(now) * 1000000 + $limit * 1000000")
  deadline=${deadline%.*}
  while ! "$@"; do
    [ "${EPOCHREALTIME/./}" -gt "$deadline" ] && return 1
    nap 0.02
  done
}

# bsleep SECONDS: sleep in the background and wait for it, so that a signal
# runs the EXIT trap at once instead of after the sleep.
bsleep() {
  sleep "$1" &
  wait $!
}

# sleep_until T: sleeps until the wall clock reaches T (epoch seconds).
sleep_until() {
  local d
  d=$(calc "$1 - $(now)")
  if awk -v d="$d" 'BEGIN { exit !(d > 0) }'; then
    bsleep "$d"
  fi
}

# ---- Emulator ---------------------------------------------------------------

# bench_emu ARGS...: (re)starts the emulator, exports EMU_URL.  It logs each
# request it serves (emu_log_since) only with BENCH_EMU_LOG=1.
bench_emu() {
  local -a quiet=(--quiet)
  [ "${BENCH_EMU_LOG:-0}" = 1 ] && quiet=()
  emu_start "${quiet[@]}" "$@" || bfail "the emulator did not start ($*)"
}

# emu_log_mark: a mark in the emulator's log; emu_log_since MARK: the request
# lines logged after it ("GET /path -> 200 (api.class)").
emu_log_mark() {
  wc -l <"$EMU_DIR/emulator.log"
}

emu_log_since() {
  tail -n +"$(($1 + 1))" "$EMU_DIR/emulator.log" | grep -E '^cliq-emulator: [A-Z]+ /' |
    sed 's/^cliq-emulator: //'
}

emu_counters() {
  emu_ctl GET /_emulator/counters
}

emu_reset() {
  emu_ctl POST /_emulator/counters/reset >/dev/null
}

# emu_api_counts: {"api": n, ...} of the requests served so far.
emu_api_counts() {
  emu_counters | jq -c '.apis | map_values(.total)'
}

# emu_status_count API STATUS: requests of that API answered with STATUS.
# Read by the shell: waits poll it every 20 ms beside the measured daemon.
emu_status_count() {
  local c re="\"${1//./[.]}\":[{]\"total\":[0-9]+,\"status\":[{][^}]*\"$2\":([0-9]+)"
  c=$(emu_counters)
  if [[ $c =~ $re ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo 0
  fi
}

emu_throttled() {
  emu_counters | jq -r '.throttled'
}

# ---- Mounts -----------------------------------------------------------------

# bench_mount [OPTIONS]: mounts cliqfs against the running emulator in a new
# folder with its own (empty) config, state and cache folders; OPTIONS are
# appended to -o.  Sets MNT, MNT_DIR and CLIQFS_PID.  With BENCH_WITH_HEAP=1
# the daemon runs with libheapstat preloaded (heap_now).
bench_mount() {
  local extra=${1:-}
  bench_unmount
  MNT_DIR=$(mktemp -d "$BENCH_TMP/mount.XXXXXX")
  MNT=$MNT_DIR/mnt
  mkdir -p "$MNT" "$MNT_DIR/config" "$MNT_DIR/state" "$MNT_DIR/cache"
  local opts="api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN"
  opts="$opts,$(opts_sync_off "$extra")"
  local -a preload=()
  if [ "${BENCH_WITH_HEAP:-0}" = 1 ]; then
    preload=(HEAPSTAT_FILE="$MNT_DIR/heap" LD_PRELOAD="$BENCH_HEAPSTAT")
  fi
  env "${preload[@]}" XDG_CONFIG_HOME="$MNT_DIR/config" XDG_STATE_HOME="$MNT_DIR/state" \
    XDG_CACHE_HOME="$MNT_DIR/cache" \
    "$CLIQFS" -f -o "$opts${BENCH_MOUNT_EXTRA:-}" "$MNT" 2>>"$MNT_DIR/cliqfs.log" &
  CLIQFS_PID=$!
  local deadline=$((SECONDS + 15))
  while ! mountpoint -q "$MNT"; do
    if ! kill -0 "$CLIQFS_PID" 2>/dev/null; then
      CLIQFS_PID=
      tail -n 20 "$MNT_DIR/cliqfs.log" >&2
      bfail "cliqfs exited before mounting (-o $extra)"
    fi
    [ "$SECONDS" -le "$deadline" ] || bfail "no mount within 15 s"
    sleep 0.02
  done
  CLIQFS_WORKERS=$(jq -r '.fuse.workers' "$MNT/.cliqfs/status") ||
    bfail "cannot read fuse.workers from $MNT/.cliqfs/status"
}

_daemon_gone() {
  ! kill -0 "$1" 2>/dev/null
}

# bench_unmount: unmounts and waits for the daemon (TERM, then KILL, by PID).
bench_unmount() {
  if [ -n "$MNT" ] && is_mounted "$MNT"; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
  fi
  if [ -n "$CLIQFS_PID" ]; then
    if ! wait_for 20 _daemon_gone "$CLIQFS_PID"; then
      kill -TERM "$CLIQFS_PID" 2>/dev/null
      wait_for 5 _daemon_gone "$CLIQFS_PID" || kill -KILL "$CLIQFS_PID" 2>/dev/null
    fi
    wait "$CLIQFS_PID" 2>/dev/null
    CLIQFS_PID=
  fi
  if [ -n "$MNT_DIR" ]; then
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
      "$MNT_DIR/cliqfs.log" 2>/dev/null; then
      grep -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$MNT_DIR/cliqfs.log" >&2
      bfail "sanitizer report in the cliqfs log"
    fi
    rm -rf "$MNT_DIR"
    MNT_DIR=
    MNT=
  fi
}

# proc_kb PID FIELD: a /proc/PID/status field in kB (VmHWM, VmRSS).
proc_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# heap_now: bytes of heap the daemon holds (needs BENCH_WITH_HEAP=1 at mount).
heap_now() {
  rm -f "$MNT_DIR/heap.out"
  : >"$MNT_DIR/heap.req"
  wait_for 5 test -s "$MNT_DIR/heap.out" || bfail "heapstat did not answer"
  cut -d ' ' -f 1 "$MNT_DIR/heap.out"
}

# outbox_empty: nothing waits in the mount's outbox.
outbox_empty() {
  local -a left
  left=("$MNT"/.cliqfs/outbox/*)
  [ ! -e "${left[0]}" ]
}

# ---- Background processes -----------------------------------------------------

bench_bg_add() {
  BENCH_BG_PIDS+=("$1")
}

bench_bg_stop() {
  local p
  for p in "${BENCH_BG_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${BENCH_BG_PIDS[@]}"; do
    wait "$p" 2>/dev/null
  done
  BENCH_BG_PIDS=()
}

# floor_mount SOURCE MOUNTPOINT LOG [FLOORFS OPTIONS...]: floorfs serving
# SOURCE on MOUNTPOINT with as many FUSE workers at most as the last cliqfs
# mounted (CLIQFS_WORKERS), stopped with the other background processes (it
# is unmounted by the caller); sets FLOOR_PID.
floor_mount() {
  local src=$1 mnt=$2 log=$3
  shift 3
  mkdir -p "$mnt"
  "$BENCH_FLOORFS" -f -o "max_threads=${CLIQFS_WORKERS:?no cliqfs mounted yet}" "$@" \
    "$src" "$mnt" 2>>"$log" &
  FLOOR_PID=$!
  bench_bg_add "$FLOOR_PID"
  wait_for 10 mountpoint -q "$mnt" || bfail "floorfs $* did not mount on $mnt"
}

bench_cleanup() {
  local rc=$?
  cd /
  bench_bg_stop
  bench_unmount
  emu_stop
  if [ "$rc" -ne 0 ]; then
    emu_dump_log
  fi
  rm -rf "$EMU_DIR"
  if [ -n "${BENCH_TMP:-}" ] && ! nothing_left_under "$BENCH_TMP"; then rc=1; fi
  [ -n "${BENCH_TMP:-}" ] && [ -z "${BENCH_KEEP_TMP:-}" ] && rm -rf "$BENCH_TMP"
  exit "$rc"
}

# ---- Results ----------------------------------------------------------------

# res_add FILE JSON: appends one result object (one line) to $BENCH_RES/FILE.
res_add() {
  printf '%s\n' "$(jq -c . <<<"$2")" >>"$BENCH_RES/$1"
}
