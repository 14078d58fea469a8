#!/usr/bin/env bash
# prepare_device.sh [BUILD_DIR]: on this machine, pack what tests/gpu/run_device.sh needs on the
# GPU machine into .devbundle/ (kept out of git; name it in the device run's carry):
# lorasweep, test_cuda_backend and compare_hf with their libraries (../shared/device/bundle.sh),
# unpack.sh, the golden tiny checkpoint without its tokenizer, and the 0.5B config.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shared=${LS_SHARED_DIR:-$root/../shared}
cd "$root"
grep -qx '/.devbundle/' .git/info/exclude 2>/dev/null || grep -qx '/.devbundle/' .gitignore ||
  echo /.devbundle/ >>"$(git rev-parse --git-path info/exclude)"
rm -rf .devbundle && mkdir -p .devbundle/golden/qwen2-tiny
"$shared/device/bundle.sh" .devbundle/lorasweep.tar.xz "$build/lorasweep" "$build/tests/test_cuda_backend" \
  "$build/tests/compare_hf"
cp "$shared/device/unpack.sh" .devbundle/
cp -r "$shared/golden/qwen2-tiny/"{config.json,model.safetensors,adapter} .devbundle/golden/qwen2-tiny/
cp "$shared/qwen/Qwen2.5-0.5B-Instruct.config.json" .devbundle/
du -sh .devbundle
