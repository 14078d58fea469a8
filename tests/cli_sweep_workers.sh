#!/usr/bin/env bash
# cli_sweep_workers.sh LORASWEEP SHARED_DIR: the workers of a real sweep under mpirun, and what
# happens when one of them dies (kill -9 of a worker, of a data-parallel group's member), keeps
# killing itself on one trial (max_attempts), or hangs (SIGSTOP: the scheduler notices the
# silence); a second sweep on the same results; compute threads taken from the CPU affinity.
# Every signal is aimed at a journal event, and every check asserts that the run was cut short.
source "$(dirname "$0")/cli_lib.sh"
source "$(dirname "$0")/sweep_lib.sh"
grid() { # grid FILE NAME [EXTRA TRAIN KEYS]
  cat >"$1" <<YAML
name: $2
base:
  model: {path: $T/tiny}
  data: {path: $T/lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 8, lr: 1.0e-3, eval_every: 2, val_max_windows: 4, checkpoint_every: 2${3:-}}
  eval: {systems: 1, samples: 2}
grid: {train.lr: [1.0e-3, 3.0e-3, 1.0e-2]}
YAML
}
grid "$T/grid.yaml" ci-workers

# wait_for FILE TYPE N: until the journal has N records of TYPE (at most 2 minutes)
wait_for() { for _ in $(seq 1200); do [ "$(journal_count "$1" "$2")" -ge "$3" ] && return 0; sleep 0.1; done; return 1; }
# rank_pid RANK: the pid of this test's lorasweep process of that MPI rank
rank_pid() {
  for p in $(pgrep -f "lorasweep sweep run $T"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
  done
}

$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/ref/s.h5" --quiet 2>"$T/ref.err" || { bad "reference: $(tail -3 "$T/ref.err")"; finish; }

# 1. kill -9 of one worker once its trial has checkpointed (a validation record): the job ends,
#    and the rerun resumes that trial from its checkpoint as attempt 2.
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/a/s.h5" >"$T/a.err" 2>&1 &
job=$!
wait_for "$T/a/s.h5.journal" 3 2 && pid=$(rank_pid 1) && [ -n "$pid" ] && kill -9 "$pid"
wait $job; rc=$?
done_then=$(journal_count "$T/a/s.h5.journal" 5)
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/a/s.h5" 2>"$T/a2.err"; rc2=$?
if [ $rc != 0 ] && [ $rc != 3 ] && [ "$done_then" -lt 3 ] && [ $rc2 = 0 ] && grep -q "attempt 2)" "$T/a2.err" \
   && same_trials "$T/ref/s.h5" "$T/a/s.h5"; then ok "kill -9 of a worker: the job ended (exit $rc), the rerun resumed as attempt 2, results as undisturbed"
else bad "kill -9 of a worker: rc=$rc done=$done_then rc2=$rc2 $(grep attempt "$T/a2.err" | head -2)"; fi

# 2. kill -9 of a data-parallel group's member (rank 2 of the group 1-2)
grid "$T/dp.yaml" ci-workers-dp ", ranks_per_trial: 2"
sed -i 's/grid: {train.lr: .*/grid: {train.lr: [3.0e-3]}/' "$T/dp.yaml"
$MPIRUN "$LS" sweep run "$T/dp.yaml" --out "$T/dpref/s.h5" --quiet 2>/dev/null || bad "data-parallel reference"
$MPIRUN "$LS" sweep run "$T/dp.yaml" --out "$T/dp/s.h5" >"$T/dp.err" 2>&1 &
job=$!
wait_for "$T/dp/s.h5.journal" 3 2 && pid=$(rank_pid 2) && [ -n "$pid" ] && kill -9 "$pid"
wait $job; rc=$?
done_then=$(journal_count "$T/dp/s.h5.journal" 5)
$MPIRUN "$LS" sweep run "$T/dp.yaml" --out "$T/dp/s.h5" 2>"$T/dp2.err"; rc2=$?
if [ $rc != 0 ] && [ $rc != 3 ] && [ "$done_then" = 0 ] && [ $rc2 = 0 ] && grep -q "attempt 2)" "$T/dp2.err" \
   && same_trials "$T/dpref/s.h5" "$T/dp/s.h5"; then ok "kill -9 of a group member: the job ended (exit $rc), resumed as attempt 2, results as undisturbed"
else bad "kill -9 of a group member: rc=$rc done=$done_then rc2=$rc2 $(tail -2 "$T/dp2.err")"; fi

# 3. A trial that kills its worker every time it starts (a fault site for its id): after
#    max_attempts (3) such crashes it is marked failed instead of looping through every requeue.
victim=$("$LS" sweep plan "$T/grid.yaml" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["stages"][0]["trials"][0]["id"])')
for k in 1 2 3; do
  LS_FAULT="trial@$victim:1:kill" $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/m/s.h5" >"$T/m.err" 2>&1; rc=$?
  { [ $rc = 0 ] || [ $rc = 1 ] || [ $rc = 3 ]; } && bad "run $k with the crashing trial: exit $rc, not killed"
done
LS_FAULT="trial@$victim:1:kill" $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/m/s.h5" 2>"$T/m.err"; rc=$?
[ $rc = 1 ] && grep -q "trial $victim FAILED: gave up after 3 attempts" "$T/m.err" && [ "$(journal_count "$T/m/s.h5.journal" 5)" = 2 ] \
  && ok "a trial that kills its worker: failed after 3 crashed attempts, the others done: $(grep "^lorasweep sweep" "$T/m.err")" \
  || bad "max_attempts: rc=$rc $(grep -v '^\[' "$T/m.err" | tail -3)"

# 4. A worker that stops answering (SIGSTOP): noticed by its silence, the others checkpoint, and
#    the job ends with exit 5 and one line naming the rank and the host; the rerun finishes.
#    The timeout must exceed the longest silent phase of a working rank (a trial's start), which
#    under the sanitizers on a loaded machine took over 4 s: rank 2 was named instead of rank 1.
hang_s=8; [ "${LS_TEST_SAMPLE:-0}" = 1 ] && hang_s=20
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/h/s.h5" --hang-timeout $hang_s >"$T/h.err" 2>&1 &
job=$!
wait_for "$T/h/s.h5.journal" 3 1 && pid=$(rank_pid 1) && [ -n "$pid" ] && kill -STOP "$pid"
wait $job; rc=$?
[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
line=$(grep "^lorasweep: a worker stopped answering" "$T/h.err")
[ $rc = 5 ] && [[ "$line" == *"rank 1 on $(hostname)"* ]] && ok "a hung worker: exit 5, ${line#lorasweep: }" \
  || bad "a hung worker: rc=$rc $(grep -v '^\[' "$T/h.err" | tail -4)"
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/h/s.h5" --quiet 2>"$T/h2.err" && same_trials "$T/ref/s.h5" "$T/h/s.h5" \
  && ok "and the same command then finishes it as undisturbed" || bad "after the hang: $(tail -3 "$T/h2.err")"

# 5. Two sweeps on one results file from two processes: the second is refused, naming the first.
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/two/s.h5" --quiet 2>"$T/two.err" &
job=$!
wait_for "$T/two/s.h5.journal" 2 1
EXPECT_PATTERN="pid [0-9]+ host $(hostname)" expect_error "a second sweep on the same results" \
  sweep run "$T/grid.yaml" --out "$T/two/s.h5" --ranks 3
wait $job && ok "the first sweep finished undisturbed" || bad "the first sweep: $(tail -2 "$T/two.err")"

# 6. Threads from the CPU affinity and OMP_NUM_THREADS, not the machine's core count.
threads_of() { grep -o "started on rank 1 ([^,]*, [0-9]* thread" "$1" | head -1 | grep -o "[0-9]* thread$" | cut -d' ' -f1; }
taskset -c 0 mpirun --bind-to none -np 2 "$LS" sweep run "$T/grid.yaml" --out "$T/t1/s.h5" 2>"$T/t1.err"
check "taskset -c 0: the worker runs 1 thread" 1 "$(threads_of "$T/t1.err")"
if [ "$(nproc --all)" -ge 2 ]; then
  taskset -c 0,1 mpirun --bind-to none -np 2 "$LS" sweep run "$T/grid.yaml" --out "$T/t2/s.h5" 2>"$T/t2.err"
  check "taskset -c 0,1, one worker: 2 threads" 2 "$(threads_of "$T/t2.err")"
fi
OMP_NUM_THREADS=3 taskset -c 0 mpirun --bind-to none -np 2 -x OMP_NUM_THREADS "$LS" sweep run "$T/grid.yaml" --out "$T/t3/s.h5" 2>"$T/t3.err"
check "OMP_NUM_THREADS=3 decides" 3 "$(threads_of "$T/t3.err")"
check "bench under taskset -c 0 says 1 thread" '"threads": 1' \
  "$(taskset -c 0 "$LS" bench --model "$T/tiny" --batch 1 --ctx 16 --steps 1 --sgemm-size 64 | grep -o '"threads": [0-9]*')"
finish
