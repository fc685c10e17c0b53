#!/usr/bin/env bash
# The errno table (cliqfs(1) ERRORS) through emulator faults,
# locks and budgets; each failure leaves a line in .cliqfs/errors.
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount "time_scale=20,max_wait=2,limit.threads.main=3/600"
cd "$MNT"
ls engineering marketing >/dev/null
fault() { emu_ctl POST /_emulator/faults "{\"api\":\"$1\",\"kind\":\"$2\",\"count\":${3:-1}${4:+,\"delay_ms\":$4}}" >/dev/null; }
logged() { grep -q "$1"$'\t'"$2" .cliqfs/errors || fail "no [$1 $2] line in .cliqfs/errors: $(cat .cliqfs/errors)"; }

# ENOENT: no such channel, thread or file; Cliq 404
expect_errno "No such file or directory" "cat '$MNT/engineering/No such thread/main'"
expect_errno "No such file or directory" "cat '$MNT/engineering/CT_1_1-T-42/main'"
ok "ENOENT"

# EIO: Cliq 5xx, unparsable replies
fault threads.main 500 5
expect_errno "Input/output error" "cat '$MNT/engineering/Release 4.12/main'"
logged "/engineering/Release 4.12/main" EIO
fault threads.get invalid_json 5
expect_errno "Input/output error" "cat '$MNT/engineering/Release 4.12/info'"
logged "/engineering/Release 4.12/info" EIO
emu_ctl DELETE /_emulator/faults >/dev/null
ok "EIO for 5xx and invalid JSON"

# EACCES: 401 with a static token (nothing to refresh), 403
fault threads.followers.get 401 5
expect_errno "Permission denied" "cat '$MNT/engineering/Release 4.12/followers'"
logged "/engineering/Release 4.12/followers" EACCES
emu_ctl DELETE /_emulator/faults >/dev/null
ok "EACCES for 401"

# EAGAIN: an API Cliq has locked, nothing cached -> at once
cat "marketing/Blog: Northwind customer story/messages" >"$MT_DIR/cached"
emu_ctl POST /_emulator/lock '{"api":"chats.messages","seconds":600}' >/dev/null
expect_errno "Resource temporarily unavailable" "cat '$MNT/marketing/Homepage A∕B test: hero text/messages'"
logged "/marketing/Homepage A∕B test: hero text/messages" EAGAIN
start=$SECONDS
expect_errno "Resource temporarily unavailable" "cat '$MNT/marketing/Social calendar December/messages'"
[ $((SECONDS - start)) -le 1 ] || fail "a locked API must fail at once"
jq -e '.apis["chats.messages"].locked_until > now' .cliqfs/status >/dev/null ||
  fail "status does not show the lock: $(jq -c '.apis["chats.messages"]' .cliqfs/status)"
sleep 0.6                      # the cached copy is stale by now (10 s / 20)
cmp -s "$MT_DIR/cached" "marketing/Blog: Northwind customer story/messages" ||
  fail "a cached file must still read while the API is locked"
ok "EAGAIN at once for a locked API; cached files still read; status shows locked_until"

# EAGAIN: budget spent (limit.threads.main=3/600), nothing cached, max_wait passed
got_eagain=
for d in engineering/*/; do
  if ! out=$(cat "$d/main" 2>&1 >/dev/null); then
    case "$out" in
      *"Resource temporarily unavailable"*) got_eagain=$d; break ;;
      *) fail "reading $d/main: $out" ;;
    esac
  fi
done
[ -n "$got_eagain" ] || fail "no EAGAIN once the threads.main budget was spent"
assert_eq "$(emu_ctl GET /_emulator/counters | jq '.apis["threads.main"].total <= 3')" true \
  "no more requests than the budget"
ok "EAGAIN after max_wait when the budget is spent"

# ETIMEDOUT: Cliq does not answer within the client's timeout (30 s)
fault threads.nonfollowers delay 1 33000
expect_errno "Connection timed out" "cat '$MNT/engineering/Release 4.12/nonfollowers'"
logged "/engineering/Release 4.12/nonfollowers" ETIMEDOUT
ok "ETIMEDOUT"

grep -q "emulator-token" .cliqfs/errors "$MT_LOG" && fail "a token in the logs"
awk -F'\t' 'NF != 5 { exit 1 }' .cliqfs/errors || fail "errors lines: time, path, errno, code, message"
jq -e '.last_errors | length > 0' .cliqfs/status >/dev/null || fail "status lacks last errors"
ok ".cliqfs/errors lines have five fields and no token"
