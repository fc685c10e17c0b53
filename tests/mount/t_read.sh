#!/usr/bin/env bash
# Every file of the tree, read with real tools against the demo organization.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"

# ---- the root: joined channels and .cliqfs ----------------------------------
want=$(emu_state '.channels[] | select(.joined) | .unique_name' | sort)
got=$(ls | sort)
assert_eq "$got" "$want" "channel directories"
assert_eq "$(ls -A | grep -c '^\.cliqfs$')" 1 ".cliqfs listed by ls -A"
assert_eq "$(ls -A .cliqfs | tr '\n' ' ')" "errors failed outbox status " ".cliqfs content"
[ ! -e sales-emea ] || fail "a channel not joined is listed"
ok "root lists the joined channels and .cliqfs"

# ---- a channel -----------------------------------------------------------------
titles=$(emu_state '.channels[] | select(.unique_name=="general") | .threads[].title' | sort -u)
while IFS= read -r t; do
  n=$(ls general | grep -c -F -- "$t")
  [ "$n" -ge 1 ] || fail "thread \"$t\" not listed in general"
done <<<"$titles"
[ -f general/info ] && [ -f general/messages ] || fail "general/info or messages missing"
assert_eq "$(jq -r .unique_name general/info)" general "channel info is the channel JSON"
ok "channel lists its threads, info and messages"

# ---- a file never read reports 0 and still reads completely --------------------
T="general/Q1 planning"
assert_eq "$(stat -c %s "$T/info")" 0 "size of a never fetched info"
bytes=$(cat "$T/info" | wc -c)
[ "$bytes" -gt 0 ] || fail "info read empty"
assert_eq "$(stat -c %s "$T/info")" "$bytes" "info size right after the first read"
ok "never fetched file: size 0, full read, real size from then on"

# ---- every file of every thread: st_size == what read returns ---------------------
for dir in general/*/; do
  dir=${dir%/}
  for f in main messages members followers nonfollowers state title info messages.jsonl; do
    [ -f "$dir/$f" ] || fail "$dir/$f missing"
    n=$(cat "$dir/$f" | wc -c)
    assert_eq "$(stat -c %s "$dir/$f")" "$n" "$dir/$f: st_size against the bytes read"
  done
  [ -f "$dir/ctl" ] || fail "$dir/ctl missing"
  assert_eq "$(stat -c %a "$dir/ctl")" 600 "ctl mode"
  assert_eq "$(cat "$dir/ctl" | wc -c)" 0 "ctl reads empty"
done
for f in info messages; do
  n=$(cat "general/$f" | wc -c)
  assert_eq "$(stat -c %s "general/$f")" "$n" "general/$f: st_size against the bytes read"
done
ok "st_size equals the bytes read for every file of general"

# ---- contents against the emulator ------------------------------------------------
tid=$(thread_jq general "Q1 planning" .chat_id)
assert_eq "$(jq -r .chat_id "$T/info")" "$tid" "thread info chat_id"
assert_eq "$(cat "$T/title")" "Q1 planning" "title"
assert_eq "$(cat "$T/state")" "$(thread_jq general "Q1 planning" .state)" "state"
assert_eq "$(cut -f1 "$T/followers" | sort | tr '\n' ' ')" \
  "$(thread_jq general "Q1 planning" '.followers[]' | sort | tr '\n' ' ')" "followers"
members=$(emu_state '.channels[] | select(.unique_name=="general") | .members[]' | sort)
nonf=$(comm -23 <(echo "$members") <(thread_jq general "Q1 planning" '.followers[]' | sort) | tr '\n' ' ')
assert_eq "$(cut -f1 "$T/nonfollowers" | sort | tr '\n' ' ')" "$nonf" "nonfollowers"
assert_eq "$(cut -f1 "$T/members" | sort | tr '\n' ' ')" \
  "$(thread_jq general "Q1 planning" '.members[]' | sort | tr '\n' ' ')" "members"
awk -F'\t' 'NF != 3 { exit 1 }' "$T/members" || fail "members lines are id TAB email TAB name"
grep -q $'ryan.west@zylker.com\tRyan West$' "$T/followers" || fail "followers line format"
ok "info, title, state, followers, nonfollowers, members match the emulator"

# messages: one line per message, continuation lines with a TAB, UTC times
count=$(thread_jq general "Q1 planning" '.messages | length')
assert_eq "$(grep -vc $'^\t' "$T/messages")" "$count" "messages lines"
grep -v $'^\t' "$T/messages" | grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z [^:]+: ' &&
  fail "a messages line does not look like '2026-11-25T18:54:50Z Name: text'"
first_ms=$(thread_jq general "Q1 planning" '.messages[0].time')
first_text=$(thread_jq general "Q1 planning" '.messages[0].text' | head -n 1)
first_line=$(head -n 1 "$T/messages")
assert_eq "$first_line" "$(date -u -d "@$((first_ms / 1000))" +%Y-%m-%dT%H:%M:%SZ) $(
  emu_state ".users[] | select(.user_id == \"$(thread_jq general "Q1 planning" '.messages[0].sender')\") | .name"): $first_text" \
  "first message line"
ml=$(grep -l $'^\t' general/*/messages | head -n 1)
[ -n "$ml" ] || fail "no multi-line message rendered with TAB continuation lines"
assert_eq "$(jq -s length "$T/messages.jsonl")" "$count" "messages.jsonl objects"
assert_eq "$(jq -r .id "$T/messages.jsonl" | tr '\n' ' ')" \
  "$(thread_jq general "Q1 planning" '.messages[].id' | tr '\n' ' ')" "messages.jsonl ids in order"
parent=$(thread_jq general "Q1 planning" .thread_message_id)
ptext=$(emu_state ".channels[] | select(.unique_name==\"general\") | .messages[] | select(.id==\"$parent\") | .text" | head -n 1)
grep -qF -- "$ptext" "$T/main" || fail "main does not hold the parent message [$ptext]"
ok "messages, messages.jsonl and main render what the emulator holds"

# mtime: a thread directory carries its last message's time
last_ms=$(thread_jq general "Q1 planning" '[.messages[].time] | max')
assert_eq "$(stat -c %Y "$T")" "$((last_ms / 1000))" "thread directory mtime"
assert_eq "$(stat -c %Y "$T/messages")" "$((last_ms / 1000))" "messages mtime"
newest=$(emu_state '[.channels[] | select(.unique_name=="general") | (.messages[].time, .threads[].messages[].time)] | max')
wait_until 6 mtime_is general "$((newest / 1000))" ||
  fail "channel directory mtime $(stat -c %Y general), newest below $((newest / 1000))"
ok "mtimes are the last message's time"

# ---- reaching a thread and a channel by chat id -------------------------------------
assert_eq "$(cat "general/$tid/title")" "Q1 planning" "thread reached by chat id"
ls general | grep -q -- "-T-" && fail "chat ids are listed"
cid=$(emu_state '.channels[] | select(.unique_name=="general") | .chat_id')
assert_eq "$(jq -r .unique_name "$cid/info")" general "channel reached by chat id"
expect_errno "No such file or directory" "ls '$MNT/general/CT_0_0-T-123'"
expect_errno "No such file or directory" "cat '$MNT/general/No such thread/title'"
expect_errno "No such file or directory" "cat '$MNT/nosuchchannel/info'"
ok "lookup by chat id works though not listed; ENOENT otherwise"

# ---- find, grep -r, jq ----------------------------------------------------------------
files=$(find engineering -type f | wc -l)
threads=$(emu_state '.channels[] | select(.unique_name=="engineering") | .threads | length')
assert_eq "$files" "$((threads * 10 + 2))" "find engineering -type f"
needle=$(thread_jq engineering "Postgres 16 upgrade" '.messages[1].text' | head -n 1)
hits=$(grep -rlF -- "$needle" engineering) || fail "grep -r failed"
echo "$hits" | grep -q "Postgres 16 upgrade/messages" || fail "grep -r did not find [$needle]: $hits"
jq -e '.apis["chats.messages"].limit == 15 and .outbox.depth == 0 and .auth == "static"
       and (.cache.entries >= 1) and (.apis["threads.list"] | has("used") and has("locked_until"))' \
  .cliqfs/status >/dev/null || fail ".cliqfs/status: $(cat .cliqfs/status)"
ok "find, grep -r and jq work over the tree"
