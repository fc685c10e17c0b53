#!/usr/bin/env bash
# Two mounts of one account share their state and cache folders (as two
# mounts by one user do).  Run after run, on a channel neither mount has
# seen (its thread list and every thread's messages cold in memory and on
# disk), mount A greps every thread's messages while mount B counts the
# lines of every thread's messages (each one process over all the files, in
# opposite orders): no read may fail or come back empty (a cache record of
# the other mount taken as "fresh, nothing to fetch" before its messages
# were there served an empty log).  RUNS rounds (default 100), one channel
# of a synthetic organization each, both mounts up throughout.
. "$MOUNT_LIB"

RUNS=${RUNS:-100}
MNT_B=$MT_DIR/mnt-b
B_PID=
mkdir -p "$MNT_B"

b_unmount() {
  if is_mounted "$MNT_B"; then fusermount3 -u "$MNT_B" 2>/dev/null; fi
  if [ -n "$B_PID" ]; then
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$B_PID" 2>/dev/null || break; nap 0.05; done
    kill -KILL "$B_PID" 2>/dev/null
    wait "$B_PID" 2>/dev/null
    B_PID=
  fi
  is_mounted "$MNT_B" && fusermount3 -uz "$MNT_B" 2>/dev/null
  return 0
}
trap 'rc=$?; b_unmount; (exit $rc); mt_cleanup' EXIT

# The emulator's windows are a millisecond: it never throttles here.  The
# mounts keep real freshness (a record stays fresh for 10 s) and a budget
# that is never the limit (and a window of a second, so that the ledger of
# stamps the two share stays short).
emu_start --synthetic "${RUNS}x32x5" --time-scale 60000 || fail "emulator did not start"
OPTS="limit.chats.messages=100000/1,limit.threads.list=100000/1,limit.channels.list=100000/1"
OPTS="$OPTS,limit.threads.get=100000/1,limit.chats.members=100000/1"
OPTS="$OPTS,limit.threads.followers.get=100000/1,limit.threads.nonfollowers=100000/1"
OPTS="$OPTS,limit.threads.main=100000/1,sync=off"

# Every thread's messages file, by channel: FILES_OF[r] holds channel r's,
# separated by newlines.
declare -A FILES_OF=()
while IFS=$'\t' read -r r f; do
  FILES_OF[$r]+=$f$'\n'
done < <(emu_state '.channels | to_entries[] | (.key + 1) as $r | .value.unique_name as $c
                    | .value.threads[] | "\($r)\t\($c)/\(.title)/messages"')
[ "${#FILES_OF[@]}" -eq "$RUNS" ] || fail "the organization has ${#FILES_OF[@]} channels, not $RUNS"

b_mount() {
  "$CLIQFS" -f -o "api_url=$EMU_URL,accounts_url=$EMU_URL,access_token=$EMU_TOKEN,$OPTS" \
    "$MNT_B" 2>>"$MT_DIR/cliqfs-b.log" &
  B_PID=$!
  wait_until 10 mountpoint -q "$MNT_B" || fail "mount B did not come"
}

# count_lines OUTPUT SEPARATOR FILE...: the number each file got in a
# one-process output over FILE... in that order ("FILE:N" for grep -c,
# "N FILE" for wc -l; a file the tool could not read has no line); prints
# one "N FILE" line per file, N "-" when it had none.
counts_of() {
  local out=$1 form=$2 line i=0 n name
  shift 2
  local files=("$@")
  while IFS= read -r line; do
    if [ "$form" = grep ]; then
      n=${line##*:}
      name=${line%:*}
    else
      line=${line#"${line%%[![:space:]]*}"}
      n=${line%% *}
      name=${line#* }
    fi
    [ "$name" = total ] && [ "$form" = wc ] && continue
    while [ "$i" -lt "${#files[@]}" ] && [ "${files[i]}" != "$name" ]; do
      echo "- ${files[i]}"
      i=$((i + 1))
    done
    [ "$i" -lt "${#files[@]}" ] || break
    echo "$n ${files[i]}"
    i=$((i + 1))
  done <"$out"
  while [ "$i" -lt "${#files[@]}" ]; do
    echo "- ${files[i]}"
    i=$((i + 1))
  done
}

bad=0 reads=0
mt_mount "$OPTS"
b_mount
t0=$SECONDS
for run in $(seq 1 "$RUNS"); do
  mapfile -t THREADS <<<"${FILES_OF[$run]%$'\n'}"
  [ "${#THREADS[@]}" -ge 10 ] || fail "run $run: only ${#THREADS[@]} threads"
  REVERSED=()
  for ((i = ${#THREADS[@]} - 1; i >= 0; i--)); do REVERSED+=("${THREADS[i]}"); done
  ( cd "$MNT" && exec grep -c . -- "${REVERSED[@]}" >"$MT_DIR/grep" 2>"$MT_DIR/grep.err" ) &
  gpid=$!
  ( cd "$MNT_B" && exec wc -l -- "${THREADS[@]}" >"$MT_DIR/wc" 2>"$MT_DIR/wc.err" )
  wait "$gpid"
  while read -r n t; do
    reads=$((reads + 1))
    if [ "$n" = - ] || [ "$n" = 0 ]; then
      bad=$((bad + 1))
      echo "run $run: A's grep -c gave ${n/-/nothing} for $t" >&2
    fi
  done < <(counts_of "$MT_DIR/grep" grep "${REVERSED[@]}")
  while read -r n t; do
    reads=$((reads + 1))
    if [ "$n" = - ] || [ "$n" = 0 ]; then
      bad=$((bad + 1))
      echo "run $run: B's wc -l gave ${n/-/nothing} for $t" >&2
    fi
  done < <(counts_of "$MT_DIR/wc" wc "${THREADS[@]}")
  if [ -s "$MT_DIR/grep.err" ] || [ -s "$MT_DIR/wc.err" ]; then
    echo "run $run: the readers said:" >&2
    cat "$MT_DIR/grep.err" "$MT_DIR/wc.err" >&2
    bad=$((bad + 1))
  fi
  if [ "$bad" -ne 0 ]; then
    echo "---- mount A's log (last 40 lines) ----" >&2
    tail -n 40 "$MT_LOG" >&2
    echo "---- mount B's log (last 40 lines) ----" >&2
    tail -n 40 "$MT_DIR/cliqfs-b.log" >&2
    fail "run $run: a read failed or came back empty with two mounts sharing a cache"
  fi
done
cd /
mt_unmount || fail "unmount A"
b_unmount
echo "two mounts, $RUNS runs, $reads reads of messages in $((SECONDS - t0)) s: none failed or empty"
ok "two mounts sharing state and cache: no empty read in $reads reads over $RUNS cold channels"
