#!/usr/bin/env bash
# tests/ci/sanitize.sh: the whole test suite built with AddressSanitizer +
# UndefinedBehaviorSanitizer.  Fails on any failing test and on any sanitizer
# report, including reports of processes whose stderr nobody reads (the
# cliqfs daemon behind a mount, the emulator): reports go to files under
# $ASAN_BUILD_DIR/sanitizer-reports/ (log_path) and any such file fails the
# run; so does a report found in the tests' output, even of a test that
# passed (one expecting a child process to fail, say).
#
# With gcc, libubsan is a runtime of its own beside libasan and prints its
# diagnostics to stderr whatever log_path says (a SUMMARY line at most
# reaches the file): an UB report of a process without stderr then shows
# only as that process stopping (halt_on_error=1).  With clang (CC=clang and
# a build dir of its own) one runtime writes every report to the files.
#
#   bash tests/ci/sanitize.sh [MESON TEST ARGS...]     (from the repo root)
#   e.g. bash tests/ci/sanitize.sh --suite unit
#
# Environment:
#   CC                            compiler, read when the build dir is made
#   ASAN_BUILD_DIR                build dir (default build-asan)
#   SANITIZE_TIMEOUT_MULTIPLIER   meson --timeout-multiplier (default 3)
#   SANITIZE_DETECT_LEAKS         1 (default) or 0.  LeakSanitizer stops the
#       process with ptrace at exit: in a process that is being traced (gdb,
#       strace) it cannot, and writes a "fatal error" report instead.  Such a
#       report, and nothing else, is listed but does not fail the run (a test
#       that runs cliqfs under strace had better set detect_leaks=0 for it).
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 2
build=${ASAN_BUILD_DIR:-build-asan}
start=$(date +%s)

say() { printf '== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

# werror off here: gcc's sanitizer instrumentation adds paths (a NULL after a
# nonnull check, say) that make -Wformat-overflow and friends warn where the
# plain build, which keeps -Werror, does not.  The warnings are still shown.
opts=(-Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false)
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

# verify_asan_link_order=0: the benchmark preloads a small library into the
# daemon (tests/bench/heapstat.c, which reads mallinfo2 and replaces nothing);
# ASan would refuse to start behind it.
export ASAN_OPTIONS="detect_leaks=${SANITIZE_DETECT_LEAKS:-1}:halt_on_error=1:abort_on_error=0:print_summary=1:verify_asan_link_order=0:log_path=$reports/asan:log_exe_name=1"
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

# A process run under ptrace (a test that runs it under strace, say) cannot
# have its leaks checked: LeakSanitizer says so in a file of exactly these
# lines and nothing else.  That is not a finding; anything more is.
ptrace_only='^==[^=]+==[0-9]+==(LeakSanitizer has encountered a fatal error\.|HINT: For debugging, try setting environment variable LSAN_OPTIONS=verbosity=1:log_threads=1|HINT: LeakSanitizer does not work under ptrace \(strace, gdb, etc\))$'
found=0
untraceable=()
for f in "$reports"/*; do
  [ -e "$f" ] || continue
  if grep -q 'LeakSanitizer does not work under ptrace' "$f" &&
     ! grep -Evq "$ptrace_only" "$f"; then
    untraceable+=("$(basename "$f")")
    continue
  fi
  found=$((found + 1))
  echo "---- sanitizer report: $f"
  cat "$f"
done
if [ "${#untraceable[@]}" -gt 0 ]; then
  say "not a finding: ${#untraceable[@]} process(es) ran under ptrace, where LeakSanitizer cannot check leaks: ${untraceable[*]}"
fi

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
