#!/usr/bin/env bash
# Startup: --port 0 prints the port alone on a line, listens on 127.0.0.1
# only, SIGTERM ends it with status 0, bad arguments are refused.
. "$(dirname "$0")/t_lib.sh"

emu_start --quiet || die "emulator did not start"
check "port line is a number" test -n "$EMU_PORT"
check "port file holds exactly the port line" test "$(cat "$EMU_DIR/port")" = "$EMU_PORT"
st=$(emu_api GET /api/v2/channels)
expect_status 200 "$st" "channels over 127.0.0.1"

# The listening socket is bound to 127.0.0.1 (from /proc/net/tcp, so that the
# test never has to reach a non-loopback address): local address 0100007F,
# state 0A (LISTEN).
hexport=$(printf '%04X' "$EMU_PORT")
check "listening socket is 127.0.0.1:$EMU_PORT" \
  grep -qE "^ *[0-9]+: 0100007F:$hexport 00000000:0000 0A " /proc/net/tcp
check "no listener on another address for that port" \
  bash -c "! grep -E ': [0-9A-F]{8}:$hexport 00000000:0000 0A ' /proc/net/tcp /proc/net/tcp6 | grep -vq '0100007F:$hexport'"

# SIGTERM → exit status 0.
pid=$EMU_PID
kill -TERM "$pid"
wait "$pid"
rc=$?
EMU_PID=
check "exit status 0 after SIGTERM (got $rc)" test "$rc" -eq 0

# A fixed port works too, and a second emulator cannot take it.
emu_start --quiet || die "second start"
port=$EMU_PORT
if "$CLIQ_EMULATOR" --port "$port" --quiet >/dev/null 2>&1 </dev/null & then
  pid2=$!
  # It must fail at once; give it a deadline.
  for _ in $(seq 1 100); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid2" 2>/dev/null; then
    kill "$pid2"; wait "$pid2"; fail "second emulator on a busy port kept running"
  else
    wait "$pid2"; rc=$?
    check "busy port refused (status $rc)" test "$rc" -ne 0
  fi
fi

# Bad arguments.
"$CLIQ_EMULATOR" --no-such-option >/dev/null 2>&1
check "unknown option refused" test $? -eq 2
"$CLIQ_EMULATOR" --synthetic 3x4 >/dev/null 2>&1
check "malformed --synthetic refused" test $? -eq 2
"$CLIQ_EMULATOR" --throttle-style 418 >/dev/null 2>&1
check "bad throttle style refused" test $? -eq 2
"$CLIQ_EMULATOR" --help | grep -q -- '--synthetic'
check "--help documents --synthetic" test $? -eq 0
finish
