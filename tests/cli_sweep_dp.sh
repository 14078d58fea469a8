#!/usr/bin/env bash
# cli_sweep_dp.sh LORASWEEP SHARED_DIR: data-parallel trials in a real sweep on the tiny preset.
# `mpirun -np 3` with train.ranks_per_trial 2 (rank 0 schedules, one group of 2 trains) completes
# a grid whose results equal the same grid at ranks_per_trial 1 (2 workers alone) to a tolerance
# (the group sums its two shares' gradients in another order than one process: rounding only);
# only the group's leader writes (one directory per trial, one set of rows); a signal stop
# checkpoints the group's trial and a rerun finishes it; a fourth rank that fills no group stays
# idle; bad set-ups are refused with one line.
source "$(dirname "$0")/cli_lib.sh"
TOK=$SHARED/qwen/tokenizer.json
[ -f "$TOK" ] || [ -z "${LS_TOKENIZER:-}" ] || TOK=$LS_TOKENIZER
need_shared "$TOK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=detect_leaks=0 # as cli_sweep_run.sh: Open MPI's leaks, the slow unwinder

"$LS" model init --preset tiny --out "$T/tiny" --tokenizer "$TOK" >/dev/null || { echo "FAIL model init"; exit 1; }
"$LS" data generate --out "$T/lv.h5" --seed 5 >/dev/null || { echo "FAIL data generate"; exit 1; }
grid() { # grid FILE RANKS_PER_TRIAL [EXTRA_AXES]: 2 trials of 16 steps, 2 windows per step
  cat >"$1" <<YAML
name: ci-dp
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 32, batch_size: 2, max_steps: 16, lr: 1.0e-3, eval_every: 4, val_max_windows: 3,
          checkpoint_every: 4, ranks_per_trial: $2, threads: 1}
  eval: {systems: 1, samples: 1, greedy: true, forecast_steps: 2}
grid: {train.lr: [1.0e-3, 1.0e-2]${3:-}}
YAML
}
grid "$T/one.yaml" 1
grid "$T/two.yaml" 2
mpirun --oversubscribe -np 3 "$LS" sweep run "$T/one.yaml" --out "$T/one/s.h5" --quiet || bad "sweep at ranks_per_trial 1"
if mpirun --oversubscribe -np 3 "$LS" sweep run "$T/two.yaml" --out "$T/two/s.h5" 2>"$T/two.err"; then
  ok "sweep with one group of 2 ranks: $(grep -o 'data parallel: .*' "$T/two.err" | head -1)"
else bad "sweep at ranks_per_trial 2: $(tail -3 "$T/two.err")"; fi
grep -q "started on rank 1" "$T/two.err" && ! grep -q "started on rank 2" "$T/two.err" \
  && ok "rank 0 hands trials to the group's leader only" || bad "who started: $(grep started "$T/two.err")"
[ "$(ls "$T/two/s.trials" | wc -l)" = 2 ] && ok "one directory per trial" || bad "trial dirs: $(ls "$T/two/s.trials")"

# Results: matched by learning rate (ranks_per_trial is part of the trial id, so ids differ).
if $PY - "$T/one/s.h5" "$T/two/s.h5" "$T/one/s.trials" "$T/two/s.trials" <<'PY'
import sys, os, json, struct, h5py, numpy as np
TOL = 1e-5  # relative: rounding differences only (observed 8e-8 on the CI machine)
def trials(path):
    f = h5py.File(path, "r"); t = f["trials"]
    return f, t, {float(lr): i for i, lr in enumerate(t["lr"][:])}
fa, a, la = trials(sys.argv[1]); fb, b, lb = trials(sys.argv[2])
assert sorted(la) == sorted(lb) == [1e-3, 1e-2], (la, lb)
assert (a["status"][:] == 2).all() and (b["status"][:] == 2).all(), (a["status"][:], b["status"][:])
worst = 0.0
for lr in la:
    i, j = la[lr], lb[lr]
    assert a["steps"][i] == b["steps"][j] == 16
    for k in ("final_train_loss", "final_val_loss"):
        x, y = float(a[k][i]), float(b[k][j])
        worst = max(worst, abs(x - y) / abs(x)); assert abs(x - y) <= TOL * abs(x), (k, lr, x, y)
    ca, cb = fa["curves"]["train_loss"][i, :16], fb["curves"]["train_loss"][j, :16]
    assert np.all(np.abs(ca - cb) <= TOL * np.abs(ca)), (lr, ca, cb)
    assert np.isfinite(b["mse_both"][j]), "the leader forecast"
def tensors(path):  # safetensors: 8-byte header length, JSON header, raw data
    raw = open(path, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; head = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in head.items() if k != "__metadata__"}
ida = {float(a["lr"][i]): a["id"][i].decode() for i in range(2)}
idb = {float(b["lr"][i]): b["id"][i].decode() for i in range(2)}
wa = 0.0
for lr in la:
    ta = tensors(os.path.join(sys.argv[3], ida[lr], "adapter/adapter_model.safetensors"))
    tb = tensors(os.path.join(sys.argv[4], idb[lr], "adapter/adapter_model.safetensors"))
    assert ta.keys() == tb.keys()
    for k in ta:
        d = float(np.max(np.abs(ta[k] - tb[k]))) if ta[k].size else 0.0
        wa = max(wa, d); assert d <= 5e-6, (lr, k, d)  # observed 3e-7
print("ranks_per_trial 2 vs 1: losses within %.2g relative, adapters within %.2g" % (worst, wa))
PY
then ok "2 ranks per trial give the results of 1 rank per trial (tolerance)"; else bad "results differ"; fi

# A stop reaches the group: SIGUSR1 (Slurm's warning before a time limit; mpirun forwards it to
# every rank) once a trial has written its first checkpoint; the trial is checkpointed, and a rerun finishes it exactly
# where the uninterrupted group sweep ended. (Rank 0's own stop, --walltime, reaches the group
# through its leader: mpi_sweep's group rounds and mpi_data_parallel check that path.)
mpirun --oversubscribe -np 3 "$LS" sweep run "$T/two.yaml" --out "$T/w/s.h5" 2>"$T/w.err" &
pid=$!
for _ in $(seq 1 600); do # the first checkpoint (step 4 of 16): the group is mid-training
  ls "$T"/w/s.trials/*/checkpoint/state.safetensors >/dev/null 2>&1 && break; sleep 0.05
done
kill -USR1 $pid
wait $pid; rc=$?
[ $rc = 3 ] && grep -q "checkpointed" "$T/w.err" && ok "SIGUSR1 stops the group: exit 3, $(grep -o 'stopped at step [0-9]*' "$T/w.err" | head -1)" \
  || bad "signal stop: rc=$rc $(tail -3 "$T/w.err")"
mpirun --oversubscribe -np 3 "$LS" sweep run "$T/two.yaml" --out "$T/w/s.h5" --quiet || bad "resume after the stop"
$PY - "$T/two/s.h5" "$T/w/s.h5" <<'PY' && ok "stopped and resumed group sweep equals the uninterrupted one, bit for bit" || bad "resumed group sweep differs"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r")["trials"], h5py.File(sys.argv[2], "r")["trials"]
va = {i: (l, v) for i, l, v in zip(a["id"][:], a["final_train_loss"][:], a["final_val_loss"][:])}
vb = {i: (l, v) for i, l, v in zip(b["id"][:], b["final_train_loss"][:], b["final_val_loss"][:])}
assert va == vb and (b["status"][:] == 2).all(), (va, vb)
PY

# 3 workers in groups of 2: the third stays idle, and the sweep still completes.
if mpirun --oversubscribe -np 4 "$LS" sweep run "$T/two.yaml" --out "$T/idle/s.h5" 2>"$T/idle.err" \
  && grep -q "1 worker rank idle" "$T/idle.err" && grep -q "2 done" "$T/idle.err"; then
  ok "a worker that fills no group idles: $(grep -o '1 worker rank idle.*' "$T/idle.err" | head -1)"
else bad "idle rank: $(tail -3 "$T/idle.err")"; fi

# Refused: fewer workers than a group; an axis over the group size; a batch smaller than the group;
# one process asked for 2 ranks.
mpirun --oversubscribe -np 2 "$LS" sweep run "$T/two.yaml" --out "$T/few/s.h5" 2>"$T/few.err" && bad "1 worker ran groups of 2" \
  || { [ "$(grep -c '^lorasweep' "$T/few.err")" = 1 ] && grep -q "only 1 worker rank" "$T/few.err" \
       && ok "too few workers: $(grep '^lorasweep' "$T/few.err")" || bad "too few workers: $(cat "$T/few.err")"; }
grid "$T/axis.yaml" 1 ", train.ranks_per_trial: [1, 2]"
EXPECT_PATTERN="cannot be an axis" expect_error "ranks_per_trial as an axis" sweep plan "$T/axis.yaml"
printf 'model: {path: %s}\ndata: {path: %s}\ntrain: {batch_size: 1, ranks_per_trial: 2}\n' "$T/tiny" "$T/lv.h5" >"$T/small.yaml"
EXPECT_PATTERN="cannot be shared by 2 ranks" expect_error "batch smaller than the group" train "$T/small.yaml" --out "$T/small"
printf 'model: {path: %s}\ndata: {path: %s}\ntrain: {ctx: 32, max_steps: 2, val_max_windows: 2, ranks_per_trial: 2}\neval: {systems: 0}\n' "$T/tiny" "$T/lv.h5" >"$T/t2.yaml"
EXPECT_PATTERN="runs on 1 rank" expect_error "lorasweep train with 2 ranks per trial" train "$T/t2.yaml" --out "$T/t2"
INPUT= "$LS" eval "$T/t2.yaml" --out "$T/t2e" --quiet </dev/null >/dev/null 2>"$T/t2e.err" \
  && ok "lorasweep eval of a ranks_per_trial 2 config runs in one process" || bad "eval: $(cat "$T/t2e.err")"
finish
