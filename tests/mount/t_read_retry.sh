#!/usr/bin/env bash
# Reads a user waits for are asked again after a 5xx or a dropped connection
# (twice at most, short backoff); 4xx answers are not; 5xx after the
# retries is EIO (cliqfs(1) ERRORS).
. "$(dirname "$0")/lib.sh"

emu_start --demo --time-scale 20 || fail "emulator did not start"
mt_mount time_scale=20
cd "$MNT"
ls engineering >/dev/null
fault() { emu_ctl POST /_emulator/faults "{\"api\":\"$1\",\"kind\":\"$2\",\"count\":${3:-1}}" >/dev/null; }
R="engineering/Release 4.12"

n0=$(emu_count threads.main)
fault threads.main 500 1
cat "$R/main" >/dev/null || fail "main after one 500"
assert_eq "$(emu_count threads.main)" "$((n0 + 2))" "one 500, one retry"
n0=$(emu_count threads.get)
fault threads.get drop 1
cat "$R/info" >/dev/null || fail "info after a dropped connection"
assert_eq "$(emu_count threads.get)" "$((n0 + 2))" "one drop, one retry"
n0=$(emu_count chats.messages)
fault chats.messages 503 2
cat "$R/messages" >/dev/null || fail "messages after two 503s"
assert_eq "$(emu_count chats.messages)" "$((n0 + 3))" "two 503s, two retries"
ok "a 5xx or a dropped connection is asked again"

n0=$(emu_count threads.nonfollowers)
fault threads.nonfollowers 500 3
expect_errno "Input/output error" "cat '$MNT/$R/nonfollowers'"
assert_eq "$(emu_count threads.nonfollowers)" "$((n0 + 3))" "three 500s: two retries, then EIO"
emu_ctl DELETE /_emulator/faults >/dev/null
grep -q $'/engineering/Release 4.12/nonfollowers\tEIO' .cliqfs/errors || fail "EIO not logged"
ok "5xx after the retries: EIO"

n0=$(emu_count threads.followers.get)
fault threads.followers.get 401 1
expect_errno "Permission denied" "cat '$MNT/$R/followers'"
assert_eq "$(emu_count threads.followers.get)" "$((n0 + 1))" "a 401 (static token) is not asked again"
ok "4xx: no retry"
