#!/usr/bin/env bash
# `meson install` into a temporary prefix (suite 'cli'): a fresh `meson setup`
# of the source tree with --prefix in a temporary folder, building only what
# is installed, then from the installed tree alone:
#   - bin/cliqfs --version and --demo (its emulator from libexec/cliqfs):
#     mount, ls shows channels, unmount, no process and no mount left;
#   - the man page (found by man through MANPATH, renders without warnings);
#   - the example config, which mounts once credentials are added;
#   - the systemd user unit: `systemd-analyze verify` when it is there, its
#     keys otherwise, and its commands run as systemd would run them for an
#     instance (ExecStartPre, ExecStart, ExecStop);
#   - an /etc/fstab line of type fuse.cliqfs, as mount(8) hands it to mount.fuse3.
# Needs: MESON, NINJA, SOURCE_ROOT, CLIQFS_VERSION, EMU_HARNESS.
set -uo pipefail

for v in MESON NINJA SOURCE_ROOT CLIQFS_VERSION EMU_HARNESS; do
  if [ -z "${!v:-}" ]; then echo "FATAL: $v is not set" >&2; exit 1; fi
done
# The emulator comes from the installed tree, not from the build under test.
unset CLIQ_EMULATOR
# shellcheck source=tests/emulator/harness.sh
. "$EMU_HARNESS"

T=$(mktemp -d "${TMPDIR:-/tmp}/cliqfs-install-test.XXXXXX")
PREFIX=$T/prefix
BUILD=$T/build
mkdir -p "$T/home" "$T/tmp" "$T/run"
chmod 700 "$T/run"
export HOME=$T/home XDG_CONFIG_HOME=$T/xdg/config XDG_STATE_HOME=$T/xdg/state \
       XDG_CACHE_HOME=$T/xdg/cache XDG_RUNTIME_DIR=$T/run TMPDIR=$T/tmp

FAILS=0
MOUNTS=()
PIDS=()
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

wait_for() {
  local deadline=$((SECONDS + $1)); shift
  while ! "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    nap 0.05
  done
}
alive() { [ -e "/proc/$1" ] && ! grep -qE '^State:[[:space:]]+[ZX]' "/proc/$1/status" 2>/dev/null; }
gone() { ! alive "$1"; }

# pids_under DIR: processes whose executable lies under DIR.
pids_under() {
  local d exe
  for d in /proc/[0-9]*; do
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    case "$exe" in "$1"/*) alive "${d#/proc/}" && echo "${d#/proc/}" ;; esac
  done
}

cleanup() {
  local rc=$?
  local m p
  for m in "${MOUNTS[@]}"; do
    if is_mounted "$m"; then fusermount3 -u -z "$m" 2>/dev/null; fi
  done
  for p in "${PIDS[@]}" $(pids_under "$PREFIX"); do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}" $(pids_under "$PREFIX"); do
    wait_for 5 gone "$p" || kill -KILL "$p" 2>/dev/null
  done
  nothing_left_under "$T" || rc=1
  rm -rf "$T"
  emu_cleanup
  exit "$rc"
}
trap cleanup EXIT

# ---- Configure, build what is installed, install --------------------------------
# No debug information or optimisation: what is checked is where things go
# and that they run from there, and the compiler is most of this test's CPU.
if ! "$MESON" setup "$BUILD" "$SOURCE_ROOT" --prefix "$PREFIX" --buildtype=plain >"$T/setup.log" 2>&1; then
  echo "FATAL: meson setup --prefix $PREFIX failed:" >&2
  tail -n 30 "$T/setup.log" >&2
  exit 1
fi
# Only the installed targets: the tests are not needed to install.
mapfile -t targets < <("$MESON" introspect "$BUILD" --targets |
  jq -r --arg b "$BUILD/" '.[] | select(.installed) | .filename[] | ltrimstr($b)')
if ! "$NINJA" -C "$BUILD" "${targets[@]}" >"$T/build.log" 2>&1; then
  echo "FATAL: building ${targets[*]} failed:" >&2
  tail -n 30 "$T/build.log" >&2
  exit 1
fi
if ! "$MESON" install -C "$BUILD" --no-rebuild >"$T/install.log" 2>&1; then
  echo "FATAL: meson install failed:" >&2
  tail -n 30 "$T/install.log" >&2
  exit 1
fi
ok "meson install into $PREFIX ($(find "$PREFIX" -type f | wc -l) files)"
# The tests' build tree may go: nothing installed may need it.
rm -rf "$BUILD"

CLIQFS_BIN=$PREFIX/bin/cliqfs
EMULATOR_BIN=$PREFIX/libexec/cliqfs/cliq-emulator
MAN_PAGE=$PREFIX/share/man/man1/cliqfs.1
EXAMPLE=$PREFIX/share/doc/cliqfs/config.example
RECIPES=$PREFIX/share/doc/cliqfs/recipes.md
COMPLETION=$PREFIX/share/bash-completion/completions/cliqfs
UNIT_DIR=$PREFIX/lib/systemd/user
if pkg-config --exists systemd 2>/dev/null; then
  UNIT_DIR=$(pkg-config --define-variable=prefix="$PREFIX" --variable=systemduserunitdir systemd)
fi
UNIT=$UNIT_DIR/cliqfs@.service

for f in "$CLIQFS_BIN" "$EMULATOR_BIN"; do
  [ -f "$f" ] && [ -x "$f" ] && ok "installed ${f#"$PREFIX"/}" || fail "no executable $f"
done
for f in "$MAN_PAGE" "$EXAMPLE" "$RECIPES" "$COMPLETION" "$UNIT"; do
  [ -f "$f" ] && [ -s "$f" ] && ok "installed ${f#"$PREFIX"/}" || fail "no $f"
done
cmp -s "$MAN_PAGE" "$SOURCE_ROOT/docs/cliqfs.1" || fail "installed man page differs from docs/cliqfs.1"
cmp -s "$EXAMPLE" "$SOURCE_ROOT/docs/config.example" || fail "installed example config differs from docs/config.example"
cmp -s "$RECIPES" "$SOURCE_ROOT/docs/recipes.md" || fail "installed recipes.md differs from docs/recipes.md"
cmp -s "$COMPLETION" "$SOURCE_ROOT/docs/cliqfs.bash-completion" || fail "installed completion differs from docs/cliqfs.bash-completion"
case "$UNIT_DIR" in "$PREFIX"/*) ok "unit below the prefix: ${UNIT_DIR#"$PREFIX"/}" ;; *) fail "unit installed outside the prefix: $UNIT_DIR" ;; esac

# Nothing from the build tree or the environment may help from here on.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---- --version ------------------------------------------------------------------
if "$CLIQFS_BIN" --version >"$T/version" 2>&1; then
  [ "$(head -n 1 "$T/version")" = "cliqfs $CLIQFS_VERSION" ] && ok "installed --version: cliqfs $CLIQFS_VERSION" \
    || fail "installed --version: $(cat "$T/version")"
else
  fail "installed cliqfs --version: $(cat "$T/version")"
fi

# ---- --demo from the installed tree --------------------------------------------------
MNT=$T/demo
mkdir -p "$MNT"
if "$CLIQFS_BIN" --demo "$MNT" >"$T/demo.out" 2>"$T/demo.err"; then
  MOUNTS+=("$MNT")
  if wait_for 20 is_mounted "$MNT"; then
    mapfile -t procs < <(pids_under "$PREFIX")
    PIDS+=("${procs[@]}")
    emus=0
    for p in "${procs[@]}"; do
      [ "$(readlink "/proc/$p/exe")" = "$EMULATOR_BIN" ] && emus=$((emus + 1))
    done
    [ "$emus" -eq 1 ] && ok "--demo runs the installed emulator" \
      || fail "--demo: $emus installed emulators running (processes: ${procs[*]})"
    if wait_for 20 eval '[ "$(ls "$MNT" | wc -l)" -ge 3 ] && ls "$MNT" | grep -qx general'; then
      ok "--demo: ls shows channels: $(ls "$MNT" | tr '\n' ' ')"
    else
      fail "--demo: ls shows: $(ls "$MNT" 2>&1 | tr '\n' ' ') $(cat "$T/demo.err")"
    fi
    thread=$(ls -d "$MNT"/general/*/ 2>/dev/null | head -n 1)
    [ -n "$thread" ] && grep -q . "$thread/messages" && ok "--demo: a thread's messages read" \
      || fail "--demo: no messages in '$thread'"
    fusermount3 -u "$MNT" || fail "--demo: fusermount3 -u"
    if wait_for 10 eval '[ -z "$(pids_under "$PREFIX")" ]'; then
      ok "--demo: cliqfs and its emulator gone after unmount"
    else
      fail "--demo: still running after unmount: $(pids_under "$PREFIX" | tr '\n' ' ')"
    fi
    is_mounted "$MNT" && fail "--demo: mount left" || ok "--demo: no mount left"
  else
    fail "--demo: no mount appeared: $(cat "$T/demo.err")"
  fi
else
  fail "installed cliqfs --demo: $(cat "$T/demo.err")"
fi

# ---- The man page ---------------------------------------------------------------------
if command -v man >/dev/null; then
  found=$(MANPATH=$PREFIX/share/man man -w cliqfs 2>&1)
  [ "$found" = "$MAN_PAGE" ] && ok "man finds the installed page through MANPATH" || fail "man -w cliqfs: $found"
  if MANWIDTH=80 MANPATH=$PREFIX/share/man man --warnings cliqfs >"$T/man.txt" 2>"$T/man.err" && [ ! -s "$T/man.err" ]; then
    grep -q "cliqfs auth" "$T/man.txt" && ok "man cliqfs renders without warnings" || fail "man cliqfs output lacks 'cliqfs auth'"
  else
    fail "man cliqfs: $(cat "$T/man.err")"
  fi
else
  head -n 5 "$MAN_PAGE" | grep -q '^\.TH CLIQFS 1 ' && ok "man page has its .TH line (no man here to render it)" \
    || fail "installed man page has no '.TH CLIQFS 1' line"
fi

# ---- An emulator for the real (non-demo) mounts below ----------------------------------
CLIQ_EMULATOR=$EMULATOR_BIN emu_start --quiet || { echo "FATAL: the installed emulator did not start" >&2; exit 1; }
# The installed example, with credentials added as a user would: 0600.
mkdir -p "$XDG_CONFIG_HOME/cliqfs"
CONF=$XDG_CONFIG_HOME/cliqfs/config
{ cat "$EXAMPLE"; printf 'api_url = %s\naccounts_url = %s\naccess_token = %s\n' "$EMU_URL" "$EMU_URL" "$EMU_TOKEN"; } >"$CONF"
chmod 600 "$CONF"

# ---- The systemd user unit ---------------------------------------------------------------
unit_key() { sed -n "s/^$1=//p" "$UNIT"; }
if command -v systemd-analyze >/dev/null; then
  # verify also runs `man cliqfs(1)` for Documentation=; the page is ours.
  if MANPATH=$PREFIX/share/man: systemd-analyze verify --user "$UNIT" >"$T/verify" 2>&1 && [ ! -s "$T/verify" ]; then
    ok "systemd-analyze verify --user cliqfs@.service: clean"
  else
    fail "systemd-analyze verify: $(cat "$T/verify")"
  fi
else
  for section in '[Unit]' '[Service]' '[Install]'; do
    grep -qxF "$section" "$UNIT" || fail "unit has no $section section"
  done
  ok "unit sections present (no systemd-analyze here)"
fi
[ "$(unit_key ExecStart)" = "$PREFIX/bin/cliqfs -f %f" ] && ok "ExecStart runs the installed cliqfs in the foreground" \
  || fail "ExecStart=$(unit_key ExecStart)"
[ "$(unit_key ExecStop)" = "fusermount3 -u %f" ] || fail "ExecStop=$(unit_key ExecStop)"
[ "$(unit_key WantedBy)" = "default.target" ] || fail "WantedBy=$(unit_key WantedBy)"
grep -qE '^Type=(simple|exec)$' "$UNIT" || fail "Type=$(unit_key Type): cliqfs -f does not fork"
grep -q '^Documentation=man:cliqfs(1)$' "$UNIT" || fail "no Documentation=man:cliqfs(1)"
grep -qF 'systemd-escape --path' "$UNIT" || fail "the unit does not say how to name an instance"

# Run its commands for an instance as systemd would: %f is the instance name
# unescaped as a path; a "-" prefix means its failure is ignored.
UMNT=$T/unit-mount/cliq
if command -v systemd-escape >/dev/null; then
  instance=$(systemd-escape --path "$UMNT")
  f=$(systemd-escape --unescape --path "$instance")
  [ "$f" = "$UMNT" ] || fail "systemd-escape round trip: $instance -> $f"
else
  f=$UMNT
fi
unit_cmd() { # LINE -> command words in UNIT_ARGV, ignore-failure in UNIT_IGNORE
  local line=${1//%f/$f}
  UNIT_IGNORE=0
  if [ "${line:0:1}" = "-" ]; then UNIT_IGNORE=1; line=${line:1}; fi
  read -r -a UNIT_ARGV <<<"$line"
}
MOUNTS+=("$UMNT")
while IFS= read -r line; do
  unit_cmd "$line"
  if ! "${UNIT_ARGV[@]}" >/dev/null 2>"$T/pre.err" && [ "$UNIT_IGNORE" -eq 0 ]; then
    fail "ExecStartPre=$line: $(cat "$T/pre.err")"
  fi
done < <(unit_key ExecStartPre)
[ -d "$UMNT" ] && ok "ExecStartPre made the mount point" || fail "ExecStartPre did not make $UMNT"
unit_cmd "$(unit_key ExecStart)"
"${UNIT_ARGV[@]}" 2>"$T/unit.log" &
UPID=$!
PIDS+=("$UPID")
if wait_for 15 is_mounted "$UMNT" && wait_for 15 eval 'ls "$UMNT" | grep -qx general'; then
  ok "the unit's ExecStart mounts with the config file: $(ls "$UMNT" | tr '\n' ' ')"
else
  fail "the unit's ExecStart: $(ls "$UMNT" 2>&1) $(cat "$T/unit.log")"
fi
unit_cmd "$(unit_key ExecStop)"
"${UNIT_ARGV[@]}" || fail "ExecStop failed"
if wait_for 10 gone "$UPID"; then
  wait "$UPID"; rc=$?
  [ "$rc" -eq 0 ] && ok "ExecStop: cliqfs exits 0" || fail "after ExecStop cliqfs exited $rc: $(cat "$T/unit.log")"
else
  fail "cliqfs $UPID still runs after ExecStop"
fi
is_mounted "$UMNT" && fail "unit mount left after ExecStop"

# Restart=on-failure after a crash: the dead mount point ("Transport endpoint
# is not connected") is cleared by ExecStartPre, and ExecStart mounts again.
unit_start() {
  local line
  while IFS= read -r line; do
    unit_cmd "$line"
    if ! "${UNIT_ARGV[@]}" >/dev/null 2>"$T/pre.err" && [ "$UNIT_IGNORE" -eq 0 ]; then
      fail "ExecStartPre=$line: $(cat "$T/pre.err")"
    fi
  done < <(unit_key ExecStartPre)
  unit_cmd "$(unit_key ExecStart)"
  "${UNIT_ARGV[@]}" 2>"$T/unit.log" &
  UPID=$!
  PIDS+=("$UPID")
  wait_for 15 is_mounted "$UMNT" && wait_for 15 eval 'ls "$UMNT" | grep -qx general'
}
if unit_start; then
  kill -KILL "$UPID"
  wait_for 10 gone "$UPID"
  wait "$UPID" 2>/dev/null
  if ls "$UMNT" >/dev/null 2>&1; then fail "the killed mount still answers: the crash check checks nothing"; fi
  if unit_start; then
    ok "after a crash, ExecStartPre and ExecStart mount again"
  else
    fail "restart after a crash: $(ls "$UMNT" 2>&1) $(cat "$T/unit.log")"
  fi
  unit_cmd "$(unit_key ExecStop)"
  "${UNIT_ARGV[@]}" || fail "ExecStop after restart"
  wait_for 10 gone "$UPID" || fail "cliqfs $UPID still runs after the second ExecStop"
else
  fail "second start of the unit: $(cat "$T/unit.log")"
fi

# ---- /etc/fstab ------------------------------------------------------------------------------
# The README's line, `cliqfs  ~/cliq  fuse.cliqfs  noauto,user,_netdev  0  0`
# (plus config= here), reaches mount.fuse3 from mount(8) as below; mount.fuse3
# then runs `cliqfs cliqfs MOUNTPOINT -o rw,noexec,nosuid,nodev,config=…`
# from the default PATH (hence the prefix's bin in PATH here).
FMNT=$T/fstab-mount
mkdir -p "$FMNT"
MOUNTS+=("$FMNT")
if PATH=$PREFIX/bin:$PATH mount.fuse3 cliqfs "$FMNT" -o "rw,noexec,nosuid,nodev,config=$CONF,user,_netdev" \
     -t fuse.cliqfs 2>"$T/fstab.err"; then
  if wait_for 15 is_mounted "$FMNT" && wait_for 15 eval 'ls "$FMNT" | grep -qx general'; then
    ok "fstab-style mount (fuse.cliqfs, user, _netdev) lists channels"
  else
    fail "fstab-style mount: $(ls "$FMNT" 2>&1) $(cat "$T/fstab.err")"
  fi
  opts=$(awk -v m="$FMNT" '$5 == m { print $6 }' /proc/self/mountinfo)
  [[ "$opts" == *nosuid* && "$opts" == *nodev* && "$opts" == *noexec* ]] && ok "user's nosuid,nodev,noexec reached the kernel" \
    || fail "mount options: $opts"
  mapfile -t procs < <(pids_under "$PREFIX")
  PIDS+=("${procs[@]}")
  fusermount3 -u "$FMNT" || fail "fusermount3 -u of the fstab mount"
  wait_for 10 eval '[ -z "$(pids_under "$PREFIX/bin")" ]' || fail "fstab cliqfs still runs after unmount"
else
  fail "mount.fuse3 cliqfs -t fuse.cliqfs: $(cat "$T/fstab.err")"
fi

if [ "$FAILS" -ne 0 ]; then
  echo "$FAILS check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
