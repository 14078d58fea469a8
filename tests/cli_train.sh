#!/usr/bin/env bash
# cli_train.sh LORASWEEP SHARED_DIR: `lorasweep train` and `eval` end to end on the tiny preset and
# simulated data: it learns, it writes a loadable PEFT adapter, it repeats bit for bit, an
# interrupted run resumes to the same result, and its errors are one line.
source "$(dirname "$0")/cli_lib.sh"
TOK=$SHARED/qwen/tokenizer.json
[ -f "$TOK" ] || [ -z "${LS_TOKENIZER:-}" ] || TOK=$LS_TOKENIZER  # fetched by scripts/test.sh
need_shared "$TOK"

"$LS" model init --preset tiny --out "$T/tiny" --tokenizer "$TOK" >/dev/null || { echo "FAIL model init"; exit 1; }
"$LS" data generate --out "$T/lv.h5" --seed 3 >/dev/null || { echo "FAIL data generate"; exit 1; }
cat >"$T/trial.yaml" <<YAML
name: ci-tiny
model: {path: tiny}
data: {path: lv.h5}
lora: {rank: 4, targets: [q_proj, v_proj]}
train: {ctx: 64, batch_size: 2, max_steps: 16, lr: 3.0e-3, eval_every: 4, val_max_windows: 8, checkpoint_every: 4}
eval: {systems: 2, samples: 2}
YAML

if "$LS" train "$T/trial.yaml" --out "$T/a" --quiet; then ok "train runs"; else bad "train runs"; fi
for f in config.yaml curves.csv metrics.json forecasts.csv adapter/adapter_config.json \
         adapter/adapter_model.safetensors adapter/lm_head_bias.safetensors checkpoint/state.safetensors; do
  [ -s "$T/a/$f" ] || bad "missing $f"
done
if $PY - "$T/a/metrics.json" "$T/a/adapter/adapter_config.json" "$T/tiny" <<'PY'
import json, sys, math
m = json.load(open(sys.argv[1])); a = json.load(open(sys.argv[2]))
assert m["status"] == "done" and m["steps"] == 16, m
assert m["final_val_loss"] < m["initial_val_loss"], (m["initial_val_loss"], m["final_val_loss"])
f = m["forecast"]
assert f["systems"] == 2 and f["failed_samples"] == 0 and all(math.isfinite(f["mse"][k]) for k in f["mse"])
assert m["flops"]["total"] > m["flops"]["train"] > 0
assert a["peft_type"] == "LORA" and a["r"] == 4 and sorted(a["target_modules"]) == ["q_proj", "v_proj"]
# the base model as the user named it (model.path: tiny, beside the trial file), made absolute:
# a relative path would be read against wherever the adapter is loaded from
assert a["base_model_name_or_path"] == sys.argv[3], a["base_model_name_or_path"]
print("val loss %.4f -> %.4f" % (m["initial_val_loss"], m["final_val_loss"]))
PY
then ok "metrics: validation loss fell, forecast parsed, PEFT config"; else bad "metrics"; fi
lines=$(wc -l <"$T/a/forecasts.csv")
[ "$lines" = $((1 + 2 * 20 * 2)) ] && ok "forecasts.csv has 2 systems x 20 steps x 2" || bad "forecasts.csv has $lines lines"
# The trained adapter scores lower than the base model on the validation-like text.
"$LS" data encode --data "$T/lv.h5" --system 150 --steps 8 >"$T/line.txt"
base=$("$LS" score --model "$T/tiny" --text "$T/line.txt" | $PY -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
tuned=$("$LS" score --model "$T/tiny" --adapter "$T/a/adapter" --text "$T/line.txt" | $PY -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
$PY -c "import sys; sys.exit(0 if $tuned < $base else 1)" && ok "adapter loads and lowers loss ($base -> $tuned)" || bad "adapter loss $base -> $tuned"

# The same command on a finished trial redoes nothing: no forecast again, metrics.json untouched.
sum_before=$(md5sum "$T/a/metrics.json" "$T/a/forecasts.csv")
"$LS" train "$T/trial.yaml" --out "$T/a" 2>"$T/again.err"; rc=$?
[ $rc = 0 ] && grep -q "already done in $T/a" "$T/again.err" && [ "$sum_before" = "$(md5sum "$T/a/metrics.json" "$T/a/forecasts.csv")" ] \
  && ok "a finished trial is not run again: $(cat "$T/again.err")" || bad "rerun of a finished trial: rc=$rc $(cat "$T/again.err")"

# Bit for bit: the same trial again.
"$LS" train "$T/trial.yaml" --out "$T/b" --quiet
cmp -s "$T/a/adapter/adapter_model.safetensors" "$T/b/adapter/adapter_model.safetensors" && cmp -s "$T/a/curves.csv" "$T/b/curves.csv" \
  && ok "a second run is identical" || bad "a second run differs"

# Interrupted after a checkpoint (SIGTERM to itself as the first checkpoint is written: a stop that
# cannot come too late), then resumed: the same adapter and curves as uninterrupted, and the wall
# time of both attempts recorded (the checkpoint carries the first attempt's).
LS_FAULT=write@state.safetensors:1:stop "$LS" train "$T/trial.yaml" --out "$T/c" --quiet 2>"$T/c.err"; rc=$?
[ $rc = 3 ] && grep -q "stopped at step 4 of 16" "$T/c.err" && ok "a stop: exit 3, $(tail -1 "$T/c.err")" || bad "stop: exit $rc $(cat "$T/c.err")"
w1=$($PY - "$T/c/checkpoint/state.safetensors" <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n, = struct.unpack_from("<Q", d)
print(json.loads(d[8:8 + n])["__metadata__"]["wall_seconds"])
PY
)
"$LS" train "$T/trial.yaml" --out "$T/c" 2>"$T/c2.err" && cmp -s "$T/a/adapter/adapter_model.safetensors" "$T/c/adapter/adapter_model.safetensors" \
  && cmp -s "$T/a/curves.csv" "$T/c/curves.csv" && ok "resumed run equals the uninterrupted one" || bad "resume differs"
if $PY - "$w1" "$T/c2.err" "$T/c/metrics.json" <<'PY'
import json, re, sys
w1 = float(sys.argv[1]); line = open(sys.argv[2]).read()
this, total = map(float, re.search(r"done in ([0-9.]+) s \(([0-9.]+) s with the earlier attempts\)", line).groups())
wall = json.load(open(sys.argv[3]))["wall_seconds"]
assert w1 > 0 and abs(total - (w1 + this)) < 0.002 and abs(wall - total) < 0.002, (w1, this, total, wall)
print("first attempt %.3f s + this one %.3f s = %.3f s recorded" % (w1, this, wall))
PY
then ok "wall_seconds counts both attempts"; else bad "wall time over attempts: w1=$w1 $(tail -1 "$T/c2.err")"; fi

# Resume after the data changed. Interrupted after a checkpoint, the data file regenerated at the
# same path with other settings (103 systems of 8 steps: fewer training windows than the position
# the checkpoint holds): the resume once read order[cursor] past the end (SIGSEGV). Now it refuses
# with one line naming the data file; a checkpoint without the data's checksum (an older one) is
# refused on its position; values read from a checkpoint are bounded; with the original data back
# the run resumes and ends as the uninterrupted one did.
# (no forecast in this trial: 8 steps are too few to forecast from, and the up-front checks say so)
cp "$T/lv.h5" "$T/lvr.h5" && sed -e 's/path: lv.h5/path: lvr.h5/' -e 's/eval: {systems: 2, samples: 2}/eval: {systems: 0}/' \
  "$T/trial.yaml" >"$T/rtrial.yaml"
LS_FAULT=write@state.safetensors:1:stop "$LS" train "$T/rtrial.yaml" --out "$T/r" --quiet 2>/dev/null
[ $? = 3 ] || bad "the run to resume was not stopped"
cp "$T/r/checkpoint/state.safetensors" "$T/state.keep"
"$LS" data generate --out "$T/lvr.h5" --systems 103 --steps 8 --seed 9 >/dev/null
EXPECT_RC=1 EXPECT_PATTERN="lvr.h5: the data file changed since this checkpoint was made \(fnv1a64:[0-9a-f]{16}, checkpoint fnv1a64:[0-9a-f]{16}\): put the original data back to resume, or delete .*/r/checkpoint to train from the start" \
  expect_error "resume on changed data: refused" train "$T/rtrial.yaml" --out "$T/r" --quiet
# edit_meta KEY VALUE: the kept checkpoint with one metadata value changed (None: removed)
edit_meta() {
  $PY - "$T/state.keep" "$T/r/checkpoint/state.safetensors" "$1" "$2" <<'PY'
import json, struct, sys
src, dst, key, value = sys.argv[1:]
b = open(src, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
if value == "None": del h["__metadata__"][key]
else: h["__metadata__"][key] = value
t = json.dumps(h).encode(); t += b" " * (-len(t) % 8)
open(dst, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
}
edit_meta data_checksum None
EXPECT_RC=1 EXPECT_PATTERN="state.safetensors: the checkpoint is at window [0-9]+ of an epoch, but .*lvr.h5 has [0-9] training windows: it was made from other data" \
  expect_error "resume on changed data, checkpoint without a checksum: refused on its position" train "$T/rtrial.yaml" --out "$T/r" --quiet
cp "$T/lv.h5" "$T/lvr.h5"
for kv in "cursor 99999999999" "step 1000" "epoch -1" "n_evals 2.5" "train_tokens nan" "data_checksum fnv1a64:xyz"; do
  edit_meta $kv
  EXPECT_RC=1 EXPECT_PATTERN="state.safetensors: metadata '${kv%% *}' is '${kv#* }', not .*\(a damaged checkpoint\)" \
    expect_error "a checkpoint with $kv: refused" train "$T/rtrial.yaml" --out "$T/r" --quiet
done
cp "$T/state.keep" "$T/r/checkpoint/state.safetensors"
"$LS" train "$T/rtrial.yaml" --out "$T/r" --quiet && cmp -s "$T/a/adapter/adapter_model.safetensors" "$T/r/adapter/adapter_model.safetensors" \
  && ok "the original data back: the resume ends as the uninterrupted run" || bad "resume with the original data"
$PY -c "
import json, sys; m = json.load(open('$T/r/metrics.json'))
assert m['data_checksum'].startswith('fnv1a64:') and len(m['data_checksum']) == 24, m['data_checksum']" \
  && ok "metrics.json records the data's checksum" || bad "metrics.json data_checksum"

# The course's real data set trains and forecasts the same way.
REAL=$SHARED/data/lotka_volterra_data.h5
if [ -f "$REAL" ]; then
  "$LS" train "$T/trial.yaml" --out "$T/real" --quiet --set data.path="$REAL" --set train.max_steps=4 \
    --set train.checkpoint_every=0 && $PY -c "
import json, math; m = json.load(open('$T/real/metrics.json'))
assert m['steps'] == 4 and m['forecast']['failed_samples'] == 0 and math.isfinite(m['forecast']['mse']['both'])
assert abs(m['alpha'] - 0.6) < 0.1, m['alpha']  # the 99th percentile of the real set is about 6" \
    && ok "real course data: train and forecast" || bad "real course data"
else skip_part "real course data ($REAL missing)"; fi

# The untrained baseline through eval; its summary line says only what was measured (no train loss).
"$LS" eval "$T/trial.yaml" --out "$T/base" 2>"$T/base.err" && $PY -c "
import json; m = json.load(open('$T/base/metrics.json')); assert m['steps'] == 0 and m['forecast']['systems'] == 2" \
  && ok "eval: baseline forecast" || bad "eval"
done_line=$(grep '^lorasweep eval: done' "$T/base.err")
contains "eval: the summary has the validation loss" ": val loss " "$done_line"
check "eval: the summary has no train loss and no nan" "0" "$(echo "$done_line" | grep -ciE 'train loss|nan')"
"$LS" eval "$T/trial.yaml" --adapter "$T/a/adapter" --out "$T/tuned" --quiet && ok "eval with an adapter" || bad "eval --adapter"
# Without the grammar the untrained model writes no number at all: every sample decodes to no
# step (an empty copy, once undefined behaviour the sanitizer build stopped on), every sample
# failed, the scores are null rather than 0, and the command still succeeds.
"$LS" eval "$T/trial.yaml" --out "$T/nogrammar" --quiet --set eval.grammar=false --set eval.max_new_tokens=300 && $PY -c "
import json; f = json.load(open('$T/nogrammar/metrics.json'))['forecast']
assert f['failed_samples'] == 4 and f['mse']['both'] is None and f['mae']['prey'] is None, f" \
  && ok "eval: samples with no step are failed, scores null" || bad "eval: samples with no step"

# The FLOPS the trial recorded against the budget's estimate (tests/flops_check.py) on a data set
# of another shape than the course's (60 systems of 50 steps, every validation window counted):
# training and validation exact, the prompts exact, the samples estimated at their longest.
"$LS" data generate --out "$T/lv60.h5" --systems 60 --steps 50 --seed 4 >/dev/null
"$LS" train "$T/trial.yaml" --out "$T/shape" --quiet --set data.path=lv60.h5 --set train.max_steps=3 \
  --set train.val_max_windows=0 --set split.test_systems=20 --set split.val_fraction=0.1 \
  --set eval.context_steps=30 --set eval.systems=1 --set train.checkpoint_every=0 \
  && $PY "$(dirname "$0")/flops_check.py" "$LS" "$T" "$T/shape" >"$T/flops.txt" 2>&1 \
  && ok "recorded FLOPS against the estimate: $(tail -1 "$T/flops.txt")" || bad "FLOPS estimate: $(tail -3 "$T/flops.txt")"

# A tokenizer whose ids do not fit the model: the real one with the ten digits moved to ids
# 200000-200009, beyond the tiny model's 151936 embedding rows (every LLMTIME text then uses them).
# Every command that loads both refuses it before reading a row that is not there.
$PY - "$TOK" "$T/wide.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1], encoding="utf-8"))
for d in range(10):
    t["model"]["vocab"][str(d)] = 200000 + d
json.dump(t, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
PY
WIDE="wide.json: token ids go up to 200009, beyond the model's vocabulary of 151936"
EXPECT_RC=1 EXPECT_PATTERN="$WIDE" expect_error "train: tokenizer beyond the vocabulary" \
  train "$T/trial.yaml" --out "$T/wide" --quiet --set model.tokenizer=wide.json
EXPECT_RC=1 EXPECT_PATTERN="$WIDE" expect_error "eval: tokenizer beyond the vocabulary" \
  eval "$T/trial.yaml" --out "$T/wide-eval" --quiet --set model.tokenizer=wide.json
EXPECT_RC=1 EXPECT_PATTERN="$WIDE" expect_error "score: tokenizer beyond the vocabulary" \
  score --model "$T/tiny" --tokenizer "$T/wide.json" --text "$T/line.txt"
EXPECT_RC=1 EXPECT_PATTERN="$WIDE" expect_error "generate: tokenizer beyond the vocabulary" \
  generate --model "$T/tiny" --tokenizer "$T/wide.json" --prompt "1.9,2.0;" --max-new-tokens 4
EXPECT_RC=1 EXPECT_PATTERN="$WIDE" expect_error "model init: tokenizer beyond the vocabulary" \
  model init --preset tiny --out "$T/tinywide" --tokenizer "$T/wide.json"

expect_error "train: no file" train
expect_error "train: missing file" train "$T/none.yaml"
printf 'model: {path: tiny}\ndata: {path: lv.h5}\ntrain: {lr: -1}\n' >"$T/bad.yaml"
expect_error "train: bad value" train "$T/bad.yaml"
expect_error "train: another trial in the directory" train "$T/trial.yaml" --out "$T/a" --set train.lr=1e-2
# a bad --set is a bad command line (2), as in `config check`
EXPECT_RC=2 EXPECT_PATTERN="^lorasweep train: --set nokey: unknown key" expect_error "train: bad --set key" train "$T/trial.yaml" --set nokey=1
EXPECT_RC=2 EXPECT_PATTERN="^lorasweep train: --set train.lr: 'fast' is not a number" expect_error "train: bad --set value" train "$T/trial.yaml" --set train.lr=fast
EXPECT_RC=2 EXPECT_PATTERN="--set train.learning_rate: unknown key \(did you mean train.lr\?\)" expect_error "train: --set suggests the key" train "$T/trial.yaml" --set train.learning_rate=1e-3
EXPECT_RC=2 EXPECT_PATTERN="--set wants KEY=VALUE, got 'train.lr' \(did you mean --set train.lr=3e-3\?\)" \
  expect_error "train: --set KEY VALUE" train "$T/trial.yaml" --set train.lr 3e-3

# Every file the trial opens, and what must fit the model and the data, is checked before any
# work: one line naming the key, the path as the file wrote it, and no output directory.
sed 's|path: lv.h5|path: data/none.h5|' "$T/trial.yaml" >"$T/nodata.yaml"
EXPECT_RC=1 EXPECT_PATTERN="nodata.yaml: data.path: data/none.h5: No such file or directory$" \
  expect_error "train: missing data file" train "$T/nodata.yaml" --out "$T/nodata"
check "train: a missing data file creates nothing" "no" "$([ -e "$T/nodata" ] && echo yes || echo no)"
EXPECT_RC=1 EXPECT_PATTERN="nodata.yaml: data.path: data/none.h5: No such file or directory$" \
  expect_error "eval: missing data file" eval "$T/nodata.yaml" --out "$T/nodata"
EXPECT_RC=1 EXPECT_PATTERN="trial.yaml: model.tokenizer: tok.json: No such file or directory$" \
  expect_error "train: missing model.tokenizer" train "$T/trial.yaml" --out "$T/notok" --set model.tokenizer=tok.json
# a model of 256 positions: the forecast's prompts of 80 steps take 960 tokens, refused before training
cp -r "$T/tiny" "$T/short"
$PY -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["max_position_embeddings"]=256; c["sliding_window"]=256; json.dump(c, open(p,"w"))' "$T/short/config.json"
long="eval.context_steps \+ eval.forecast_steps: a forecast prompt of 960 tokens \(80 steps at 3 decimals\) plus 368 new tokens \(20 steps\) needs 1328 positions, more than the model's 256: lower eval.context_steps or eval.forecast_steps"
EXPECT_RC=1 EXPECT_PATTERN="trial.yaml: $long" expect_error "train: forecast prompt beyond the model's positions" train "$T/trial.yaml" --out "$T/long" --set model.path=short
check "train: a prompt too long creates nothing" "no" "$([ -e "$T/long" ] && echo yes || echo no)"
EXPECT_RC=1 EXPECT_PATTERN="trial.yaml: $long" expect_error "eval: forecast prompt beyond the model's positions" eval "$T/trial.yaml" --out "$T/long" --set model.path=short
EXPECT_RC=1 EXPECT_PATTERN="trial.yaml: train.ctx: 300 is more than the model's 256 positions" \
  expect_error "train: train.ctx beyond the model's positions" train "$T/trial.yaml" --out "$T/long" --set model.path=short --set train.ctx=300
EXPECT_RC=1 EXPECT_PATTERN="trial.yaml: eval.context_steps \+ eval.forecast_steps: 90 \+ 20 steps, more than the 100 steps of each system in data.path$" \
  expect_error "train: forecast steps beyond the data's" train "$T/trial.yaml" --out "$T/long" --set eval.context_steps=90
EXPECT_RC=1 EXPECT_PATTERN="trial.yaml: split.test_systems: 1000 test systems leave none of data.path's 1000 systems for training \(at most 999\)$" \
  expect_error "train: a split without training systems" train "$T/trial.yaml" --out "$T/long" --set split.test_systems=1000

# A directory whose trial failed at start-up (here: weights that cannot be read, which only
# loading finds) holds config.yaml alone; once the mistake is fixed, the next run takes it over.
mkdir -p "$T/broken" && cp "$T/tiny/config.json" "$T/tiny/tokenizer.json" "$T/broken/" && echo junk >"$T/broken/model.safetensors"
EXPECT_RC=1 expect_error "train: unreadable weights" train "$T/trial.yaml" --out "$T/reuse" --quiet --set model.path=broken \
  --set train.max_steps=2 --set eval.systems=0 --set train.checkpoint_every=0
check "train: the failed start left config.yaml alone" "config.yaml" "$(cd "$T/reuse" && echo *)"
"$LS" train "$T/trial.yaml" --out "$T/reuse" --quiet --set train.max_steps=2 --set eval.systems=0 --set train.checkpoint_every=0 2>"$T/reuse.err"
check "train: a directory whose trial never started is reused" "0:" "$?:$(cat "$T/reuse.err")"
# a CUDA backend where none can run (no device here, or a build without it): one line, nothing trained
EXPECT_RC=1 EXPECT_PATTERN="model.backend: cuda was asked for, but (this build has no CUDA backend|no CUDA device is usable)" \
  expect_error "train: model.backend cuda without a GPU" train "$T/trial.yaml" --out "$T/cuda" --quiet --set model.backend=cuda
sed 's/path: tiny/path: nowhere/' "$T/trial.yaml" >"$T/nomodel.yaml"
EXPECT_RC=1 EXPECT_PATTERN="nomodel.yaml: model.path: nowhere: No such file or directory$" \
  expect_error "train: missing model" train "$T/nomodel.yaml" --out "$T/x" --quiet
expect_error "eval: bad adapter" eval "$T/trial.yaml" --adapter "$T/none" --out "$T/y" --quiet
expect_error "train: unknown option" train "$T/trial.yaml" --epochs 3

finish
