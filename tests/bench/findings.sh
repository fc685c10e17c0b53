# tests/bench/findings.sh: the "What the figures say" section of the report:
# for each target missed (and a few other things worth knowing), a sentence
# built from this run's results.  Sourced by report.sh; md_findings prints
# markdown.  Every figure comes from $BENCH_RES; what is said about causes
# names the code that does it, so that it can be checked.

md_findings() {
  local out
  out=$(
    # ---- Requests: reply ----
    jqs requests.jsonl '
      map(select(.tool == "cliqfs" and .requests > .lower_bound)) []
      | "- **\(.task)**: \(.requests) requests against a lower bound of \(.lower_bound) (+\(.requests - .lower_bound)). "
        + (if (.apis["messages.get"] // 0) > 0 then
             "\(.apis["messages.get"]) of them `messages.get` (`GET /chats/{id}/messages/{message}`): cliqfs asked for a post of its own to learn who it is, which it does only before checking a write whose answer was lost (cache/delivery_outcome.c `learn_self_now`). "
           else "" end)
        + (if .refetches > 0 then
             "\(.refetches) fetched a thread'"'"'s messages a second time during the task: the background refresher (cache/store_follow.c `follow_round`) refreshes a log while its `messages` file is open, and a file still open by `grep` when a round starts can be refreshed once it is older than its freshness. "
           else "" end)'
    # ---- Requests: follow ----
    local flb
    flb=$(follow_poll_json "$FOLLOW_BOUND_S")
    if [ "$flb" != null ]; then
      jqs follow.jsonl --argjson lb "$flb" '
        (map(select(.tool == "cliqfs"))[0]) as $c
        | select($c != null and $c.requests > $lb.lower_bound)
        | "- **follow**: \($c.requests) requests, where the best poller every \($lb.interval_s) s needs \($lb.lower_bound) (+\($c.requests - $lb.lower_bound)); such a poller shows a post after up to \($lb.interval_s) s, cliqfs showed them after p50 \($c.delays_sim | pct(50) | r1) s, max \($c.delays_sim | max | r1) s. cliqfs spends the followed threads'"'"' claim on the background lanes on freshness (cache/store_follow.c `follow_round`): a channel whose followed threads outnumber its thread-list pages is watched through the list, whose entries carry each thread'"'"'s last message time, and between two polls of a list the threads'"'"' parent messages are probed (messages.get, threads.main), which carry the thread'"'"'s message count, and the messages lane'"'"'s spare polls the threads themselves; each check goes to the thread unchecked the longest, and a thread is fetched when a list or a probe shows it moved. The probes and polls are what costs more than the poller; they stay within each API'"'"'s lane (see the tail -f table)."'
    fi
    # ---- tail -f ----
    jqs follow.jsonl '
      (map(select(.tool == "cliqfs"))[0]) as $c | (map(select(.tool == "curl+jq"))[0]) as $b
      | select($c != null and $c.arrived > 0 and (($c.delays_sim | pct(50)) > 8 or ($c.delays_sim | max) > 20))
      | "- **tail -f delay**: p50 \($c.delays_sim | pct(50) | r1) s, max \($c.delays_sim | max | r1) s (simulated) with \($c.requests_per_min | r1) requests a minute; the curl+jq loop polling every 10 s: p50 \(if $b then ($b.delays_sim | pct(50) | r1 | tostring) else "?" end) s with \(if $b then ($b.requests_per_min | r1 | tostring) else "?" end) a minute, more than `chats.messages` allows (15). cliqfs keeps to the background lanes (cache/store_follow.c `follow_round`): the \($c.channels) followed channels'"'"' thread lists share what the threads.list lane lets through (15 of 20 a minute), so each list is polled about every \($c.channels * 60 / 15 | r1) s, and in between the threads'"'"' parent messages are probed (messages.get and threads.main, \(($c.apis["messages.get"] // 0) + ($c.apis["threads.main"] // 0)) probes: 22 + 15 a minute fit about \(37 * $c.channels * 60 / 15 / 60 | floor) of the \($c.threads) mid-cycle checks a list period would need). A post waits for the next check of its thread plus its fetch; the longest waits are posts in a list period that got no probe. Faster needs more of the budget than the lanes may take (their reserve is there for reads a user waits for), or a notification channel Cliq does not offer."'
    # ---- Memory at the largest size ----
    jqs scale_msgs.jsonl '
      max_by(.shown) | select(. != null and .shown > 100000)
      | "- **memory at \(.shown) messages read**: \(.heap_bytes_per_msg | round) bytes of live heap per message, because idle logs beyond 16 MiB of messages are dropped from memory (cache/store_memory.c); the figure is the memory bound at work, not the size of a log in use (a log being read stays in memory, see the smaller sizes)."'
    # ---- Latency ----
    jqs latency.jsonl '
      judged | group_by(.fs) | map({key: .[0].fs, value: {p50: (map(.p50_us) | med), p99: (map(.p99_us) | med)}})
      | from_entries | select(.cliqfs and .floor and .cliqfs.p50 > 1.3 * .floor.p50)
      | "- **cached reads**: cliqfs takes \(.cliqfs.p50 | f2) µs (p50) for what the FUSE floor does in \(.floor.p50 | f2) µs (\(.cliqfs.p50 / .floor.p50 | f2)×). "
        + (if .floor2 and .floor2.p50 > 1.3 * .floor.p50 then
             "The control, the same floorfs measured beside it, took \(.floor2.p50 | f2) µs (\(.floor2.p50 / .floor.p50 | f2)× the floor) and cliqfs \(.cliqfs.p50 / .floor2.p50 | f2)× the control: the floor ran in a fast spell of the machine that the other daemons did not get (see the control in each round), not a cost of cliqfs'"'"'s code."
           else
             "The floor answering FLUSH on every close costs \(if .floorflush then ((.floorflush.p50 - .floor.p50) | f2) else "?" end) µs more than the floor; cliqfs sends no FLUSH for read-only opens (fs/files.c `run_open`, `noflush`), so the \((.cliqfs.p50 - .floor.p50) | f2) µs are spent in the daemon per request."
           end)'
    # By kind: the medians over the rounds, as the by-kind table shows them.
    jqs latency_kinds.jsonl "$KINDS_MED"'
      map(select(.c.p50 != null and .f.p50 != null)) | select(length > 0)
      | (max_by(.c.p50 / .f.p50)) as $worst | (min_by(.c.p50 / .f.p50)) as $best
      | select($worst.c.p50 > 1.3 * $worst.f.p50)
      | "  By kind of file (medians over the rounds): `\($best.k)` costs \($best.c.p50 / $best.f.p50 | f2)× the floor, `\($worst.k)` \($worst.c.p50 / $worst.f.p50 | f2)×. "
        + (if ($worst.c.reads - $worst.f.reads) > 0.5 then
             "For `\($worst.k)` cliqfs makes \($worst.c.reads | f2) read() calls per operation, the floor \($worst.f.reads | f2): each read() is one FUSE request the kernel sent, so the difference is extra requests per operation (a getattr the kernel could not answer from its attribute cache, or a FLUSH): see the kernel caching rules in docs/design.md."
           else "The daemon makes no more read() calls than the floor: the difference is time per request, computing or a spell of the machine (the control in the table above shows how much of it is the machine)." end)'
    # ---- Memory ----
    jqs scale_msgs.jsonl '
      max_by(.shown) | select(. != null and .heap_bytes_per_msg > 2 * .json_bytes_per_msg)
      | "- **memory per cached message**: \(.heap_bytes_per_msg | round) bytes of live heap (\(.mem_bytes_per_msg | round) of RSS) per message whose JSON is \(.json_bytes_per_msg | round) bytes: \(.heap_bytes_per_msg / .json_bytes_per_msg | f2)×. A message log (cache/store_i.h `struct store_log`) keeps every message as a rendered line and a JSONL line in exactly sized buffers, and its id in a compact hash set (cache/idset.c); the text forms alone come to about \((.text_bytes / .shown + .json_bytes_per_msg) | round) bytes, the disk copy to \(.disk_cache_bytes / .shown | round)."'
    # ---- History ----
    jqs scale_msgs.jsonl '
      .[] | select(.shown < .messages)
      | "- **history**: with `-o history=\(.messages)` on a thread of \(.messages) messages, `messages` showed \(.shown) (\(.requests) requests). The first fetch stops after 50 pages (cache/store_log.c `fetch_log`), and each page after the first repeats one message because `totime` is inclusive, so a page brings 99 new messages: \(.shown) = 100 + 49 × 99. (config accepts history up to 100000.)"'
    jqs scale_msgs.jsonl '
      map(select(.shown == .messages and .requests > .lower_bound)) | select(length > 0)
      | "- **history pages**: reading N messages took \(map("\(.requests) requests for \(.messages)") | join(", ")) (lower bound ceil(N/100)): the pages overlap by one message (the inclusive `totime`), so every 99 messages cost a request."'
    # ---- Writes ----
    jqs writes.jsonl '
      .[] | select(.writes_real_s > 0.5 * .delivered_real_s)
      | "- **writes**: the shell loop of \(.appends) appends itself took \(.writes_real_s * .time_scale | r1) s (simulated), about as long as the delivery (\(.delivered_sim_s | r1) s): the closes returned only as the posts went out, not as soon as each message was journaled in the outbox, so the budget paces the writer too. Delivery itself ran at the budget'"'"'s pace (\(.delivered_sim_s / .min_sim_s | f2)× the minimum)."'
    # ---- Reads with sync ----
    jqs sync_load.jsonl "$SYNC_LOAD_ORGS"'
      def q: "p50 \(pct(50) | f2) s, p90 \(pct(90) | f2) s, p99 \(pct(99) | f2) s, max \(max | f2) s";
      .[] | (.rounds | pooled_read_p99_ratio) as $ratio
      | select($ratio > 1)
      | .rounds[0] as $p
      | "- **reads while sync runs, \(.org)**: "
        + (if (.rounds | length) > 1 then
             "the p99 of the \(.rounds | length) rounds'"'"' reads together, with sync ÷ without, is \($ratio | f2)×; round 1: " else "" end)
        + "with sync \($p.a.waits_sim | q); without \($p.b.waits_sim | q) (simulated, \($p.a.reads) reads each; waits for a rate slot: \($p.a.slot_waits // "?") with sync, \($p.b.slot_waits // "?") without). "
        + (if ($p.a.slot_waits // 1) == 0 and ($p.b.slot_waits // 1) == 0 then
             "No read waited for the budget: a wait here is the operation'"'"'s CPU and I/O time × time_scale (\($p.a.time_scale): a real millisecond counts as \($p.a.time_scale / 1000) s), and with sync the machine also runs the syncer (at nice 10) and the emulator'"'"'s answers to it, whose one lock for every request (tests/emulator/server.c `handle`) a read'"'"'s request may meet."
           else "" end)'
    # ---- ls -R growth ----
    jqs scale_ls.jsonl '
      select(length >= 2) | (min_by(.threads)) as $a | (max_by(.threads)) as $b
      | "- **ls -R at scale** (not a target): from \($a.threads) to \($b.threads) threads the cold listing went from \($a.cold_s | f2) s to \($b.cold_s | f2) s and the daemon'"'"'s peak RSS from \($a.hwm_kb / 1024 | r1) to \($b.hwm_kb / 1024 | r1) MiB, about \((($b.hwm_kb - $a.hwm_kb) * 1024 / ($b.entries - $a.entries)) | round) bytes per listed entry; requests stayed at the lower bound (\($b.requests) for \($b.size))."'
  )
  [ -n "$out" ] || return 0
  printf '\n## What the figures say\n\n%s\n' "$out"
}
