#!/usr/bin/env bash
# run_device.sh: on the GPU machine, in the repository root, after tests/gpu/prepare_device.sh
# here. Runs every GPU check and writes logs and numbers under $OUT (default ./device_out):
#   nvidia-smi.txt, test_cuda_backend.txt, hf_reference.txt + reference.json,
#   compare_cuda.json, compare_cpu.json, bench_hf.json, bench_lorasweep_cuda.json.
# A failing step does not stop the others. LAYERS=2 makes the Hugging Face comparison quick.
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
. .devbundle/unpack.sh .devbundle/lorasweep.tar.xz "${BUNDLE_DIR:-/opt/bundle}"
export LS_SHARED_DIR=$PWD/.devbundle
# CUDA libraries that the bundle leaves out: the system's, else the Python environment's.
for d in $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, x, "lib") for x in os.listdir(p)))' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
cfg=.devbundle/Qwen2.5-0.5B-Instruct.config.json
step() { echo "== $1 ($(date -u +%T))"; }

step nvidia-smi; nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
step test_cuda_backend
test_cuda_backend >"$OUT/test_cuda_backend.txt" 2>&1; echo "rc $?" >>"$OUT/test_cuda_backend.txt"
tail -3 "$OUT/test_cuda_backend.txt"
step hf_reference
python3 tests/gpu/hf_reference.py --config "$cfg" --out /tmp/hf_ref ${LAYERS:+--layers $LAYERS} \
  >"$OUT/hf_reference.txt" 2>&1 && cp /tmp/hf_ref/reference.json "$OUT/"
tail -2 "$OUT/hf_reference.txt"
step compare_hf
compare_hf /tmp/hf_ref cuda >"$OUT/compare_cuda.json" 2>&1; cat "$OUT/compare_cuda.json"
compare_hf /tmp/hf_ref cpu >"$OUT/compare_cpu.json" 2>&1; cat "$OUT/compare_cpu.json"
step bench_hf
python3 tests/gpu/bench_hf.py --config "$cfg" --out "$OUT/bench_hf.json" >"$OUT/bench_hf.txt" 2>&1
tail -2 "$OUT/bench_hf.txt"
step "lorasweep bench"
lorasweep bench --model qwen2.5-0.5b --batch 4 --ctx 512 --rank 8 --steps 3 --backend cuda \
  >"$OUT/bench_lorasweep_cuda.json" 2>&1; cat "$OUT/bench_lorasweep_cuda.json"
step done
