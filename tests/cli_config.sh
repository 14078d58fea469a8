#!/usr/bin/env bash
# cli_config.sh LORASWEEP SHARED_DIR: `lorasweep config show|check|doc` end to end, its errors, and
# docs/config.md kept identical to `lorasweep config doc`. Needs nothing from SHARED_DIR.
source "$(dirname "$0")/cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$T/sweep"
cat >"$T/sweep/trial.yaml" <<'EOF'
# a small trial
name: cli-test
model: {path: ../models/tiny}
data:
  path: /data/lv.h5
train:
  lr: 3e-4        # written as 3e-4, printed as 0.0003
  ctx: 256
lora:
  targets: [v_proj, q_proj]
EOF

# show: every key, canonical, with the resolved paths and the id in comments
"$LS" config show "$T/sweep/trial.yaml" >"$T/show.yaml" 2>"$T/err"
check "show exit" "0" "$?"
check "show: no stderr" "0" "$(wc -c <"$T/err" | tr -d ' ')"
check "show: lr canonical" "  lr: 0.0003" "$(grep '^  lr:' "$T/show.yaml")"
check "show: targets in ls_proj order" "  targets: [q_proj, v_proj]" "$(grep '^  targets:' "$T/show.yaml")"
check "show: path as written" '  path: "../models/tiny"' "$(grep '^  path: "../models' "$T/show.yaml")"
check "show: resolved path" "# model.path resolves to $T/sweep/../models/tiny" "$(grep '^# model.path' "$T/show.yaml")"
check "show: every key" "$("$LS" config doc | grep -c '^| `')" "$(grep -vc '^#\|^[a-z]*:$' "$T/show.yaml")"
id=$("$LS" config check "$T/sweep/trial.yaml" | sed 's/.*id //')
check "show: id as check's" "# id $id" "$(grep '^# id' "$T/show.yaml")"
check "id is 16 hex digits" "1" "$(echo "$id" | grep -cE '^[0-9a-f]{16}$')"
# the shown YAML is a trial file again, with the same id (from another directory: paths differ, id not)
sed -i 's|path: "/data/lv.h5"|path: "/data/lv.h5"|' "$T/show.yaml"
check "show output reloads, same id" "$T/show.yaml: ok, id $id" "$("$LS" config check "$T/show.yaml")"
# JSON: loads as a trial too, with the same id
"$LS" config show "$T/sweep/trial.yaml" --json >"$T/show.json"
check "json is JSON" "cli-test 0.0003 256" \
  "$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["name"], d["train"]["lr"], d["train"]["ctx"])' "$T/show.json")"
check "json reloads, same id" "$T/show.json: ok, id $id" "$("$LS" config check "$T/show.json")"
# --set
check "--set changes the value" "  lr: 0.01" \
  "$("$LS" config show "$T/sweep/trial.yaml" --set train.lr=0.01 | grep '^  lr:')"
check "--set list" "  targets: [q_proj, k_proj, v_proj]" \
  "$("$LS" config show "$T/sweep/trial.yaml" --set 'lora.targets=[k_proj, v_proj, q_proj]' | grep '^  targets:')"
check "--set last wins" "  rank: 16" \
  "$("$LS" config show "$T/sweep/trial.yaml" --set lora.rank=8 --set lora.rank=16 | grep '^  rank:')"
check "--set changes the id" "1" "$("$LS" config check "$T/sweep/trial.yaml" --set train.seed=1 | grep -vc "$id")"
check "--set to the same value keeps the id" "$T/sweep/trial.yaml: ok, id $id" \
  "$("$LS" config check "$T/sweep/trial.yaml" --set train.ctx=256.0)"
# the id ignores comments, order and style
printf 'lora: {targets: [q_proj, v_proj]}\ntrain: {ctx: 256, lr: 0.0003}\ndata: {path: "/data/lv.h5"}\nmodel.path: ../models/tiny\nname: cli-test\n' >"$T/other.yaml"
check "same keys, other form: same id" "$T/other.yaml: ok, id $id" "$("$LS" config check "$T/other.yaml")"
check "--help" "0" "$("$LS" config show --help >/dev/null; echo $?)"
check "config --help" "0" "$("$LS" config --help >/dev/null; echo $?)"
check "config listed" "1" "$("$LS" --help | grep -c '^  config ')"

# the example trial and the documentation
check "sweep/trial-example.yaml is valid" "0" "$("$LS" config check "$ROOT/sweep/trial-example.yaml" >/dev/null; echo $?)"
sed -n '/<!-- BEGIN example trial -->/,/<!-- END example trial -->/p' "$ROOT/docs/config.md" | sed '1,2d;$d' | sed '$d' >"$T/doc-example.yaml"
check "docs/config.md example is valid" "0" "$("$LS" config check "$T/doc-example.yaml" >/dev/null; echo $?)"
check "docs/config.md example names every key" "$("$LS" config doc | grep -c '^| `')" \
  "$(grep -c '^  [a-z_0-9]*:\|^name:' "$T/doc-example.yaml")"
sed -n '/<!-- BEGIN lorasweep config doc -->/,/<!-- END lorasweep config doc -->/p' "$ROOT/docs/config.md" | sed '1d;$d' >"$T/doc.md"
"$LS" config doc >"$T/doc-now.md"
if cmp -s "$T/doc.md" "$T/doc-now.md"; then check "docs/config.md reference is current" same same
else check "docs/config.md reference is current (regenerate it from 'lorasweep config doc')" same differs
  diff "$T/doc.md" "$T/doc-now.md" | head -20; fi

# errors: one line, exit 1 for a bad file, 2 for a bad command line
EXPECT_RC=1 EXPECT_PATTERN="nope.yaml: cannot open" expect_error "missing file" config check "$T/nope.yaml"
EXPECT_RC=1 EXPECT_PATTERN="not a regular file \(a directory\)" expect_error "a directory" config show "$T/sweep"
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n  lrr: 1\n' >"$T/unknown.yaml"
EXPECT_RC=1 EXPECT_PATTERN="unknown.yaml:4: train.lrr: unknown key \(did you mean train.lr\?\)" expect_error "unknown key" config check "$T/unknown.yaml"
EXPECT_RC=1 EXPECT_PATTERN="unknown.yaml:4: train.lrr" expect_error "unknown key (show)" config show "$T/unknown.yaml" --json
# names other tools use, and a key's last part alone, get the key as a suggestion
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n  learning_rate: 1e-4\n' >"$T/alias.yaml"
EXPECT_RC=1 EXPECT_PATTERN="alias.yaml:4: train.learning_rate: unknown key \(did you mean train.lr\?\)$" expect_error "learning_rate suggests train.lr" config check "$T/alias.yaml"
printf 'model: {path: m}\ndata: {path: d}\nlr: 1e-4\n' >"$T/toplr.yaml"
EXPECT_RC=1 EXPECT_PATTERN="toplr.yaml:3: lr: unknown section \(did you mean train.lr\?\)$" expect_error "top-level lr suggests train.lr" config check "$T/toplr.yaml"
EXPECT_RC=2 EXPECT_PATTERN="--set lr: unknown key \(did you mean train.lr\?\)" expect_error "--set lr= suggests train.lr" config check "$T/sweep/trial.yaml" --set lr=1e-4
EXPECT_RC=2 EXPECT_PATTERN="--set lora_alpha: unknown key \(did you mean lora.alpha\?\)" expect_error "--set lora_alpha= suggests lora.alpha" config check "$T/sweep/trial.yaml" --set lora_alpha=8
EXPECT_RC=2 EXPECT_PATTERN="--set seed: unknown key \(did you mean split.seed or lora.seed\?\)" expect_error "--set seed= names two seeds" config check "$T/sweep/trial.yaml" --set seed=1
# a tab where YAML wants indentation: said so, at its line
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n\tlr: 0.1\n' >"$T/tab.yaml"
EXPECT_RC=1 EXPECT_PATTERN="tab.yaml:4: train: a tab character: YAML does not allow tabs for indentation \(indent with spaces\)$" expect_error "tab indentation" config check "$T/tab.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n  lr: 0.1\n\t  ctx: 64\n' >"$T/tab2.yaml"
EXPECT_RC=1 EXPECT_PATTERN="tab2.yaml:5: train.lr: a tab character: YAML does not allow tabs for indentation" expect_error "tab after a key" config check "$T/tab2.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n  ctx: "512"\n' >"$T/type.yaml"
EXPECT_RC=1 EXPECT_PATTERN='type.yaml:4: train.ctx: expected an integer, got the string "512"' expect_error "wrong type" config check "$T/type.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n  ctx: 512\n  lr: -1\n' >"$T/range.yaml"
EXPECT_RC=1 EXPECT_PATTERN='range.yaml:5: train.lr: -1 is out of range \(0, 10\]' expect_error "out of range" config check "$T/range.yaml"
# an empty lora.targets once trained a head-bias-only adapter that `eval --adapter` refused
printf 'model: {path: m}\ndata: {path: d}\nlora:\n  rank: 2\n  targets: []\n' >"$T/notargets.yaml"
EXPECT_RC=1 EXPECT_PATTERN='notargets.yaml:5: lora.targets: the list is empty: name at least one of q_proj' \
  expect_error "empty lora.targets" config check "$T/notargets.yaml"
printf 'model: {path: m}\ndata: {path: d}\n' >"$T/minimal.yaml"
EXPECT_RC=2 EXPECT_PATTERN='--set lora.targets: the list is empty' expect_error "empty lora.targets by --set" \
  config check "$T/minimal.yaml" --set 'lora.targets=[]'
printf 'model: {path: m}\ndata: {path: d}\ntrain: {optimizer: adam}\n' >"$T/enum.yaml"
EXPECT_RC=1 EXPECT_PATTERN="enum.yaml:3: train.optimizer: 'adam' is not one of adamw, sgd" expect_error "bad name" config check "$T/enum.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain:\n  ctx: 5\n  ctx: 6\n' >"$T/dup.yaml"
EXPECT_RC=1 EXPECT_PATTERN="dup.yaml:5: train.ctx: duplicate key \(first on line 4\)" expect_error "duplicate key" config check "$T/dup.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain: 5\n' >"$T/sect.yaml"
EXPECT_RC=1 EXPECT_PATTERN="sect.yaml:3: train: expected a mapping" expect_error "section not a mapping" config check "$T/sect.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain: {lr: 0.1\n' >"$T/syntax.yaml"
EXPECT_RC=1 EXPECT_PATTERN="syntax.yaml:4: train: YAML syntax error" expect_error "syntax error" config check "$T/syntax.yaml"
printf 'a: &a [x]\nb: *a\n' >"$T/alias.yaml"
EXPECT_RC=1 EXPECT_PATTERN="alias.yaml:1: " expect_error "anchors" config check "$T/alias.yaml"
printf 'data: {path: d}\n' >"$T/required.yaml"
EXPECT_RC=1 EXPECT_PATTERN="required.yaml: model.path is required" expect_error "required key" config check "$T/required.yaml"
printf 'model: {path: m}\ndata: {path: d}\ntrain: {ctx: 256, stride: 300}\n' >"$T/cross.yaml"
EXPECT_RC=1 EXPECT_PATTERN="cross.yaml: train.stride: 300 is more than train.ctx \(256\)" expect_error "cross-key rule" config show "$T/cross.yaml"
printf '\xff\xfe\xfd' >"$T/binary.yaml"
EXPECT_RC=1 EXPECT_PATTERN="binary.yaml:1: YAML syntax error" expect_error "binary file" config check "$T/binary.yaml"
head -c 1100000 /dev/zero | tr '\0' '#' >"$T/big.yaml"
EXPECT_RC=1 EXPECT_PATTERN="big.yaml: too large" expect_error "too large" config check "$T/big.yaml"
EXPECT_RC=2 EXPECT_PATTERN="^lorasweep config show: unknown option '--frobnicate'" expect_error "unknown option" config show "$T/sweep/trial.yaml" --frobnicate
EXPECT_RC=2 EXPECT_PATTERN="unknown option '--json'" expect_error "--json on check" config check "$T/sweep/trial.yaml" --json
EXPECT_RC=2 EXPECT_PATTERN="a trial file is required" expect_error "no file" config show
EXPECT_RC=2 EXPECT_PATTERN="unexpected argument" expect_error "two files" config check "$T/sweep/trial.yaml" "$T/other.yaml"
EXPECT_RC=2 EXPECT_PATTERN="--set wants KEY=VALUE, got 'train.lr'" expect_error "--set without =" config show "$T/sweep/trial.yaml" --set train.lr
EXPECT_RC=2 EXPECT_PATTERN="--set wants KEY=VALUE, got 'train.lr' \(did you mean --set train.lr=3e-3\?\)" \
  expect_error "--set KEY VALUE" config check "$T/sweep/trial.yaml" --set train.lr 3e-3
EXPECT_RC=2 EXPECT_PATTERN="--set train.lrr: unknown key" expect_error "--set unknown key" config show "$T/sweep/trial.yaml" --set train.lrr=1
EXPECT_RC=2 EXPECT_PATTERN="--set train.lr: 'fast' is not a number" expect_error "--set bad value" config check "$T/sweep/trial.yaml" --set train.lr=fast
EXPECT_RC=2 EXPECT_PATTERN="option '--set' needs a value" expect_error "--set missing value" config show "$T/sweep/trial.yaml" --set
EXPECT_RC=2 EXPECT_PATTERN="unknown command 'lorasweep config frob'" expect_error "unknown subcommand" config frob
EXPECT_RC=2 EXPECT_PATTERN="unexpected argument" expect_error "doc with argument" config doc extra

finish
