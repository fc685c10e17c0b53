#!/usr/bin/env bash
# The recipes of docs/recipes.md, run as they are written against the
# emulator's demo organization mounted by cliqfs, with their effects checked
# at the emulator (/_emulator/state) or in their output (suite 'mount').
#
#   t_recipes.sh NAME             run the recipe tagged ```sh recipe:NAME
#   t_recipes.sh --in-order       every recipe in the doc's order on one mount,
#                                 each with its check (what a reader does)
#   t_recipes.sh --index NAME...  the recipes of the doc, the checks of this
#                                 script and NAME... (meson's list) agree, and
#                                 every recipe stops, touching nothing, when
#                                 CLIQ is not set
#
# The snippet is taken from the doc itself (never a copy), run with
# `bash -e -o pipefail` in a scratch folder with CLIQ set to the mount point,
# and must exit 0 without a word on stderr.  A recipe's settings
# (WORD=${WORD:-…}) are set here where the check needs to know them.
# Needs: CLIQFS, CLIQ_EMULATOR, EMU_HARNESS, RECIPES_MD.
set -uo pipefail

for v in CLIQFS CLIQ_EMULATOR EMU_HARNESS RECIPES_MD; do
  if [ -z "${!v:-}" ]; then echo "FATAL: $v is not set" >&2; exit 1; fi
done

SCALE=60            # rate windows of 1 s, cache lifetimes divided by 60
RUN_TIMEOUT=120     # one recipe, at most (seconds)

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

# list_recipes: the names of the doc's recipes, in order.
list_recipes() {
  sed -n 's/^```sh recipe:\([A-Za-z0-9_-]*\)[[:space:]]*$/\1/p' "$RECIPES_MD"
}

# extract_recipe NAME: the snippet's lines.  Fails unless exactly one block
# has that tag and it is closed.
extract_recipe() {
  awk -v tag="\`\`\`sh recipe:$1" '
    $0 == tag { n++; inside = 1; next }
    inside && /^```[[:space:]]*$/ { inside = 0; closed++; next }
    inside { print }
    END { if (n != 1 || closed != 1) exit 1 }' "$RECIPES_MD"
}

# one_of WORD LIST...: WORD is one of LIST.  In the shell: `printf | grep -q`
# under pipefail fails when grep has its match and exits before printf has
# written every line (printf then dies of SIGPIPE).
one_of() {
  local want=$1 w
  shift
  for w in "$@"; do
    [ "$w" = "$want" ] && return 0
  done
  return 1
}

# ---- --index: the doc, this script and meson's list agree --------------------
if [ "${1:-}" = "--index" ]; then
  shift
  mapfile -t doc < <(list_recipes)
  [ "${#doc[@]}" -ge 10 ] && ok "${#doc[@]} recipes in $(basename "$RECIPES_MD")" \
    || fail "only ${#doc[@]} recipes in $RECIPES_MD (at least 10 wanted)"
  dups=$(printf '%s\n' "${doc[@]}" | sort | uniq -d)
  [ -z "$dups" ] || fail "recipe names used twice: $dups"
  for name in "${doc[@]}"; do
    extract_recipe "$name" >/dev/null || fail "recipe $name: block not closed"
    [ -n "$(extract_recipe "$name")" ] || fail "recipe $name is empty"
    grep -qxF "recipe_$name() {" "$0" || fail "recipe $name has no check in $(basename "$0")"
    one_of "$name" "$@" || fail "recipe $name is not in tests/recipes/meson.build"
  done
  for name in "$@"; do
    one_of "$name" "${doc[@]}" || fail "meson runs recipe $name, which the doc does not have"
  done
  for name in $(sed -n 's/^recipe_\([A-Za-z0-9_-]*\)() {$/\1/p' "$0"); do
    one_of "$name" "${doc[@]}" || fail "check recipe_$name has no recipe in the doc"
  done
  # Each recipe is bash that parses.
  for name in "${doc[@]}"; do
    extract_recipe "$name" | bash -n 2>/dev/null || fail "recipe $name does not parse"
  done
  # Without CLIQ a recipe must stop before it reads or writes anything, not
  # run in the current folder (`cd ""` succeeds and stays there).  The
  # current folder is a decoy with the demo's channel and thread names.
  decoy=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-recipes-decoy.XXXXXX") || exit 1
  trap 'rm -rf "$decoy"' EXIT
  W=$decoy/w                      # what the recipes must leave alone
  for th in "general/Holiday party 2026" "engineering/Postgres 16 upgrade" \
            "engineering/Load test results for 4.13" "marketing/Launch plan"; do
    mkdir -p "$W/cwd/$th"
    for f in state title main messages messages.jsonl info members followers nonfollowers ctl; do
      echo "decoy $f" >"$W/cwd/$th/$f"
    done
    echo open >"$W/cwd/$th/state"
    echo '{"is_follower": true}' >"$W/cwd/$th/info"
    touch -d '30 days ago' "$W/cwd/$th"
  done
  for ch in general engineering marketing; do echo '{}' >"$W/cwd/$ch/info"; done
  echo "step 1: ok" >"$W/cwd/build.log"
  mkdir -p "$W/home" "$W/tmp"
  snapshot() { (cd "$W" && find . -printf '%y %p %s %T@\n' | LC_ALL=C sort && find . -type f -exec cat {} +); }
  snapshot >"$decoy/before"
  for name in "${doc[@]}"; do
    extract_recipe "$name" >"$decoy/recipe.sh"
    (cd "$W/cwd" && env -u CLIQ HOME="$W/home" TMPDIR="$W/tmp" \
       timeout 10 bash -e -o pipefail "$decoy/recipe.sh") >"$decoy/out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
      fail "recipe $name ran without CLIQ (exit $rc): $(head -c 300 "$decoy/out")"
    elif ! grep -q 'CLIQ' "$decoy/out"; then
      fail "recipe $name without CLIQ does not say CLIQ is missing: $(head -c 300 "$decoy/out")"
    elif [ -s "$decoy/out" ] && [ "$(grep -vc 'CLIQ' "$decoy/out")" -ne 0 ]; then
      fail "recipe $name without CLIQ did more than stop: $(head -c 300 "$decoy/out")"
    fi
    snapshot >"$decoy/after"
    if ! cmp -s "$decoy/before" "$decoy/after"; then
      fail "recipe $name without CLIQ changed the current folder"
      mv "$decoy/after" "$decoy/before"   # the next recipe is judged on its own
    fi
  done
  [ "$FAILS" -eq 0 ] && ok "every recipe stops without CLIQ, touching nothing"
  [ "$FAILS" -eq 0 ] || { echo "$FAILS check(s) failed" >&2; exit 1; }
  echo "all checks passed"
  exit 0
fi

# --in-order: the recipes one after the other on one mount, as a reader
# pasting them down the page would run them; each check then sees what the
# recipes before it did (replies, follows, closed threads, a lock).
IN_ORDER=0
NAME=${1:-}
[ -n "$NAME" ] || { echo "usage: $0 NAME | --in-order | --index NAME..." >&2; exit 2; }
[ "$NAME" = --in-order ] && IN_ORDER=1

# The mount tests' helpers: emulator harness, mt_mount, and an EXIT
# trap that unmounts, stops cliqfs and the emulator by PID, fails on a
# sanitizer report in the cliqfs log, and removes $MT_DIR.
# shellcheck source=tests/mount/lib.sh
. "$(dirname "$0")/../mount/lib.sh"
# This script counts failures and reports them all; lib.sh's fail exits.
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

T=$MT_DIR                         # removed by lib.sh's EXIT trap
WORK=$T/work                      # where the recipe runs (its output files)
mkdir -p "$WORK" "$T/home" "$T/tmp"
# Everything a recipe would touch in $HOME goes in here instead.
export HOME=$T/home TMPDIR=$T/tmp
BG_PGID=

# wait_for SECONDS COMMAND...: polls until the command succeeds.
wait_for() { wait_until "$@"; }

recipes_cleanup() {
  local rc=$?
  # A recipe left running (tail -f) goes with its whole process group.
  if [ -n "$BG_PGID" ]; then kill -TERM -- "-$BG_PGID" 2>/dev/null; fi
  (exit "$rc")
  mt_cleanup
}
trap recipes_cleanup EXIT

emu_start --quiet --time-scale "$SCALE" || { echo "FATAL: no emulator" >&2; exit 1; }

# mount_demo [TIME_SCALE]: mounts the emulator's organization at $MNT
# (--in-order: once, at $SCALE, for all the recipes).
mount_demo() {
  if [ "$IN_ORDER" = 1 ] && mountpoint -q "$MNT"; then return 0; fi
  [ "$IN_ORDER" = 1 ] && set -- "$SCALE"
  mt_mount "time_scale=${1:-$SCALE}"
  mountpoint -q "$MNT" || { echo "FATAL: cliqfs did not mount" >&2; exit 1; }
}

# run_recipe [VAR=VALUE...]: runs the recipe $NAME as the doc has it; its
# stdout goes to $T/out, stderr to $T/err.  Returns its status.
run_recipe() {
  extract_recipe "$NAME" >"$T/recipe.sh" || { fail "no recipe:$NAME block in $RECIPES_MD"; return 1; }
  (cd "$WORK" && env CLIQ="$MNT" "$@" timeout "$RUN_TIMEOUT" bash -e -o pipefail "$T/recipe.sh") \
    >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "recipe $NAME exited $rc: $(head -c 2000 "$T/err")"
  elif [ -s "$T/err" ]; then
    fail "recipe $NAME wrote to stderr: $(head -c 2000 "$T/err")"
  else
    ok "recipe $NAME ran ($(wc -l <"$T/out") lines of output)"
  fi
  return "$rc"
}

# run_recipe_failing [VAR=VALUE...]: runs the recipe $NAME on input it must
# refuse; succeeds when it exits non-zero (RECIPE_RC) within the time limit.
run_recipe_failing() {
  extract_recipe "$NAME" >"$T/recipe.sh" || return 1
  (cd "$WORK" && env CLIQ="$MNT" "$@" timeout "$RUN_TIMEOUT" bash -e -o pipefail "$T/recipe.sh") \
    >"$T/out" 2>"$T/err"
  RECIPE_RC=$?
  [ "$RECIPE_RC" -ne 0 ] && [ "$RECIPE_RC" -ne 124 ]
}

# ---- The organization as the emulator has it -----------------------------------
state() { emu_ctl GET /_emulator/state; }

# Definitions for jq programs over the state: threads of joined channels with
# the directory name cliqfs gives them (cliqfs(1) THE TREE: / becomes U+2215,
# titles shared within a channel get " (last 6 digits of the id)").
JQ_DEFS='
def safe: gsub("/"; "\u2215");
def users: reduce .users[] as $u ({}; .[$u.user_id] = $u);
def said($w): test("\\b" + $w + "\\b"; "i");
def msgtext: (.text // "") + " " + (.file.name // "");
def threads: .me as $me | [.channels[] | select(.joined != false)
  | .unique_name as $c | .members as $cm | .messages as $cmsgs
  | ([.threads[].title] | group_by(.) | map(select(length > 1) | .[0])) as $dup
  | .threads[] | . as $t
  | ([$cmsgs[] | select(.id == $t.thread_message_id)] | first) as $parent
  | { channel: $c, chat_id, state, title, followers, members,
      channel_members: $cm, replies: .messages, parent: $parent,
      follows: ((.followers | index($me)) != null),
      last_ms: ([.messages[].time, ($parent.time // 0)] | max),
      dir: ($c + "/" + (.title | safe)
            + (if ($dup | index($t.title)) != null then " (" + (.chat_id | .[-6:]) + ")" else "" end)) }];
'
# jqs PROGRAM [jq args...]: runs PROGRAM (with JQ_DEFS) over a fresh state.
jqs() {
  local prog=$1; shift
  state | jq -r "$@" "$JQ_DEFS $prog"
}

# poll_state SECONDS PROGRAM [jq args...]: until PROGRAM yields true.
poll_state() {
  local limit=$1; shift
  wait_until "$limit" _state_yields "$@"
}
_state_yields() { jqs "$@" -e >/dev/null 2>&1; }

chat_id_of() { # DIR → the thread's chat id
  jqs 'threads[] | select(.dir == $d) | .chat_id' --arg d "$1"
}

# post_as SENDER_ID CHAT_ID TEXT: another person posts (emulator control path).
post_as() {
  local body
  body=$(jq -n --arg s "$1" --arg c "$2" --arg t "$3" '{chat_id: $c, sender_id: $s, text: $t}')
  emu_ctl POST /_emulator/post "$body" | jq -e .id >/dev/null || fail "could not post to $2"
}

# same_lines WHAT EXPECTED_FILE ACTUAL_FILE: equal as sorted sets of lines.
same_lines() {
  if diff <(LC_ALL=C sort "$2") <(LC_ALL=C sort "$3") >"$T/diff"; then
    ok "$1 ($(wc -l <"$2") lines)"
  else
    fail "$1 differs (< expected, > got):"; cat "$T/diff" >&2
  fi
}

# mount_mtimes_at_least LIST: every "PATH<TAB>EPOCH" line of LIST (PATH
# under the mount) has a modification time of at least EPOCH, once the root
# and its channel are listed (as the recipes' globs and find do: a thread's
# times come with its channel's thread list, a channel's with the channel
# list).  A fresh mount shows what the
# emulator has at once; --in-order, a mount that listed before the check's
# posts shows them once its cache of that list expires.
mount_mtimes_at_least() {
  local path at
  while IFS=$'\t' read -r path at; do
    ls "$MNT" "$MNT/${path%%/*}" >/dev/null 2>&1
    MTIME_SEEN=$(stat -c %Y "$MNT/$path" 2>/dev/null || echo none)
    [ "$MTIME_SEEN" != none ] && [ "$MTIME_SEEN" -ge "$at" ] || { MTIME_SEEN="$path: $MTIME_SEEN < $at"; return 1; }
  done <"$1"
}

SCOTT=855727962   # demo people who post in the checks
PRIYA=855727964

# ---- One check per recipe ---------------------------------------------------------
# Each sets the organization up (before mounting when the mount must see it
# from its first listing), mounts, runs the recipe and checks its effect.

recipe_open-threads() {
  mount_demo
  run_recipe || return
  jqs 'threads[] | select(.state == "open") | .dir' >"$T/want"
  [ "$(wc -l <"$T/want")" -ge 10 ] || fail "the demo has only $(wc -l <"$T/want") open threads"
  same_lines "open threads" "$T/want" "$T/out"
  grep -qx 'engineering/Release 4.12' "$T/out" && fail "a closed thread was listed"
}

recipe_threads-i-follow() {
  mount_demo
  run_recipe || return
  jqs 'threads[] | select(.follows) | .dir' >"$T/want"
  jqs 'threads[] | select(.follows | not) | .dir' >"$T/not"
  [ -s "$T/not" ] || fail "the demo has no thread I do not follow"
  same_lines "threads I follow" "$T/want" "$T/out"
}

recipe_reply-mentions() {
  local word=staging text="recipe reply $RANDOM$RANDOM: staging rebuild tonight"
  # Before: the threads that mention the word, and how many of them are open.
  jqs 'threads[] | select(([.parent, .replies[]] | map(select(. != null) | msgtext | said($w)) | any)) | "\(.state)\t\(.dir)"' \
    --arg w "$word" >"$T/mentions"
  grep $'^open\t' "$T/mentions" | cut -f2 >"$T/want"
  [ "$(wc -l <"$T/want")" -ge 3 ] || fail "only $(wc -l <"$T/want") open threads mention '$word'"
  grep -q $'^closed\t' "$T/mentions" || fail "no closed thread mentions '$word': the check would not see a reply to one"
  mount_demo
  run_recipe WORD="$word" TEXT="$text" || return
  sed -n 's/^replied in //p' "$T/out" >"$T/said"
  same_lines "threads the recipe says it replied in" "$T/want" "$T/said"
  # Each open one got the reply once, from me; no other thread got it.
  if poll_state 30 '[threads[] | select(any(.replies[]; .text == $t))] | length == $n' \
       --arg t "$text" --argjson n "$(wc -l <"$T/want")"; then
    ok "the emulator has the reply in $(wc -l <"$T/want") threads"
  else
    fail "the emulator's replies: $(jqs '[threads[] | select(any(.replies[]; .text == $t)) | .dir]' --arg t "$text" -c)"
  fi
  jqs '.me as $me | threads[] | select(any(.replies[]; .text == $t and .sender == $me)) | .dir' --arg t "$text" >"$T/got"
  same_lines "threads with the reply, sent by me" "$T/want" "$T/got"
  jqs '[threads[] | [.replies[] | select(.text == $t)] | length] | max' --arg t "$text" >"$T/max"
  [ "$(cat "$T/max")" = 1 ] && ok "one reply per thread" || fail "a thread got the reply $(cat "$T/max") times"
}

recipe_close-quiet() {
  local days=2 fresh1="general/Welcome Lucy!" fresh2="design/Dark mode colour tokens"
  # Two open threads spoke just now; the demo's other threads are days old.
  post_as "$SCOTT" "$(chat_id_of "$fresh1")" "Lucy, lunch on Friday?"
  post_as "$PRIYA" "$(chat_id_of "$fresh2")" "Token names look good."
  jqs 'threads[] | select(.state == "closed") | .dir' >"$T/closed-before"
  jqs 'threads[] | select(.state == "open" and .last_ms < (now - $d * 86400) * 1000) | .dir' \
    --argjson d "$days" >"$T/want"
  [ "$(wc -l <"$T/want")" -ge 5 ] || fail "only $(wc -l <"$T/want") open threads are quiet for $days days"
  grep -qxF "$fresh1" "$T/want" && fail "$fresh1 counts as quiet although it just spoke"
  mount_demo
  jqs 'threads[] | select(.state == "open" and .last_ms >= (now - $d * 86400) * 1000)
       | "\(.dir)\t\(.last_ms / 1000 | floor)"' --argjson d "$days" >"$T/recent"
  wait_for 30 mount_mtimes_at_least "$T/recent" \
    || fail "the mount does not show the threads that spoke as recent: $MTIME_SEEN"
  run_recipe DAYS="$days" || return
  sed -n 's/^closed //p' "$T/out" >"$T/said"
  same_lines "threads the recipe says it closed" "$T/want" "$T/said"
  cat "$T/want" "$T/closed-before" >"$T/want-closed"
  if poll_state 30 '[threads[] | select(.state == "closed")] | length == $n' \
       --argjson n "$(wc -l <"$T/want-closed")"; then
    ok "the emulator has $(wc -l <"$T/want-closed") closed threads"
  fi
  jqs 'threads[] | select(.state == "closed") | .dir' >"$T/got"
  same_lines "closed threads at the emulator" "$T/want-closed" "$T/got"
  [ "$(cat "$MNT/$fresh1/state")" = open ] && ok "$fresh1 stays open" || fail "$fresh1 is not open"
}

recipe_follow-channel() {
  local channel=engineering
  jqs 'threads[] | select(.channel == $c and (.follows | not)) | .dir' --arg c "$channel" >"$T/unfollowed"
  [ -s "$T/unfollowed" ] || fail "I already follow every thread of $channel: nothing to check"
  jqs 'threads[] | select(.channel != $c) | "\(.dir)\t\(.followers | sort | join(","))"' --arg c "$channel" >"$T/others-before"
  mount_demo
  run_recipe CHANNEL="$channel" || return
  if poll_state 30 '[threads[] | select(.channel == $c and (.follows | not))] | length == 0' --arg c "$channel"; then
    ok "I follow every thread of $channel, $(wc -l <"$T/unfollowed") of them newly"
  else
    fail "still not following: $(jqs '[threads[] | select(.channel == $c and (.follows | not)) | .dir]' --arg c "$channel" -c)"
  fi
  jqs 'threads[] | select(.channel != $c) | "\(.dir)\t\(.followers | sort | join(","))"' --arg c "$channel" >"$T/others-after"
  same_lines "other channels' followers unchanged" "$T/others-before" "$T/others-after"
}

recipe_add-follower() {
  local who=tim.harrison@zylker.com word=sync
  local id
  id=$(state | jq -r --arg e "$who" '.users[] | select(.email_id == $e) | .user_id')
  [ -n "$id" ] || { fail "$who is not in the demo"; return; }
  jqs 'threads[] | select((.title | said($w)) and (.channel_members | index($id)) != null
                          and (.followers | index($id)) == null) | .dir' --arg w "$word" --arg id "$id" >"$T/want"
  jqs 'threads[] | select(.title | said($w)) | .dir' --arg w "$word" >"$T/titled"
  [ -s "$T/want" ] || fail "no thread titled with '$word' lacks $who"
  [ "$(wc -l <"$T/titled")" -gt "$(wc -l <"$T/want")" ] \
    || fail "every '$word' thread lacks $who: the check would not see the filter work"
  jqs 'threads[] | "\(.dir)\t\(.followers | sort | join(","))"' >"$T/before"
  mount_demo
  run_recipe WHO="$who" WORD="$word" || return
  sed -n "s/^added $who to //p" "$T/out" >"$T/said"
  same_lines "threads the recipe says it added $who to" "$T/want" "$T/said"
  if poll_state 30 '[threads[] | select((.title | said($w)) and (.channel_members | index($id)) != null
                                       and (.followers | index($id)) == null)] | length == 0' \
       --arg w "$word" --arg id "$id"; then
    ok "$who follows every '$word' thread of a channel of theirs"
  else
    fail "$who was not added everywhere"
  fi
  # Nothing else changed: the other threads' followers are as they were,
  # and the changed ones gained exactly $who.
  jqs 'threads[] | "\(.dir)\t\(.followers | sort | join(","))"' >"$T/after"
  while IFS=$'\t' read -r dir followers; do
    if grep -qxF -- "$dir" "$T/want"; then
      want_f=$(printf '%s\n' "${followers//,/$'\n'}" "$id" | LC_ALL=C sort | paste -sd, -)
      got_f=$(awk -F'\t' -v d="$dir" '$1 == d { print $2 }' "$T/after" | tr ',' '\n' | LC_ALL=C sort | paste -sd, -)
      [ "$want_f" = "$got_f" ] || fail "$dir: followers $got_f, expected $want_f"
    else
      grep -qxF -- "$dir"$'\t'"$followers" "$T/after" || fail "$dir: followers changed"
    fi
  done <"$T/before"
}

recipe_who-is-in() {
  local dir="engineering/Postgres 16 upgrade"
  mount_demo
  run_recipe || return
  jqs 'users as $u | threads[] | select(.dir == $d) | .members[] | $u[.].name' --arg d "$dir" >"$T/want"
  [ "$(wc -l <"$T/want")" -ge 3 ] || fail "$dir has only $(wc -l <"$T/want") members"
  same_lines "members of $dir" "$T/want" "$T/out"
}

recipe_count-per-person() {
  local channel=engineering
  mount_demo
  run_recipe CHANNEL="$channel" || return
  jqs 'users as $u | [threads[] | select(.channel == $c) | .replies[] | $u[.sender].name]
       | group_by(.) | .[] | "\(length)\t\(.[0])"' --arg c "$channel" >"$T/want"
  [ "$(wc -l <"$T/want")" -ge 5 ] || fail "only $(wc -l <"$T/want") people wrote in $channel"
  # uniq -c lines: "     12 Ryan West"
  sed -E 's/^ *([0-9]+) (.*)$/\1\t\2/' "$T/out" >"$T/got"
  same_lines "messages per person in $channel" "$T/want" "$T/got"
  cut -f1 "$T/got" | sort -c -rn 2>/dev/null && ok "busiest first" || fail "not sorted by count: $(cat "$T/out")"
}

recipe_daily-digest() {
  local t1="general/Welcome Lucy!" t2="engineering/Postgres 16 upgrade"
  local general_chat
  general_chat=$(state | jq -r '.channels[] | select(.unique_name == "general") | .chat_id')
  post_as "$SCOTT" "$(chat_id_of "$t1")" "Welcome aboard, Lucy!"
  post_as "$PRIYA" "$(chat_id_of "$t2")" "Dry run on staging went fine."
  post_as "$SCOTT" "$(chat_id_of "$t2")" "Great, scheduling the upgrade."
  post_as "$PRIYA" "$general_chat" $'Deploy of 4.13.1 done.\nAll checks green.'
  mount_demo
  # Each heading's messages file as new as its newest message.
  jqs '((now - 86400) * 1000) as $since
       | [.channels[] | select(.joined != false) | .unique_name as $c | .messages[] | select(.time >= $since) | {h: $c, t: .time}]
         + [threads[] | .dir as $d | .replies[] | select(.time >= $since) | {h: $d, t: .time}]
       | group_by(.h)[] | "\(.[0].h)/messages\t\(map(.t) | max / 1000 | floor)"' >"$T/fresh"
  wait_for 30 mount_mtimes_at_least "$T/fresh" || fail "the mount does not show the new messages: $MTIME_SEEN"
  run_recipe || return
  # Expected: every message of the last 24 hours (the demo's own are older;
  # --in-order, also those the recipes before wrote), under a heading of its
  # thread or channel.
  jqs 'users as $u | ((now - 86400) * 1000) as $since
       | ([.channels[] | select(.joined != false) | .unique_name as $c | .messages[]
           | select(.time >= $since) | {h: $c, m: .}]
          + [threads[] | .dir as $d | .replies[] | select(.time >= $since) | {h: $d, m: .}])
       | .[] | "## \(.h)\t\(.m.time / 1000 | floor | todate) \($u[.m.sender].name): \(.m.text | split("\n")[0])"' >"$T/want"
  if [ "$IN_ORDER" = 1 ]; then
    [ "$(wc -l <"$T/want")" -ge 4 ] || fail "expected at least the 4 new messages in the digest, the state has $(wc -l <"$T/want")"
  else
    [ "$(wc -l <"$T/want")" -eq 4 ] || fail "expected the 4 new messages in the digest, the state has $(wc -l <"$T/want")"
  fi
  awk '/^## / { h = $0; next } /^\t/ { next } { print h "\t" $0 }' "$T/out" >"$T/got"
  same_lines "digest messages under their headings" "$T/want" "$T/got"
  grep -qxF $'\tAll checks green.' "$T/out" && ok "a message's second line follows it" \
    || fail "no continuation line in: $(cat "$T/out")"
  local headings
  headings=$(cut -f1 "$T/want" | sort -u | wc -l)
  [ "$(grep -c '^## ' "$T/out")" -eq "$headings" ] && ok "$headings headings" || fail "headings: $(grep '^## ' "$T/out")"
}

recipe_export-channel() {
  local channel=marketing out=$WORK/marketing.json
  mount_demo
  run_recipe CHANNEL="$channel" OUT="$out" || return
  [ -s "$out" ] || { fail "no $out"; return; }
  jq -e --arg c "$channel" '.channel.unique_name == $c' "$out" >/dev/null \
    && ok "the export names its channel" || fail "channel in export: $(jq -c .channel "$out" | head -c 300)"
  jq -S '[.threads[] | {title, state, ids: [.messages[].id], senders: [.messages[].sender.id]}] | sort_by(.title)' \
    "$out" >"$T/got"
  jqs '[threads[] | select(.channel == $c) | {title, state, ids: [.replies[].id], senders: [.replies[].sender]}]
       | sort_by(.title)' --arg c "$channel" -S >"$T/want"
  if cmp -s "$T/want" "$T/got"; then
    ok "export: $(jq length "$T/want") threads, $(jq '[.[].ids[]] | length' "$T/want") messages, as the emulator has them"
  else
    fail "export differs from the emulator:"; diff "$T/want" "$T/got" | head -40 >&2
  fi
}

recipe_watch-threads() {
  local f1="general/Holiday party 2026/messages" f2="engineering/Postgres 16 upgrade/messages"
  local text1="watch $RANDOM: Dec 19 is confirmed" text2="watch $RANDOM: replica lag back to zero"
  mount_demo
  extract_recipe "$NAME" >"$T/recipe.sh" || { fail "no recipe:$NAME block"; return; }
  # tail -f runs until stopped: run it in its own process group, stop that.
  (cd "$WORK" && CLIQ="$MNT" exec setsid bash -e -o pipefail "$T/recipe.sh") >"$T/out" 2>"$T/err" &
  BG_PGID=$!
  # Both headers printed = tail has taken both files' ends; post after that.
  if ! wait_for 30 grep -qF "==> $f2 <==" "$T/out" || ! grep -qF "==> $f1 <==" "$T/out"; then
    fail "tail did not start on both files: $(cat "$T/out" "$T/err")"
    return
  fi
  post_as "$SCOTT" "$(chat_id_of "${f1%/messages}")" "$text1"
  post_as "$PRIYA" "$(chat_id_of "${f2%/messages}")" "$text2"
  if wait_for 60 eval 'grep -qF "Scott Fisher: $text1" "$T/out" && grep -qF "Priya Raman: $text2" "$T/out"'; then
    ok "tail -f showed both new messages"
  else
    fail "tail -f output: $(cat "$T/out")"
  fi
  # Each under its own file's header, and nothing from before (-n 0).
  awk -v f1="==> $f1 <==" -v f2="==> $f2 <==" -v t1="Scott Fisher: $text1" -v t2="Priya Raman: $text2" '
    /^==> / { h = $0; next }
    /^$/ { next }
    index($0, t1) { if (h != f1) bad = bad "text1 under " h "\n"; next }
    index($0, t2) { if (h != f2) bad = bad "text2 under " h "\n"; next }
    { bad = bad "unexpected line: " $0 "\n" }
    END { printf "%s", bad; exit bad != "" }' "$T/out" >"$T/bad" \
    && ok "each message under its thread, no old ones" || fail "$(cat "$T/bad")"
  kill -TERM -- "-$BG_PGID" 2>/dev/null
  wait "$BG_PGID" 2>/dev/null
  BG_PGID=
  [ -s "$T/err" ] && fail "tail wrote to stderr: $(cat "$T/err")"
}

recipe_post-log() {
  local dir="engineering/Load test results for 4.13"
  local mine='.me as $me | [threads[] | select(.dir == $d) | .replies[] | select(.sender == $me) | .text]'
  local before
  before=$(jqs "$mine | length" --arg d "$dir")
  mount_demo
  # A log that is missing, or empty: the recipe fails, saying why for the
  # missing one, and posts nothing (not even its first line).
  run_recipe_failing LOG=missing.log && grep -q 'missing.log' "$T/err" \
    && ok "a missing log: exit $RECIPE_RC, $(head -n 1 "$T/err")" || fail "a missing log: exit $RECIPE_RC, $(cat "$T/err")"
  : >"$WORK/empty.log"
  run_recipe_failing LOG=empty.log && ok "an empty log: exit $RECIPE_RC" || fail "an empty log: exit $RECIPE_RC, $(cat "$T/err")"
  seq -f 'step %g: ok' 1 7 >"$WORK/build.log"
  echo "step 8: FAILED (p99 latency 870 ms > 500 ms)" >>"$WORK/build.log"
  local want
  want=$(printf 'Nightly load test failed, last lines of build.log:\n%s' "$(tail -n 5 "$WORK/build.log")")
  run_recipe || return
  if poll_state 30 '.me as $me | threads[] | select(.dir == $d) | any(.replies[]; .text == $t and .sender == $me)' \
       --arg d "$dir" --arg t "$want"; then
    ok "one message of 6 lines in $dir"
  else
    fail "the last replies of $dir: $(jqs 'threads[] | select(.dir == $d) | .replies[-2:]' --arg d "$dir" -c)"
  fi
  # Delivery keeps a thread's order: anything the failed runs had queued
  # would be there before it.
  jqs "$mine | .[\$n:]" --arg d "$dir" --argjson n "$before" -c >"$T/new"
  [ "$(jq length "$T/new")" = 1 ] && ok "nothing else posted" || fail "posted to $dir: $(cat "$T/new")"
}

recipe_new-thread() {
  local title="Release 4.14"
  mount_demo
  run_recipe || return
  if poll_state 30 '.me as $me | threads[] | select(.channel == "engineering" and .title == $t)
                    | .parent.text == "Release 4.14: let'"'"'s agree on scope and dates." and .parent.sender == $me
                      and any(.replies[]; .text == "First draft of the scope is in the tracker." and .sender == $me)
                      and .state == "open"' --arg t "$title"; then
    ok "thread '$title' with its parent message and first reply"
  else
    fail "engineering's '$title' at the emulator: $(jqs 'threads[] | select(.title == $t)' --arg t "$title" -c)"
  fi
  wait_for 30 eval '[ "$(cat "$MNT/engineering/$title/state" 2>/dev/null)" = open ]' \
    && ok "the mount shows it open" || fail "state in the mount: $(cat "$MNT/engineering/$title/state" 2>&1)"
}

recipe_rate-budget() {
  # A slower clock than the others', so that the lock outlasts the recipe
  # (threads.list: 600 s / 6) even on a slow machine.
  mount_demo 6
  ls "$MNT"/general >/dev/null
  # A lock the mount has met: the emulator locks thread lists, and the mount
  # finds out at its next thread listing.
  emu_ctl POST /_emulator/lock '{"api":"threads.list","seconds":600}' >/dev/null
  wait_for 30 eval 'ls "$MNT/marketing" >/dev/null 2>&1; jq -e ".apis[\"threads.list\"].locked_until > now" "$MNT/.cliqfs/status" >/dev/null' \
    || fail "the mount did not learn of the lock: $(jq -c '.apis["threads.list"]' "$MNT/.cliqfs/status")"
  run_recipe || return
  jq -r '.apis | keys[]' "$MNT/.cliqfs/status" | sort >"$T/want"
  cut -f1 "$T/out" | sort >"$T/got"
  same_lines "one line per API" "$T/want" "$T/got"
  grep -qE $'^chats\\.messages\t[0-9]+/15 per [0-9.]+s\tok$' "$T/out" \
    && ok "chats.messages: used/15, ok" || fail "chats.messages line: $(grep '^chats.messages' "$T/out")"
  grep -qE $'^threads\\.list\t[0-9]+/20 per [0-9.]+s\tlocked until 20[0-9-]+T[0-9:]+Z$' "$T/out" \
    && ok "threads.list: locked until a time" || fail "threads.list line: $(grep '^threads.list' "$T/out")"
}

if [ "$IN_ORDER" = 1 ]; then
  mapfile -t order < <(list_recipes)
  [ "${#order[@]}" -ge 10 ] || { echo "FATAL: only ${#order[@]} recipes in $RECIPES_MD" >&2; exit 1; }
  mount_demo
  for NAME in "${order[@]}"; do
    echo "---- recipe $NAME (after: ${done_list:-none})"
    if ! declare -F "recipe_$NAME" >/dev/null; then
      fail "no check for recipe '$NAME' in $0"
      continue
    fi
    before=$FAILS
    "recipe_$NAME"
    if [ "$FAILS" -eq "$before" ]; then
      ok "recipe $NAME works after the ones before it"
    else
      echo "recipe $NAME: $((FAILS - before)) check(s) failed after: ${done_list:-none}" >&2
    fi
    done_list="${done_list:+$done_list }$NAME"
  done
else
  if ! declare -F "recipe_$NAME" >/dev/null; then
    echo "FATAL: no check for recipe '$NAME' in $0" >&2
    exit 1
  fi
  "recipe_$NAME"
fi

if [ "$FAILS" -ne 0 ]; then
  echo "$FAILS check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
