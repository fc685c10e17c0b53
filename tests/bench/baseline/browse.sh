#!/usr/bin/env bash
# Browse the organization (what `ls -lR` on cliqfs shows): every joined
# channel, every thread in it, with its state and last activity.
. "$(dirname "$0")/common.sh"

joined_channels | while IFS= read -r ch; do
  id=$(jq -r .channel_id <<<"$ch")
  echo "$(jq -r .unique_name <<<"$ch"):"
  threads "$id" | jq -r '"  \(.thread_state)\t\(.last_message_information.time // "")\t\(.title)"'
done
