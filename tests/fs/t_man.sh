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

# In the C locale man renders for an ASCII terminal: still no warning, and
# every character of the page has an ASCII form there (a glyph the device
# lacks comes out as nothing, e.g. a name shown as "").
if ! LC_ALL=C LANG=C MANWIDTH=80 man --warnings -l "$page" >"$tmp/c-out" 2>"$tmp/c-err"; then
  fail "man -l failed in the C locale: $(cat "$tmp/c-err")"
elif [ -s "$tmp/c-err" ]; then
  fail "warnings in the C locale:"; cat "$tmp/c-err" >&2
else
  echo "ok: renders in the C locale without warnings"
fi
col -b <"$tmp/c-out" >"$tmp/c-text"
if LC_ALL=C grep -n '[^ -~	]' "$tmp/c-text" >"$tmp/c-bad"; then
  fail "non-ASCII output in the C locale:"; head -5 "$tmp/c-bad" >&2
fi
if grep -n '""' "$tmp/c-text" >"$tmp/c-bad"; then
  fail "an empty quotation in the C locale (a glyph with no ASCII form?):"; head -5 "$tmp/c-bad" >&2
fi

# groff itself, at its pickiest (-ww), as packagers and linters run it: on its
# default device, and with tbl on the terminal devices.
if groff -ww -man -z "$page" 2>"$tmp/g-err" && [ ! -s "$tmp/g-err" ]; then
  echo "ok: groff -ww -man: no warning"
else
  fail "groff -ww -man warns:"; cat "$tmp/g-err" >&2
fi
for dev in ascii latin1 utf8; do
  if groff -t -ww -man -z -T"$dev" "$page" 2>"$tmp/g-err" && [ ! -s "$tmp/g-err" ]; then
    echo "ok: groff -t -ww -man -T$dev: no warning"
  else
    fail "groff -t -ww -man -T$dev warns:"; cat "$tmp/g-err" >&2
  fi
done

# Tabs expanded and runs of spaces squeezed: justification spreads words.
MANWIDTH=200 man -l "$page" 2>/dev/null | col -bx | tr -s " " >"$tmp/text"
# Phrases may wrap: they are looked for in the text as one line.
tr '\n' ' ' <"$tmp/text" | tr -s " " >"$tmp/flat"
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
            "followers" "nonfollowers" "ctl" "fusermount3 -u" \
            "sync FILE" "sync MOUNTPOINT" "still queued"; do
  grep -qF -- "$word" "$tmp/flat" || fail "the page does not mention '$word'"
done
# All nine data centres.
for dc in us eu in au jp cn ca sa uk; do
  grep -qE "^ +$dc +https://" "$tmp/text" || fail "no data centre row for $dc"
done

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed" >&2; exit 1; }
echo "all checks passed"
