#!/usr/bin/env bash
# Read every thread's state (`cat */*/state` on cliqfs): "channel/title: state".
. "$(dirname "$0")/common.sh"

joined_channels | while IFS= read -r ch; do
  id=$(jq -r .channel_id <<<"$ch")
  name=$(jq -r .unique_name <<<"$ch")
  threads "$id" | jq -r --arg c "$name" '"\($c)/\(.title): \(.thread_state)"'
done
