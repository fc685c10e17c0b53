#!/usr/bin/env bash
# Reply TEXT to every open thread whose messages mention WORD (as a whole
# word, any case): on cliqfs, a loop of `grep -qiw WORD */*/messages` and
# `echo TEXT >> messages`.
#   reply.sh WORD TEXT
. "$(dirname "$0")/common.sh"
word=$1 text=$2

joined_channels | jq -r .channel_id | while read -r id; do
  threads "$id" | jq -r 'select(.thread_state == "open") | .chat_id' |
    while read -r chat; do
      if get "/api/v2/chats/$chat/messages?limit=100" |
        jq -e --arg w "$word" \
          'any(.data[]; (.content.text // "") | test("\\b" + $w + "\\b"; "i"))' \
          >/dev/null; then
        post "/api/v3/chats/$chat/messages" "$(jq -nc --arg t "$text" '{text: $t}')" >/dev/null
        echo "replied: $chat"
      fi
    done
done
