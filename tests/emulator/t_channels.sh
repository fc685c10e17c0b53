#!/usr/bin/env bash
# GET /api/v2/channels (joined filter, limit, opaque next_token paging) and
# GET /api/v2/channels/{CHANNEL_ID}, with the reference's channel shape.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "start"

st=$(emu_api GET '/api/v2/channels?joined=true&limit=100')
expect_status 200 "$st" "list joined channels"
expect_jq "list envelope" '(.channels | type == "array") and (.has_more == false) and
  (.sync_token | type == "string") and (has("next_token") | not)'
expect_jq "only joined channels (5 in the demo)" '(.channels | length == 5) and all(.channels[]; .joined == true)'
expect_jq "channel shape and types" '
  all(.channels[];
    (.channel_id | type == "string" and startswith("O")) and
    (.chat_id | test("^CT_[0-9]+_[0-9]+$")) and
    (.unique_name | type == "string") and (.name | startswith("#")) and
    (.description | type == "string") and (.level | type == "string") and
    (.participant_count | type == "number") and
    (.total_message_count | type == "string" and test("^[0-9]+$")) and
    (.creation_time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}$")) and
    (.last_modified_time | test("T.*[+-][0-9]{2}:[0-9]{2}$")) and
    (.last_message_info | (.sender_id | type == "string") and (.message_type | type == "string") and
       (.time | type == "number") and (.text | type == "string") and (.sender_name | type == "string")))'
expect_jq "general and zylker-support are there" '[.channels[].unique_name] | index("general") != null and index("zylker-support") != null'
cp "$EMU_BODY" "$EMU_DIR/joined.json"

st=$(emu_api GET /api/v2/channels)
expect_status 200 "$st" "list all channels"
expect_jq "not-joined channel listed without joined=true" 'any(.channels[]; .unique_name == "sales-emea" and .joined == false)'
total=$(bval '.channels | length')

# Paging with limit=2: pages of 2, opaque next_token, all channels once.
ids=()
path='/api/v2/channels?limit=2'
pages=0
while :; do
  st=$(emu_api GET "$path")
  [ "$st" = 200 ] || { fail "page $pages: HTTP $st"; break; }
  pages=$((pages + 1))
  mapfile -t got < <(bval '.channels[].channel_id')
  ids+=("${got[@]}")
  if body_jq '.has_more == true'; then
    body_jq '(.next_token | type == "string") and (.channels | length == 2)' || fail "page $pages shape"
    path="/api/v2/channels?limit=2&next_token=$(bval .next_token)"
  else
    body_jq 'has("next_token") | not' || fail "last page carries a next_token"
    break
  fi
  [ $pages -gt 10 ] && { fail "paging does not end"; break; }
done
check "paging returns every channel once (${#ids[@]} of $total)" \
  test "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" -eq "$total" -a "${#ids[@]}" -eq "$total"
check "3 pages of at most 2" test "$pages" -eq 3

for q in 'limit=0' 'limit=101' 'limit=abc' 'next_token=garbage' 'joined=maybe'; do
  st=$(emu_api GET "/api/v2/channels?$q")
  expect_status 400 "$st" "bad query $q"
  expect_jq "400 body has code and message" '.code == "invalid_inputs" and (.message | type == "string")'
done

# One channel: the same object as in the list.
st=$(emu_api GET "/api/v2/channels/$GENERAL_ID")
expect_status 200 "$st" "one channel"
one=$(jq -S 'del(.last_modified_time)' "$EMU_BODY")
fromlist=$(jq -S --arg id "$GENERAL_ID" '.channels[] | select(.channel_id == $id) | del(.last_modified_time)' "$EMU_DIR/joined.json")
check "one channel equals its list entry" test "$one" = "$fromlist"
expect_jq "general's ids" --arg c "$GENERAL_CHAT" '.chat_id == $c and .unique_name == "general" and .name == "#General"'

st=$(emu_api GET /api/v2/channels/O0000000000000)
expect_status 404 "$st" "unknown channel"
expect_jq "chat_not_found" '.code == "chat_not_found" and (.message | type == "string")'
finish
