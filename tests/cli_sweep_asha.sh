#!/usr/bin/env bash
# cli_sweep_asha.sh LORASWEEP SHARED_DIR: early stopping inside the MPI scheduler, on the tiny
# preset with real ranks.
#  - sweep plan: the rungs, the most and the least the stage can cost (what it spent lies between).
#  - ASHA (promotion form, eta 2, rungs at steps 2 and 4 below max_steps 8) with one worker: every
#    decision is a journal record; trials left paused are stopped at their rung; the next stage
#    starts from the best trial that reached the top.
#  - The report's section on trials stopped early against the journal, `sweep plan` and the
#    straight sweep (FLOPS to the end, the saving), in JSON, CSV and the table; the rungs figure.
#  - Paused and promoted trials train exactly as straight runs: the curves and adapters of the
#    top-rung trials equal those of the same grid without early stopping, bit for bit, and a
#    stopped trial's curve is the straight run's up to its rung.
#  - Cut short six times at exact journal events (kill -9 while a trial is paused, during a
#    promotion, with a segment's start journalled, inside a rung's checkpoint, as the stage ends;
#    and a clean stop), each run checked to have stopped where aimed, then resumed: the same
#    decisions (values as exact doubles), trials, rows and adapters as the uninterrupted sweep; a
#    rerun of the finished sweep decides nothing again.
#  - The median rule with repeats: a configuration is judged by the mean of its repeats once both
#    reached the rung, and a cut one stops both at that rung; killed while one repeat waits for
#    the other, with both arrived and the verdict not yet journalled, and between a cut and its
#    stops, then resumed: the same decisions.
source "$(dirname "$0")/cli_lib.sh"
source "$(dirname "$0")/sweep_lib.sh"
ONE="mpirun --oversubscribe -np 2" # one worker: the order of events is the same on every run

cat >"$T/grid.yaml" <<'YAML'
name: ci-asha
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 8, eval_every: 2, val_max_windows: 4, checkpoint_every: 2}
  eval: {systems: 1, samples: 2}
stages:
  - name: lr
    grid: {train.lr: [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}
    early_stopping: {type: asha, metric: val_loss, min_steps: 2, eta: 2}
  - name: final
    select: {from: lr, metric: final_val_loss, keep: [train.lr]}
    grid: {train.ctx: [48]}
YAML

# decisions JOURNAL: one line per decision record (type 8), without its time: verdict, trial,
# rung, step, value and cutoff as the bits of the doubles, n at the rung, the FLOPS spent
decisions() {
  $PY - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
at = 8
names = {1: "start", 2: "arrived", 3: "paused", 4: "promoted", 5: "continue", 6: "cut", 7: "stopped"}
while at + 8 <= len(d):
    length, = struct.unpack_from("<I", d, at)
    p = d[at + 8: at + 8 + length]
    if len(p) < length: break
    if p[0] == 8:
        trial, = struct.unpack_from("<Q", p, 10)
        verdict, rung, step = struct.unpack_from("<iii", p, 18)
        value, cutoff = struct.unpack_from("<QQ", p, 30)
        n, = struct.unpack_from("<i", p, 46)
        flops, = struct.unpack_from("<Q", p, 50)
        print(names.get(verdict, verdict), "%016x" % trial, rung, step, "%016x" % value, "%016x" % cutoff, n, "%016x" % flops)
    at += 8 + length
PY
}

$ONE "$LS" sweep run "$T/grid.yaml" --out "$T/ref/s.h5" 2>"$T/ref.err" || { bad "reference sweep: $(tail -3 "$T/ref.err")"; finish; }
decisions "$T/ref/s.h5.journal" >"$T/ref.dec"
n_ref=$(wc -l <"$T/ref.dec")
if grep -q "^promoted" "$T/ref.dec" && grep -q "^paused" "$T/ref.dec" && [ "$(grep -c "^stopped" "$T/ref.dec")" -ge 1 ] \
  && [ "$(grep -c "^start" "$T/ref.dec")" = 4 ] && grep -q "stopped early" "$T/ref.err"; then
  ok "ASHA: $n_ref decisions ($(cut -d' ' -f1 "$T/ref.dec" | sort | uniq -c | tr -s ' ' | tr '\n' ','))"
else bad "ASHA decisions: $(cat "$T/ref.dec")"; fi

# The rule itself, from the records: a promotion from rung k is of a trial in the top floor(n/2)
# of the values recorded at k so far, the best one not yet promoted (ties to the lower trial
# index; rungs looked at from the top down); stopped trials are exactly those left paused.
if $PY - "$T/ref.dec" "$T/ref/s.h5" <<'PY'
import sys, struct, h5py
rows = [l.split() for l in open(sys.argv[1])]
f64 = lambda h: struct.unpack("<d", bytes.fromhex(h)[::-1])[0]
at, promoted, order = {}, set(), []
for v, trial, rung, step, value, cutoff, n, _ in rows:
    rung = int(rung)
    if v == "start": order.append(trial)
    if v == "paused":
        at.setdefault(rung, []).append((f64(value), order.index(trial), trial))
        assert int(n) == len(at[rung]), ("n at the rung", rows)
    if v == "promoted":
        ranked = sorted(at[rung])
        top = ranked[:len(ranked) // 2]
        free = [t for t in top if (t[2], rung) not in promoted]
        assert free and free[0][2] == trial, ("not the best promotable", rung, trial, ranked, promoted)
        assert f64(cutoff) == top[-1][0] and int(n) == len(ranked)
        higher = [k for k in at if k > rung and any((t[2], k) not in promoted for t in sorted(at[k])[:len(at[k]) // 2])]
        assert not higher, ("a higher rung had a promotable trial", higher)
        promoted.add((trial, rung))
stopped = {r[1] for r in rows if r[0] == "stopped"}
t = h5py.File(sys.argv[2], "r")["trials"]
ids = [x.decode() for x in t["id"][:]]
status, stage, steps, val = t["status"][:], t["stage"][:], t["steps"][:], t["final_val_loss"][:]
assert {i for i, s in zip(ids, status) if s == 5} == stopped, (stopped, list(zip(ids, status)))
for v, trial, rung, step, value, *_ in rows:
    if v == "stopped":
        k = ids.index(trial)
        assert steps[k] == int(step) and val[k] == f64(value), (trial, steps[k], val[k])
done = [k for k in range(len(ids)) if stage[k] == 0 and status[k] == 2]
mse = t["mse_both"][:]  # only trials that reached the top are forecast
assert all(mse[k] == mse[k] for k in done) and all(mse[ids.index(x)] != mse[ids.index(x)] for x in stopped), mse
flops = t["flops_total"][:]  # a stopped trial is charged what it spent: less than a trial run to the end
assert all(0 < flops[ids.index(x)] < min(flops[done]) for x in stopped), (flops, stopped)
best = min(done, key=lambda k: val[k])
fin = [k for k in range(len(ids)) if stage[k] == 1]
assert len(fin) == 1 and t["lr"][fin[0]] == t["lr"][best] and status[fin[0]] == 2, "the final stage's start"
print("%d promotions checked against the rule; %d stopped, %d reached the top" % (len(promoted), len(stopped), len(done)))
PY
then ok "every promotion follows the rule; stopped trials are the ones left paused, not forecast, charged what they spent; the winner reached the top"
else bad "the decisions break the rule"; fi
# the report counts the stopped trials: the header and JSON, against the results file
n_stopped=$($PY -c 'import sys, h5py; print(int((h5py.File(sys.argv[1], "r")["trials"]["status"][:] == 5).sum()))' "$T/ref/s.h5")
header=$("$LS" report "$T/ref/s.h5" | grep "^  trials:")
json_stopped=$("$LS" report "$T/ref/s.h5" --format json | $PY -c 'import json, sys; print(json.load(sys.stdin)["counts"]["stopped"])')
[ "$n_stopped" -gt 0 ] && [[ "$header" == *", $n_stopped stopped early" ]] && [ "$json_stopped" = "$n_stopped" ] \
  && ok "report: $n_stopped stopped early in the header and the JSON counts" || bad "report counts: [$header] json $json_stopped, file $n_stopped"

# sweep plan: the rungs, and what the stage costs at most (no stop) and at least (every trial
# stopped at the first rung); what the sweep spent lies between, and each trial's estimate (to the
# top, validated at every rung) is not below what it recorded.
"$LS" sweep plan "$T/grid.yaml" --json >"$T/plan.json" 2>"$T/plan.err" || bad "sweep plan: $(cat "$T/plan.err")"
"$LS" sweep plan "$T/grid.yaml" >"$T/plan.txt" 2>&1
if grep -q "early stopping: asha, eta 2: rungs at steps 2, 4, 8 (the top); at most" "$T/plan.txt" && $PY - "$T/plan.json" "$T/ref/s.h5" <<'PY'
import sys, json, h5py
es = json.load(open(sys.argv[1]))["stages"][0]["early_stopping"]
assert es["rungs"] == [2, 4, 8] and es["type"] == "asha" and es["eta"] == 2, es
t = h5py.File(sys.argv[2], "r")["trials"]
spent = sum(f for f, s in zip(t["flops_total"][:], t["stage"][:]) if s == 0)
plan = {x["id"]: x["flops"] for x in json.load(open(sys.argv[1]))["stages"][0]["trials"]}
for i, f, st in zip(t["id"][:], t["flops_total"][:], t["status"][:]):
    if i.decode() in plan and st == 2: assert plan[i.decode()] >= f, ("estimate below the record", i, plan[i.decode()], f)
assert es["flops_at_least"] < spent < es["flops_at_most"], (es, spent)
print("least %.3g < spent %.3g < most %.3g" % (es["flops_at_least"], spent, es["flops_at_most"]))
PY
then ok "sweep plan: the rungs, the most and the least the stage can cost, the spend between"
else bad "sweep plan: $(grep -i "early" "$T/plan.txt")"; fi

# The same configurations without early stopping, each trained straight to the end (not under
# the sanitizers, LS_TEST_SAMPLE=1: no code of early stopping runs in it; test_train checks the
# pause at the trainer's level there).
SAMPLE=${LS_TEST_SAMPLE:-0}
sed -e '/early_stopping/d' -e 's/^name: .*/name: ci-straight/' "$T/grid.yaml" | head -n 10 >"$T/straight.yaml"
[ "$SAMPLE" = 1 ] || $ONE "$LS" sweep run "$T/straight.yaml" --out "$T/st/s.h5" --quiet 2>"$T/st.err" \
  || bad "straight sweep: $(tail -3 "$T/st.err")"
if [ "$SAMPLE" = 1 ]; then :
elif $PY - "$T/ref" "$T/st" "$T/ref.dec" <<'PY'
import sys, os, filecmp, struct
ref, st = sys.argv[1] + "/s.trials", sys.argv[2] + "/s.trials"
rows = [l.split() for l in open(sys.argv[3])]
stopped = {r[1]: (int(r[3]), struct.unpack("<d", bytes.fromhex(r[4])[::-1])[0]) for r in rows if r[0] == "stopped"}
top = 0
for d in os.listdir(st):
    a, b = os.path.join(ref, d), os.path.join(st, d)
    if d in stopped:
        step, value = stopped[d]
        ca, cb = open(a + "/curves.csv").read().split("\n"), open(b + "/curves.csv").read().split("\n")
        assert ca[: step + 2] == cb[: step + 2], (d, ca, cb)  # header + steps 0..step
        f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
        assert f32(value) == value and f32(float(cb[step + 1].split(",")[2])) == value, (d, value, cb[step + 1])
        continue
    assert filecmp.cmp(a + "/curves.csv", b + "/curves.csv", shallow=False), d
    assert filecmp.cmp(a + "/adapter/adapter_model.safetensors", b + "/adapter/adapter_model.safetensors", shallow=False), d
    top += 1
assert top >= 1
print("%d top-rung trials bit for bit, %d stopped ones equal up to their rung" % (top, len(stopped)))
PY
then ok "paused and promoted trials equal straight runs bit for bit"
else bad "paused and promoted trials differ from straight runs"; fi

# The report's early-stopping section against the journal and `sweep plan`: the trials stopped
# are exactly those the journal stopped, at its rung and step; each one's FLOPS to the end is the
# plan's estimate of it in the same stage without early stopping (and, where the straight sweep
# ran, not below what it really spent there nor 5% above); the saving is their sum less what they
# spent (the rungs are multiples of eval_every: a finished trial validated nowhere extra); the
# same in the CSV and the table; and the rungs figure is drawn.
"$LS" sweep plan "$T/straight.yaml" --json >"$T/straight-plan.json" 2>"$T/sp.err" || bad "sweep plan (straight): $(cat "$T/sp.err")"
{ "$LS" report "$T/ref/s.h5" --format json >"$T/es.json" && "$LS" report "$T/ref/s.h5" --format csv >"$T/es.csv" \
  && "$LS" report "$T/ref/s.h5" --plots "$T/es-figs" >"$T/es.txt"; } 2>"$T/es.err" || bad "report of the ASHA sweep: $(cat "$T/es.err")"
if $PY - "$T/ref.dec" "$T/ref/s.h5" "$T/straight-plan.json" "$T/es.json" "$T/es.csv" "$T/es.txt" "$T/st/s.h5" "$SAMPLE" <<'PY'
import sys, json, csv, struct, h5py, math
dec, h5, plan, rj, rcsv, txt, straight, sample = sys.argv[1:]
f64 = lambda h: struct.unpack("<d", bytes.fromhex(h)[::-1])[0]
stops = {r[1]: (int(r[2]), int(r[3]), f64(r[4])) for r in (l.split() for l in open(dec)) if r[0] == "stopped"}
r = json.load(open(rj))
got = {s["id"]: s for s in r["stopped"]}
assert stops and set(got) == set(stops) and len(r["stopped"]) == len(stops), (sorted(got), sorted(stops))
t = h5py.File(h5, "r")["trials"]
ids = [x.decode() for x in t["id"][:]]
spent = dict(zip(ids, t["flops_total"][:]))
est = {x["id"]: x["flops"] for x in json.load(open(plan))["stages"][0]["trials"]}
for i, (rung, step, val) in stops.items():
    s = got[i]
    assert (s["rung"], s["step"], s["final_val_loss"]) == (rung, step, val), (i, s, stops[i])
    assert s["flops_spent"] == spent[i] and math.isclose(s["flops_run_to_end"], est[i], rel_tol=1e-12), (i, s, est[i])
saved = sum(est[i] - spent[i] for i in stops)
st = r["flops_saved"]["stages"][0]
assert st["stage"] == "lr" and st["rungs"] == [2, 4, 8] and st["stopped"] == len(stops), st
assert math.isclose(st["flops_saved"], saved, rel_tol=1e-9), (st, saved)
assert math.isclose(st["flops_spent"], sum(f for f, g in zip(t["flops_total"][:], t["stage"][:]) if g == 0), rel_tol=1e-12)
rows = {x["id"]: x for x in csv.DictReader(open(rcsv))}
for i, s in got.items():
    assert int(rows[i]["rung"]) == s["rung"], rows[i]
    assert math.isclose(float(rows[i]["flops_run_to_end"]), s["flops_run_to_end"], rel_tol=1e-8), rows[i]
text = open(txt).read()
sec = text.split("== Stopped early (early stopping)\n")[1].split("\n\n")[0].splitlines()[1:]
assert sorted(l.split()[0] for l in sec) == sorted(stops), sec
assert ("%.3g (%.1f%%)" % (saved, 100 * saved / st["flops_run_to_end"])) in text, "the saving in the table"
if sample != "1":  # the straight sweep ran: the estimates against what the same trials spent there
    s2 = h5py.File(straight, "r")["trials"]
    real = dict(zip([x.decode() for x in s2["id"][:]], s2["flops_total"][:]))
    for i in stops:
        assert real[i] <= est[i] < 1.05 * real[i], (i, real[i], est[i])
print("%d stopped, %.4g FLOPS saved (%.1f%%)" % (len(stops), saved, st["percent"]))
PY
then ok "report: the trials stopped (rung, step, value) as the journal has them; FLOPS to the end as sweep plan estimates; the saving"
else bad "report: the early-stopping section"; fi
png=$T/es-figs/rungs_lr.png
if grep -qF "$png" "$T/es.txt" && [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
  && [ "$(stat -c %s "$png")" -gt 20000 ]; then ok "report --plots: rungs_lr.png named and drawn ($(stat -c %s "$png") bytes)"
else bad "the rungs figure: $(grep rungs "$T/es.txt")"; fi

# run NAME LS_FAULT WANT_RC WANT_DECISIONS: one cut-short run on k/; WANT_RC kill = killed (not 0,
# 1 or 3); WANT_DECISIONS: decision records in the journal after it (where it stopped).
run() {
  LS_FAULT=$2 $ONE "$LS" sweep run "$T/${GRID:-grid}.yaml" --out "$T/${OUT:-k}/s.h5" >>"$T/k.err" 2>&1; local rc=$?
  local n; n=$(decisions "$T/${OUT:-k}/s.h5.journal" | wc -l)
  local why=""
  case $3 in
    kill) { [ $rc = 0 ] || [ $rc = 1 ] || [ $rc = 3 ]; } && why="exit $rc: the fault did not kill it" ;;
    *) [ $rc = "$3" ] || why="exit $rc, want $3" ;;
  esac
  [ -z "$why" ] && [ "$n" != "$4" ] && why="$n decisions, want $4"
  [ -z "$why" ] && [ "$n" -ge "$n_ref" ] && [ "$3" != 0 ] && why="it decided everything: nothing was interrupted"
  if [ -z "$why" ]; then ok "$1: exit $rc with $n of $n_ref decisions"; else bad "$1: $why; $(tail -3 "$T/k.err")"; fi
}
# the events of the uninterrupted run, in order (one worker): start, paused, start, paused,
# promoted (5), paused, start (7), paused, promoted (9), paused, promoted (11), ...
# Under the sanitizers (LS_TEST_SAMPLE=1, where each sweep takes far longer) two of the cuts.
run "killed while a trial is paused at rung 0" es_decision:2:kill kill 2
if [ "$SAMPLE" != 1 ]; then
  run "killed during a promotion (decided, not started)" es_decision:3:kill kill 5
  run "killed with a segment's start journalled" trial_start:2:kill kill 7
  run "killed inside a rung's checkpoint" write@state.safetensors:2:kill kill 9
  run "stopped cleanly as the last segment starts" trial_start:2:stop 3 11
  run "killed as the stage ends (one of two stops journalled)" es_decision:6:kill kill 17
else
  run "killed as the stage ends (one of two stops journalled)" es_decision:15:kill kill 17
fi
run "the rest" "" 0 "$n_ref"
decisions "$T/k/s.h5.journal" >"$T/k.dec"
if cmp -s "$T/ref.dec" "$T/k.dec"; then ok "cut short: the same $n_ref decisions as the uninterrupted sweep"
else bad "the decisions differ: $(diff "$T/ref.dec" "$T/k.dec" | head -6)"; fi
if same_trials "$T/ref/s.h5" "$T/k/s.h5" && $PY - "$T/ref/s.trials" "$T/k/s.trials" <<'PY'
import sys, os, filecmp
n = 0
for d in os.listdir(sys.argv[1]):
    a = os.path.join(sys.argv[1], d, "adapter/adapter_model.safetensors")
    if os.path.exists(os.path.join(sys.argv[1], d, "metrics.json")) and os.path.exists(a):
        assert filecmp.cmp(os.path.join(sys.argv[1], d, "curves.csv"), os.path.join(sys.argv[2], d, "curves.csv"), shallow=False), d
        n += 1
print("%d trials' curves equal" % n)
PY
then ok "and the same trials, statuses, rows and curves"
else bad "the resumed sweep's trials differ"; fi
$ONE "$LS" sweep run "$T/grid.yaml" --out "$T/k/s.h5" 2>"$T/again.err"; rc=$?
[ $rc = 0 ] && ! grep -q "started on" "$T/again.err" && [ "$(decisions "$T/k/s.h5.journal" | wc -l)" = "$n_ref" ] \
  && ok "a rerun of the finished sweep runs and decides nothing" || bad "rerun: rc=$rc $(tail -3 "$T/again.err")"

# The median rule with repeats: the best learning rate first, so later ones fall below the median.
# eval_every 0 (validation at step 0 and the end only): the rung at step 2 is a validation the
# results file must have room for in every row.
cat >"$T/median.yaml" <<'YAML'
name: ci-median
base:
  model: {path: tiny}
  data: {path: lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 4, eval_every: 0, val_max_windows: 4, checkpoint_every: 2}
  eval: {systems: 0}
stages:
  - name: lr
    grid: {train.lr: [3.0e-2, 1.0e-3, 1.0e-4]}
    repeats: 2
    early_stopping: {type: median, min_steps: 2, eta: 2, min_trials: 1}
YAML
$ONE "$LS" sweep run "$T/median.yaml" --out "$T/m/s.h5" 2>"$T/m.err" || bad "median sweep: $(tail -3 "$T/m.err")"
decisions "$T/m/s.h5.journal" >"$T/m.dec"
if $PY - "$T/m.dec" "$T/m/s.h5" <<'PY'
import sys, struct, h5py
rows = [l.split() for l in open(sys.argv[1])]
f64 = lambda h: struct.unpack("<d", bytes.fromhex(h)[::-1])[0]
t = h5py.File(sys.argv[2], "r")["trials"]
ids = [x.decode() for x in t["id"][:]]
status, steps = t["status"][:], t["steps"][:]
unit_of = {ids[2 * c + r]: ids[2 * c] for c in range(3) for r in range(2)}  # configuration-major
arrived, judged, cut = {}, {}, set()
for v, trial, rung, step, value, cutoff, n, _ in rows:
    if v == "arrived": arrived.setdefault((unit_of[trial], rung), []).append((trial, f64(value)))
    if v in ("continue", "cut"):
        reps = sorted(arrived[(trial, rung)])
        assert len(reps) == 2 and trial == unit_of[trial], ("judged before both repeats arrived", rows)
        mean = (dict(reps)[ids[ids.index(trial)]] + dict(reps)[ids[ids.index(trial) + 1]]) / 2
        assert f64(value) == mean, (f64(value), mean)
        others = [x for (u, k), x in judged.items() if k == rung and u != trial]
        if v == "cut": cut.add((trial, int(step)))
        if len(others) >= 1:
            s = sorted(others); m = len(s)
            med = s[(m - 1) // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) / 2
            assert f64(cutoff) == med and (v == "cut") == (mean > med), (v, mean, med)
        judged[(trial, rung)] = mean
assert cut, ("nothing was cut", rows)
for u, step in cut:  # both repeats stopped at that rung
    for r in (0, 1):
        k = ids.index(u) + r
        assert status[k] == 5 and steps[k] == step, (u, r, status[k], steps[k])
vs, vl = h5py.File(sys.argv[2], "r")["curves"]["val_step"][:], h5py.File(sys.argv[2], "r")["curves"]["val_loss"][:]
for k in range(len(ids)):  # every row has its validation at the rung (step 2), which eval_every 0 skips
    assert 2 in list(vs[k]), (ids[k], vs[k])
print("%d configurations cut, judged by the mean of 2 repeats" % len(cut))
PY
then ok "median rule: judged by the mean of the repeats once both arrived; a cut stops both"
else bad "median rule: $(cat "$T/m.dec")"; fi
# the report of the median rule with repeats: its stopped trials are the file's, both repeats of a
# cut configuration at rung 0 (step 2); the rungs figure draws configurations (their mean)
"$LS" report "$T/m/s.h5" --format json >"$T/m.json" 2>&1 && "$LS" report "$T/m/s.h5" --plots "$T/m-figs" >"$T/m.txt" 2>&1 \
  || bad "report of the median sweep: $(tail -2 "$T/m.txt")"
if $PY - "$T/m.json" "$T/m/s.h5" <<'PY'
import sys, json, h5py
r = json.load(open(sys.argv[1]))
t = h5py.File(sys.argv[2], "r")["trials"]
stopped = {i.decode() for i, s in zip(t["id"][:], t["status"][:]) if s == 5}
assert stopped and {s["id"] for s in r["stopped"]} == stopped, (r["stopped"], stopped)
assert all(s["rung"] == 0 and s["step"] == 2 and s["repeat"] in (0, 1) for s in r["stopped"]), r["stopped"]
by_config = {}
for s in r["stopped"]: by_config.setdefault(s["configuration"], set()).add(s["repeat"])
assert all(v == {0, 1} for v in by_config.values()), by_config
PY
then grep -q "rungs_lr.png" "$T/m.txt" && grep -A1 "== Stopped early" "$T/m.txt" | grep -q " repeat " \
  && ok "report of the median rule with repeats: both repeats of each cut configuration stopped at rung 0; the figure" \
  || bad "median report: $(grep -A2 'Stopped early' "$T/m.txt")"
else bad "median report: the stopped trials"; fi
# one worker: start, arrived (2: repeat 0), arrived (3: repeat 1), continue (4), ...
n_ref=$(wc -l <"$T/m.dec")
first_cut=$(grep -n "^cut" "$T/m.dec" | head -1 | cut -d: -f1)
if [ "$SAMPLE" != 1 ]; then
  GRID=median OUT=mk run "median: killed while one repeat waits for the other" es_decision:2:kill kill 2
  GRID=median OUT=mk run "median: killed with both repeats arrived, the verdict not journalled" es_decision:1:kill kill 3
else
  GRID=median OUT=mk run "median: killed with both repeats arrived, the verdict not journalled" es_decision:3:kill kill 3
fi
GRID=median OUT=mk run "median: killed between a cut and its stops" es_decision:$((first_cut - 3)):kill kill "$first_cut"
GRID=median OUT=mk run "median: the rest" "" 0 "$n_ref"
decisions "$T/mk/s.h5.journal" >"$T/mk.dec"
if cmp -s "$T/m.dec" "$T/mk.dec" && same_trials "$T/m/s.h5" "$T/mk/s.h5"; then
  ok "median, cut short: the same $n_ref decisions and rows as the uninterrupted sweep"
else bad "median decisions differ: $(diff "$T/m.dec" "$T/mk.dec" | head -6)"; fi
finish
