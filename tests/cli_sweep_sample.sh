#!/usr/bin/env bash
# cli_sweep_sample.sh LORASWEEP SHARED_DIR: a sampled and repeated sweep end to end on the tiny
# preset under mpirun: `sweep plan` lists exactly the trials that run; the learning rate drawn
# log-uniformly within its range, each configuration run 3 times with other seeds; the next stage
# starts from the configuration with the lowest MEAN validation loss over its repeats (checked with
# h5py against the results file); the report's mean, standard deviation and n per configuration
# (table, CSV, JSON) agree with numpy's; a budget admits or skips a configuration's repeats
# together; a rerun runs nothing.
source "$(dirname "$0")/cli_lib.sh"
TOK=$SHARED/qwen/tokenizer.json
[ -f "$TOK" ] || [ -z "${LS_TOKENIZER:-}" ] || TOK=$LS_TOKENIZER
need_shared "$TOK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=detect_leaks=0 # as in cli_sweep_run.sh: Open MPI's own leaks
MPIRUN="mpirun --oversubscribe -np 3"

"$LS" model init --preset tiny --out "$T/tiny" --tokenizer "$TOK" >/dev/null || { echo "FAIL model init"; exit 1; }
"$LS" data generate --out "$T/lv.h5" --seed 5 >/dev/null || { echo "FAIL data generate"; exit 1; }
cat >"$T/grid.yaml" <<'YAML'
name: ci-sampled
base:
  model: {path: tiny}
  data: {path: lv.h5}
  train: {ctx: 64, batch_size: 2, max_steps: 4, eval_every: 2, val_max_windows: 4}
  eval: {systems: 1, samples: 2}
stages:
  - name: baseline
    grid: {train.max_steps: [0]}
  - name: lr_rank        # configurations close enough that a lucky seed can beat a better mean
    method: random
    trials: 4
    seed: 3
    repeats: 3
    parameters:
      train.lr: {distribution: log_uniform, min: 1e-2, max: 1.05e-2}
      lora.rank: {values: [4]}
  - name: ctx
    select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}
    repeats: 2
    grid: {train.ctx: [48]}
YAML
"$LS" sweep plan "$T/grid.yaml" --json >"$T/plan.json" || bad "sweep plan"
if $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/s/sweep.h5" --quiet 2>"$T/run.err"; then ok "sampled sweep runs"
else bad "sampled sweep: $(tail -3 "$T/run.err")"; fi

if $PY - "$T/s/sweep.h5" "$T/plan.json" <<'PY'
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["trials"]
ids = [x.decode() for x in t["id"][:]]
stage, status, lr, rank, ctx = t["stage"][:], t["status"][:], t["lr"][:], t["rank"][:], t["ctx"][:]
val = t["final_val_loss"][:]
def seeds_of(text):  # (lora.seed, train.seed) of a resolved config's YAML
    found, section = {}, None
    for line in text.splitlines():
        if not line.startswith(" "): section = line.rstrip(":")
        elif line.strip().startswith("seed:"): found[section] = int(line.split(":")[1])
    return found["lora"], found["train"]
seeds = [seeds_of(c.decode()) for c in t["config"][:]]
assert (status == 2).all() and len(ids) == 1 + 12 + 2, (status, ids)
plan = json.load(open(sys.argv[2]))
planned = [x["id"] for x in plan["stages"][1]["trials"]]
assert sorted(planned) == sorted(i for i, s in zip(ids, stage) if s == 1), "the plan listed other trials than ran"
s1 = np.flatnonzero(stage == 1)
assert ((lr[s1] >= 1e-2) & (lr[s1] <= 1.05e-2)).all() and set(rank[s1]) == {4}, (lr[s1], rank[s1])
# configurations: the repeats share lr and rank, and differ in both seeds
groups = {}
for i in s1:
    groups.setdefault((lr[i], rank[i]), []).append(i)
assert len(groups) == 4 and all(len(g) == 3 for g in groups.values()), groups
for g in groups.values():  # each repeat its own seeds, both of them
    assert len({seeds[i][0] for i in g}) == 3 and len({seeds[i][1] for i in g}) == 3, [seeds[i] for i in g]
mean = {k: float(np.mean(val[g])) for k, g in groups.items()}
winner = min(mean, key=mean.get)
single = (lr[s1[np.argmin(val[s1])]], rank[s1[np.argmin(val[s1])]])
s2 = np.flatnonzero(stage == 2)
assert len(s2) == 2 and all((lr[i], rank[i]) == winner and ctx[i] == 48 for i in s2), (winner, lr[s2], rank[s2])
print("the ctx stage started from lr %.4g rank %d: lowest mean val loss %.4f over 3 repeats (%s)" % (
    winner[0], winner[1], mean[winner],
    "the best single trial, %.4f, was lr %.4g's" % (val[s1].min(), single[0]) if single != winner
    else "also the best single trial: this run does not tell the mean from the minimum"))
PY
then ok "the next stage starts from the configuration with the lowest mean over its repeats"; else bad "winner by mean"; fi

# the report: mean, std and n per configuration, as numpy computes them
"$LS" report "$T/s/sweep.h5" >"$T/report.txt" && "$LS" report "$T/s/sweep.h5" --format json >"$T/report.json" &&
  "$LS" report "$T/s/sweep.h5" --format csv --configurations >"$T/configs.csv" || bad "report"
contains "report: the configurations section" "== Configurations by mean final validation loss (over their repeats)" "$(cat "$T/report.txt")"
contains "report: the winner's spread beside the baseline" "repeats (n)" "$(sed -n '/== Best configuration/,/==/p' "$T/report.txt")"
contains "report: the winner's repeats" "val loss by repeat" "$(sed -n '/== Best configuration/,/==/p' "$T/report.txt")"
if $PY - "$T/s/sweep.h5" "$T/report.json" "$T/configs.csv" <<'PY'
import sys, json, csv, h5py, numpy as np
t = h5py.File(sys.argv[1], "r")["trials"]
ids = [x.decode() for x in t["id"][:]]
val = dict(zip(ids, t["final_val_loss"][:]))
rep = json.load(open(sys.argv[2]))
cfgs = {c["id"]: c for c in rep["configurations"]}
assert len(cfgs) == 1 + 4 + 1, list(cfgs)
rows = {r["configuration"]: r for r in csv.DictReader(open(sys.argv[3]))}
assert set(rows) == set(cfgs)
for cid, c in cfgs.items():
    v = np.array([val[i] for i in c["trials"]])
    n = len(v)
    assert c["final_val_loss"]["n"] == n == c["repeats"] == (1 if c["baseline"] else 3 if c["stage"] == "lr_rank" else 2), c
    assert abs(c["final_val_loss"]["mean"] - v.mean()) < 1e-9
    if n > 1:
        assert abs(c["final_val_loss"]["std"] - v.std(ddof=1)) < 1e-9
        assert abs(float(rows[cid]["final_val_loss_std"]) - v.std(ddof=1)) < 1e-6 * max(1, v.std(ddof=1))
    assert int(rows[cid]["n"]) == n and abs(float(rows[cid]["final_val_loss_mean"]) - v.mean()) < 1e-6 * v.mean()
    assert c["trials"][0] == cid  # a configuration's id is its repeat 0's
best = rep["best_configuration"]
trained = [c for c in cfgs.values() if not c["baseline"]]
assert best == min(trained, key=lambda c: c["final_val_loss"]["mean"])["id"], best
per_trial = {x["id"]: (x["configuration"], x["repeat"]) for x in rep["trials"]}
assert all(per_trial[i] == (cid, r) for cid, c in cfgs.items() for r, i in enumerate(c["trials"]) if not c["baseline"])
print("%d configurations: mean, std and n as numpy has them; best %s" % (len(cfgs), best))
PY
then ok "report: mean, std and n of every configuration (JSON, CSV)"; else bad "report statistics"; fi
EXPECT_RC=2 EXPECT_PATTERN="--configurations is for --format csv" expect_error "--configurations without csv" report "$T/s/sweep.h5" --configurations

# a budget that binds inside a stage: a configuration's repeats are admitted or skipped together
# (room for one configuration and a half: the second's three repeats are all skipped, none run)
cat >"$T/budget.yaml" <<'YAML'
name: ci-sampled-budget
base:
  model: {path: tiny}
  data: {path: lv.h5}
  train: {ctx: 64, batch_size: 2, max_steps: 2, eval_every: 2, val_max_windows: 4}
  eval: {systems: 1, samples: 2}
method: random
trials: 2
repeats: 3
parameters:
  train.lr: {distribution: log_uniform, min: 1e-2, max: 1.05e-2}
YAML
est=$("$LS" sweep plan "$T/budget.yaml" --json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["stages"][0]["trials"][0]["flops"])')
sed -i "s/^name: ci-sampled-budget/&\nbudget_flops: $($PY -c "print('%.6g' % (4.5 * $est))")/" "$T/budget.yaml"
$MPIRUN "$LS" sweep run "$T/budget.yaml" --out "$T/b/sweep.h5" --quiet 2>"$T/budget.err" || bad "budget sweep: $(tail -2 "$T/budget.err")"
if $PY - "$T/b/sweep.h5" <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
lr, st, err = t["lr"][:], list(t["status"][:]), [e.decode() for e in t["error"][:]]
by = {}
for i, x in enumerate(lr): by.setdefault(x, []).append(st[i])
assert sorted(sorted(v) for v in by.values()) == [[2, 2, 2], [4, 4, 4]], by  # done together, skipped together
assert all("for 3 repeats" in e for s, e in zip(st, err) if s == 4), err
print("one configuration's 3 repeats done, the other's 3 skipped: " + [e for e in err if e][0])
PY
then ok "the budget admits or skips a configuration's repeats together"; else bad "budget by configuration"; fi

$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/s/sweep.h5" 2>"$T/rerun.err" && grep -q "15 done" "$T/rerun.err" \
  && ! grep -q "started" "$T/rerun.err" && ok "a rerun runs nothing" || bad "rerun: $(cat "$T/rerun.err")"
finish
