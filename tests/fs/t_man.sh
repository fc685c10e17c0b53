#!/bin/sh
# The man page renders without a single warning and covers what it must.
# Usage: t_man.sh PATH/TO/cliqfs.1
page=$1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-man.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

for width in 80 120; do
  if ! MANWIDTH=$width man --warnings -l "$page" >"$tmp/out" 2>"$tmp/err"; then
    fail "man -l failed at width $width: $(cat "$tmp/err")"
  elif [ -s "$tmp/err" ]; then
    fail "warnings at width $width:"; cat "$tmp/err" >&2
  else
    echo "ok: renders at width $width without warnings ($(wc -l <"$tmp/out") lines)"
  fi
done

MANWIDTH=200 man -l "$page" 2>/dev/null | col -b >"$tmp/text"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS CONFIGURATION FILES \
               "THE TREE" READING WRITING ERRORS "RATE LIMITS" "TIME SCALE" \
               EXAMPLES "SEE ALSO"; do
  grep -q "^$section\$" "$tmp/text" || fail "no section $section"
done
# Every config key and every errno of the manual's ERRORS table.
for word in client_id client_secret refresh_token access_token dc= api_url \
            accounts_url history= max_wait= timeout= time_scale= "limit.API" \
            ENOENT EACCES EAGAIN ETIMEDOUT EIO EINVAL EMSGSIZE EILSEQ EPERM \
            "--demo" "cliqfs auth" "chmod 600" "Default: 100" "Default: 60" \
            "Default: us" "Default: 1" "chats.messages" "15/60" \
            ".local/state/cliqfs" ".cache/cliqfs" "messages.jsonl" \
            "followers" "nonfollowers" "ctl" "fusermount3 -u"; do
  grep -qF -- "$word" "$tmp/text" || fail "the page does not mention '$word'"
done
# All nine data centres.
for dc in us eu in au jp cn ca sa uk; do
  grep -qE "^ +$dc +https://" "$tmp/text" || fail "no data centre row for $dc"
done

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed" >&2; exit 1; }
echo "all checks passed"
