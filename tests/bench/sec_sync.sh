# tests/bench/sec_sync.sh: background sync (-o sync=all).
#  - pace: the demo organization synced at Cliq's budgets (time_scale
#    SYNC_SCALE on both sides): the time until .cliqfs/status shows a full
#    pass, against the budget's minimum (per API, the requests sync sent ÷
#    the limit per window; the slowest API decides), throttled answers;
#  - size: synthetic organizations with budgets lifted (only cliqfs is
#    measured): time to synced, the daemon's peak RSS, the disk cache against
#    the messages' JSON;
#  - grep: after sync, `grep -r WORD` over the whole tree: the requests it
#    sends and its time, side by side with tmpfs and the FUSE floor serving
#    the same bytes (SYNC_GREP_ROUNDS rounds, interleaved).
# Sourced by run.sh; writes sync_pace.jsonl, sync_size.jsonl, sync_grep.jsonl.

_sync_done() {
  jq -e '.sync.last_full_pass != null' "$MNT/.cliqfs/status" >/dev/null 2>&1
}

sec_sync_pace() {
  blog "sync: the demo organization at the budget's pace (time_scale $SYNC_SCALE)"
  bench_emu --demo --time-scale "$SYNC_SCALE"
  emu_reset
  local t0 t1
  t0=$(now)
  bench_mount "time_scale=$SYNC_SCALE,sync=all"
  wait_for 600 _sync_done || bfail "sync: the demo was not synced within 600 s"
  t1=$(now)
  local c st
  c=$(emu_counters)
  st=$(jq -c .sync "$MNT/.cliqfs/status")
  res_add sync_pace.jsonl "$(jq -nc --argjson c "$c" --argjson st "$st" \
    --argjson real "$(calc "$t1 - $t0")" --argjson scale "$SYNC_SCALE" '
      ($c.windows | to_entries | map(select($c.apis[.key].total > 0))
        | map({api: .key, requests: $c.apis[.key].total, limit: .value.limit,
               min_s: ($c.apis[.key].total / .value.limit * 60)})) as $per
      | {org: "demo", time_scale: $scale, real_s: $real, sim_s: ($real * $scale),
         min_sim_s: ([$per[].min_s] | max), per_api: $per,
         requests: $c.total, throttled: $c.throttled, threads: $st.threads,
         messages: $st.messages}')"
  bench_unmount
}

sec_sync_size() {
  local size=$1
  blog "sync: synthetic $size, budgets lifted"
  bench_emu --synthetic "$size" --time-scale 100000
  local m=${size##*x} t0 t1
  t0=$(now)
  bench_mount "sync=all,history=$m,$BENCH_NOLIMITS"
  wait_for 900 _sync_done || bfail "sync: $size was not synced within 900 s"
  t1=$(now)
  # Idle logs leave memory within the refresher's next rounds.
  nap 5
  local hwm rss disk st chat json_pm
  hwm=$(proc_kb "$CLIQFS_PID" VmHWM)
  rss=$(proc_kb "$CLIQFS_PID" VmRSS)
  disk=$(du -sb "$MNT_DIR/cache" | cut -f 1)
  st=$(jq -c '{sync, memory}' "$MNT/.cliqfs/status")
  chat=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r '.channels[0].threads[0].chat_id')
  json_pm=$(json_bytes_per_message "$chat" "$m")
  res_add sync_size.jsonl "$(jq -nc --arg size "$size" --argjson st "$st" \
    --argjson real "$(calc "$t1 - $t0")" --argjson hwm "$hwm" --argjson rss "$rss" \
    --argjson disk "$disk" --argjson json_pm "$json_pm" '
      {size: $size, synced_s: $real, messages: $st.sync.messages,
       requests: $st.sync.requests, hwm_kb: $hwm, rss_kb: $rss,
       log_bytes: $st.memory.log_bytes, logs_on_disk_only: $st.memory.logs_on_disk_only,
       disk_bytes: $disk, json_bytes: ($json_pm * $st.sync.messages),
       disk_per_json: ($disk / ($json_pm * $st.sync.messages))}')"
  bench_unmount
}

sec_sync_grep() {
  blog "sync: grep -r after sync ($SYNC_GREP_ROUNDS rounds)"
  bench_emu --demo --time-scale 100000
  bench_mount "sync=all,$BENCH_NOLIMITS"
  wait_for 120 _sync_done || bfail "sync: the demo was not synced within 120 s"
  local dir=$BENCH_TMP/syncgrep shm
  mkdir -p "$dir"
  shm=$(mktemp -d /dev/shm/cliqfs-bench.XXXXXX)
  # The same bytes in tmpfs: every file of every thread and channel.
  (cd "$MNT" && find . -path ./.cliqfs -prune -o -type f -print0 |
    xargs -0 cp --parents -t "$shm") || bfail "sync: copying the tree to $shm failed"
  floor_mount "$shm" "$dir/floor" "$dir/floorfs.log"
  local word=the round fs t0 t1 out lines req
  emu_reset
  for round in $(seq 1 "$SYNC_GREP_ROUNDS"); do
    for fs in cliqfs floor tmpfs; do
      case $fs in
        cliqfs) out=$MNT ;;
        floor) out=$dir/floor ;;
        tmpfs) out=$shm ;;
      esac
      t0=$(now)
      lines=$(grep -r --exclude-dir=.cliqfs -e "$word" "$out" | wc -l)
      t1=$(now)
      res_add sync_grep.jsonl "$(jq -nc --arg fs "$fs" --argjson r "$round" \
        --argjson s "$(calc "$t1 - $t0")" --argjson l "$lines" \
        '{fs: $fs, round: $r, seconds: $s, lines: $l}')"
    done
  done
  req=$(emu_total)
  res_add sync_grep.jsonl "{\"fs\":\"meta\",\"requests_during\":$req}"
  fusermount3 -u "$dir/floor"
  bench_bg_stop
  rm -rf "$shm"
  bench_unmount
  emu_stop
  local distinct
  distinct=$(jq -s '[.[] | select(.fs != "meta") | .lines] | unique | length' "$BENCH_RES/sync_grep.jsonl")
  [ "$distinct" -eq 1 ] || bfail "sync: grep -r found different lines on the three filesystems"
}

sec_sync() {
  sec_sync_pace
  local s
  for s in $SYNC_SIZES; do
    sec_sync_size "$s"
  done
  sec_sync_grep
  emu_stop
}
