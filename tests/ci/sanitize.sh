#!/usr/bin/env bash
# tests/ci/sanitize.sh: the whole test suite built with AddressSanitizer +
# UndefinedBehaviorSanitizer.  Fails on any failing test and on any sanitizer
# report, including reports of processes whose stderr nobody reads (the
# cliqfs daemon behind a mount, the emulator): every report goes to a file
# under $ASAN_BUILD_DIR/sanitizer-reports/ and any such file fails the run.
#
#   bash tests/ci/sanitize.sh [MESON TEST ARGS...]     (from the repo root)
#   e.g. bash tests/ci/sanitize.sh --suite unit
#
# Environment:
#   CC                            compiler, read when the build dir is made
#   ASAN_BUILD_DIR                build dir (default build-asan)
#   SANITIZE_TIMEOUT_MULTIPLIER   meson --timeout-multiplier (default 3)
#   SANITIZE_DETECT_LEAKS         1 (default) or 0.  LeakSanitizer stops the
#       process with ptrace at exit: it cannot run in a process that is being
#       traced (gdb, strace) and reports a fatal error there; set 0 only then.
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 2
build=${ASAN_BUILD_DIR:-build-asan}
start=$(date +%s)

say() { printf '== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

opts=(-Db_sanitize=address,undefined -Db_lundef=false)
if [ -f "$build/build.ninja" ]; then
  say "reconfiguring $build"
  run meson configure "$build" "${opts[@]}" || exit 2
else
  say "configuring $build"
  run meson setup "$build" "${opts[@]}" || exit 2
fi
say "building"
run ninja -C "$build" || exit 2

# Absolute: tests change directory.  Sticky and world-writable: a test may
# run a sanitized program as another user.
reports=$(cd "$build" && pwd)/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports" && chmod 1777 "$reports" || exit 2

export ASAN_OPTIONS="detect_leaks=${SANITIZE_DETECT_LEAKS:-1}:halt_on_error=1:abort_on_error=0:print_summary=1:log_path=$reports/asan:log_exe_name=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1:log_path=$reports/ubsan:log_exe_name=1"
if [ -f tests/ci/lsan.supp ]; then
  export LSAN_OPTIONS="suppressions=$repo/tests/ci/lsan.supp:print_suppressions=0"
fi
say "ASAN_OPTIONS=$ASAN_OPTIONS"
say "UBSAN_OPTIONS=$UBSAN_OPTIONS"

say "running the tests"
run meson test -C "$build" --print-errorlogs \
  --timeout-multiplier "${SANITIZE_TIMEOUT_MULTIPLIER:-3}" "$@"
test_rc=$?

found=0
for f in "$reports"/*; do
  [ -e "$f" ] || continue
  found=$((found + 1))
  echo "---- sanitizer report: $f"
  cat "$f"
done

# Reports that reached a test's output rather than a file.
testlog="$build/meson-logs/testlog.txt"
pattern='runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'
in_log=0
if [ -f "$testlog" ]; then
  in_log=$(grep -Ec "$pattern" "$testlog")
  if [ "$in_log" -gt 0 ]; then
    echo "---- sanitizer reports in the tests' output ($testlog):"
    grep -En -A12 "$pattern" "$testlog" | head -200
  fi
fi

say "took $(( $(date +%s) - start ))s"
if [ "$found" -gt 0 ] || [ "$in_log" -gt 0 ]; then
  say "FAILED: $found sanitizer report file(s) in $reports, $in_log report line(s) in $testlog"
  exit 1
fi
if [ "$test_rc" -ne 0 ]; then
  say "FAILED: meson test exited $test_rc (no sanitizer report file)"
  exit "$test_rc"
fi
say "OK: every test passed, no sanitizer report"
