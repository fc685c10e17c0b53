# What every baseline script starts with: the API base and a token from the
# environment, one function per kind of call, and the page loop.
#   CLIQ_API    e.g. https://cliq.zoho.com (here: the emulator)
#   CLIQ_TOKEN  an OAuth access token
set -euo pipefail
: "${CLIQ_API:?set CLIQ_API}" "${CLIQ_TOKEN:?set CLIQ_TOKEN}"

# get PATH: one GET, the JSON answer on stdout.
get() {
  curl -sSf -H "Authorization: Zoho-oauthtoken $CLIQ_TOKEN" "$CLIQ_API$1"
}

# post PATH JSON
post() {
  curl -sSf -H "Authorization: Zoho-oauthtoken $CLIQ_TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$2" "$CLIQ_API$1"
}

# get_all PATH KEY: every page of a list (next_token), the items of KEY one
# per line (compact JSON).
get_all() {
  local path=$1 key=$2 token='' page sep='?'
  case "$path" in *\?*) sep='&' ;; esac
  while :; do
    if [ -n "$token" ]; then
      page=$(get "$path${sep}next_token=$token")
    else
      page=$(get "$path")
    fi
    jq -c --arg k "$key" '.[$k][]?' <<<"$page"
    token=$(jq -r '.next_token // empty' <<<"$page")
    [ -n "$token" ] || break
  done
}

# joined_channels: the joined channels, one JSON object per line.
joined_channels() {
  get_all "/api/v2/channels?joined=true&limit=100" channels
}

# threads CHANNEL_ID: the channel's threads, one JSON object per line.
threads() {
  get_all "/api/v2/channels/$1/threads?limit=100" data
}
