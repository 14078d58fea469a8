#!/usr/bin/env bash
# cli_sweep_run.sh LORASWEEP SHARED_DIR: `mpirun -np 3 lorasweep sweep run` end to end on the tiny
# preset: two stages, the results file readable by h5py, a rerun runs nothing, another grid is
# refused, and a sweep killed with kill -9 (mpirun and every rank, in the middle of trials)
# resumes to exactly the results of an uninterrupted one (each kill aimed at journal records).
source "$(dirname "$0")/cli_lib.sh"
source "$(dirname "$0")/sweep_lib.sh"
grid() { # grid FILE MAX_STEPS
  cat >"$1" <<YAML
name: ci-sweep
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: $2, lr: 1.0e-3, eval_every: 2, val_max_windows: 4, checkpoint_every: 2}
  eval: {systems: 1, samples: 2}
stages:
  - name: lr
    grid: {train.lr: [1.0e-3, 3.0e-3, 1.0e-2]}
  - name: ctx
    select: {from: lr, metric: final_val_loss, keep: [train.lr]}
    grid: {train.ctx: [48]}
YAML
}
grid "$T/grid.yaml" 4
if $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/a/sweep.h5" --quiet; then ok "sweep runs"; else bad "sweep run failed"; fi
if $PY - "$T/a/sweep.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["trials"]
status = t["status"][:]
assert len(status) == 4 and (status == 2).all(), status              # 3 + 1 trials, all done
assert sorted(t["stage"][:].tolist()) == [0, 0, 0, 1]
assert np.isfinite(t["final_val_loss"][:]).all() and (t["flops_total"][:] > 0).all()
best = int(np.argmin(np.where(t["stage"][:] == 0, t["final_val_loss"][:], np.inf)))
assert t["ctx"][3] == 48 and t["lr"][3] == t["lr"][best], (t["lr"][:], best)  # the winner's lr went on
assert f["curves"]["train_loss"].shape[0] == 4 and np.isfinite(f["curves"]["train_loss"][0, :4]).all()
print("4 trials done; stage 2 took lr %.0e from the best of stage 1" % t["lr"][3])
PY
then ok "results file: two stages, the winner carried on"; else bad "results file"; fi
[ "$(ls "$T/a/sweep.trials" | wc -l)" = 4 ] && ok "one directory per trial" || bad "trial directories: $(ls "$T/a/sweep.trials")"

start=$(date +%s.%N)
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/a/sweep.h5" 2>"$T/rerun.err" && grep -q "4 done" "$T/rerun.err" \
  && ! grep -q "started" "$T/rerun.err" && ok "a rerun runs nothing: $(tail -1 "$T/rerun.err")" || bad "rerun: $(cat "$T/rerun.err")"

# A stop (SIGTERM, as Slurm's or the sweep's own timer sends) right after the last trial's journal
# record cut nothing short: the sweep is complete, exit 0 (it exited 3 once, and sweep.sbatch
# requeued a finished sweep). Right after the first stage's last trial it is a stop: exit 3.
LS_FAULT=trial_done:4:stop $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/late/sweep.h5" --quiet 2>"$T/late.err"; rc=$?
[ $rc = 0 ] && same_trials "$T/a/sweep.h5" "$T/late/sweep.h5" && ok "a stop after the last trial: exit 0, the sweep complete" \
  || bad "a stop after the last trial: exit $rc $(tail -2 "$T/late.err")"
LS_FAULT=trial_done:3:stop $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/mid/sweep.h5" --quiet 2>"$T/mid.err"; rc=$?
[ $rc = 3 ] && [ "$(journal_count "$T/mid/sweep.h5.journal" 5)" = 3 ] && ok "a stop after stage 1's last trial: exit 3, stage 2 left" \
  || bad "a stop after stage 1: exit $rc $(tail -2 "$T/mid.err")"

# mpi_error NAME GRID OUT PATTERN: under mpirun, a non-zero exit and one "lorasweep" line matching
mpi_error() {
  if $MPIRUN "$LS" sweep run "$2" --out "$3" 2>"$T/mpi.err"; then bad "$1: it ran"
  elif [ "$(grep -c '^lorasweep' "$T/mpi.err")" = 1 ] && grep -qE "$4" "$T/mpi.err"; then ok "$1: $(grep '^lorasweep' "$T/mpi.err")"
  else bad "$1: $(cat "$T/mpi.err")"; fi
}
grid "$T/other.yaml" 6
mpi_error "another grid on the same results" "$T/other.yaml" "$T/a/sweep.h5" "another grid"
expect_error "sweep run without mpirun" sweep run "$T/grid.yaml" --out "$T/x/s.h5"
expect_error "sweep run: no grid" sweep run
printf 'name: bad\nbase: {train: {lr: -1}}\ngrid: {lora.rank: [2]}\n' >"$T/bad.yaml"
mpi_error "a bad grid" "$T/bad.yaml" "$T/bad/s.h5" "out of range"
# every trial's files are checked before any work: one line naming the key, nothing created
sed 's|data: {path: lv.h5}|data: {path: none.h5}|' "$T/grid.yaml" >"$T/nodata.yaml"
mpi_error "a missing data file, before any work" "$T/nodata.yaml" "$T/nodata/s.h5" "nodata.yaml: data.path: none.h5: No such file or directory$"
check "a missing data file: no results, no journal" "no" "$([ -e "$T/nodata" ] && echo yes || echo no)"

# A failing trial is recorded and the sweep goes on; the budget skips what it cannot afford. The
# failure: weights that cannot be read (found at the start, read only by the trial).
mkdir -p "$T/broken" && cp "$T/tiny/config.json" "$T/tiny/tokenizer.json" "$T/broken/" && echo junk >"$T/broken/model.safetensors"
cat >"$T/budget.yaml" <<YAML
name: ci-budget
budget_flops: 2.2e11  # two of the four trials (estimated 1.05e11 each, sampling at its longest)
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 4, lr: 1.0e-3, eval_every: 2, val_max_windows: 4}
  eval: {systems: 1, samples: 2}
grid:
  train.lr: [1.0e-3, 3.0e-3]
  model.path: [tiny, broken]
YAML
$MPIRUN "$LS" sweep run "$T/budget.yaml" --out "$T/b/sweep.h5" 2>"$T/b.err"; rc=$?
[ $rc = 1 ] && grep -q "1 done, 1 failed, 2 skipped" "$T/b.err" && ok "a failed trial and budget skips: exit 1, $(grep "^lorasweep sweep" "$T/b.err")" \
  || bad "failure/budget: rc=$rc $(tail -2 "$T/b.err")"
$PY - "$T/b/sweep.h5" <<'PY' && ok "failed and skipped trials keep their reasons" || bad "reasons in the results file"
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
st, err = list(t["status"][:]), [e.decode() for e in t["error"][:]]
assert sorted(st) == [2, 3, 4, 4], st
assert any("broken" in e for s, e in zip(st, err) if s == 3), err
assert all("budget" in e for s, e in zip(st, err) if s == 4), err
PY

# Uninterrupted reference, then the same sweep killed with kill -9 twice and resumed.
grid "$T/long.yaml" 10
$MPIRUN "$LS" sweep run "$T/long.yaml" --out "$T/ref/sweep.h5" --quiet || bad "reference sweep"
# Each kill is aimed at the journal: two more validation records than before this run (trials in
# the middle of training), and must find the job still running with trials left to do.
for round in 1 2; do
  seen=$(journal_count "$T/k/sweep.h5.journal" 3)
  setsid $MPIRUN "$LS" sweep run "$T/long.yaml" --out "$T/k/sweep.h5" --quiet 2>>"$T/k.err" &
  pid=$!
  for _ in $(seq 1200); do [ "$(journal_count "$T/k/sweep.h5.journal" 3)" -ge $((seen + 2)) ] && break; sleep 0.1; done
  if kill -9 -- -$pid 2>/dev/null; then killed=1; else killed=0; fi
  wait $pid 2>/dev/null
  # mpirun is reaped, but a killed rank 0 may still be exiting and holding the sweep's lock (the
  # next run would rightly refuse: another sweep holds it): wait until the kernel lets it go
  for _ in $(seq 100); do flock -n "$T/k/sweep.h5.lock" true && break; sleep 0.1; done
  done_now=$(journal_count "$T/k/sweep.h5.journal" 5)
  [ $killed = 1 ] && [ "$done_now" -lt 4 ] && ok "kill -9 $round cut the sweep short ($done_now of 4 trials done)" \
    || bad "kill -9 $round came too late (killed=$killed, $done_now trials done)"
done
$MPIRUN "$LS" sweep run "$T/long.yaml" --out "$T/k/sweep.h5" --quiet 2>>"$T/k.err" && ok "resumed after two kill -9" || bad "resume: $(grep "^lorasweep" "$T/k.err" | tail -3)"
if $PY - "$T/ref/sweep.h5" "$T/k/sweep.h5" "$T/ref/sweep.trials" "$T/k/sweep.trials" <<'PY'
import sys, os, h5py, numpy as np, filecmp
a, b = h5py.File(sys.argv[1], "r")["trials"], h5py.File(sys.argv[2], "r")["trials"]
ia, ib = list(a["id"][:]), list(b["id"][:])
assert sorted(ia) == sorted(ib) and (b["status"][:] == 2).all(), (ia, ib, b["status"][:])
for k in ("final_train_loss", "final_val_loss", "mse_both", "steps"):
    va = dict(zip(ia, a[k][:])); vb = dict(zip(ib, b[k][:]))
    assert all(va[i] == vb[i] for i in ia), (k, va, vb)
for d in os.listdir(sys.argv[3]):  # every trial's adapter bit for bit
    assert filecmp.cmp(os.path.join(sys.argv[3], d, "adapter/adapter_model.safetensors"),
                       os.path.join(sys.argv[4], d, "adapter/adapter_model.safetensors"), shallow=False), d
print("killed twice and resumed: same %d trials, metrics and adapters as the uninterrupted sweep" % len(ia))
PY
then ok "kill -9 and resume equals the uninterrupted sweep"; else bad "kill -9 and resume differs"; fi
finish
