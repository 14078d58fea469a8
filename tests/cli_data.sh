#!/usr/bin/env bash
# cli_data.sh LORASWEEP SHARED_DIR: `lorasweep data generate` and `lorasweep data info` end to
# end, and their errors: each a non-zero exit below 128 with exactly one stderr line "lorasweep...".
source "$(dirname "$0")/cli_lib.sh"
REAL=$SHARED/data/lotka_volterra_data.h5

# generate + info
out=$("$LS" data generate --out "$T/gen.h5" --systems 20 --steps 30 --seed 7 --t-end 50 2>"$T/err"); rc=$?
check "generate exit status" "0" "$rc"
check "generate is quiet on stderr" "" "$(cat "$T/err")"
contains "generate summary" "20 systems x 30 steps" "$out"
info=$("$LS" data info "$T/gen.h5"); rc=$?
check "info exit status" "0" "$rc"
contains "info shape" "trajectories  float32 (20, 30, 2)" "$info"
contains "info time" "time range    0 .. 50" "$info"
contains "info params" "alpha" "$info"
contains "info stats header" "worst-1% peak" "$info"
json=$("$LS" data info --json "$T/gen.h5")
contains "info --json systems" '"systems":	20' "$json"
contains "info --json shape" '"shape":	[20, 30, 2]' "$json"
if [ -x /usr/bin/python3 ]; then
  check "info --json parses" "20 30" "$(echo "$json" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["systems"], d["steps"])')"
fi
"$LS" data generate --out "$T/gen2.h5" --systems 20 --steps 30 --seed 7 --t-end 50 >/dev/null
check "same seed, same bytes" "same" "$(cmp -s "$T/gen.h5" "$T/gen2.h5" && echo same || echo differ)"
"$LS" data generate --out "$T/gen3.h5" --systems 20 --steps 30 --seed 8 --t-end 50 >/dev/null
check "other seed, other bytes" "differ" "$(cmp -s "$T/gen.h5" "$T/gen3.h5" && echo same || echo differ)"
"$LS" data generate --out "$T/course.h5" --systems 10 --model course >/dev/null
contains "course model has /saturation" "saturation    float64 (10, 2)" "$("$LS" data info "$T/course.h5")"
check "generate --help" "0" "$("$LS" data generate --help >/dev/null; echo $?)"
check "info --help" "0" "$("$LS" data info --help >/dev/null; echo $?)"
check "no temporary files left" "course.h5 gen.h5 gen2.h5 gen3.h5" "$(cd "$T" && echo *.h5*)"

if [ -f "$REAL" ]; then
  contains "info on the course set" "trajectories  float32 (1000, 100, 2)" "$("$LS" data info "$REAL")"
  contains "course set prey max" "13.7401" "$("$LS" data info "$REAL")"
else
  skip_part "the course set checks ($REAL missing)"
fi

# errors
echo "prey,predator" >"$T/text.h5"
mkdir -p "$T/dir"
expect_error "info missing file" data info "$T/none.h5"
expect_error "info non-HDF5 file" data info "$T/text.h5"
expect_error "info empty file" data info /dev/null
expect_error "info directory" data info "$T/dir"
expect_error "info no file" data info
expect_error "info two files" data info "$T/gen.h5" "$T/gen2.h5"
expect_error "info unknown option" data info --frobnicate "$T/gen.h5"
expect_error "info unknown short option" data info -x "$T/gen.h5"
expect_error "generate unknown option" data generate --out "$T/x.h5" --frobnicate
expect_error "generate missing --out" data generate --systems 10
expect_error "generate --out without value" data generate --out
expect_error "generate --systems abc" data generate --out "$T/x.h5" --systems abc
expect_error "generate --systems 0" data generate --out "$T/x.h5" --systems 0
expect_error "generate --systems -5" data generate --out "$T/x.h5" --systems -5
expect_error "generate --systems 1e3" data generate --out "$T/x.h5" --systems 1e3
expect_error "generate --steps 1" data generate --out "$T/x.h5" --steps 1
expect_error "generate --seed -1" data generate --out "$T/x.h5" --seed -1
expect_error "generate --t-end 0" data generate --out "$T/x.h5" --t-end 0
expect_error "generate --t-end nan" data generate --out "$T/x.h5" --t-end nan
expect_error "generate --model bad" data generate --out "$T/x.h5" --model quadratic
expect_error "generate too large" data generate --out "$T/x.h5" --systems 10000000 --steps 1000000
expect_error "generate stray argument" data generate --out "$T/x.h5" extra
# a missing directory is created, as other commands create theirs
"$LS" data generate --out "$T/nodir/deeper/x.h5" --systems 5 >/dev/null 2>"$T/err"
check "generate into a missing directory creates it" "0:" "$?:$(cat "$T/err")"
check "generate into a missing directory: the file is there" "yes" "$([ -s "$T/nodir/deeper/x.h5" ] && echo yes || echo no)"
echo "a file" >"$T/plainfile"
EXPECT_RC=1 expect_error "generate under a file" data generate --out "$T/plainfile/x.h5" --systems 5
expect_error "generate onto a directory" data generate --out "$T/dir" --systems 5
expect_error "unknown data command" data frobnicate
# Files made to mislead: a chunked /trajectories of 2^30 values that a 2 kB file declares and never
# stores (reading it would allocate and fill 4 GiB: refused before anything is read), the same
# compressed; and a "source" attribute with control bytes (printed escaped, one line).
$PY - "$T" <<'PY'
import sys, h5py, numpy as np
for name, opts in (("claim.h5", {}), ("claimz.h5", {"compression": "gzip"})):
    with h5py.File(sys.argv[1] + "/" + name, "w") as f:
        f.create_dataset("trajectories", shape=(1 << 28, 2, 2), dtype="f4", chunks=(1024, 2, 2), **opts)
        f["time"] = np.array([0.0, 1.0])
with h5py.File(sys.argv[1] + "/ctl.h5", "w") as f:
    f["trajectories"] = np.ones((3, 4, 2), "f4")
    f["time"] = np.arange(4.0)
    f.attrs["source"] = np.bytes_(b"made\x1b[2J\x1b]0;title\x07 by\nsomeone \\ \xc3\xa9")
PY
EXPECT_RC=1 EXPECT_TIMEOUT=60 EXPECT_PATTERN="claim.h5: /trajectories declares shape \(268435456, 2, 2\) \(4294967296 bytes\) but the file stores 0 bytes" \
  expect_error "info: 2^30 values declared, none stored" data info "$T/claim.h5"
EXPECT_RC=1 EXPECT_TIMEOUT=60 EXPECT_PATTERN="claimz.h5: /trajectories declares" expect_error "info: the same, compressed" data info "$T/claimz.h5"
"$LS" data info "$T/ctl.h5" >"$T/ctl.txt"
check "info: control bytes of an attribute escaped" 'source        made\x1b[2J\x1b]0;title\x07 by\nsomeone \\ é' \
  "$(sed -n 2p "$T/ctl.txt")"
check "info: no control byte printed" "0" "$(LC_ALL=C tr -d '\n' <"$T/ctl.txt" | LC_ALL=C grep -c '[[:cntrl:]]')"
check "no output file after failures" "absent" "$([ -e "$T/x.h5" ] && echo present || echo absent)"

# A failed run leaves an existing file as it was.
cp "$T/gen.h5" "$T/keep.h5"
"$LS" data generate --out "$T/keep.h5" --systems abc >/dev/null 2>&1
check "bad options keep the old file" "same" "$(cmp -s "$T/gen.h5" "$T/keep.h5" && echo same || echo differ)"

finish
