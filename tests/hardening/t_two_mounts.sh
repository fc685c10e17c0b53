#!/usr/bin/env bash
# Two mounts of one account share their state and cache folders (as two
# mounts by one user do).  Run after run, from a cold cache, mount A greps
# every thread's messages while mount B counts the lines of every thread's
# messages (each one process over all the files, in opposite orders): no
# read may fail or come back empty (a cache record of the other mount taken
# as "fresh, nothing to fetch" before its messages were there served an
# empty log).  RUNS rounds (default 100).
. "$MOUNT_LIB"

RUNS=${RUNS:-100}
MNT_B=$MT_DIR/mnt-b
B_PID=
mkdir -p "$MNT_B"

b_unmount() {
  if mountpoint -q "$MNT_B" 2>/dev/null; then fusermount3 -u "$MNT_B" 2>/dev/null; fi
  if [ -n "$B_PID" ]; then
    local i
    for i in $(seq 100); do kill -0 "$B_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$B_PID" 2>/dev/null
    wait "$B_PID" 2>/dev/null
    B_PID=
  fi
  mountpoint -q "$MNT_B" 2>/dev/null && fusermount3 -uz "$MNT_B" 2>/dev/null
  return 0
}
trap 'rc=$?; b_unmount; (exit $rc); mt_cleanup' EXIT

# The emulator's windows are a millisecond: it never throttles here.  The
# mounts keep real freshness (a record stays fresh for 10 s) and a budget
# that is never the limit.
emu_start --demo --time-scale 60000 || fail "emulator did not start"
OPTS="limit.chats.messages=100000/60,limit.threads.list=100000/60,limit.channels.list=100000/60"
OPTS="$OPTS,limit.threads.get=100000/60,limit.chats.members=100000/60"
OPTS="$OPTS,limit.threads.followers.get=100000/60,limit.threads.nonfollowers=100000/60"
OPTS="$OPTS,limit.threads.main=100000/60"

mapfile -t THREADS < <(emu_state '.channels[] | select(.joined) | .unique_name as $c | .threads as $all
             | .threads[] | select((.messages | length) > 0) | .title as $t
             | select(($t | contains("/") | not) and ([$all[] | select(.title == $t)] | length) == 1)
             | "\($c)/\($t)/messages"')
[ "${#THREADS[@]}" -ge 10 ] || fail "the demo has only ${#THREADS[@]} usable threads"
REVERSED=()
for ((i = ${#THREADS[@]} - 1; i >= 0; i--)); do REVERSED+=("${THREADS[i]}"); done

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
t0=$SECONDS
for run in $(seq 1 "$RUNS"); do
  rm -rf "$XDG_CACHE_HOME/cliqfs"
  mt_mount "$OPTS"
  b_mount
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
  cd /
  mt_unmount || fail "run $run: unmount A"
  b_unmount
  if [ "$bad" -ne 0 ]; then
    echo "---- mount A's log (last 40 lines) ----" >&2
    tail -n 40 "$MT_LOG" >&2
    echo "---- mount B's log (last 40 lines) ----" >&2
    tail -n 40 "$MT_DIR/cliqfs-b.log" >&2
    fail "run $run: a read failed or came back empty with two mounts sharing a cache"
  fi
done
echo "two mounts, $RUNS runs, $reads reads of messages in $((SECONDS - t0)) s: none failed or empty"
ok "two mounts sharing state and cache: no empty read in $reads reads over $RUNS cold runs"
