#!/usr/bin/env bash
# cli_flops.sh LORASWEEP SHARED_DIR: `lorasweep flops` on the real Qwen2.5-0.5B config, and its errors.
source "$(dirname "$0")/cli_lib.sh"
CONFIG=$SHARED/qwen/Qwen2.5-0.5B-Instruct.config.json
need_shared "$CONFIG"
mkdir "$T/qwen"; cp "$CONFIG" "$T/qwen/config.json"

COURSE=(--model "$T/qwen" --ctx 512 --rank 4 --batch 4 --steps 1000)
EVAL=(--eval-systems 100 --eval-samples 10 --eval-prompt-tokens 960 --eval-new-tokens 240)
"$LS" flops "${COURSE[@]}" "${EVAL[@]}" >"$T/full.json" 2>"$T/err"
check "course example runs" "0 " "$? $(cat "$T/err")"
# Keys, types and the relations between the numbers (python's json module reads the output).
check "course example JSON" "ok" "$(/usr/bin/python3 - "$T/full.json" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1]))
keys = ["forward", "loss", "train_step", "train_total", "generate", "generate_detail", "total", "budget",
        "budget_fraction", "experiments_in_budget", "breakdown", "targets", "head_bias"]
missing = [k for k in keys if k not in d]
if missing: sys.exit("missing keys %s" % missing)
b = d["breakdown"]
ops = ["attn_norm", "q_proj", "k_proj", "v_proj", "qkv_bias", "rope_table", "rope", "scores", "scale", "mask",
       "softmax", "attn_v", "o_proj", "attn_residual", "mlp_norm", "gate_proj", "up_proj", "silu", "glu_mul",
       "down_proj", "mlp_residual", "lora", "final_norm", "head", "head_bias"]
if sorted(b) != sorted(ops): sys.exit("breakdown keys %s" % sorted(b))
def close(a, e): return abs(a - e) <= 1e-12 * abs(e)
checks = {
    "breakdown sums to forward": close(sum(b.values()), d["forward"]),
    "train_step = 3 B (forward + loss)": close(d["train_step"], 3 * 4 * (d["forward"] + d["loss"])),
    "train_total = steps x train_step": close(d["train_total"], 1000 * d["train_step"]),
    "generate = systems x per_system": close(d["generate"], 100 * d["generate_detail"]["per_system"]),
    "total = train + generate": close(d["total"], d["train_total"] + d["generate"]),
    "budget_fraction": close(d["budget_fraction"], d["total"] / 1e17),
    "experiments_in_budget": d["experiments_in_budget"] == math.floor(1e17 / d["total"]),
    "targets": d["targets"] == ["q_proj", "v_proj"] and d["head_bias"] is True,
    # 2 x weights x T + 4 L T^2 C for Qwen2.5-0.5B at T = 512, within 2 %
    "forward near 2 N T + 4 L T^2 C": abs(d["forward"] / (2 * 493961216 * 512 + 4 * 24 * 512**2 * 896) - 1) < 0.02,
}
bad = [k for k, v in checks.items() if not v]
print("ok" if not bad else "failed: %s" % bad)
PY
)"
# Without --eval options there is no generate key; all targets and no head bias change the counts.
"$LS" flops "${COURSE[@]}" >"$T/train.json"
check "no generate without --eval-systems" "False" \
  "$(/usr/bin/python3 -c 'import json,sys; print("generate" in json.load(open(sys.argv[1])))' "$T/train.json")"
"$LS" flops "${COURSE[@]}" --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --no-head-bias >"$T/all.json"
check "more targets, more FLOPS" "True True" "$(/usr/bin/python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(b["forward"] > a["forward"], b["breakdown"]["head_bias"] == 0 and len(b["targets"]) == 7)' "$T/train.json" "$T/all.json")"
"$LS" flops --model "$T/qwen/config.json" --ctx 512 --rank 4 --batch 4 --steps 1000 >"$T/file.json"
check "--model FILE.json as well as DIR" "True" "$(/usr/bin/python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a.pop("model"); b.pop("model"); print(a == b)' "$T/train.json" "$T/file.json")"
check "--help" "0" "$("$LS" flops --help >/dev/null; echo $?)"

expect_error "missing --model" flops --ctx 512 --rank 4 --batch 4 --steps 10
expect_error "missing --ctx" flops --model "$T/qwen" --rank 4 --batch 4 --steps 10
expect_error "negative ctx" flops --model "$T/qwen" --ctx -5 --rank 4 --batch 4 --steps 10
expect_error "ctx not a number" flops --model "$T/qwen" --ctx 5x --rank 4 --batch 4 --steps 10
expect_error "rank 0" flops --model "$T/qwen" --ctx 512 --rank 0 --batch 4 --steps 10
expect_error "batch 0" flops --model "$T/qwen" --ctx 512 --rank 4 --batch 0 --steps 10
expect_error "unknown target" flops --model "$T/qwen" --ctx 512 --rank 4 --batch 4 --steps 10 --targets q_proj,w_proj
expect_error "empty targets" flops --model "$T/qwen" --ctx 512 --rank 4 --batch 4 --steps 10 --targets ,
expect_error "missing dir" flops --model "$T/none" --ctx 512 --rank 4 --batch 4 --steps 10
mkdir "$T/empty"
expect_error "dir without config.json" flops --model "$T/empty" --ctx 512 --rank 4 --batch 4 --steps 10
echo '{"model_type": "qwen2", "hidden_size": ' >"$T/broken.json"
expect_error "broken config.json" flops --model "$T/broken.json" --ctx 512 --rank 4 --batch 4 --steps 10
expect_error "ctx past max positions" flops --model "$T/qwen" --ctx 40000 --rank 4 --batch 4 --steps 10
expect_error "eval without systems" flops "${COURSE[@]}" --eval-new-tokens 240
expect_error "systems without lengths" flops "${COURSE[@]}" --eval-systems 100
expect_error "zero samples" flops "${COURSE[@]}" "${EVAL[@]}" --eval-samples 0
expect_error "unknown option" flops "${COURSE[@]}" --frobnicate
expect_error "option without value" flops "${COURSE[@]}" --rank
expect_error "stray argument" flops "${COURSE[@]}" extra

finish
