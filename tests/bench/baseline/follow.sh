#!/usr/bin/env bash
# Follow threads (`tail -f */*/messages` on cliqfs): prints each thread's new
# messages as they come, polling every POLL_SECONDS (default 10) for
# DURATION_SECONDS (default: forever).
#   follow.sh CHANNEL/TITLE...
. "$(dirname "$0")/common.sh"
poll=${POLL_SECONDS:-10}
duration=${DURATION_SECONDS:-0}

# Find the threads: channel list, then the thread list of each channel named.
declare -A chat_of last_of list_of
channels=$(joined_channels)
for arg in "$@"; do
  chan=${arg%%/*} title=${arg#*/}
  id=$(jq -r --arg n "$chan" 'select(.unique_name == $n) | .channel_id' <<<"$channels")
  if [ -z "${list_of[$id]+x}" ]; then
    list_of[$id]=$(threads "$id")
  fi
  chat_of[$arg]=$(jq -r --arg t "$title" 'select(.title == $t) | .chat_id' <<<"${list_of[$id]}")
  # Start from the newest message, as tail -f does.
  last_of[$arg]=$(get "/api/v2/chats/${chat_of[$arg]}/messages?limit=1" | jq -r '.data[-1].time // 0')
done

start=$SECONDS
while [ "$duration" = 0 ] || [ $((SECONDS - start)) -lt "$duration" ]; do
  sleep "$poll"
  for arg in "$@"; do
    new=$(get "/api/v2/chats/${chat_of[$arg]}/messages?fromtime=$((last_of[$arg] + 1))&limit=100")
    jq -r --arg a "$arg" '.data[] | "\($a): \(.sender.name): \(.content.text // "[\(.type)]")"' <<<"$new"
    t=$(jq -r '.data[-1].time // empty' <<<"$new")
    [ -n "$t" ] && last_of[$arg]=$t
  done
done
