#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer harnesses (clang, -Dfuzz=true) and
# runs each for a while.  Fails when any harness crashes, leaks, trips a
# sanitizer or breaks a contract; the input that did it is kept under
# $FUZZ_WORK/<harness>/artifacts/ (minimize it with -minimize_crash=1, then
# add it to corpus/<harness>/ as crash-<what> and tell the owner).
#
#   bash tests/fuzz/run.sh [HARNESS...]          (from the repo root)
#
# Environment:
#   FUZZ_SECONDS    seconds per harness (default 60)
#   FUZZ_BUILD_DIR  build dir (default build-fuzz; configured when missing)
#   FUZZ_WORK       new inputs, logs, artifacts (default $FUZZ_BUILD_DIR/fuzz-work)
#   FUZZ_JOBS       harnesses run at the same time (default 1)
#   FUZZ_FLAGS      more libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1"
#                   to go on after a crash and collect every distinct one
# Needs clang and libFuzzer (Debian: clang, libclang-rt-14-dev).
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 2
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}
jobs=${FUZZ_JOBS:-1}

all=(fuzz_channel fuzz_thread fuzz_message fuzz_user fuzz_error_body
     fuzz_time fuzz_message_id fuzz_wr_state fuzz_wr_followers fuzz_wr_ctl
     fuzz_wr_message fuzz_names_title fuzz_names_assign)
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi

dict_for() {
  case $1 in
    fuzz_message_id) echo "" ;;
    fuzz_wr_*) echo "tests/fuzz/dict/wrules.dict" ;;
    fuzz_names_*) echo "tests/fuzz/dict/names.dict" ;;
    *) echo "tests/fuzz/dict/json.dict" ;;
  esac
}

if [ ! -f "$build/build.ninja" ]; then
  echo "== configuring $build (CC=clang, -Dfuzz=true)"
  CC=clang meson setup "$build" -Dfuzz=true || exit 2
fi
if ! meson introspect "$build" --buildoptions | grep -q '"name": "fuzz", "value": true'; then
  meson configure "$build" -Dfuzz=true || exit 2
fi
echo "== building ${#harnesses[@]} harness(es) in $build"
targets=()
for h in "${harnesses[@]}"; do targets+=("tests/fuzz/$h"); done
ninja -C "$build" "${targets[@]}" || exit 2

run_one() {
  local h=$1 dir="$work/$1"
  rm -rf "$dir/artifacts"
  mkdir -p "$dir/new" "$dir/artifacts"
  local dict args=()
  dict=$(dict_for "$h")
  [ -n "$dict" ] && args+=("-dict=$dict")
  # shellcheck disable=SC2206  # FUZZ_FLAGS is a list of flags
  args+=(${FUZZ_FLAGS:-})
  # The source corpus is read, never written: new inputs go to $dir/new.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$build/tests/fuzz/$h" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "${args[@]}" \
      "$dir/new" "tests/fuzz/corpus/$h" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

echo "== fuzzing ${seconds}s per harness, $jobs at a time; logs in $work/<harness>/log"
running=0
for h in "${harnesses[@]}"; do
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-20s %12s %8s %s\n' harness executions corpus result
for h in "${harnesses[@]}"; do
  dir="$work/$h"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  # -fork=N prints no final stats: its last "#N:" status line counts.
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$dir/log" | tail -1)
  corpus=$(ls "$dir/new" | wc -l)
  rc=$(cat "$dir/rc" 2>/dev/null || echo "?")
  artifacts=$(ls "$dir/artifacts" 2>/dev/null)
  if [ "$rc" = 0 ] && [ -z "$artifacts" ]; then
    result=ok
  else
    n=$(echo "$artifacts" | grep -c .)
    result="FAILED (exit $rc): $n input(s) in $dir/artifacts/"
    failed=1
  fi
  printf '%-20s %12s %8s %s\n' "$h" "${execs:-?}" "$corpus" "$result"
done
if [ "$failed" != 0 ]; then
  echo "== fuzzing found problems: see the logs above (tail of each failing log follows)"
  for h in "${harnesses[@]}"; do
    if [ "$(cat "$work/$h/rc" 2>/dev/null)" != 0 ]; then
      echo "---- $h"
      grep -v '^#[0-9]' "$work/$h/log" | tail -40
    fi
  done
  exit 1
fi
echo "== fuzzing: no problem found"
