#!/usr/bin/env bash
# cpu_vs_torch.sh: lorasweep's CPU training step against PyTorch's, in one run (docs/performance.md).
#
#   bench/cpu_vs_torch.sh [--lorasweep BIN] [--repeat N] [--batch B] [--ctx T] [--rank R] [--steps S]
#
# Alternates `lorasweep bench --model qwen2.5-0.5b` and bench/bench_torch.py (PyTorch eager fp32,
# the same shape, LoRA placement, head bias, tokens and optimiser) N times (default 3), so that
# both sides see the same machine (on a shared machine the load moves from minute to minute), and
# prints each run's JSON line, then min and median tokens/s of each side and the ratio of the
# medians and of the per-pair ratios. PyTorch is Debian's python3-torch: /usr/bin/python3 (a
# python3 earlier on PATH may not see it); LS_PYTHON overrides.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LS=$here/../build/lorasweep
repeat=3 B=1 T=256 R=8 steps=2
while [ $# -gt 0 ]; do
  case $1 in
  --lorasweep) LS=$2; shift 2 ;;
  --repeat) repeat=$2; shift 2 ;;
  --batch) B=$2; shift 2 ;;
  --ctx) T=$2; shift 2 ;;
  --rank) R=$2; shift 2 ;;
  --steps) steps=$2; shift 2 ;;
  *) echo "cpu_vs_torch.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
PY=${LS_PYTHON:-/usr/bin/python3}
config=${LS_SHARED_DIR:-$here/../../shared}/qwen/Qwen2.5-0.5B-Instruct.config.json
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$repeat"); do
  "$LS" bench --model qwen2.5-0.5b --batch "$B" --ctx "$T" --rank "$R" --steps "$steps" | tr -d '\n' |
    sed 's/^/lorasweep /;s/$/\n/' | tee -a "$out"
  "$PY" "$here/bench_torch.py" --config "$config" --batch "$B" --ctx "$T" --rank "$R" --steps "$steps" |
    sed 's/^/torch /' | tee -a "$out"
done
"$PY" - "$out" <<'PY'
import json, statistics, sys
runs = {"lorasweep": [], "torch": []}
for line in open(sys.argv[1]):
    side, _, js = line.partition(" ")
    runs[side].append(json.loads(js)["tokens_per_s"])
ls, pt = runs["lorasweep"], runs["torch"]
pairs = [a / b for a, b in zip(ls, pt)]
print("lorasweep tokens/s: min %.1f median %.1f   torch: min %.1f median %.1f" %
      (min(ls), statistics.median(ls), min(pt), statistics.median(pt)))
print("speedup: ratio of medians %.2f, per-pair ratios %s (median %.2f)" %
      (statistics.median(ls) / statistics.median(pt), " ".join("%.2f" % r for r in pairs), statistics.median(pairs)))
PY
