#!/usr/bin/env bash
# cli_sweep_walltime.sh LORASWEEP SHARED_DIR: dispatch that respects the time limit, with real
# ranks. A sweep of two shapes (ctx 64 and 48) and an ASHA stage runs under a --walltime shorter
# than its work, again and again, as a requeued batch job would: each run ends with exit 3 until
# the sweep is complete (exit 0); across all runs, no trial or rung segment started after the
# first trial of its shape finished is cut short by the deadline (the journal says how each one
# ended), each trial is done once, stage 1 equals an uninterrupted sweep bit for bit, and the time
# model (the journal's cost records) is what carries over. `sweep plan --walltime` uses the same
# model. The test runs alone (RUN_SERIAL): it times things.
source "$(dirname "$0")/cli_lib.sh"
source "$(dirname "$0")/sweep_lib.sh"
# Under the sanitizers (LS_TEST_SAMPLE=1) a smaller sweep: one learning rate, two ASHA configurations.
if [ "${LS_TEST_SAMPLE:-0}" = 1 ]; then lrs="[1.0e-3]" asha_lrs="[2.0e-3, 6.0e-3]" min_steps=10 rungs="{10}" enough=2
else lrs="[1.0e-3, 3.0e-3]" asha_lrs="[2.0e-3, 4.0e-3, 6.0e-3, 8.0e-3]" min_steps=5 rungs="{5, 10}" enough=4; fi
cat >"$T/grid.yaml" <<YAML
name: ci-walltime
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 20, lr: 1.0e-3, eval_every: 10, val_max_windows: 4, checkpoint_every: 5}
  eval: {systems: 1, samples: 2}
stages:
  - name: lr
    grid: {train.lr: $lrs, train.ctx: [64, 48]}
  - name: asha
    select: {from: lr, metric: final_val_loss, keep: [train.ctx]}
    grid: {train.lr: $asha_lrs}
    early_stopping: {type: asha, min_steps: $min_steps, eta: 2}
YAML
# The reference, uninterrupted: its wall time sets the limit (the same share of the work on any
# machine or build), and stage 1 must come out the same.
t0=$(date +%s.%N)
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/ref/s.h5" --quiet 2>"$T/ref.err" && ok "the uninterrupted sweep" \
  || bad "the uninterrupted sweep: $(tail -3 "$T/ref.err")"
ref_s=$($PY -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)")
limit=$($PY -c "import sys; print(max(8, round(0.4 * float(sys.argv[1]))))" "$ref_s")
echo "uninterrupted: ${ref_s%.*} s; each run below: --walltime $limit"

# `sweep plan --walltime` from the reference's measurements: at least 2 runs of this limit
"$LS" sweep plan "$T/grid.yaml" --walltime "$limit" --workers 2 --costs "$T/ref/s.h5" >"$T/plan.out" 2>&1
runs_planned=$(sed -n 's/.*time limit: .* needs \(at most \)\{0,1\}\([0-9]*\) runs\{0,1\} of.*/\2/p' "$T/plan.out")
[ -n "$runs_planned" ] && [ "$runs_planned" -ge 2 ] && ok "sweep plan --walltime $limit: $(grep 'time limit' "$T/plan.out")" \
  || bad "sweep plan --walltime: $(cat "$T/plan.out")"
grep -q "time limit: .*no run of ci-walltime has been measured" <("$LS" sweep plan "$T/grid.yaml" --walltime "$limit" 2>&1) \
  && ok "sweep plan --walltime without measurements says so" || bad "sweep plan without measurements"

runs=0 rc=3
while [ $rc = 3 ] && [ $runs -lt 10 ]; do
  runs=$((runs + 1))
  $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/w/s.h5" --walltime "$limit" >"$T/run$runs.err" 2>&1; rc=$?
done
[ $rc = 0 ] && [ $runs -ge 2 ] && ok "the sweep ended in $runs runs of ${limit}s (exit 3 each, then 0; planned: $runs_planned)" \
  || bad "runs: $runs, last exit $rc: $(tail -3 "$T/run$runs.err")"
# A run that nothing more fitted ended early, by the model, instead of idling to the deadline
early=$(grep -l "time limit: nothing left fits" "$T"/run*.err | wc -l)
[ "$early" -ge 1 ] && ok "$early of $runs runs stopped early, nothing left fitting: $(grep -ho 'time limit: nothing left fits in the [0-9]*s' "$T"/run*.err | head -1)" \
  || bad "no run stopped by the time model: $(grep -h 'time limit' "$T"/run*.err)"

# The journal, record by record: how every run of a trial or segment ended, and whether a trial
# of its shape (ctx) had finished before it started.
if $PY - "$T/w/s.h5" "$rungs" "$enough" <<'PY'
import struct, sys, h5py
path = sys.argv[1]
t = h5py.File(path, "r")["trials"]
ids = [int(x.decode(), 16) for x in t["id"][:]]  # hex text in the file, a u64 in the journal
ctx = dict(zip(ids, t["ctx"][:].tolist()))
status = dict(zip(ids, t["status"][:].tolist()))
stage = dict(zip(ids, t["stage"][:].tolist()))
d = open(path + ".journal", "rb").read()
at, recs = 8, []
while at + 8 <= len(d):
    n, = struct.unpack_from("<I", d, at)
    p = d[at + 8: at + 8 + n]
    typ, = struct.unpack_from("<B", p, 0)
    tid, = struct.unpack_from("<Q", p, 10)
    step = struct.unpack_from("<i", p, 18)[0] if typ == 4 else None
    recs.append((typ, tid, step))
    at += 8 + n
rungs = eval(sys.argv[2])  # asha's rungs below max_steps 20: a pause there is a rung, not a cut
finished_shapes, open_runs, checked, cut_first, costs = set(), {}, 0, 0, 0
for typ, tid, step in recs:
    if typ == 2:    # start: was a trial of its shape finished already?
        open_runs[tid] = ctx[tid] in finished_shapes
    elif typ in (4, 5, 6) and tid in open_runs:
        after_first = open_runs.pop(tid)
        cut = typ == 6 or (typ == 4 and not (stage[tid] == 1 and step in rungs))
        assert typ != 6, ("a trial failed", hex(tid))
        if after_first:
            checked += 1
            assert not cut, ("cut by the deadline after the first of its shape finished", hex(tid), step)
        elif cut:
            cut_first += 1
        if typ == 5:
            finished_shapes.add(ctx[tid])
    elif typ == 9:
        costs += 1
done = [tid for typ, tid, _ in recs if typ == 5]
assert len(done) == len(set(done)), "a trial done twice"
assert all(status[i] in (2, 5) for i in status), status  # done, or stopped early by ASHA
assert checked >= int(sys.argv[3]), ("too few runs started after their shape was measured to tell anything", checked)
assert costs > 0
print("%d runs of trials/segments started after the first of their shape finished, none cut; %d first-of-shape "
      "runs cut; %d cost records" % (checked, cut_first, costs))
PY
then ok "the journal: nothing started after the first of its shape finished was cut"; else bad "the journal's runs"; fi
$PY - "$T/ref/s.h5" "$T/w/s.h5" <<'PY' && ok "stage 1 equals the uninterrupted sweep bit for bit" || bad "stage 1 differs"
import sys, h5py, math
def rows(path):
    t = h5py.File(path, "r")["trials"]
    keys = ("status", "steps", "final_train_loss", "final_val_loss", "mse_both", "flops_total")
    return {i: tuple(t[k][n] for k in keys) for n, i in enumerate(t["id"][:]) if t["stage"][n] == 0}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert a == b, (a, b)
PY
# Curves of the ASHA stage's trials, paused and resumed run after run: every validation from
# step 0 through each rung a trial reached, and every training step's loss (a resumed run once
# wrote its points over the earlier ones, so trials stopped early lost the start of their curve).
$PY - "$T/w/s.h5" "$rungs" <<'PY' && ok "paused-and-resumed trials keep their whole curves" || bad "curves of resumed trials"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t, c = f["trials"], f["curves"]
rungs = sorted(eval(sys.argv[2]))
n = 0
for row in range(len(t["id"])):
    if t["stage"][row] != 1 or t["status"][row] not in (2, 5):
        continue
    steps = t["steps"][row]
    vs = [int(x) for x in c["val_step"][row] if x >= 0]
    want = [0] + [r for r in rungs if r <= steps] + ([20] if steps == 20 else [])
    assert all(w in vs for w in want), (t["id"][row], steps, vs, want)
    assert np.isfinite(c["train_loss"][row, :steps]).all(), (t["id"][row], c["train_loss"][row, :steps])
    n += 1
assert n >= 2, n
print("%d trials of the ASHA stage" % n)
PY
# The model carried over: run 2 predicted from run 1's measurements before it had any of its own.
cat "$T"/run[2-9].err 2>/dev/null | grep -qE "finish (~|after )[0-9]" && ok "later runs show the expected finish from the journal's model" \
  || bad "run 2 has no model-based expected finish: $(head -4 "$T/run2.err")"
# Under Slurm without --walltime: the job's end (SLURM_JOB_END_TIME) less --stop-margin. A job
# with less time left than the margin starts nothing and stops at once (exit 3: requeue).
now=$(date +%s)
SLURM_JOB_END_TIME=$((now + 20)) $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/late/s.h5" --stop-margin 60 \
  >"$T/late.err" 2>&1; rc=$?
[ $rc = 3 ] && [ "$(journal_count "$T/late/s.h5.journal" 2)" = 0 ] && grep -q "time limit: the Slurm job ends in" "$T/late.err" \
  && ok "SLURM_JOB_END_TIME 20 s away, --stop-margin 60: nothing started, exit 3" \
  || bad "SLURM_JOB_END_TIME: exit $rc, $(journal_count "$T/late/s.h5.journal" 2) starts: $(grep -h 'time limit\|^lorasweep' "$T/late.err")"
SLURM_JOB_END_TIME=$((now + 900)) $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/w/s.h5" >"$T/end.err" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "time limit: the Slurm job ends in [0-9]*s; work stops 120s before it" "$T/end.err" \
  && ok "SLURM_JOB_END_TIME read: $(grep -o 'time limit: the Slurm job ends in [0-9]*s; work stops 120s before it' "$T/end.err")" \
  || bad "SLURM_JOB_END_TIME not read: exit $rc $(grep -h 'time limit\|^lorasweep' "$T/end.err")"
SLURM_JOB_END_TIME=soon $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/w/s.h5" >"$T/bad.err" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "warning: SLURM_JOB_END_TIME 'soon' is not a unix time" "$T/bad.err" \
  && ok "a SLURM_JOB_END_TIME that is not a time: one warning, no limit" || bad "SLURM_JOB_END_TIME=soon: exit $rc $(cat "$T/bad.err")"
finish
