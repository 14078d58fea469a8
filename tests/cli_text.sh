#!/usr/bin/env bash
# cli_text.sh: `lorasweep data encode` from the command line.
#   $1: the lorasweep binary   $2: the shared folder (data/lotka_volterra_data.h5)
# Checks the known start of the real set and that every bad input ends with exit status 1 or 2
# and exactly one stderr line starting with "lorasweep", nothing on stdout.
# The checks that need the real file skip when it is missing, unless LS_REQUIRE_SHARED=1.
set -u
bin=$1
shared=${2:-}
data="$shared/data/lotka_volterra_data.h5"
tmp=$(mktemp -d /tmp/lorasweep-cli-text-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_error DESCRIPTION ARGS...: non-zero status < 128, one stderr line "lorasweep...", no stdout.
expect_error() {
    local what=$1
    shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
        fail "$what: exit status $rc, want 1 or 2 ($*)"
    elif [ "$lines" -ne 1 ]; then
        fail "$what: $lines stderr lines, want 1 ($*):"
        sed 's/^/    /' "$tmp/err" >&2
    elif ! head -c 9 "$tmp/err" | grep -q '^lorasweep'; then
        fail "$what: stderr does not start with 'lorasweep': $(cat "$tmp/err")"
    elif [ -s "$tmp/out" ]; then
        fail "$what: printed to stdout: $(head -c 200 "$tmp/out")"
    else
        echo "ok: $what: rc $rc: $(cat "$tmp/err")"
    fi
}

# Errors found before any file is read.
expect_error "missing --data" data encode --system 0
expect_error "missing --system" data encode --data /nonexistent.h5
expect_error "nonexistent file" data encode --data "$tmp/nonexistent.h5" --system 0
printf 'not an hdf5 file\n' >"$tmp/bad.h5"
expect_error "not an HDF5 file" data encode --data "$tmp/bad.h5" --system 0
expect_error "--decimals -1" data encode --data "$data" --system 0 --decimals -1
expect_error "--decimals 9" data encode --data "$data" --system 0 --decimals 9
expect_error "--alpha 0" data encode --data "$data" --system 0 --alpha 0
expect_error "--alpha -1" data encode --data "$data" --system 0 --alpha -1
expect_error "--alpha foo" data encode --data "$data" --system 0 --alpha foo
expect_error "--alpha-scope bad" data encode --data "$data" --system 0 --alpha-scope world
expect_error "--system -1" data encode --data "$data" --system -1
expect_error "--system x" data encode --data "$data" --system x
expect_error "--steps 0" data encode --data "$data" --system 0 --steps 0
expect_error "unknown option" data encode --data "$data" --system 0 --bogus
expect_error "unknown short option" data encode --data "$data" --system 0 -q
expect_error "option without value" data encode --data "$data" --system
expect_error "stray argument" data encode --data "$data" --system 0 extra

"$bin" data encode --help >"$tmp/out" 2>"$tmp/err" || fail "--help: exit status $?"
grep -q -- '--alpha-scope' "$tmp/out" || fail "--help does not describe --alpha-scope"

if [ ! -r "$data" ]; then
    if [ "${LS_REQUIRE_SHARED:-}" = 1 ]; then
        fail "required reference file missing: $data"
    else
        echo "skipped: $data not found; the real-data checks did not run"
    fi
else
    prefix='1.900,2.081;1.481,1.559;1.364,1.129;'
    out=$("$bin" data encode --data "$data" --system 0 --alpha 0.5 --decimals 3 2>"$tmp/err")
    rc=$?
    [ "$rc" -eq 0 ] || fail "encode system 0: exit status $rc: $(cat "$tmp/err")"
    [ ! -s "$tmp/err" ] || fail "encode system 0 wrote to stderr without --verbose: $(cat "$tmp/err")"
    case "$out" in
        "$prefix"*) echo "ok: system 0 starts with $prefix" ;;
        *) fail "system 0 starts with '${out:0:60}', want '$prefix'" ;;
    esac
    steps=$(printf '%s' "$out" | tr -cd ';' | wc -c)
    [ "$steps" -eq 100 ] || fail "system 0 has $steps steps, want 100"

    # exactly the first two steps and one newline
    "$bin" data encode --data "$data" --system 0 --alpha 0.5 --steps 2 >"$tmp/out" 2>"$tmp/err" ||
        fail "--steps 2: exit status $?"
    printf '1.900,2.081;1.481,1.559;\n' | cmp -s - "$tmp/out" || fail "--steps 2 printed '$(cat "$tmp/out")'"

    # auto alpha reports itself with --verbose only, on stderr
    "$bin" data encode --data "$data" --system 3 --alpha auto --verbose >"$tmp/out" 2>"$tmp/err" ||
        fail "--alpha auto: exit status $?"
    grep -q '^alpha = ' "$tmp/err" || fail "--verbose did not print alpha: $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "--alpha auto: stdout is not one line"
    "$bin" data encode --data "$data" --system 3 --alpha auto --alpha-scope system --steps 50 \
        >"$tmp/out" 2>"$tmp/err" || fail "--alpha-scope system: exit status $?"
    [ ! -s "$tmp/err" ] || fail "--alpha-scope system wrote to stderr: $(cat "$tmp/err")"

    expect_error "--system 5000" data encode --data "$data" --system 5000
    expect_error "--system 1000" data encode --data "$data" --system 1000
    expect_error "--steps 101" data encode --data "$data" --system 0 --steps 101
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all checks passed"
