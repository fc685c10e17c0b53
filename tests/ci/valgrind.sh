#!/usr/bin/env bash
# tests/ci/valgrind.sh: the unit suite under valgrind memcheck.  Fails on any
# failing test, memory error or definite leak (valgrind's exit code 1 fails
# the test it wraps).
#
#   bash tests/ci/valgrind.sh [MESON TEST ARGS...]      (from the repo root)
#
# Environment:
#   BUILD_DIR                     a build dir WITHOUT sanitizers (default build;
#                                 configured when missing)
#   VALGRIND_SUITE                suite to run (default unit)
#   VALGRIND_TIMEOUT_MULTIPLIER   meson --timeout-multiplier (default 10)
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 2
build=${BUILD_DIR:-build}
suite=${VALGRIND_SUITE:-unit}
start=$(date +%s)

say() { printf '== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

command -v valgrind >/dev/null || { say "valgrind is not installed"; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
  say "configuring $build"
  run meson setup "$build" || exit 2
fi
# ASan and valgrind cannot share a process.
if meson introspect "$build" --buildoptions |
   grep -Eq '"name": "b_sanitize", "value": "[^n"][^"]*"'; then
  say "$build is built with sanitizers: valgrind needs a plain build (BUILD_DIR=...)"
  exit 2
fi
say "building"
run ninja -C "$build" || exit 2

wrap="valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30 --trace-children=no"
if [ -f tests/ci/valgrind.supp ]; then
  wrap="$wrap --suppressions=$repo/tests/ci/valgrind.supp"
fi
say "running suite '$suite' under: $wrap"
run meson test -C "$build" --suite "$suite" --print-errorlogs \
  --timeout-multiplier "${VALGRIND_TIMEOUT_MULTIPLIER:-10}" --wrap="$wrap" "$@"
rc=$?
say "took $(( $(date +%s) - start ))s"
if [ "$rc" -ne 0 ]; then
  say "FAILED: meson test exited $rc (see the valgrind output above)"
  exit "$rc"
fi
say "OK: suite '$suite' is clean under valgrind"
