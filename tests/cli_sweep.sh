#!/usr/bin/env bash
# cli_sweep.sh LORASWEEP SHARED_DIR: `lorasweep sweep plan` end to end: stages, trials, ids equal
# to the equivalent trial files', the symbolic plan of later stages, FLOPS estimates and budget
# skips, JSON, sampled stages and repeats (configurations, repeats, their seeds and ids, a
# configuration's repeats skipped together), the shipped grid files, the checks of every trial's
# files and fits before any work, and one-line errors. Needs nothing from SHARED_DIR (a byte-level tokenizer is made here).
source "$(dirname "$0")/cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$T/sweep" "$T/models" "$T/data"
"$LS" model init --preset tiny --out "$T/models/tiny" >/dev/null || { echo "FAIL model init"; exit 1; }
"$LS" data generate --out "$T/data/lv.h5" --systems 200 --seed 1 >/dev/null || { echo "FAIL data generate"; exit 1; }
# byte_tokenizer FILE: a tokenizer.json whose tokens are the 256 bytes (GPT-2's byte alphabet, no
# merges): LLMTIME text is one token per character with it, as with Qwen's
byte_tokenizer() {
  $PY - "$1" <<'PY'
import json, sys
keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cp, extra = {}, 0
for b in range(256):
    if b in keep: cp[b] = b
    else: cp[b] = 256 + extra; extra += 1
vocab = {chr(cp[b]): b for b in range(256)}
split = {"type": "Split", "pattern": {"Regex": "\\p{N}| ?[^\\s\\p{L}\\p{N}]+|\\s+"}, "behavior": "Isolated", "invert": False}
tok = {"model": {"type": "BPE", "vocab": vocab, "merges": []}, "added_tokens": [],
       "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split, {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
       "decoder": {"type": "ByteLevel"}}
json.dump(tok, open(sys.argv[1], "w"))
PY
}
byte_tokenizer "$T/models/tiny/tokenizer.json"
cat >"$T/sweep/g.yaml" <<'EOF'
# a small course-shaped grid
name: cli-grid
budget_flops: 1e14
base:
  model: {path: ../models/tiny}
  data: {path: ../data/lv.h5}     # the plan checks it is there
  train: {ctx: 64, max_steps: 20, batch_size: 2}
  eval: {systems: 2, samples: 2}
stages:
  - name: lr_rank
    grid:
      train.lr: [1e-3, 3e-3, 1e-2]
      lora.rank: [2, 4]
  - name: ctx
    select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}
    grid: {train.ctx: [64, 96, 128]}
  - name: final
    select: {from: ctx, keep: [train.lr, lora.rank, train.ctx]}
    grid: {train.max_steps: 40}
EOF

"$LS" sweep plan "$T/sweep/g.yaml" >"$T/plan.txt" 2>"$T/err"
check "plan exit" "0" "$?"
check "plan: no stderr" "0" "$(wc -c <"$T/err" | tr -d ' ')"
contains "plan: header" "sweep cli-grid ($T/sweep/g.yaml), grid id " "$(head -1 "$T/plan.txt")"
check "plan: results file" "results: results/cli-grid.h5" "$(sed -n 2p "$T/plan.txt")"
check "plan: stage 1" "stage 1/3 lr_rank: 6 trials: train.lr in [0.001, 0.003, 0.01] x lora.rank in [2, 4]" \
  "$(grep '^stage 1/3' "$T/plan.txt")"
check "plan: stage 2 symbolic" "stage 2/3 ctx: 3 trials once lr_rank is done: train.ctx in [64, 96, 128] on the best of lr_rank by final_val_loss (keeping train.lr, lora.rank)" \
  "$(grep '^stage 2/3' "$T/plan.txt")"
check "plan: stage 3 symbolic" "stage 3/3 final: 1 trial once ctx is done: train.max_steps=40 on the best of ctx by final_val_loss (keeping train.lr, lora.rank, train.ctx)" \
  "$(grep '^stage 3/3' "$T/plan.txt")"
check "plan: 6 trial rows" "6" "$(grep -cE '^  [0-9]+ +[0-9a-f]{16} ' "$T/plan.txt")"
contains "plan: total" "total: 10 trials, estimated at most " "$(tail -1 "$T/plan.txt")"
contains "plan: share of the budget" "% of the budget 1e+14" "$(tail -1 "$T/plan.txt")"
# the estimates are the data file's own: the same grid on a data set of 1000 systems (not 200)
# plans other validation and forecast work
"$LS" data generate --out "$T/data/big.h5" --systems 1000 --steps 100 >/dev/null
sed 's|path: ../data/lv.h5|path: ../data/big.h5|' "$T/sweep/g.yaml" >"$T/sweep/gbig.yaml"
"$LS" sweep plan "$T/sweep/gbig.yaml" >"$T/plan-data.txt"
[ -n "$(grep -E '^  0 ' "$T/plan.txt")" ] && [ "$(grep -E '^  0 ' "$T/plan.txt" | awk '{print $3}')" != "$(grep -E '^  0 ' "$T/plan-data.txt" | awk '{print $3}')" ] \
  && ok "plan: the estimates are the data file's own" || bad "plan: the same estimates on another data set"

# a trial's id is the id of the equivalent trial file
row=$(grep -E '^  3 ' "$T/plan.txt")
id=$(echo "$row" | awk '{print $2}')
check "row 3 overrides" "train.lr=0.003 lora.rank=4" "$(echo "$row" | awk '{print $4, $5}')"
cat >"$T/sweep/t3.yaml" <<'EOF'
model: {path: ../models/tiny}
data: {path: ../data/lv.h5}
train: {ctx: 64, max_steps: 20, batch_size: 2, lr: 0.003}
eval: {systems: 2, samples: 2}
lora: {rank: 4}
EOF
check "id = config check's id of the trial file" "$T/sweep/t3.yaml: ok, id $id" "$("$LS" config check "$T/sweep/t3.yaml")"
# ids are the same when planned from another directory
check "ids do not depend on the directory" "$id" "$(cd / && "$LS" sweep plan "$T/sweep/g.yaml" | grep -E '^  3 ' | awk '{print $2}')"

# JSON
"$LS" sweep plan "$T/sweep/g.yaml" --json >"$T/plan.json"
if $PY - "$T/plan.json" "$id" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["name"] == "cli-grid" and p["n_trials"] == 10 and p["budget_flops"] == 1e14, p
s = p["stages"]
assert [x["name"] for x in s] == ["lr_rank", "ctx", "final"]
t = s[0]["trials"]
assert len(t) == 6 and t[3]["id"] == sys.argv[2] and t[3]["overrides"] == "train.lr=0.003 lora.rank=4"
assert all(x["flops"] > 0 for x in t)
assert sorted(x["run_order"] for x in t) == list(range(6))
# larger rank costs more, and runs first
assert t[1]["flops"] > t[0]["flops"] and t[1]["run_order"] < t[0]["run_order"]
assert s[1]["trials"] is None and s[1]["select"] == {"from": "lr_rank", "metric": "final_val_loss", "keep": ["train.lr", "lora.rank"]}
assert s[1]["grid"] == {"train.ctx": ["64", "96", "128"]} and s[1]["flops_at_most"] > 0
assert p["flops_at_most"] >= s[0]["flops"] + s[1]["flops_at_most"] + s[2]["flops_at_most"] - 1
PY
then ok "json: stages, trials, ids, estimates, run order"; else bad "json"; fi

# a sampled stage with repeats, and a Sobol stage on its winner: what will run, configuration by
# configuration, repeat by repeat, the same every time it is planned
cat >"$T/sweep/sampled.yaml" <<'EOF'
name: cli-sampled
base:
  model: {path: ../models/tiny}
  data: {path: ../data/lv.h5}
  train: {ctx: 64, max_steps: 20, batch_size: 2}
  eval: {systems: 2, samples: 2}
stages:
  - name: lr_rank
    method: random
    trials: 4
    repeats: 2
    parameters:
      train.lr: {distribution: log_uniform, min: 1e-4, max: 1e-2}
      lora.rank: {values: [2, 4]}
  - name: ctx
    select: {from: lr_rank, keep: [train.lr, lora.rank]}
    method: sobol
    trials: 3
    parameters:
      train.ctx: {distribution: int_uniform, min: 32, max: 128}
EOF
"$LS" sweep plan "$T/sweep/sampled.yaml" >"$T/sampled.txt" 2>"$T/err"
check "sampled plan exit" "0:" "$?:$(cat "$T/err")"
check "sampled plan: stage 1" "stage 1/2 lr_rank: 8 trials (4 configurations x 2 repeats): random over train.lr log_uniform [0.0001, 0.01] x lora.rank in [2, 4]" \
  "$(grep '^stage 1/2' "$T/sampled.txt")"
check "sampled plan: columns" "  index config repeat id               flops      overrides" "$(grep -m1 '^  index' "$T/sampled.txt")"
check "sampled plan: 8 rows, configuration x repeat" "0 0,0 1,1 0,1 1,2 0,2 1,3 0,3 1" \
  "$(grep -E '^  [0-9]+ +[0-9]+ +[0-9]+ +[0-9a-f]{16} ' "$T/sampled.txt" | awk '{print $2, $3}' | paste -sd,)"
check "sampled plan: repeat 1 is repeat 0 with other seeds" "4" \
  "$(grep -E '^  [0-9]+ +[0-9]+ +1 ' "$T/sampled.txt" | grep -cE 'lora.rank=[24] train.seed=[0-9]+ lora.seed=[0-9]+$')"
check "sampled plan: stage 2 waits, its configurations drawn" "stage 2/2 ctx: 3 trials once lr_rank is done: sobol over train.ctx int_uniform [32, 128] on the best configuration of lr_rank by mean final_val_loss (keeping train.lr, lora.rank)" \
  "$(grep '^stage 2/2' "$T/sampled.txt")"
check "sampled plan: Sobol points 0, 1/2, 3/4 of [32, 128]" "train.ctx=32 train.ctx=80 train.ctx=104" \
  "$(grep -A4 'sampled values' "$T/sampled.txt" | grep -E '^  [0-9] ' | awk '{print $2}' | paste -sd' ')"
check "sampled plan: the same configurations every time" "" "$("$LS" sweep plan "$T/sweep/sampled.yaml" | diff - "$T/sampled.txt")"
# a sampled trial's id is the id of the equivalent trial file (repeat 1: its seeds in the file)
row=$(grep -E '^  3 ' "$T/sampled.txt")
read -r _ _ _ rid _ lr rank tseed lseed <<<"$row"
lr=${lr#train.lr=}; rank=${rank#lora.rank=}; tseed=${tseed#train.seed=}; lseed=${lseed#lora.seed=}
printf 'model: {path: ../models/tiny}\ndata: {path: ../data/lv.h5}\ntrain: {ctx: 64, max_steps: 20, batch_size: 2, lr: %s, seed: %s}\neval: {systems: 2, samples: 2}\nlora: {rank: %s, seed: %s}\n' \
  "$lr" "$tseed" "$rank" "$lseed" >"$T/sweep/rep.yaml"
check "a repeat's id = config check's id of the trial file" "$T/sweep/rep.yaml: ok, id $rid" "$("$LS" config check "$T/sweep/rep.yaml")"
"$LS" sweep plan "$T/sweep/sampled.yaml" --json >"$T/sampled.json"
if $PY - "$T/sampled.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
a, b = p["stages"]
assert (a["method"], a["configurations"], a["repeats"], a["n_trials"]) == ("random", 4, 2, 8), a
assert a["parameters"] == {"train.lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-2}, "lora.rank": {"values": ["2", "4"]}}
assert len(a["sampled"]) == 4 and all(1e-4 <= float(x["train.lr"]) <= 1e-2 and x["lora.rank"] in ("2", "4") for x in a["sampled"])
t = a["trials"]
assert [(x["configuration"], x["repeat"]) for x in t] == [(c, r) for c in range(4) for r in range(2)]
assert len({x["id"] for x in t}) == 8 and all(x["flops"] > 0 for x in t)
assert b["method"] == "sobol" and b["trials"] is None and [x["train.ctx"] for x in b["sampled"]] == ["32", "80", "104"]
PY
then ok "sampled plan json: the space, the draws, configuration and repeat of each trial"; else bad "sampled plan json"; fi
# a budget for less than three configurations' repeats: a configuration's repeats are skipped together
est=$(grep -E '^  0 ' "$T/sampled.txt" | awk '{print $5}')
budget=$($PY -c "print('%.6g' % (6.5 * float('$est')))")
sed "s/^name: cli-sampled/name: cli-sampled\nbudget_flops: $budget/" "$T/sweep/sampled.yaml" >"$T/sweep/sampled-budget.yaml"
"$LS" sweep plan "$T/sweep/sampled-budget.yaml" >"$T/sampled-budget.txt"
check "sampled budget: one configuration skipped, both its repeats" "2" "$(grep -c 'skipped: estimated .* FLOPS for 2 repeats' "$T/sampled-budget.txt")"
check "sampled budget: the skipped rows are one configuration's" "1" \
  "$(grep 'skipped:' "$T/sampled-budget.txt" | awk '{print $2}' | sort -u | wc -l | tr -d ' ')"
sed 's/min: 1e-4, max: 1e-2/min: 0, max: 1e-2/' "$T/sweep/sampled.yaml" >"$T/logmin.yaml"
EXPECT_RC=1 EXPECT_PATTERN="logmin.yaml:13: train.lr: log_uniform needs 0 < min < max, and min is 0 \(min and max are the values themselves, not exponents\)$" \
  expect_error "log_uniform from 0" sweep plan "$T/logmin.yaml"
sed 's/    repeats: 2/    repeats: 0/' "$T/sweep/sampled.yaml" >"$T/rep0.yaml"
EXPECT_RC=1 EXPECT_PATTERN="rep0.yaml:11: repeats: 0 is out of range \[1, 10000\]$" expect_error "repeats: 0" sweep plan "$T/rep0.yaml"

# a budget for three of the six: the costliest (rank 4) are admitted first, the rest skipped with a reason
sed 's/budget_flops: 1e14/budget_flops: 7e12/' "$T/sweep/g.yaml" >"$T/sweep/small.yaml"
"$LS" sweep plan "$T/sweep/small.yaml" >"$T/small.txt"
skipped=$(grep -c 'skipped: estimated' "$T/small.txt")
[ "$skipped" = 3 ] && ok "budget: 3 of 6 skipped (the costliest first admitted)" || bad "budget: $skipped skipped"
check "budget: the rank-2 trials are the skipped ones" "3" "$(grep 'skipped: estimated' "$T/small.txt" | grep -c 'lora.rank=2 ')"
contains "budget: reason" "left of the budget]" "$(grep -m1 'skipped:' "$T/small.txt")"

# without the model: refused, as `sweep run` would refuse it; --preset stands in for a model not
# downloaded yet (its directory is not checked) and estimates with the preset
sed 's|path: ../models/tiny|path: ../models/none|' "$T/sweep/g.yaml" >"$T/sweep/nomodel.yaml"
EXPECT_RC=1 EXPECT_PATTERN="nomodel.yaml: model.path: ../models/none: No such file or directory$" \
  expect_error "no model: refused, naming model.path" sweep plan "$T/sweep/nomodel.yaml"
"$LS" sweep plan "$T/sweep/nomodel.yaml" --preset tiny >"$T/nomodel.txt"
check "no model, --preset: exit 0" "0" "$?"
check "--preset tiny gives the model's estimates" "$(grep -E '^  3 ' "$T/plan.txt" | awk '{print $3}')" \
  "$(grep -E '^  3 ' "$T/nomodel.txt" | awk '{print $3}')"

# a model with a shorter context than an axis asks for
cp -r "$T/models/tiny" "$T/models/short"
$PY -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["max_position_embeddings"]=96; c["sliding_window"]=96; json.dump(c, open(p,"w"))' "$T/models/short/config.json"
sed 's|path: ../models/tiny|path: ../models/short|' "$T/sweep/g.yaml" >"$T/sweep/short.yaml"
EXPECT_RC=1 EXPECT_PATTERN="short.yaml:16: train.ctx: 128 is more than the model's max_position_embeddings \(96\)" expect_error "ctx beyond the model" sweep plan "$T/sweep/short.yaml"

# Every file a trial opens, and what must fit the model and the data, is checked before any work
# (as `sweep run` checks it): one line naming the key, the path as the grid wrote it.
sed 's|path: ../data/lv.h5|path: ../data/none.h5|' "$T/sweep/g.yaml" >"$T/sweep/nodata.yaml"
EXPECT_RC=1 EXPECT_PATTERN="nodata.yaml: data.path: ../data/none.h5: No such file or directory$" \
  expect_error "missing data file" sweep plan "$T/sweep/nodata.yaml"
cp -r "$T/models/tiny" "$T/models/notok" && rm "$T/models/notok/tokenizer.json"
sed 's|path: ../models/tiny|path: ../models/notok|' "$T/sweep/g.yaml" >"$T/sweep/notok.yaml"
EXPECT_RC=1 EXPECT_PATTERN="notok.yaml: model.tokenizer: ../models/notok/tokenizer.json: No such file or directory \(model.tokenizer is not set" \
  expect_error "missing tokenizer in the model" sweep plan "$T/sweep/notok.yaml"
sed 's|model: {path: ../models/tiny}|model: {path: ../models/tiny, tokenizer: ../tok.json}|' "$T/sweep/g.yaml" >"$T/sweep/tok.yaml"
EXPECT_RC=1 EXPECT_PATTERN="tok.yaml: model.tokenizer: ../tok.json: No such file or directory$" \
  expect_error "missing model.tokenizer" sweep plan "$T/sweep/tok.yaml"
mkdir -p "$T/models/noweights" && cp "$T/models/tiny/config.json" "$T/models/tiny/tokenizer.json" "$T/models/noweights/"
sed 's|path: ../models/tiny|path: ../models/noweights|' "$T/sweep/g.yaml" >"$T/sweep/noweights.yaml"
EXPECT_RC=1 EXPECT_PATTERN="noweights.yaml: model.path: ../models/noweights: neither model.safetensors nor model.safetensors.index.json" \
  expect_error "missing weights" sweep plan "$T/sweep/noweights.yaml"
# a file an axis names: the message names the trial's stage and overrides
printf 'name: axis\nbase: {model.path: ../models/tiny, train.ctx: 64, eval.systems: 2}\ngrid: {data.path: [../data/lv.h5, ../data/two.h5]}\n' >"$T/sweep/axis.yaml"
EXPECT_RC=1 EXPECT_PATTERN='axis.yaml:3: stage main \(data.path="../data/two.h5"\): data.path: ../data/two.h5: No such file or directory$' \
  expect_error "missing file of one trial" sweep plan "$T/sweep/axis.yaml"
# the forecast: its steps within the data's, its prompt plus its new tokens within the model's
# positions (a model of 400 positions; the prompts of 80 steps take 960 tokens)
cp -r "$T/models/tiny" "$T/models/mid"
$PY -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["max_position_embeddings"]=400; c["sliding_window"]=400; json.dump(c, open(p,"w"))' "$T/models/mid/config.json"
fit() { # fit FILE EXTRA-BASE-KEYS: a grid on the 400-position model whose every trial sets train.ctx
  printf 'name: fit\nbase:\n  model: {path: ../models/mid}\n  data: {path: ../data/lv.h5}\n  train: {max_steps: 20, batch_size: 2}\n  eval: {systems: 2, samples: 2%s}\nstages:\n  - name: a\n    grid: {train.ctx: [64, 128]}\n  - name: b\n    select: {from: a, keep: [train.ctx]}\n    grid: {train.lr: [0.001, 0.01]}\n' "$2" >"$1"
}
fit "$T/sweep/fit.yaml" ""
EXPECT_RC=1 EXPECT_PATTERN="fit.yaml:8: stage a \(train.ctx=64\): eval.context_steps \+ eval.forecast_steps: a forecast prompt of 960 tokens \(80 steps at 3 decimals\) plus 368 new tokens \(20 steps\) needs 1328 positions, more than the model's 400: lower eval.context_steps or eval.forecast_steps" \
  expect_error "forecast prompt longer than the model's positions" sweep plan "$T/sweep/fit.yaml"
fit "$T/sweep/fit-tokens.yaml" ", context_steps: 10, max_new_tokens: 380"
EXPECT_RC=1 EXPECT_PATTERN="eval.context_steps \+ eval.max_new_tokens: a forecast prompt of 120 tokens \(10 steps at 3 decimals\) plus 380 new tokens \(eval.max_new_tokens\) needs 500 positions" \
  expect_error "forecast prompt plus eval.max_new_tokens" sweep plan "$T/sweep/fit-tokens.yaml"
fit "$T/sweep/fit-steps.yaml" ", context_steps: 90"
EXPECT_RC=1 EXPECT_PATTERN="stage a \(train.ctx=64\): eval.context_steps \+ eval.forecast_steps: 90 \+ 20 steps, more than the 100 steps of each system in data.path" \
  expect_error "forecast steps beyond the data's" sweep plan "$T/sweep/fit-steps.yaml"
sed 's/  eval: {systems: 2, samples: 2}/  eval: {systems: 2, samples: 2}\n  split: {test_systems: 200}/' "$T/sweep/g.yaml" >"$T/sweep/split.yaml"
EXPECT_RC=1 EXPECT_PATTERN="split.test_systems: 200 test systems leave none of data.path's 200 systems for training \(at most 199\)$" \
  expect_error "split without training systems" sweep plan "$T/sweep/split.yaml"
# base's train.ctx (the default 512, more than 400) is no trial's here: the grid plans
fit "$T/sweep/fit-ok.yaml" ", context_steps: 10, forecast_steps: 5"
"$LS" sweep plan "$T/sweep/fit-ok.yaml" >"$T/fit-ok.txt" 2>"$T/err"
check "every trial sets train.ctx: base's 512 is not held against the model (exit 0)" "0:" "$?:$(cat "$T/err")"
check "every trial sets train.ctx: both stages planned" "2" "$(grep -c '^stage [12]/2' "$T/fit-ok.txt")"
printf '  - name: c\n    grid: {train.lr: [0.1]}\n' >>"$T/sweep/fit-ok.yaml" # a stage that takes base's train.ctx
EXPECT_RC=1 EXPECT_PATTERN="fit-ok.yaml: train.ctx: 512 \(base, which stage c uses\) is more than the model's max_position_embeddings \(400\)" \
  expect_error "a stage on base's train.ctx is checked" sweep plan "$T/sweep/fit-ok.yaml"
# a stage that waits for a winner is checked with each candidate standing in for it
fit "$T/sweep/fit-late.yaml" ", context_steps: 10, forecast_steps: 5"
sed -i 's/    grid: {train.lr: \[0.001, 0.01\]}/    grid: {eval.context_steps: [90]}/' "$T/sweep/fit-late.yaml"
EXPECT_RC=1 EXPECT_PATTERN="fit-late.yaml:10: stage b \(train.ctx=64 eval.context_steps=90\): eval.context_steps \+ eval.forecast_steps: a forecast prompt of 1080 tokens" \
  expect_error "a later stage's trials are checked" sweep plan "$T/sweep/fit-late.yaml"

# the shipped grid files, in a copy of the tree that has the data files they name (the models are
# not downloaded: --preset)
mkdir -p "$T/ship/sweep" "$T/ship/results/demo"
cp "$ROOT/sweep/coursework.yaml" "$ROOT/sweep/demo.yaml" "$T/ship/sweep/"
cp "$T/data/lv.h5" "$T/ship/results/lotka_volterra_data.h5"
cp "$T/data/lv.h5" "$T/ship/results/demo/lv_sim.h5"
"$LS" sweep plan "$T/ship/sweep/coursework.yaml" --preset qwen2.5-0.5b >"$T/course.txt"
check "coursework.yaml plans" "0" "$?"
check "coursework: 1 + 9 + 3 + 1 trials" "1" "$(grep -c '^total: 14 trials' "$T/course.txt")"
pct=$(tail -1 "$T/course.txt" | sed -n 's/.*, \([0-9.]*\)% of the budget.*/\1/p')
$PY -c "import sys; sys.exit(0 if 0 < float('$pct') <= 100 else 1)" && ok "coursework fits its budget ($pct%)" || bad "coursework uses $pct% of its budget"
check "demo.yaml plans" "0" "$("$LS" sweep plan "$T/ship/sweep/demo.yaml" --preset tiny >/dev/null; echo $?)"
cp "$ROOT/sweep/coursework-random.yaml" "$T/ship/sweep/"
"$LS" sweep plan "$T/ship/sweep/coursework-random.yaml" --preset qwen2.5-0.5b >"$T/course-random.txt"
check "coursework-random.yaml plans" "0" "$?"
check "coursework-random: 1 + 8 x 3 + 2 x 3 + 1 trials" "1" "$(grep -c '^total: 32 trials' "$T/course-random.txt")"
check "coursework-random: log-uniform lr x rank, 3 repeats" "stage 2/4 lr_rank: 24 trials (8 configurations x 3 repeats): random over train.lr log_uniform [1e-05, 0.001] x lora.rank in [2, 4, 8]" \
  "$(grep '^stage 2/4' "$T/course-random.txt")"
pct=$(tail -1 "$T/course-random.txt" | sed -n 's/.*, \([0-9.]*\)% of the budget.*/\1/p')
$PY -c "import sys; sys.exit(0 if 0 < float('$pct') <= 100 else 1)" && ok "coursework-random fits its budget ($pct%)" || bad "coursework-random uses $pct% of its budget"
cp "$ROOT/sweep/coursework-asha.yaml" "$T/ship/sweep/"
"$LS" sweep plan "$T/ship/sweep/coursework-asha.yaml" --preset qwen2.5-0.5b >"$T/course-asha.txt"
check "coursework-asha.yaml plans" "0" "$?"
check "coursework-asha: ASHA's rungs over 9 Sobol configurations x 3 repeats" "1" \
  "$(grep -c '^  early stopping: asha, eta 3: rungs at steps 50, 150, 300 (the top)' "$T/course-asha.txt")"
pct=$(tail -1 "$T/course-asha.txt" | sed -n 's/.*, \([0-9.]*\)% of the budget.*/\1/p')
$PY -c "import sys; sys.exit(0 if 0 < float('$pct') <= 100 else 1)" && ok "coursework-asha fits its budget even with no stop ($pct%)" || bad "coursework-asha uses $pct% of its budget"
# the example in docs/sweep.md is a valid grid with the course's 14 trials (baseline included)
mkdir -p "$T/doc/sweep" "$T/doc/results"
cp "$T/data/lv.h5" "$T/doc/results/lotka_volterra_data.h5"
awk '/^```yaml/ { inside = 1; next } inside && /^```/ { exit } inside' "$ROOT/docs/sweep.md" >"$T/doc/sweep/course.yaml" # the first
check "docs/sweep.md example plans" "1" "$("$LS" sweep plan "$T/doc/sweep/course.yaml" --preset qwen2.5-0.5b | grep -c '^total: 14 trials')"
check "sweep listed" "1" "$("$LS" --help | grep -c '^  sweep ')"
check "plan --help" "0" "$("$LS" sweep plan --help >/dev/null; echo $?)"
check "sweep --help lists plan" "1" "$("$LS" sweep --help | grep -c '^  plan ')"

# errors: one line, exit 1 for a bad file, 2 for a bad command line
EXPECT_RC=1 EXPECT_PATTERN="nope.yaml: cannot open" expect_error "missing file" sweep plan "$T/nope.yaml"
sed 's/train.lr: \[/train.lrr: [/' "$T/sweep/g.yaml" >"$T/bad.yaml"
EXPECT_RC=1 EXPECT_PATTERN="bad.yaml:12: train.lrr: unknown key \(did you mean train.lr\?\)" expect_error "unknown axis key" sweep plan "$T/bad.yaml"
sed 's/lora.rank: \[2, 4\]/lora.rank: [0, 4]/' "$T/sweep/g.yaml" >"$T/rank0.yaml"
EXPECT_RC=1 EXPECT_PATTERN="rank0.yaml:13: lora.rank: 0 is out of range \[1, 1024\]" expect_error "rank 0" sweep plan "$T/rank0.yaml"
sed 's/1e-3, 3e-3/-1e-3, 3e-3/' "$T/sweep/g.yaml" >"$T/neg.yaml"
EXPECT_RC=1 EXPECT_PATTERN="neg.yaml:12: train.lr: -1e-3 is out of range \(0, 10\]" expect_error "negative lr" sweep plan "$T/neg.yaml"
sed 's/\[64, 96, 128\]/[64, 96, 40000]/' "$T/sweep/g.yaml" >"$T/ctx.yaml"
EXPECT_RC=1 EXPECT_PATTERN="ctx.yaml:16: train.ctx: 40000 is out of range \[2, 32768\]" expect_error "ctx too large" sweep plan "$T/ctx.yaml"
sed 's/\[64, 96, 128\]/[]/' "$T/sweep/g.yaml" >"$T/empty.yaml"
EXPECT_RC=1 EXPECT_PATTERN="empty.yaml:16: train.ctx: the axis has no values" expect_error "empty axis" sweep plan "$T/empty.yaml"
sed 's/from: lr_rank/from: final/' "$T/sweep/g.yaml" >"$T/from.yaml"
EXPECT_RC=1 EXPECT_PATTERN="from.yaml:15: select.from: 'final' is not an earlier stage" expect_error "select from a later stage" sweep plan "$T/from.yaml"
printf 'name: a\ngrid: &g {train.lr: [1]}\n' >"$T/anchor.yaml"
EXPECT_RC=1 EXPECT_PATTERN="anchor.yaml:2: grid: anchors \(&g\) are not supported" expect_error "anchor" sweep plan "$T/anchor.yaml"
{ echo "name: huge"; echo "grid:"; for k in train.seed lora.seed eval.seed split.seed train.lr; do echo "  $k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"; done; } >"$T/huge.yaml"
EXPECT_RC=1 EXPECT_PATTERN="huge.yaml:2: grid: the axes make more than 10000 trials" expect_error "huge product" sweep plan "$T/huge.yaml"
EXPECT_RC=2 EXPECT_PATTERN="^lorasweep sweep plan: a grid file is required" expect_error "no file" sweep plan
EXPECT_RC=2 EXPECT_PATTERN="unexpected argument" expect_error "two files" sweep plan "$T/sweep/g.yaml" "$T/bad.yaml"
EXPECT_RC=2 EXPECT_PATTERN="unknown option '--frobnicate'" expect_error "unknown option" sweep plan "$T/sweep/g.yaml" --frobnicate
EXPECT_RC=2 EXPECT_PATTERN="--preset: unknown preset 'huge'" expect_error "bad preset" sweep plan "$T/sweep/g.yaml" --preset huge
EXPECT_RC=2 EXPECT_PATTERN="unknown command 'lorasweep sweep frob'" expect_error "unknown subcommand" sweep frob

finish
