#!/usr/bin/env bash
# cli_sweep_resume.sh LORASWEEP SHARED_DIR: a sweep under a FLOPS budget that binds, cut short at
# several exact points (kill -9 of the scheduler right after the N-th trial is journalled done,
# and a clean stop right after a trial starts: LS_FAULT fault sites, no sleeps) and resumed each
# time, must run exactly the trials, skip exactly the trials and pick exactly the winners of the
# uninterrupted sweep: compared trial by trial (status, stage, skip reason, losses, forecast
# metrics, FLOPS) and adapter by adapter.
source "$(dirname "$0")/cli_lib.sh"
source "$(dirname "$0")/sweep_lib.sh"
# Three stages; the budget admits all of lr_rank, part of ctx and none of final (each stage is
# planned when it starts, from what the earlier ones spent).
cat >"$T/grid.yaml" <<YAML
name: ci-budget-resume
budget_flops: 1.0e12
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 6, lr: 1.0e-3, eval_every: 2, val_max_windows: 4, checkpoint_every: 2}
  eval: {systems: 1, samples: 2}
stages:
  - name: lr_rank
    grid: {train.lr: [1.0e-3, 3.0e-3, 1.0e-2], lora.rank: [2, 4]}
  - name: ctx
    select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}
    grid: {train.ctx: [48, 64, 96]}
  - name: final
    select: {from: ctx, metric: final_val_loss, keep: [train.lr, lora.rank, train.ctx]}
    grid: {train.max_steps: [10]}
YAML


$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/ref/s.h5" 2>"$T/ref.err" || { bad "reference sweep: $(tail -3 "$T/ref.err")"; finish; }
ref_skipped=$(journal_count "$T/ref/s.h5.journal" 7)
[ "$ref_skipped" -ge 2 ] && ok "the budget binds: $ref_skipped trials skipped in the uninterrupted sweep" \
  || bad "the budget does not bind: $ref_skipped skipped"

# run NAME LS_FAULT WANT_RC WANT_DONE: one cut-short run; WANT_RC kill = killed by the fault (not
# 0, 1 or 3); WANT_DONE: trials the journal must have done by then (proves where it stopped).
run() {
  LS_FAULT=$2 $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/k/s.h5" >>"$T/k.err" 2>&1; local rc=$?
  local done; done=$(journal_count "$T/k/s.h5.journal" 5)
  local why=""
  case $3 in
    kill) { [ $rc = 0 ] || [ $rc = 1 ] || [ $rc = 3 ]; } && why="exit $rc: the fault did not kill it" ;;
    *) [ $rc = "$3" ] || why="exit $rc, want $3" ;;
  esac
  [ -z "$why" ] && [ "$done" != "$4" ] && why="$done trials done, want $4"
  if [ -z "$why" ]; then ok "$1: exit $rc with $done trials done"; else bad "$1: $why; $(tail -3 "$T/k.err")"; fi
}
run "killed after the 2nd trial of lr_rank" trial_done:2 kill 2
run "killed after the 4th trial of lr_rank (4 of its 6 done)" trial_done:2 kill 4
"$LS" report "$T/k/s.h5" >"$T/k.report" 2>&1
grep -q "stage ctx: not started yet: stage lr_rank has no winner while 2 of its trials are unfinished" "$T/k.report" \
  && ok "report: the next stage waits for the unfinished one" || bad "report of the cut sweep: $(head -12 "$T/k.report")"
run "stopped cleanly as the first trial of ctx starts" trial_start:3:stop 3 6
run "killed after the trial of ctx finishes" trial_done:1 kill 7
run "the rest" "" 0 7
grep -q "skipped: estimated" "$T/k.err" && ok "a skipped trial has a log line of its own" || bad "no skip line in the log"
grep "trial .* done: " "$T/k.err" | grep -qE "\| ETA [0-9]+s$" && ok "event lines carry the ETA" || bad "no ETA in the log lines"
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/k/s.h5" 2>"$T/again.err"
best=$(grep -m1 "stage lr_rank" "$T/again.err" | sed 's/.*best val \([^ ]*\).*/\1/')
[ "$best" != "-" ] && [ -n "$best" ] && ok "a rerun's best val counts the trials done before: $best" || bad "best val on rerun: $(head -2 "$T/again.err")"

if same_trials "$T/ref/s.h5" "$T/k/s.h5" && $PY - "$T/ref/s.trials" "$T/k/s.trials" <<'PY'
import sys, os, filecmp
ran = [d for d in os.listdir(sys.argv[1]) if os.path.exists(os.path.join(sys.argv[1], d, "adapter"))]
for d in ran:
    assert filecmp.cmp(os.path.join(sys.argv[1], d, "adapter/adapter_model.safetensors"),
                       os.path.join(sys.argv[2], d, "adapter/adapter_model.safetensors"), shallow=False), d
print("the same trials, skips and rows; %d adapters bit for bit" % len(ran))
PY
then ok "cut short four times and resumed: the same trials, skips, winners and metrics"
else bad "the resumed sweep differs from the uninterrupted one"; fi

# Failed trials are kept as failed until --retry-failed runs them again (a new attempt each).
sed -e 's/^budget_flops.*//' -e 's/^name: .*/name: ci-retry/' "$T/grid.yaml" | head -n 11 >"$T/retry.yaml"
LS_FAULT=trial_run:1:fail $MPIRUN "$LS" sweep run "$T/retry.yaml" --out "$T/r/s.h5" --quiet 2>"$T/r.err"; rc=$?
failed=$(journal_count "$T/r/s.h5.journal" 6)
[ $rc = 1 ] && [ "$failed" -ge 1 ] && grep -q "add --retry-failed" "$T/r.err" \
  && ok "failures recorded, exit 1, the summary says how to retry: $(grep '^lorasweep sweep' "$T/r.err")" \
  || bad "failed trials: rc=$rc failed=$failed $(cat "$T/r.err")"
$MPIRUN "$LS" sweep run "$T/retry.yaml" --out "$T/r/s.h5" 2>"$T/r2.err"; rc=$?
[ $rc = 1 ] && ! grep -q started "$T/r2.err" && ok "a plain rerun leaves failed trials alone" || bad "plain rerun: rc=$rc $(cat "$T/r2.err")"
$MPIRUN "$LS" sweep run "$T/retry.yaml" --out "$T/r/s.h5" --retry-failed 2>"$T/r3.err"; rc=$?
started=$(grep -c "started on rank" "$T/r3.err")
[ $rc = 0 ] && [ "$started" = "$failed" ] && [ "$(journal_count "$T/r/s.h5.journal" 5)" = 6 ] \
  && ok "--retry-failed runs the $failed failed trials again, and only them: $(grep '^lorasweep sweep' "$T/r3.err")" \
  || bad "--retry-failed: rc=$rc started=$started $(cat "$T/r3.err")"

# A grid may grow on its results (values added to an axis, a stage added): only the new trials run.
sed -e 's/grid: {train.lr: \[1.0e-3, 3.0e-3, 1.0e-2\]/grid: {train.lr: [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]/' "$T/retry.yaml" >"$T/grown.yaml"
cat >>"$T/grown.yaml" <<'YAML'
  - name: ctx
    select: {from: lr_rank, metric: final_val_loss, keep: [train.lr, lora.rank]}
    grid: {train.ctx: [48, 64]}
YAML
$MPIRUN "$LS" sweep run "$T/grown.yaml" --out "$T/r/s.h5" 2>"$T/g.err"; rc=$?
started=$(grep -c "started on rank" "$T/g.err")
[ $rc = 0 ] && [ "$started" = 3 ] && grep -q "the grid grew" "$T/g.err" && [ "$(journal_count "$T/r/s.h5.journal" 5)" = 9 ] \
  && ok "a grown grid runs only its 3 new trials: $(grep '^lorasweep sweep' "$T/g.err")" || bad "grown grid: rc=$rc started=$started $(tail -3 "$T/g.err")"
$PY - "$T/r/s.h5" <<'PY' && ok "the results file records the grown grid" || bad "the results file kept the old grid"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert b"3.0e-2" in f["grid"][()] and len(f["trials"]["id"]) == 9, f["grid"][()]
PY
EXPECT_PATTERN="stage ctx was removed.*another --out" expect_error "a grid that shrank is refused" sweep run "$T/retry.yaml" --out "$T/r/s.h5" --ranks 3
# The data changed under a sweep: refused before anything runs (an unfinished trial must not go on on other data).
cp "$T/lv.h5" "$T/lv2.h5"
sed -e 's/^name: .*/name: ci-data/' -e "s/path: lv.h5/path: lv2.h5/" -e "s/max_steps: 6/max_steps: 2/" "$T/retry.yaml" >"$T/data.yaml"
$MPIRUN "$LS" sweep run "$T/data.yaml" --out "$T/d/s.h5" --quiet 2>/dev/null || bad "data sweep"
"$LS" data generate --out "$T/lv2.h5" --seed 6 >/dev/null
EXPECT_PATTERN="data.path .*lv2.h5 changed since" expect_error "a resumed sweep on changed data is refused" sweep run "$T/data.yaml" --out "$T/d/s.h5" --ranks 3

# Ctrl-C is a stop (exit 3), not a failure: `sweep run --ranks 3` starts mpirun itself and turns
# the first SIGINT into a clean stop. The signal is sent once a trial has started (journal).
"$LS" sweep run "$T/retry.yaml" --out "$T/i/s.h5" --ranks 3 >"$T/i.err" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f "$T/i/s.h5.journal" ] && [ "$(journal_count "$T/i/s.h5.journal" 2)" -ge 1 ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
[ $rc = 3 ] && [ "$(journal_count "$T/i/s.h5.journal" 5)" -lt 6 ] && grep -q "stopped: run the same command" "$T/i.err" \
  && ok "Ctrl-C under --ranks: a clean stop, exit 3" || bad "Ctrl-C under --ranks: rc=$rc $(tail -5 "$T/i.err")"
"$LS" sweep run "$T/retry.yaml" --out "$T/i/s.h5" --ranks 3 --quiet 2>"$T/i2.err" && grep -q "6 done" "$T/i2.err" \
  && ok "and the same command finishes it" || bad "resume after Ctrl-C: $(cat "$T/i2.err")"
# The report shows every key that varies between trials: an alpha axis is not two identical rows.
sed -e 's/^name: .*/name: ci-alpha/' -e 's/max_steps: 6/max_steps: 2/' -e 's/grid: {train.lr: .*/grid: {lora.alpha: [4.0, 16.0]}/' \
  "$T/retry.yaml" >"$T/alpha.yaml"
$MPIRUN "$LS" sweep run "$T/alpha.yaml" --out "$T/al/s.h5" --quiet 2>/dev/null || bad "alpha sweep"
"$LS" report "$T/al/s.h5" >"$T/al.txt" 2>&1
"$LS" report "$T/al/s.h5" --format csv >"$T/al.csv" 2>&1
if grep -q "lora.alpha" "$T/al.txt" && $PY - "$T/al.csv" "$T/al/s.h5" <<'PY'
import csv, sys, subprocess
rows = list(csv.DictReader(open(sys.argv[1])))
assert sorted(float(r["lora.alpha"]) for r in rows) == [4.0, 16.0], rows
PY
then ok "report: the lora.alpha axis is a column of the table and the CSV"; else bad "report without lora.alpha: $(cat "$T/al.txt")"; fi
EXPECT_PATTERN="drop it" OMPI_COMM_WORLD_SIZE=3 expect_error "--ranks under mpirun" sweep run "$T/retry.yaml" --ranks 3
finish
