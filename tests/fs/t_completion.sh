#!/usr/bin/env bash
# The bash completion (docs/cliqfs.bash-completion) offers what cliqfs has
# (suite 'cli'): every -o option and flag of `cliqfs --help` and of the man
# page's OPTIONS, the options of `cliqfs auth --help`, the commands of the man
# page's COMMANDS, the data centres of fs/config.c and the APIs of limit.API.
# An option documented without completion fails here.
#
# The completion function is called as bash calls it on TAB: COMP_LINE and
# COMP_POINT are the line up to the cursor, COMP_WORDBREAKS bash's default;
# what it offers is what readline puts after the last word-break character.
# Needs: CLIQFS, COMPLETION, MAN_PAGE, CONFIG_C.
set -uo pipefail
export LC_ALL=C

for v in CLIQFS COMPLETION MAN_PAGE CONFIG_C; do
  if [ -z "${!v:-}" ]; then echo "FATAL: $v is not set" >&2; exit 1; fi
done

# Relative paths stay valid after the cd below.
for v in CLIQFS COMPLETION MAN_PAGE CONFIG_C; do
  printf -v "$v" '%s' "$(realpath -- "${!v}")"
done

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

T=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-completion.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/mnt/point" "$T/mnt/other"
cd "$T" || exit 1

# ---- It loads -------------------------------------------------------------------
bash -n "$COMPLETION" || fail "$COMPLETION does not parse"
if out=$(bash --norc --noprofile -c '. "$1" && complete -p cliqfs' _ "$COMPLETION" 2>&1); then
  [ "$out" = "complete -F _cliqfs cliqfs" ] && ok "loads in bash: $out" || fail "complete -p cliqfs: $out"
else
  fail "sourcing it in bash failed: $out"
fi
# shellcheck source=docs/cliqfs.bash-completion
. "$COMPLETION"
COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'

# offered LINE: what TAB after LINE offers, one a line.
offered() {
  COMP_LINE=$1
  COMP_POINT=${#1}
  read -r -a COMP_WORDS <<<"$1 "
  COMP_CWORD=${#COMP_WORDS[@]}
  [[ $1 == *' ' ]] && COMP_WORDS+=("")
  COMPREPLY=()
  _cliqfs >/dev/null 2>&1
  printf '%s\n' "${COMPREPLY[@]}"
}

# expect_offer WHAT LINE WORD...: TAB after LINE offers every WORD.
expect_offer() {
  local what=$1 line=$2 w missing=()
  shift 2
  offered "$line" >"$T/offer"
  for w in "$@"; do
    grep -qxF -- "$w" "$T/offer" || missing+=("$w")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    ok "$what: $# offered after '$line'"
  else
    fail "$what: '$line' + TAB does not offer: ${missing[*]} (offers: $(paste -sd' ' "$T/offer"))"
  fi
}

# ---- What cliqfs documents ----------------------------------------------------------
"$CLIQFS" --help >"$T/help" 2>&1 || fail "cliqfs --help exited $?"
"$CLIQFS" auth --help >"$T/auth-help" 2>&1 || fail "cliqfs auth --help exited $?"
MANWIDTH=200 man -l "$MAN_PAGE" 2>/dev/null | col -bx >"$T/man" || fail "man -l $MAN_PAGE failed"
sed -n '/^OPTIONS$/,/^[A-Z][A-Z ]*$/p' "$T/man" | sed '$d' >"$T/man-options"
sed -n '/^COMMANDS$/,/^OPTIONS$/p' "$T/man" >"$T/man-commands"
# The man page's cliqfs options end at its "Options of cliqfs auth".
sed '/^ *Options of cliqfs auth$/,$d' "$T/man-options" >"$T/man-main"
sed -n '/^ *Options of cliqfs auth$/,$p' "$T/man-options" >"$T/man-auth"

# -o keys as completion offers them: KEY= for a key with a value, KEY for a
# flag, "limit." for limit.API=.
o_keys() { # from lines "  -o KEY[=VALUE]" at the given indent
  sed -nE "s/^ {$1}-o ([A-Za-z_][A-Za-z0-9_.]*)(=?).*/\\1\\2/p" | sed -E 's/^limit\..*/limit./' | sort -u
}
o_keys 2 <"$T/help" >"$T/keys-help"
o_keys 7 <"$T/man-main" >"$T/keys-man"
[ "$(wc -l <"$T/keys-help")" -ge 15 ] || fail "only $(wc -l <"$T/keys-help") -o options found in --help"
[ "$(wc -l <"$T/keys-man")" -ge 15 ] || fail "only $(wc -l <"$T/keys-man") -o options found in the man page"
mapfile -t keys < <(sort -u "$T/keys-help" "$T/keys-man")
expect_offer "every -o option of --help and the man page" "cliqfs -o " "${keys[@]}"
expect_offer "-o options after a comma" "cliqfs -o ro," "${keys[@]/#/ro,}"
expect_offer "-o options glued to -o" "cliqfs -o" "-o"
expect_offer "-oKEY" "cliqfs -oa" $(printf '%s\n' "${keys[@]/#/-o}" | grep '^-oa')

# Flags: "  -x, --long   ..." in --help, "       -x, --long" in OPTIONS.
flags() {
  sed -nE "s/^ {$1}(-[A-Za-z]|--[a-z][a-z-]*)((, )(--?[A-Za-z][a-z-]*))?( .*)?$/\\1 \\4/p" | tr ' ' '\n' |
    grep -v '^-o$' | grep . | sort -u
}
flags 2 <"$T/help" >"$T/flags"
flags 7 <"$T/man-main" >>"$T/flags"
mapfile -t fl < <(sort -u "$T/flags")
[ "${#fl[@]}" -ge 7 ] || fail "only ${#fl[@]} flags found: ${fl[*]}"
expect_offer "every flag of --help and the man page" "cliqfs -" -o "${fl[@]}"

# Commands: "cliqfs WORD" items of COMMANDS, and the words of --help's
# "Other commands".
{
  sed -nE 's/^ {7}cliqfs ([a-z]+)( .*)?$/\1/p' "$T/man-commands"
  sed -n '/^Other commands:/,/^$/p' "$T/help" | sed -nE 's/^  ([a-z]+) .*/\1/p'
} | sort -u >"$T/commands"
mapfile -t cmds <"$T/commands"
[ "${#cmds[@]}" -ge 1 ] || fail "no command (auth) found in the man page"
expect_offer "every command" "cliqfs " "${cmds[@]}"
expect_offer "mount points after the options" "cliqfs -o ro $T/mnt/p" "$T/mnt/point/"
expect_offer "mount points first" "cliqfs $T/mnt/o" "$T/mnt/other/"

# cliqfs auth: "  --opt" of `cliqfs auth --help` and of the man page's
# "Options of cliqfs auth".
{
  sed -nE 's/^  (--[a-z][a-z-]*).*/\1/p' "$T/auth-help"
  sed -nE 's/^ {7}(--[a-z][a-z-]*).*/\1/p' "$T/man-auth"
} | sort -u >"$T/auth-opts"
mapfile -t auth_opts <"$T/auth-opts"
[ "${#auth_opts[@]}" -ge 7 ] || fail "only ${#auth_opts[@]} auth options found: ${auth_opts[*]}"
expect_offer "every option of cliqfs auth" "cliqfs auth --dc us -" "${auth_opts[@]}"

# ---- Values ---------------------------------------------------------------------------
# Data centres: fs/config.c's table is the one cliqfs accepts.
mapfile -t dcs < <(sed -nE 's/^ *\{ *"([a-z]+)", *"https:.*/\1/p' "$CONFIG_C")
[ "${#dcs[@]}" -ge 9 ] || fail "only ${#dcs[@]} data centres found in $CONFIG_C: ${dcs[*]}"
expect_offer "data centres of -o dc=" "cliqfs -o dc=" "${dcs[@]}"
expect_offer "data centres after a comma" "cliqfs -o ro,dc=" "${dcs[@]}"
expect_offer "data centres of -odc=" "cliqfs -odc=" "${dcs[@]}"
expect_offer "data centres of auth --dc" "cliqfs auth --dc " "${dcs[@]}"
expect_offer "a data centre by its first letter" "cliqfs -o dc=e" eu
offered "cliqfs -o dc=e" >"$T/offer"
[ "$(cat "$T/offer")" = eu ] && ok "-o dc=e offers eu alone" || fail "-o dc=e offers: $(paste -sd' ' "$T/offer")"

# limit.API=: every API --help lists.
mapfile -t apis < <(sed -nE 's/^ +limit\.([a-z][a-z.]*) += .*/\1/p' "$T/help" | sort -u)
[ "${#apis[@]}" -ge 20 ] || fail "only ${#apis[@]} APIs found in --help"
apis=("${apis[@]/#/limit.}")
expect_offer "every API of limit.API" "cliqfs -o limit." "${apis[@]/%/=}"
# After dc=eu, readline replaces from the '=' on.
expect_offer "limit.API= after a comma" "cliqfs -o dc=eu,limit.chats.m" \
  eu,limit.chats.messages= eu,limit.chats.members= eu,limit.chats.mute=

# Files for config=.
touch "$T/my.conf"
expect_offer "files for -o config=" "cliqfs -o config=$T/my" "$T/my.conf"
expect_offer "files for auth --config" "cliqfs auth --config $T/my" "$T/my.conf"

[ "$FAILS" -eq 0 ] || { echo "$FAILS check(s) failed" >&2; exit 1; }
echo "all checks passed"
