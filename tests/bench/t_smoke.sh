#!/usr/bin/env bash
# bench-smoke (suite 'bench'): runs tests/bench/run.sh --smoke into a
# temporary folder and checks that every table of the report came out with
# numbers in it and every plot was drawn.  It asserts no speed: only that the
# harness still measures what it says it measures.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

bash "$HERE/run.sh" --smoke --out "$OUT" || fail "run.sh --smoke failed"
MD=$OUT/benchmarks.md
[ -s "$MD" ] || fail "no benchmarks.md"

# table_rows HEADER_PREFIX: the data rows of the table whose header row
# starts with HEADER_PREFIX.
table_rows() {
  awk -v h="$1" '
    index($0, h) == 1 { on = 1; skip = 1; next }
    on && skip { skip = 0; next }              # the |---| line
    on && /^\|/ { print; next }
    on { exit }' "$MD"
}

# check_table HEADER_PREFIX MIN_ROWS COLUMNS: the table has at least MIN_ROWS
# rows and in each, the listed columns (1-based, space separated) start with
# a number; no cell says null or nan.
check_table() {
  local header=$1 min=$2 cols=$3 rows n
  rows=$(table_rows "$header")
  n=$(grep -c . <<<"$rows")
  [ "$n" -ge "$min" ] || fail "table [$header]: $n rows, expected at least $min"
  if grep -qiwE 'null|nan' <<<"$rows"; then
    fail "table [$header] has empty figures: $(grep -iwE 'null|nan' <<<"$rows" | head -n 1)"
  fi
  local row col cell
  while IFS= read -r row; do
    for col in $cols; do
      cell=$(awk -F'|' -v c="$((col + 1))" '{ gsub(/^ +| +$/, "", $c); print $c }' <<<"$row")
      [[ "$cell" =~ ^[0-9]+(\.[0-9]+)? ]] ||
        fail "table [$header], column $col is not a number: [$cell] in $row"
    done
  done <<<"$rows"
  echo "ok - table [$header]: $n rows with numbers"
}

check_table '| target |' 9 ''
check_table '| task | lower bound |' 4 '2 3 4 5 6'
# cliqfs with sync off and with sync on, the loop every 10 s and every 20 s.
check_table '| tool | threads (channels) |' 4 '2 3 4 5 6 7 9'
check_table '| filesystem |' 4 '2 3 4 5 6 7 8'
check_table '| file | cliqfs p50 |' 5 '2 3 4 5 6 7 8'
# Cached reads: tmpfs, the two floors, the floor answering FLUSH and cliqfs,
# pinned and unpinned when there are two CPUs to pin to.
check_table '| filesystem | p50 |' 5 '2 3 4 5 6 7 8'
if [ "$(nproc)" -ge 2 ]; then
  [ "$(grep -c '^| a second FUSE floor (the control) |' "$MD")" -eq 2 ] ||
    fail "the cached-read tables are not there pinned and unpinned"
  grep -q '^| cached reads ≤ 1.3× the FUSE floor (p50, pinned) |' "$MD" ||
    fail "the cached-read target is not judged on the pinned rounds"
fi
# floorfs with 1 and 2 workers, each filled to its count.
check_table '| max_threads | workers it had |' 2 '1 2 3 5'
grep -q '^| 2 | 2 |' "$MD" || fail "the floorfs with max_threads=2 did not have its 2 workers"
check_table '| organization (C×T×M) |' 3 '2 3 4 5 6 7 8'
check_table '| organization (C×T×M) | sync |' 2 '3 4 5 6'
check_table '| history (messages in the thread) |' 3 '1 2 3 4 5 6 7 8 9 10 11 12 13'
check_table '| appends |' 1 '1 2 3 4 5 6 7 8 9'
check_table '| run | reads (ls) |' 2 '2 3 4 5 6 7 8 15'

# Every target row carries a measured ratio and a verdict.
while IFS= read -r row; do
  [[ "$row" =~ [0-9.]+×.*\|\ (yes|\*\*no\*\*)\ \|$ ]] || fail "target row without ratio or verdict: $row"
done < <(table_rows '| target |')
echo "ok - every target has a ratio and a verdict"

# The machine and the command are named.
for what in 'cores (nproc)' 'memory' 'kernel' 'CPU' 'tests/bench/run.sh --smoke'; do
  grep -qF "$what" "$MD" || fail "benchmarks.md does not name $what"
done
echo "ok - the machine and the command are named"

for png in requests latency follow scale-ls scale-messages; do
  f=$OUT/bench/$png.png
  [ -s "$f" ] || fail "no plot $png.png"
  [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "$png.png is not a PNG"
  grep -qF "(bench/$png.png)" "$MD" || fail "benchmarks.md does not show $png.png"
done
echo "ok - 5 plots drawn and shown"
[ -s "$OUT/bench/results.jsonl" ] || fail "no results.jsonl"

# The sync load's runs kept the CPUs awake (SYNC_LOAD_AWAKE of --smoke), both
# with sync and without, the stall probe beside them, and the report says so.
awake=$(jq -sr '[.[] | select(.section == "sync_load") | .cpus_awake] | unique | map(tostring) | join(",")' \
  "$OUT/bench/results.jsonl")
[ "$awake" = true ] || fail "sync load runs' cpus_awake: '$awake', not true in every run"
grep -qF 'CPUs kept awake' "$MD" || fail "benchmarks.md does not say the CPUs were kept awake"
echo "ok - sync load ran with the CPUs kept awake"
echo "bench-smoke: all checks passed"
