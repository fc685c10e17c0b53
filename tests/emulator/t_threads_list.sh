#!/usr/bin/env bash
# GET /api/v2/channels/{CHANNEL_ID}/threads: envelope and entry shape, the
# state/type filters, limit (default 20, max 100) and next_token paging.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"

st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads")
expect_status 200 "$st" "threads of #engineering"
expect_jq "envelope" '.url == "/api/v2/threads" and .type == "chat_thread" and
  (.sync_token | type == "string") and (.data | type == "array" and length > 0)'
expect_jq "entry shape" --arg p "$ENG_CHAT" '
  all(.data[];
    (.chat_id | startswith($p + "-T-")) and .parent_chat_id == $p and
    (.thread_message_id | test("^[0-9]+_[0-9]+$")) and (.title | type == "string") and
    (.thread_state == "open" or .thread_state == "closed") and
    .thread_state_info.thread_state == .thread_state and
    (.follower_count | type == "number") and (.is_follower | type == "boolean") and
    (.parent_message_sender | (.id | type == "string") and (.name | type == "string")) and
    (.last_message_information | type == "object") and (.message_count | type == "number"))'
expect_jq "title with a slash" 'any(.data[]; .title == "CI/CD pipeline migration")'
expect_jq "some closed threads" 'any(.data[]; .thread_state == "closed")'
all=$(bval '.data | length')

st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?type=closed")
expect_jq "type=closed gives only closed" 'all(.data[]; .thread_state == "closed") and (.data | length > 0)'
closed=$(bval '.data | length')
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?type=open")
expect_jq "type=open gives only open" 'all(.data[]; .thread_state == "open")'
open=$(bval '.data | length')
check "open + closed = all ($open + $closed = $all)" test $((open + closed)) -eq "$all"

st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?state=followed")
expect_jq "state=followed" 'all(.data[]; .is_follower == true)'
fol=$(bval '.data | length')
st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?state=not_followed")
expect_jq "state=not_followed" 'all(.data[]; .is_follower == false)'
nfol=$(bval '.data | length')
check "followed + not_followed = all" test $((fol + nfol)) -eq "$all"

st=$(emu_api GET "/api/v2/channels/$GENERAL_ID/threads")
expect_jq "two threads titled Weekly sync in #general" '[.data[] | select(.title == "Weekly sync")] | length == 2'

for q in state=mine type=archived limit=0 limit=101 next_token=zzz; do
  st=$(emu_api GET "/api/v2/channels/$ENG_ID/threads?$q")
  expect_status 400 "$st" "bad query $q"
done
st=$(emu_api GET /api/v2/channels/O0000000000000/threads)
expect_status 404 "$st" "threads of an unknown channel"
expect_jq "chat_not_found" '.code == "chat_not_found"'

# Paging: 45 threads → 20 + 20 + 5 with the default limit.
emu_start --quiet --synthetic 1x45x2 || die "synthetic"
cid=$(emu_ctl GET '/_emulator/state?messages=0' | jq -r '.channels[0].channel_id')
path="/api/v2/channels/$cid/threads"
sizes=()
: >"$EMU_DIR/ids"
for _ in 1 2 3 4 5; do
  st=$(emu_api GET "$path")
  [ "$st" = 200 ] || { fail "page HTTP $st"; break; }
  sizes+=("$(bval '.data | length')")
  bval '.data[].chat_id' >>"$EMU_DIR/ids"
  if body_jq 'has("next_token")'; then
    path="/api/v2/channels/$cid/threads?next_token=$(bval .next_token)"
  else
    break
  fi
done
check "default pages are 20 20 5 (got ${sizes[*]})" test "${sizes[*]}" = "20 20 5"
check "45 distinct threads over the pages" test "$(sort -u "$EMU_DIR/ids" | wc -l)" -eq 45
st=$(emu_api GET "/api/v2/channels/$cid/threads?limit=100")
expect_jq "limit=100 gives all 45 and no next_token" '(.data | length == 45) and (has("next_token") | not)'
st=$(emu_api GET "/api/v2/channels/$cid/threads?limit=7&type=open")
expect_jq "filters apply before paging" '(.data | length == 7) and all(.data[]; .thread_state == "open") and has("next_token")'
finish
