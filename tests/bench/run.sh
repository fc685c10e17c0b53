#!/usr/bin/env bash
# tests/bench/run.sh: runs every benchmark and writes docs/benchmarks.md and
# the plots in docs/bench/ (see docs/benchmarks.md for what is measured).
#
#   tests/bench/run.sh [--smoke] [--build DIR] [--out DIR] [--only LIST]
#
#   --smoke      a short run of every section (the meson test 'bench-smoke');
#                its numbers only show that the harness works
#   --build DIR  the meson build folder (default: build; set up and built
#                when needed).  CLIQFS, CLIQ_EMULATOR, BENCH_READLAT,
#                BENCH_FLOORFS, BENCH_HEAPSTAT and BENCH_STALLPROBE in the
#                environment override it.
#   --out DIR    where benchmarks.md and bench/ go (default: docs/ of the
#                source tree; --smoke requires --out)
#   --only LIST  comma-separated sections: requests,latency,scale,writes,sync
#   --from-results FILE
#                only rewrite the report (and plots) from a results.jsonl of
#                an earlier run of the same mode
#
# While working on one part of sync, BENCH_SYNC_LOAD ("ORG:SCALE[:ROUNDS] ..."),
# BENCH_SYNC_SIZES and BENCH_SYNC_GREP_ROUNDS (0: none) narrow the sync
# section of a full run, and BENCH_SYNC_LOAD_AWAKE (organizations, "" for
# none) names those whose runs keep the CPUs awake; docs/benchmarks.md comes
# from a run without them.
# BENCH_KEEP=DIR keeps each sync load run's daemon log and timed operations;
# BENCH_MOUNT_EXTRA (",verbose=3") adds -o options to every cliqfs mount.
#
# Needs: fuse3 (fusermount3), curl, jq, gnuplot (Debian: gnuplot-nox), and
# permission to mount FUSE filesystems and to run a real-time thread (root:
# tests/bench/stallprobe.c).
set -u
BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_SRC/../.." && pwd)

MODE=full
BUILD=$REPO/build
OUT=
ONLY=requests,latency,scale,writes,sync
FROM_RESULTS=
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) MODE=smoke ;;
    --build) BUILD=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift ;;
    --out) OUT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --from-results) FROM_RESULTS=$(realpath "$2"); shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$OUT" ]; then
  if [ "$MODE" = smoke ]; then
    echo "run.sh: --smoke writes only where --out says (not over docs/)" >&2
    exit 2
  fi
  OUT=$REPO/docs
fi
mkdir -p "$OUT/bench" || exit 1
OUT=$(cd "$OUT" && pwd)

for tool in fusermount3 curl jq gnuplot awk; do
  command -v "$tool" >/dev/null || {
    echo "run.sh: $tool is missing (Debian: fuse3 curl jq gnuplot-nox gawk)" >&2
    exit 1
  }
done

if [ -n "$FROM_RESULTS" ]; then
  # Nothing is run: the binaries are not needed.
  CLIQFS=${CLIQFS:-/bin/false} CLIQ_EMULATOR=${CLIQ_EMULATOR:-/bin/false}
  BENCH_READLAT=${BENCH_READLAT:-/bin/false} BENCH_FLOORFS=${BENCH_FLOORFS:-/bin/false}
  BENCH_HEAPSTAT=${BENCH_HEAPSTAT:-/bin/false} BENCH_STALLPROBE=${BENCH_STALLPROBE:-/bin/false}
fi
# Binaries: the environment's, or the build folder's (built when missing).
if [ -z "${CLIQFS:-}" ] || [ -z "${CLIQ_EMULATOR:-}" ] || [ -z "${BENCH_READLAT:-}" ] ||
  [ -z "${BENCH_FLOORFS:-}" ] || [ -z "${BENCH_HEAPSTAT:-}" ] || [ -z "${BENCH_STALLPROBE:-}" ]; then
  build_log=$(mktemp)
  if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$REPO" >"$build_log" 2>&1 || {
      tail -n 30 "$build_log" >&2
      echo "run.sh: meson setup $BUILD failed" >&2
      exit 1
    }
  fi
  ninja -C "$BUILD" fs/cliqfs tests/emulator/cliq-emulator tests/bench/readlat \
    tests/bench/floorfs tests/bench/libheapstat.so tests/bench/stallprobe >"$build_log" 2>&1 || {
    tail -n 30 "$build_log" >&2
    echo "run.sh: building in $BUILD failed" >&2
    exit 1
  }
  rm -f "$build_log"
  CLIQFS=${CLIQFS:-$BUILD/fs/cliqfs}
  CLIQ_EMULATOR=${CLIQ_EMULATOR:-$BUILD/tests/emulator/cliq-emulator}
  BENCH_READLAT=${BENCH_READLAT:-$BUILD/tests/bench/readlat}
  BENCH_FLOORFS=${BENCH_FLOORFS:-$BUILD/tests/bench/floorfs}
  BENCH_HEAPSTAT=${BENCH_HEAPSTAT:-$BUILD/tests/bench/libheapstat.so}
  BENCH_STALLPROBE=${BENCH_STALLPROBE:-$BUILD/tests/bench/stallprobe}
fi
export CLIQFS CLIQ_EMULATOR BENCH_READLAT BENCH_FLOORFS BENCH_HEAPSTAT BENCH_STALLPROBE

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-bench.XXXXXX")
BENCH_RES=$BENCH_TMP/results
mkdir -p "$BENCH_RES"
export BENCH_TMP BENCH_RES

# shellcheck source=lib.sh
. "$BENCH_SRC/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- Parameters ---------------------------------------------------------------
if [ "$MODE" = full ]; then
  REQ_SCALE=10            # time_scale of the request tasks (both sides)
  FOLLOW_N=10             # threads followed with tail -f
  FOLLOW_SIM=600          # simulated seconds of following (30 posts)
  FOLLOW_GRACE=300        # simulated seconds more for the last posts to show
  LAT_ITER=10000          # operations per latency run
  LAT_ROUNDS=7            # runs per filesystem (median reported)
  LAT_WORKERS_MAX=5       # floorfs with 1..N FUSE workers, side by side
  SCALE_SIZES="10x10x1000 30x30x1000 100x100x1000"
  SCALE_BUDGET_SIZE=20x100x1  # cold ls -R at Cliq's budgets (REQ_SCALE)
  MSG_SIZES="1000 3000 10000 100000 1000000"
  WARM_ROUNDS=21          # warm cat against tmpfs, interleaved (7 past 100000)
  WRITES_N=100
  WRITES_SCALE=10
  # Sync at Cliq's budgets with a user at work: ORG:TIME_SCALE[:ROUNDS]
  # (both sides; why these scales and rounds: sec_sync.sh), a read every SYNC_LOAD_EVERY
  # simulated s, at most SYNC_LOAD_READS reads, the full pass within
  # SYNC_LOAD_DEADLINE real s.
  SYNC_LOAD=${BENCH_SYNC_LOAD-"demo:20:40 20x100x200:100"}
  # Organizations whose runs keep every CPU awake (sec_sync.sh says why).
  SYNC_LOAD_AWAKE=${BENCH_SYNC_LOAD_AWAKE-"demo"}
  SYNC_LOAD_EVERY=20
  SYNC_LOAD_READS=300
  SYNC_LOAD_DEADLINE=900
  SYNC_SIZES=${BENCH_SYNC_SIZES-"20x100x20 20x100x200"}
  SYNC_GREP_ROUNDS=${BENCH_SYNC_GREP_ROUNDS-7}
else
  REQ_SCALE=60
  FOLLOW_N=3
  FOLLOW_SIM=60
  FOLLOW_GRACE=240
  LAT_ITER=300
  LAT_ROUNDS=1
  LAT_WORKERS_MAX=2
  SCALE_SIZES="2x2x20 3x3x20 4x4x20"
  SCALE_BUDGET_SIZE=20x5x1
  MSG_SIZES="100 200 300"
  WARM_ROUNDS=3
  WRITES_N=25
  WRITES_SCALE=60
  SYNC_LOAD="2x5x20:60"
  SYNC_LOAD_AWAKE="2x5x20"
  SYNC_LOAD_EVERY=20
  SYNC_LOAD_READS=40
  SYNC_LOAD_DEADLINE=60
  SYNC_SIZES="2x5x20"
  SYNC_GREP_ROUNDS=1
fi
LAT_BLOCK=50                  # operations on one filesystem before the next
SYNC_LOAD_STALL_US=3000       # a host stall that overlaps a read (sec_sync.sh)
LAT_PLACEMENTS="false true"   # each round unpinned, then pinned (sec_latency.sh)
# Pinning needs a CPU for the reader and another for the daemons.
[ "$(nproc)" -ge 2 ] || LAT_PLACEMENTS=false

for sec in requests latency scale writes sync; do
  # shellcheck source=/dev/null
  . "$BENCH_SRC/sec_$sec.sh"
done
. "$BENCH_SRC/report.sh"

if [ -n "$FROM_RESULTS" ]; then
  [ "$(jq -r 'select(.section == "meta") | .mode' "$FROM_RESULTS")" = "$MODE" ] ||
    bfail "$FROM_RESULTS is not the results of a $MODE run"
  for sec in $(jq -r 'select(.section != "meta") | .section' "$FROM_RESULTS" | sort -u); do
    jq -c --arg s "$sec" 'select(.section == $s) | del(.section)' "$FROM_RESULTS" \
      >"$BENCH_RES/$sec.jsonl"
  done
  BENCH_STARTED=$(jq -r 'select(.section == "meta") | .started' "$FROM_RESULTS")
  BENCH_SECONDS=$(jq -r 'select(.section == "meta") | .seconds' "$FROM_RESULTS")
  ONLY=$(jq -r 'select(.section == "meta") | .only' "$FROM_RESULTS")
  jq -c 'select(.section == "meta") | del(.section)' "$FROM_RESULTS" >"$BENCH_RES/meta.jsonl"
else
  BENCH_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  T_START=$SECONDS
  IFS=, read -r -a sections <<<"$ONLY"
  for sec in "${sections[@]}"; do
    case "$sec" in
      requests | latency | scale | writes | sync) "sec_$sec" ;;
      *) bfail "unknown section $sec" ;;
    esac
  done
  BENCH_SECONDS=$((SECONDS - T_START))
  res_add meta.jsonl "$(jq -nc --arg m "$MODE" --arg s "$BENCH_STARTED" \
    --argjson t "$BENCH_SECONDS" --arg o "$ONLY" '{mode: $m, started: $s, seconds: $t, only: $o}')"
fi

report_write "$OUT"
blog "done in ${BENCH_SECONDS} s: $OUT/benchmarks.md"
