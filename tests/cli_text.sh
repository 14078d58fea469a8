#!/usr/bin/env bash
# cli_text.sh: `lorasweep data encode` from the command line.
#   $1: the lorasweep binary   $2: the shared folder (data/lotka_volterra_data.h5)
# Checks the known start of the real set and that every bad input ends with exit status 1 or 2
# and exactly one stderr line starting with "lorasweep", nothing on stdout.
# The checks that need the real file skip when it is missing, unless LS_REQUIRE_SHARED=1.
source "$(dirname "$0")/cli_lib.sh"
data="$SHARED/data/lotka_volterra_data.h5"

# Errors found before any file is read.
expect_error "missing --data" data encode --system 0
expect_error "missing --system" data encode --data /nonexistent.h5
expect_error "nonexistent file" data encode --data "$T/nonexistent.h5" --system 0
printf 'not an hdf5 file\n' >"$T/bad.h5"
expect_error "not an HDF5 file" data encode --data "$T/bad.h5" --system 0
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

"$LS" data encode --help >"$T/out" 2>"$T/err" || bad "--help: exit status $?"
grep -q -- '--alpha-scope' "$T/out" || bad "--help does not describe --alpha-scope"

if [ ! -r "$data" ]; then
    skip_part "the real-data checks ($data not found)"
else
    prefix='1.900,2.081;1.481,1.559;1.364,1.129;'
    out=$("$LS" data encode --data "$data" --system 0 --alpha 0.5 --decimals 3 2>"$T/err")
    rc=$?
    [ "$rc" -eq 0 ] || bad "encode system 0: exit status $rc: $(cat "$T/err")"
    [ ! -s "$T/err" ] || bad "encode system 0 wrote to stderr without --verbose: $(cat "$T/err")"
    case "$out" in
        "$prefix"*) ok "system 0 starts with $prefix" ;;
        *) bad "system 0 starts with '${out:0:60}', want '$prefix'" ;;
    esac
    steps=$(printf '%s' "$out" | tr -cd ';' | wc -c)
    [ "$steps" -eq 100 ] || bad "system 0 has $steps steps, want 100"

    # exactly the first two steps and one newline
    "$LS" data encode --data "$data" --system 0 --alpha 0.5 --steps 2 >"$T/out" 2>"$T/err" ||
        bad "--steps 2: exit status $?"
    printf '1.900,2.081;1.481,1.559;\n' | cmp -s - "$T/out" || bad "--steps 2 printed '$(cat "$T/out")'"

    # auto alpha reports itself with --verbose only, on stderr
    "$LS" data encode --data "$data" --system 3 --alpha auto --verbose >"$T/out" 2>"$T/err" ||
        bad "--alpha auto: exit status $?"
    grep -q '^alpha = ' "$T/err" || bad "--verbose did not print alpha: $(cat "$T/err")"
    [ "$(wc -l <"$T/out")" -eq 1 ] || bad "--alpha auto: stdout is not one line"
    "$LS" data encode --data "$data" --system 3 --alpha auto --alpha-scope system --steps 50 \
        >"$T/out" 2>"$T/err" || bad "--alpha-scope system: exit status $?"
    [ ! -s "$T/err" ] || bad "--alpha-scope system wrote to stderr: $(cat "$T/err")"

    expect_error "--system 5000" data encode --data "$data" --system 5000
    expect_error "--system 1000" data encode --data "$data" --system 1000
    expect_error "--steps 101" data encode --data "$data" --system 0 --steps 101
fi

finish
