#!/usr/bin/env bash
# The main job: install everything, build, and run the demo: simulate a Lotka-Volterra data set,
# encode a system as LLMTIME text and tokenize it with the real Qwen tokenizer, then train a LoRA
# adapter on the `tiny` preset and forecast test systems (sweep/demo-trial.yaml).
# Then the sweep of sweep/demo.yaml over MPI into results/demo.h5, and its report: the tables on
# the terminal, the figures in results/demo-report/. Last the same lr x rank study with early
# stopping (sweep/demo-asha.yaml, results/demo-asha.h5): its trials stopped early and the FLOPS
# saved, the figures in results/demo-asha-report/.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
install_packages
find_tokenizer
build "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DLS_WERROR=OFF
LS=$ROOT/build/lorasweep
OUT=$ROOT/results/demo
mkdir -p "$OUT"

echo "== simulating 1000 Lotka-Volterra systems"
"$LS" data generate --out "$OUT/lv_sim.h5" --systems 1000 --steps 100 --seed 1
"$LS" data info "$OUT/lv_sim.h5"
echo "== system 0 as LLMTIME text (first 5 steps, alpha auto, 3 decimals)"
"$LS" data encode --data "$OUT/lv_sim.h5" --system 0 --steps 5 --alpha auto --decimals 3 | tee "$OUT/system0.txt"
echo "== its Qwen token ids"
"$LS" tokenize --tokenizer "$TOKENIZER" <"$OUT/system0.txt"
echo "== a random-weight checkpoint of the tiny preset (models/tiny)"
[ -f "$ROOT/models/tiny/model.safetensors" ] || "$LS" model init --preset tiny --out "$ROOT/models/tiny" --tokenizer "$TOKENIZER"
echo "== training and forecasting one trial (sweep/demo-trial.yaml)"
"$LS" train "$ROOT/sweep/demo-trial.yaml" --out "$OUT/trial"
echo "== the untrained baseline, for comparison"
"$LS" eval "$ROOT/sweep/demo-trial.yaml" --out "$OUT/baseline" --quiet
echo "== the sweep: sweep/demo.yaml over 3 MPI ranks (baseline, lr x rank, then context, then a longer run)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # Open MPI refuses root without these
mpirun --oversubscribe -np 3 "$LS" sweep run "$ROOT/sweep/demo.yaml" --out "$ROOT/results/demo.h5"
echo "== the report (docs/analysis.md): tables, and figures as PNG + SVG"
"$LS" report "$ROOT/results/demo.h5" --plots "$ROOT/results/demo-report"
echo "== an adaptive stage: sweep/demo-asha.yaml, lr x rank with ASHA (rungs at steps 5 and 15 of 40), then context"
mpirun --oversubscribe -np 3 "$LS" sweep run "$ROOT/sweep/demo-asha.yaml" --out "$ROOT/results/demo-asha.h5" --quiet
echo "== its figures, and what early stopping saved (the whole report: results/demo-asha-report.txt)"
"$LS" report "$ROOT/results/demo-asha.h5" --plots "$ROOT/results/demo-asha-report" --out "$ROOT/results/demo-asha-report.txt"
sed -n '/^== Stopped early/,/^== Best/p' "$ROOT/results/demo-asha-report.txt" | sed '$d'
echo "== done: $ROOT/results/demo.h5 and demo-asha.h5 (every trial; from Python: docs/analysis.md), the figures above,"
echo "   trial files in $ROOT/results/demo.trials/ and $OUT (one trial: metrics.json, curves.csv, forecasts.csv, adapter/)"
