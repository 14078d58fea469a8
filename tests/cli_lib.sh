# cli_lib.sh: sourced by every tests/cli_*.sh (which ctest runs as `bash FILE LORASWEEP SHARED`).
# Gives LS (the program), SHARED, PY, a temporary directory T (removed on exit), pass/fail/skip
# counters and the checks below; `finish` prints "N passed, M failed" and sets the exit status:
# 1 when a check failed, else 77 when a part was skipped (ctest's SKIP_RETURN_CODE: the test is
# listed as skipped, not passed), else 0. It is a helper, not a test: tests/CMakeLists.txt does not
# register it.
set -uo pipefail
LS=$1
SHARED=${2:-}
PY=/usr/bin/python3
# Every lorasweep run checks at exit that it closed every HDF5 object it opened (exit 97 if not)
export LS_CHECK_HDF5=1
T=$(mktemp -d /tmp/lorasweep-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
passes=0
fails=0
skips=0

ok() { echo "ok   $1"; passes=$((passes + 1)); }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi; }
# contains NAME NEEDLE HAYSTACK
contains() { if [[ "$3" == *"$2"* ]]; then ok "$1"; else bad "$1: [$2] not in: $3"; fi; }

# expect_error NAME ARGS...: `lorasweep ARGS` must fail the way every command fails: exit status 1
# or 2 (EXPECT_RC=n to demand one), exactly one stderr line starting with "lorasweep" (matching
# the extended regex EXPECT_PATTERN when set), nothing on stdout. Standard input is INPUT when
# set, else empty. EXPECT_TIMEOUT=S stops a command that hangs after S seconds (exit 124: a failure).
expect_error() {
  local name=$1; shift
  local rc limit=()
  [ -n "${EXPECT_TIMEOUT:-}" ] && limit=(timeout "$EXPECT_TIMEOUT")
  if [ -n "${INPUT+x}" ]; then printf '%s' "$INPUT" | "${limit[@]}" "$LS" "$@" >"$T/out" 2>"$T/err"; rc=$?
  else "${limit[@]}" "$LS" "$@" >"$T/out" 2>"$T/err" </dev/null; rc=$?; fi
  local why=""
  if [ -n "${EXPECT_RC:-}" ]; then [ $rc -eq "$EXPECT_RC" ] || why="exit $rc, want $EXPECT_RC"
  elif [ $rc -ne 1 ] && [ $rc -ne 2 ]; then why="exit $rc, want 1 or 2"; fi
  [ -z "$why" ] && [ "$(wc -l <"$T/err")" != 1 ] && why="$(wc -l <"$T/err") stderr lines, want 1"
  [ -z "$why" ] && ! grep -q '^lorasweep' "$T/err" && why="stderr does not start with 'lorasweep'"
  [ -z "$why" ] && [ -n "${EXPECT_PATTERN:-}" ] && ! grep -qE -- "$EXPECT_PATTERN" "$T/err" && why="no match for [$EXPECT_PATTERN]"
  [ -z "$why" ] && [ -s "$T/out" ] && why="printed to stdout: $(head -c 200 "$T/out")"
  if [ -z "$why" ]; then ok "$name: $(cat "$T/err")"; else bad "$name: $why; stderr: $(cat "$T/err")"; fi
}

# need_shared PATH: true when the reference file exists. Otherwise the whole test is skipped
# (exit 77, which ctest reports as skipped), or fails under LS_REQUIRE_SHARED=1 (CI).
need_shared() {
  [ -e "$1" ] && return 0
  if [ "${LS_REQUIRE_SHARED:-0}" = 1 ]; then echo "FAIL required reference file missing: $1"; exit 1; fi
  echo "SKIPPED: $1 missing"; exit 77
}

# skip_part WHAT: a part of the test cannot run (a reference file is missing): the rest goes on,
# and `finish` then ends the test as skipped (77) unless a check failed. Under LS_REQUIRE_SHARED=1
# a skipped part is a failure instead.
skip_part() {
  if [ "${LS_REQUIRE_SHARED:-0}" = 1 ]; then bad "required reference missing: $1"; return; fi
  echo "SKIPPED: $1"; skips=$((skips + 1))
}

finish() {
  echo "$passes passed, $fails failed, $skips parts skipped"
  [ $fails -eq 0 ] || exit 1
  [ $skips -eq 0 ] || exit 77
  exit 0
}
