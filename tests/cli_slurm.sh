#!/usr/bin/env bash
# cli_slurm.sh LORASWEEP SHARED_DIR: a real one-node Slurm (tests/slurm/cluster.sh, Debian's
# slurm-wlm and munge) runs (a) plain batch jobs, checked through `scontrol show job` and the
# job-completion log, and (b) jobs/slurm/sweep.sbatch end to end: SIGUSR1 to the batch script ->
# the sweep checkpoints and exits 3 -> the job requeues itself -> the requeued run
# (SLURM_RESTART_COUNT=1) resumes and finishes; the same with the signal that --signal sends
# before the time limit; a failing sweep that is not requeued; and (c) the real `lorasweep sweep
# run` interrupted, requeued and finished, its results file complete.
#
# Skipped (exit 77: ctest lists it as skipped) when Slurm is not installed or we are not root,
# unless LS_REQUIRE_SLURM=1 (CI), which makes that a failure.
#
# (b) uses a stand-in for `lorasweep sweep run` (below) that makes the cycles fast and exact;
# SWEEP_PROG is the program submitted. (c) then runs the real program ("$LS") the same way on the
# tiny preset: signal mid-sweep, requeue, resume, the results file complete.
source "$(dirname "$0")/cli_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
CLUSTER=$HERE/slurm/cluster.sh
SBATCH_SCRIPT=$REPO/jobs/slurm/sweep.sbatch

skip_or_fail() {
  if [ "${LS_REQUIRE_SLURM:-0}" = 1 ]; then echo "FAIL LS_REQUIRE_SLURM=1 but $1"; exit 1; fi
  echo "SKIPPED: $1"; exit 77
}
for b in munged mungekey slurmctld slurmd sbatch scontrol scancel sinfo mpirun; do
  command -v "$b" >/dev/null || skip_or_fail "$b not installed (apt-get install slurm-wlm munge)"
done
[ "$(id -u)" = 0 ] || skip_or_fail "the test cluster runs its daemons as root"

CL=$T/slurm
trap '"$CLUSTER" stop "$CL"; rm -rf "$T"' EXIT
"$CLUSTER" start "$CL" || { echo "FAIL the test cluster did not start"; exit 1; }
source "$CL/env"
ok "cluster up: $(sinfo -h -o '%P %t %D %c %N')"
# Open MPI inside the jobs: we are root, and the node may have fewer cores than ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_rmaps_base_oversubscribe=1
NTASKS=$(($(nproc) < 2 ? 1 : 2))   # the script asks for 5; this node has $(nproc) cores

# field JOBID NAME: one field of `scontrol show job`.
field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local i
  for i in $(seq 1 $((secs * 5))); do "$@" && return 0; sleep 0.2; done
  echo "     (timed out after ${secs}s waiting for $what)"
  return 1
}
state_is() { [[ "$(field "$1" JobState)" =~ ^($2)$ ]]; }
show_log() { echo "---- $1"; cat "$1" 2>/dev/null | sed 's/^/     /'; }

# ---- (a) plain batch jobs ----------------------------------------------------------------
mkdir -p "$T/work/results"
cd "$T/work" || exit 1
cat >"$T/work/hello.sbatch" <<'EOF'
#!/usr/bin/env bash
#SBATCH --job-name=hello
#SBATCH --ntasks=1
#SBATCH --output=results/hello-%j.out
echo "hello from job $SLURM_JOB_ID ($SLURM_JOB_NAME) on $SLURMD_NODENAME, $SLURM_NTASKS task(s)"
EOF
id=$(sbatch --parsable hello.sbatch) && ok "sbatch accepted a job ($id)" || bad "sbatch failed"
wait_for 60 "job $id" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
check "job $id state" "COMPLETED" "$(field "$id" JobState)"
check "job $id exit code" "0:0" "$(field "$id" ExitCode)"
contains "job $id output" "hello from job $id (hello) on $(hostname -s), 1 task(s)" "$(cat "results/hello-$id.out" 2>/dev/null)"
wait_for 10 "the completion log" grep -q "JobId=$id .*JobState=COMPLETED" "$CL/log/jobcomp.txt" &&
  ok "job $id in the job-completion log" || bad "job $id not in $CL/log/jobcomp.txt"

id=$(sbatch --parsable -o "results/fail-%j.out" --wrap 'echo about to fail; exit 7')
wait_for 60 "job $id" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
check "failing job $id state" "FAILED" "$(field "$id" JobState)"
check "failing job $id exit code" "7:0" "$(field "$id" ExitCode)"

# ---- (b) jobs/slurm/sweep.sbatch with a stand-in sweep ----------------------------------
# Stand-in for `lorasweep sweep run GRID --out RESULTS`, run by mpirun on every rank: it keeps its
# progress in RESULTS (rank 0 writes). First run: "progress", then it waits; on SIGUSR1 or SIGTERM
# it writes "checkpoint" and exits 3. A run that finds a checkpoint resumes: "resumed", "done",
# exit 0. A grid containing "fail: true" fails (exit 1).
cat >"$T/fake-lorasweep" <<'EOF'
#!/usr/bin/env bash
[ "$1 $2" = "sweep run" ] && [ "${4:-}" = --out ] || { echo "stand-in: bad arguments: $*" >&2; exit 2; }
grid=$3 out=$5 rank=${OMPI_COMM_WORLD_RANK:-0}
say() { echo "rank $rank: $*"; if [ "$rank" = 0 ]; then echo "$*" >>"$out"; fi; }
stop=""
trap 'stop=USR1' USR1
trap 'stop=TERM' TERM
if grep -q 'fail: true' "$grid"; then say "trial failed"; exit 1; fi
if grep -q '^checkpoint' "$out" 2>/dev/null; then
  say "resumed restart_count=${SLURM_RESTART_COUNT:-unset}"
  say "done"
  exit 0
fi
say "progress restart_count=${SLURM_RESTART_COUNT:-unset}"
for _ in $(seq 1 1500); do                 # 5 minutes at most
  if [ -n "$stop" ]; then sleep 1; say "checkpoint on $stop"; exit 3; fi
  sleep 0.2 & wait $!
done
say "never signalled"
exit 1
EOF
chmod +x "$T/fake-lorasweep"
export LORASWEEP=$T/fake-lorasweep
SWEEP_PROG=$LORASWEEP    # the real program: "$LS" (then check the results file instead)
echo "name: slurm-test" >"$T/work/grid.yaml"

# run_cycle NAME RESULTS SBATCH_OPTIONS...: submit the sweep, wait until it runs, trigger the stop
# (TRIGGER: a command, or empty to wait for Slurm's own --signal), then release the requeued job
# and check the whole cycle.
run_cycle() {
  local name=$1 res=$2; shift 2
  local id
  id=$(LORASWEEP=$SWEEP_PROG sbatch --parsable --ntasks="$NTASKS" "$@" "$SBATCH_SCRIPT" grid.yaml "$res") ||
    { bad "$name: sbatch refused the script"; return; }
  local log=results/slurm-$id.out
  if wait_for 60 "the sweep to start" grep -qs '^progress' "$res"; then ok "$name: job $id running the sweep"
  else bad "$name: job $id did not start the sweep (state $(field "$id" JobState) $(field "$id" Reason))"; show_log "$log"; return; fi
  if [ -n "$TRIGGER" ]; then $TRIGGER "$id"; fi
  # Requeued: Restarts=1, back to PENDING. Slurm holds a requeued job about 2 minutes; release it,
  # but not in the same second as the requeue: slurmd would refuse the new run's credential as
  # revoked ("Killing non-startable batch JobId: Job credential revoked").
  if wait_for 120 "the requeue" eval '[ "$(field '"$id"' Restarts)" = 1 ]'; then ok "$name: job $id requeued itself"
  else bad "$name: job $id not requeued (state $(field "$id" JobState))"; show_log "$log"; return; fi
  sleep 3
  state_is "$id" PENDING && scontrol update JobId="$id" StartTime=now
  wait_for 90 "job $id to end" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
  check "$name: job $id state" "COMPLETED" "$(field "$id" JobState)"
  check "$name: job $id exit code" "0:0" "$(field "$id" ExitCode)"
  check "$name: the sweep's record" "progress restart_count=unset|checkpoint on USR1|resumed restart_count=1|done" \
    "$(paste -sd '|' "$res")"
  local text; text=$(cat "$log" 2>/dev/null)
  contains "$name: log of run 1" "run 1 (SLURM_RESTART_COUNT=0)" "$text"
  contains "$name: signal passed on" "got SIGUSR1: asking the sweep to checkpoint" "$text"
  contains "$name: checkpoint seen" "sweep stopped with a checkpoint (on SIGUSR1)" "$text"
  contains "$name: requeue" "requeueing job $id" "$text"
  contains "$name: log of run 2, appended" "run 2 (SLURM_RESTART_COUNT=1)" "$text"
  contains "$name: finished" "sweep finished" "$text"
  if [[ "$*" == *--time* ]]; then contains "$name: --walltime from the time left" "the sweep stops by itself after" "$text"; fi
  [ $fails -eq 0 ] || { show_log "$log"; show_log "$CL/log/slurmctld.log"; }
}

# The signal sent by hand, as Slurm sends it before the time limit: to the batch shell only.
TRIGGER="scancel --signal=USR1 --batch"
run_cycle "scancel USR1" results/a.h5

# Slurm's own warning: a 3-minute limit with SIGUSR1 requested 100 s before it (Slurm checks
# these about every 30 s and may signal up to 60 s early: 20 to 80 s after the start).
TRIGGER=""
run_cycle "--signal before --time" results/b.h5 --time=3 --signal=B:USR1@100

# A sweep with failed trials: exit 1, the job fails and is not requeued.
echo "fail: true" >"$T/work/bad.yaml"
id=$(LORASWEEP=$SWEEP_PROG sbatch --parsable --ntasks="$NTASKS" "$SBATCH_SCRIPT" bad.yaml results/c.h5)
wait_for 60 "job $id" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
check "failing sweep: job $id state" "FAILED" "$(field "$id" JobState)"
check "failing sweep: job $id not requeued" "0" "$(field "$id" Restarts)"
contains "failing sweep: log" "sweep ended with exit status 1" "$(cat "results/slurm-$id.out")"

# stop_not_requeued NAME RESULTS LOG_TEXT ENV SBATCH_OPTIONS...: the sweep is stopped (USR1) and
# checkpoints (exit 3), but the job must not requeue: it ends FAILED with exit 3, Restarts 0, and
# the log says why (LOG_TEXT).
stop_not_requeued() {
  local name=$1 res=$2 why=$3 vars=$4; shift 4
  local id
  id=$(env $vars LORASWEEP=$SWEEP_PROG sbatch --parsable --ntasks="$NTASKS" "$@" "$SBATCH_SCRIPT" grid.yaml "$res") ||
    { bad "$name: sbatch refused the script"; return; }
  wait_for 60 "the sweep to start" grep -qs '^progress' "$res" || { bad "$name: the sweep did not start"; return; }
  scancel --signal=USR1 --batch "$id"
  wait_for 90 "job $id to end" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
  check "$name: job $id state" "FAILED" "$(field "$id" JobState)"
  check "$name: job $id exit code" "3:0" "$(field "$id" ExitCode)"
  check "$name: job $id not requeued" "0" "$(field "$id" Restarts)"
  contains "$name: the sweep checkpointed" "sweep stopped with a checkpoint (on SIGUSR1)" "$(cat "results/slurm-$id.out")"
  contains "$name: the log says why" "$why" "$(cat "results/slurm-$id.out")"
}
# LS_MAX_RESTARTS caps the requeues: with 0 allowed, the stopped sweep is not requeued.
stop_not_requeued "LS_MAX_RESTARTS=0" results/e.h5 "(LS_MAX_RESTARTS=0): not again; resubmit to go on" LS_MAX_RESTARTS=0
# A requeue that fails (a job submitted with --no-requeue): said, and the job ends with exit 3.
stop_not_requeued "a failed requeue" results/f.h5 "scontrol requeue failed; resubmit to resume" LS_X=1 --no-requeue

# The program is found through $LORASWEEP, else PATH, else the submit directory's build/.
mkdir -p "$T/work/build" && cp "$T/fake-lorasweep" "$T/work/build/lorasweep"
id=$(env -u LORASWEEP sbatch --parsable --ntasks=1 "$SBATCH_SCRIPT" bad.yaml results/d.h5)
wait_for 60 "job $id" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
contains "program from build/ of the submit directory" "program $T/work/build/lorasweep" "$(cat "results/slurm-$id.out")"

# ---- (c) the real program: `lorasweep sweep run` on the tiny preset through sweep.sbatch -----
# SIGUSR1 after the first trial is done: the second one checkpoints mid-training, the job requeues,
# and the requeued run finishes the sweep; every trial done exactly once in the results file.
TOK=$SHARED/qwen/tokenizer.json
[ -f "$TOK" ] || [ -z "${LS_TOKENIZER:-}" ] || TOK=$LS_TOKENIZER  # fetched by scripts/test.sh
if [ ! -f "$TOK" ]; then
  skip_part "the real sweep under Slurm ($TOK missing)"
  cd / && finish
fi
export ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$HERE/lsan-openmpi.supp
"$LS" model init --preset tiny --out "$T/work/tiny" --tokenizer "$TOK" >/dev/null || bad "model init"
"$LS" data generate --out "$T/work/lv.h5" --seed 5 >/dev/null || bad "data generate"
cat >"$T/work/real.yaml" <<'YAML'
name: slurm-real
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 8, lr: 1.0e-3, eval_every: 4, val_max_windows: 4, checkpoint_every: 2}
  eval: {systems: 1, samples: 2}
stages:
  - name: lr
    grid: {train.lr: [1.0e-3, 3.0e-3]}
YAML
SWEEP_PROG=$LS
id=$(LORASWEEP=$SWEEP_PROG sbatch --parsable --ntasks=2 "$SBATCH_SCRIPT" real.yaml results/real.h5)
log=results/slurm-$id.out
if wait_for 300 "a first trial done" grep -qs "trial .* done:" "$log"; then
  scancel --signal=USR1 --batch "$id"
  if wait_for 120 "the requeue" eval '[ "$(field '"$id"' Restarts)" = 1 ]'; then
    ok "real sweep: job $id requeued itself"
    sleep 3
    state_is "$id" PENDING && scontrol update JobId="$id" StartTime=now
  else bad "real sweep: job $id not requeued (state $(field "$id" JobState))"; fi
else bad "real sweep: no trial done (state $(field "$id" JobState))"; fi
wait_for 300 "job $id to end" state_is "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" || true
check "real sweep: job $id state" "COMPLETED" "$(field "$id" JobState)"
check "real sweep: job $id restarts" "1" "$(field "$id" Restarts)"
text=$(cat "$log" 2>/dev/null)
contains "real sweep: checkpoint on the signal" "sweep stopped with a checkpoint (on SIGUSR1)" "$text"
contains "real sweep: resumed in run 2" "run 2 (SLURM_RESTART_COUNT=1)" "$text"
contains "real sweep: finished" "sweep finished" "$text"
if $PY - results/real.h5 <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
status = t["status"][:]
assert len(status) == 2 and (status == 2).all(), status     # 2 trials, each done once
PY
then ok "real sweep: results file has the 2 trials done"; else bad "real sweep: results file"; fi
[ $fails -eq 0 ] || show_log "$log"

# The real program stopped by its own --walltime timer (LS_WALLTIME=8: each run stops after 8 s),
# requeued; the second run preempted by Slurm itself (`scontrol requeue`: the job is killed and
# requeued, as a preemption does) once it has started a trial; later runs go on (each again
# stopped by the timer if the machine is slow) until the sweep finishes. Every trial done exactly
# once, as in one uninterrupted run. A requeued job is held ~2 min by Slurm: the test releases it.
sed -e 's/name: slurm-real/name: slurm-walltime/' -e 's/\[1.0e-3, 3.0e-3\]/[1.0e-3, 2.0e-3, 3.0e-3, 5.0e-3]/' \
  -e 's/max_steps: 8/max_steps: 12/' real.yaml >walltime.yaml
id=$(env LS_WALLTIME=8 LORASWEEP=$SWEEP_PROG sbatch --parsable --ntasks=2 "$SBATCH_SCRIPT" walltime.yaml results/w.h5)
log=results/slurm-$id.out
if wait_for 200 "the walltime stop and requeue" eval '[ "$(field '"$id"' Restarts)" = 1 ]'; then
  ok "walltime: job $id stopped by the sweep's own timer and requeued"
  sleep 3
  state_is "$id" PENDING && scontrol update JobId="$id" StartTime=now
  starts=$(grep -c "started on rank" "$log")
  if wait_for 120 "run 2 to start a trial" eval '[ "$(grep -c "started on rank" '"$log"')" -gt '"$starts"' ]'; then
    scontrol requeue "$id" && ok "preemption: job $id requeued by Slurm in the middle of run 2" || bad "scontrol requeue $id"
    wait_for 120 "the second requeue" eval '[ "$(field '"$id"' Restarts)" = 2 ]' || true
    sleep 3
    state_is "$id" PENDING && scontrol update JobId="$id" StartTime=now
  else bad "walltime: run 2 started no trial"; fi
else bad "walltime: job $id was not requeued (state $(field "$id" JobState))"; fi
release_until_done() { # a requeued job waits for its hold; start it now, until the job ends
  # not at once: a job started within a second of its requeue can meet its previous run's revoked
  # credential ("Killing non-startable batch JobId=10: Job credential revoked": FAILED)
  state_is "$1" PENDING && sleep 3 && state_is "$1" PENDING && scontrol update JobId="$1" StartTime=now 2>/dev/null
  # an end state that lasts (a run that requeues itself may pass through one on its way back)
  state_is "$1" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" && sleep 3 &&
    state_is "$1" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL"
}
wait_for 300 "job $id to end" release_until_done "$id" || true
check "walltime + preemption: job $id state" "COMPLETED" "$(field "$id" JobState)"
restarts=$(field "$id" Restarts)
[ "${restarts:-0}" -ge 2 ] && ok "walltime + preemption: job $id ran $((restarts + 1)) times" \
  || bad "walltime + preemption: job $id restarts: $restarts, at least 2 expected"
text=$(cat "$log" 2>/dev/null)
contains "walltime: the timer was set" "LS_WALLTIME: the sweep stops by itself after 8 s" "$text"
first_stop=$(grep -m1 'sweep stopped with a checkpoint' "$log")
[ -n "$first_stop" ] && [[ "$first_stop" != *"(on SIG"* ]] && ok "walltime: run 1 checkpointed on its own timer, no signal" \
  || bad "walltime: run 1's stop: [$first_stop]"
contains "preemption: run 3 resumed" "run 3 (SLURM_RESTART_COUNT=2)" "$text"
contains "preemption: run 2's end said why" "the sweep was ended by Slurm (SIGTERM" "$text"
contains "walltime + preemption: the last run found the sweep complete" "sweep finished" "$text"
if $PY - results/w.h5 <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
status = t["status"][:]
assert len(status) == 4 and (status == 2).all(), status
PY
then ok "walltime + preemption: the 4 trials done, each once"; else bad "walltime + preemption: results file"; fi
if [ $fails -gt 0 ]; then # what Slurm itself says of the job, to tell its faults from ours
  show_log "$log"
  echo "---- scontrol show job $id"; scontrol show job "$id" 2>&1 | sed 's/^/     /'
  echo "---- slurmctld and slurmd on job $id"
  grep -h "JobId=$id\b\|job_id=$id\b\|JOB $id\b\|StepId=$id\." "$CL"/log/slurmctld.log "$CL"/log/slurmd.log 2>/dev/null | tail -40 | sed 's/^/     /'
fi

cd / && finish
