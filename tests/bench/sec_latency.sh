# tests/bench/sec_latency.sh: latency of cached reads of small files, on
# cliqfs (warm), on the same bytes in tmpfs (/dev/shm) and on floorfs (the
# FUSE floor: the same bytes from memory, keeping the page cache, with
# cliqfs's timeouts).  Sourced by run.sh; writes latency.jsonl.
#
# The budget must not be what is measured: the emulator's windows are shrunk
# to nothing and cliqfs runs at time_scale 1 (its real cache lifetimes) with
# budgets it cannot reach.

# Read APIs whose budget is lifted for this section and the scale section.
BENCH_NOLIMITS="limit.channels.list=100000/60,limit.channels.get=100000/60"
BENCH_NOLIMITS+=",limit.threads.list=100000/60,limit.chats.messages=100000/60"
BENCH_NOLIMITS+=",limit.messages.get=100000/60,limit.threads.get=100000/60"
BENCH_NOLIMITS+=",limit.threads.main=100000/60,limit.chats.members=100000/60"
BENCH_NOLIMITS+=",limit.threads.followers.get=100000/60"
BENCH_NOLIMITS+=",limit.threads.nonfollowers=100000/60"

# The small files read: kinds whose content is known from the listing
# (state, title) or cached after a first read (info, main, members), and
# the thread's log (messages).
LAT_KINDS="state title info main members messages"

sec_latency() {
  blog "latency: cached reads ($LAT_ITER operations x $LAT_ROUNDS rounds)"
  bench_emu --demo --time-scale 100000
  bench_mount "$BENCH_NOLIMITS"
  local dir=$BENCH_TMP/latency
  mkdir -p "$dir"
  # Warm: list everything, read every file once.
  ls -lR "$MNT" >/dev/null || bfail "latency: ls -lR failed"
  local rel kind
  : >"$dir/rel"
  while IFS= read -r rel; do
    for kind in $LAT_KINDS; do
      printf '%s\n' "$rel/$kind" >>"$dir/rel"
    done
  done < <(cd "$MNT" && find . -mindepth 2 -maxdepth 2 -type d ! -path './.cliqfs*' | sed 's|^\./||' | sort)
  local files
  files=$(wc -l <"$dir/rel")
  [ "$files" -gt 0 ] || bfail "latency: no files"
  # One process reads them all (the harness's own processes would take
  # CPU from the measured daemon on a small machine).
  (cd "$MNT" && xargs -d '\n' cat -- <"$dir/rel" >/dev/null) ||
    bfail "latency: cannot read every file of $dir/rel"

  # The same bytes in tmpfs, and floorfs serving that copy.
  local shm
  shm=$(mktemp -d /dev/shm/cliqfs-bench.XXXXXX)
  (cd "$MNT" && xargs -d '\n' cp --parents -t "$shm" -- <"$dir/rel") ||
    bfail "latency: copying the files to $shm failed"
  # floorfs twice: as small as a FUSE filesystem gets, and answering FLUSH
  # as cliqfs must (it posts on close), one more request per close.
  local floor_mnt=$dir/floor flush_mnt=$dir/floorflush
  floor_mount "$shm" "$flush_mnt" "$dir/floorfs.log" -o flush
  floor_mount "$shm" "$floor_mnt" "$dir/floorfs.log"
  local floor_pid=$FLOOR_PID

  sed "s|^|$MNT/|" "$dir/rel" >"$dir/list.cliqfs"
  sed "s|^|$shm/|" "$dir/rel" >"$dir/list.tmpfs"
  sed "s|^|$floor_mnt/|" "$dir/rel" >"$dir/list.floor"
  sed "s|^|$flush_mnt/|" "$dir/rel" >"$dir/list.floorflush"

  emu_reset
  local round fs out
  for round in $(seq 1 "$LAT_ROUNDS"); do
    for fs in cliqfs floor floorflush tmpfs; do
      out=$("$BENCH_READLAT" -n "$LAT_ITER" "$dir/list.$fs") ||
        bfail "readlat failed on $fs"
      res_add latency.jsonl "$(jq -c --arg fs "$fs" --argjson r "$round" \
        '. + {fs: $fs, round: $r}' <<<"$out")"
    done
  done
  # Per kind of file, cliqfs against the floor (a fifth of the operations),
  # with the read() calls each daemon made per operation (/proc/PID/io:
  # FUSE requests are read() calls on /dev/fuse; more means file reads).
  # Rounds interleaved like the mixed runs above: cliqfs and the floor back
  # to back for each kind, LAT_ROUNDS times.
  local pid r0 r1 iters=$((LAT_ITER / 5))
  for kind in $LAT_KINDS; do
    for fs in cliqfs floor; do
      grep -E "/$kind\$" "$dir/list.$fs" >"$dir/list.$fs.$kind"
    done
  done
  for round in $(seq 1 "$LAT_ROUNDS"); do
    for kind in $LAT_KINDS; do
      for fs in cliqfs floor; do
        [ "$fs" = cliqfs ] && pid=$CLIQFS_PID || pid=$floor_pid
        r0=$(awk '$1 == "syscr:" { print $2 }' "/proc/$pid/io")
        out=$("$BENCH_READLAT" -n "$iters" "$dir/list.$fs.$kind") ||
          bfail "readlat failed on $fs ($kind)"
        r1=$(awk '$1 == "syscr:" { print $2 }' "/proc/$pid/io")
        res_add latency_kinds.jsonl "$(jq -c --arg fs "$fs" --arg k "$kind" --argjson r "$round" \
          --argjson reads "$(calc "($r1 - $r0) / ($iters + $(grep -c . "$dir/list.$fs.$kind"))")" \
          '. + {fs: $fs, kind: $k, round: $r, daemon_reads_per_op: $reads}' <<<"$out")"
      done
    done
  done
  local during
  during=$(emu_total)
  res_add latency_meta.jsonl "{\"requests_during\":$during,\"files\":$files,\"kinds\":\"$LAT_KINDS\"}"

  fusermount3 -u "$floor_mnt"
  fusermount3 -u "$flush_mnt"
  bench_bg_stop
  rm -rf "$shm"
  bench_unmount
  emu_stop
  # Every filesystem served the same bytes.
  local digests
  digests=$(jq -s '[.[].digest] | unique | length' "$BENCH_RES/latency.jsonl")
  [ "$digests" -eq 1 ] || bfail "latency: the filesystems served different bytes"
}
