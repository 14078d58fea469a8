#!/usr/bin/env bash
# adaptive_vs_full.sh: the demo's adaptive stage (the lr x rank stage of sweep/demo-asha.yaml, with
# ASHA) against the same stage with early_stopping removed, every trial run to the end
# (docs/performance.md, "Early stopping against full runs").
#
#   bench/adaptive_vs_full.sh [--lorasweep BIN] [--ranks N] [--out DIR]
#
# Writes both grids into DIR (default results/adaptive_vs_full), with the later stages cut off so
# that each sweep is that one stage, runs each with `mpirun -np N` (default 3, as the demo), and
# prints one table from `lorasweep report --format json`: FLOPS, wall time of the sweep, trials
# stopped, the winner and its validation loss; and for the adaptive stage the report's own
# estimate of the stage run to the end (flops_saved.flops_run_to_end), beside the real one.
# Needs models/tiny and results/demo/lv_sim.h5 (scripts/demo.sh makes them). Python is Debian's
# python3 (a dependency in scripts/common.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
LS=$root/build/lorasweep
ranks=3 out=$root/results/adaptive_vs_full
while [ $# -gt 0 ]; do
  case $1 in
  --lorasweep) LS=$2; shift 2 ;;
  --ranks) ranks=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  *) echo "adaptive_vs_full.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
PY=${LS_PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # Open MPI refuses root without these
for need in "$root/models/tiny/config.json" "$root/results/demo/lv_sim.h5"; do
  [ -f "$need" ] || { echo "adaptive_vs_full.sh: $need missing (run scripts/demo.sh first)" >&2; exit 1; }
done
rm -rf "$out" && mkdir -p "$out"

# the grids: the demo's paths made absolute (they were relative to sweep/), the stage cut where
# the next one ("  - name: ctx") begins; the full one without its early_stopping line
adaptive=$out/adaptive.yaml full=$out/full.yaml
cut_stage=(-e '/^  - name: ctx/,$d' -e "s#\.\./models/#$root/models/#" -e "s#\.\./results/#$root/results/#")
sed "${cut_stage[@]}" -e 's/^name: .*/name: bench-adaptive/' "$root/sweep/demo-asha.yaml" >"$adaptive"
sed "${cut_stage[@]}" -e '/early_stopping:/d' -e 's/^name: .*/name: bench-full/' "$root/sweep/demo-asha.yaml" >"$full"

# run NAME GRID: the sweep, timed; its report as JSON beside it
run() {
  local t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe -np "$ranks" "$LS" sweep run "$2" --out "$out/$1.h5" --quiet
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.1f\n", $2 - $1}' >"$out/$1.wall"
  "$LS" report "$out/$1.h5" --format json >"$out/$1.json"
}
run adaptive "$adaptive"
run full "$full"

$PY - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = {}
for name in ("adaptive", "full"):
    r = json.load(open(f"{out}/{name}.json"))
    best = next(t for t in r["trials"] if t["id"] == r["best"])
    rows[name] = dict(flops=r["flops"]["total"], wall=float(open(f"{out}/{name}.wall").read()),
                      trials=len(r["trials"]), stopped=r["counts"]["stopped"], best=best,
                      saved=r["flops_saved"])
a, f = rows["adaptive"], rows["full"]
def hp(t):
    h = t["hyperparameters"]
    return "lr %g rank %d" % (h["lr"], h["rank"])
print("%-28s %16s %16s" % ("", "adaptive (asha)", "run to the end"))
print("%-28s %16d %16d" % ("trials", a["trials"], f["trials"]))
print("%-28s %16d %16d" % ("stopped early", a["stopped"], f["stopped"]))
print("%-28s %16.3g %16.3g" % ("FLOPS", a["flops"], f["flops"]))
print("%-28s %16.1f %16.1f" % ("wall time of the sweep (s)", a["wall"], f["wall"]))
print("%-28s %16s %16s" % ("winner", hp(a["best"]), hp(f["best"])))
print("%-28s %16.4f %16.4f" % ("winner's final val loss", a["best"]["metrics"]["final_val_loss"],
                                f["best"]["metrics"]["final_val_loss"]))
print()
print("adaptive / run to the end: FLOPS %.1f%%, wall time %.1f%%" % (100 * a["flops"] / f["flops"], 100 * a["wall"] / f["wall"]))
est = a["saved"]["flops_run_to_end"]
print("the adaptive report's estimate of the stage run to the end: %.4g FLOPS (%+.2f%% against the real %.4g); "
      "saved by its estimate %.4g (%.1f%%)" % (est, 100 * (est - f["flops"]) / f["flops"], f["flops"],
                                              a["saved"]["flops_saved"], a["saved"]["percent"]))
PY
