#!/usr/bin/env bash
# The main job: install everything, build, and run the data demo (generate a Lotka-Volterra set,
# describe it, encode one system as LLMTIME text, tokenize it with the real Qwen tokenizer).
# Later stages (training, the sweep, the report) extend this script.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
install_packages
find_tokenizer
build "$ROOT/build" -DCMAKE_BUILD_TYPE=Release
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
echo "== done: files in $OUT"
