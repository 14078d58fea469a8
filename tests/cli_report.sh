#!/usr/bin/env bash
# cli_report.sh LORASWEEP SHARED_DIR: `lorasweep report` on the real demo sweep (sweep/demo.yaml
# run over 3 MPI ranks, as scripts/demo.sh does): tables, CSV, JSON and markdown checked against
# the file read independently with h5py; the figures (PNG decoded, SVG parsed); the Python
# snippet of docs/analysis.md; a file read while the sweep is writing it; a sweep
# killed mid-trial (interrupted, pending, stages not started); files that are not results files.
source "$(dirname "$0")/cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOK=$SHARED/qwen/tokenizer.json
[ -f "$TOK" ] || [ -z "${LS_TOKENIZER:-}" ] || TOK=$LS_TOKENIZER
need_shared "$TOK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's leaks at exit (see cli_sweep_run.sh)
MPIRUN="mpirun --oversubscribe -np 3"

# the demo's layout: sweep/demo.yaml names ../models/tiny and ../results/demo/lv_sim.h5
mkdir -p "$T/sweep" "$T/models" "$T/results/demo"
cp "$ROOT/sweep/demo.yaml" "$T/sweep/"
"$LS" model init --preset tiny --out "$T/models/tiny" --tokenizer "$TOK" >/dev/null || { echo "FAIL model init"; exit 1; }
"$LS" data generate --out "$T/results/demo/lv_sim.h5" --systems 1000 --steps 100 --seed 1 >/dev/null \
  || { echo "FAIL data generate"; exit 1; }
R=$T/results/demo.h5

# The sweep, with reports taken while it runs: each one either reads the file (and says a sweep
# is writing it) or fails with one clear line; at least one must succeed.
$MPIRUN "$LS" sweep run "$T/sweep/demo.yaml" --out "$R" --quiet 2>"$T/sweep.err" &
SWEEP=$!
live_ok=0 live_err=0 live_bad=""
while kill -0 $SWEEP 2>/dev/null; do
  if [ -f "$R" ]; then
    "$LS" report "$R" >"$T/live.txt" 2>"$T/live.err"; rc=$?
    if [ $rc = 0 ] && grep -q "a sweep is writing this file now" "$T/live.txt"; then live_ok=$((live_ok + 1))
    elif [ $rc = 0 ]; then :  # the sweep ended between the check and the read
    elif [ $rc = 1 ] && [ "$(wc -l <"$T/live.err")" = 1 ]; then live_err=$((live_err + 1))
    else live_bad="exit $rc: $(head -c 300 "$T/live.err")"; fi
  fi
  sleep 2
done
wait $SWEEP
check "the demo sweep finishes" "0" "$?"
[ -z "$live_bad" ] && [ $live_ok -ge 1 ] && ok "reports during the sweep: $live_ok read it live, $live_err clear errors" \
  || bad "reports during the sweep: $live_ok live, $live_err errors, $live_bad"

# Every trial's recorded FLOPS against the budget's estimate (tests/flops_check.py, `sweep plan`).
$PY "$(dirname "$0")/flops_check.py" "$LS" "$T/sweep" "$R" >"$T/flops.txt" 2>&1 \
  && ok "demo: recorded FLOPS against the estimate: $(tail -1 "$T/flops.txt")" || bad "demo FLOPS: $(tail -3 "$T/flops.txt")"

"$LS" report "$R" >"$T/report.txt" 2>"$T/report.err"
check "report exits 0" "0" "$?"
for section in "Trials by final validation loss" "Context length (stage ctx" "FLOPS (course rules" \
  "Best configuration and the untrained baseline" "Failed and skipped trials"; do
  grep -qF "== $section" "$T/report.txt" && ok "section: $section" || bad "section missing: $section"
done
grep -q "UNFINISHED" "$T/report.txt" && bad "a finished sweep reported as unfinished" || ok "a finished sweep is not marked unfinished"
grep -q "trials: 10: 10 done" "$T/report.txt" && ok "counts: 10 done" || bad "counts: $(grep trials: "$T/report.txt")"
# no stage with early stopping: no such section, JSON stopped [] and flops_saved null, no rungs figure
"$LS" report "$R" --format json --plots "$T/nofigs" 2>"$T/nofigs.txt" | $PY -c 'import json, sys; r = json.load(sys.stdin); assert r["stopped"] == [] and r["flops_saved"] is None, r["flops_saved"]' \
  && ! grep -q "== Stopped early" "$T/report.txt" && ! grep -q "rungs" "$T/nofigs.txt" && [ -z "$(ls "$T/nofigs" | grep rungs_)" ] \
  && ok "without early stopping: no stopped-early section, figure or savings" || bad "early-stopping output without early stopping"

# CSV and JSON against the file read with h5py, computed independently here
"$LS" report "$R" --format csv >"$T/r.csv" && "$LS" report "$R" --format json >"$T/r.json"
check "csv and json exit 0" "0" "$?"
if $PY - "$R" "$T/r.csv" "$T/r.json" "$T/report.txt" <<'PY'
import sys, csv, json, math, h5py, numpy as np
path, csv_path, json_path, txt_path = sys.argv[1:]
f = h5py.File(path, "r")
t = f["trials"]
ids = [x.decode() for x in t["id"][:]]
val, steps, maxs = t["final_val_loss"][:], t["steps"][:], t["max_steps"][:]
trained = [i for i in range(len(ids)) if maxs[i] > 0 and np.isfinite(val[i])]
best = min(trained, key=lambda i: val[i])
base = [i for i in range(len(ids)) if maxs[i] == 0]
rows = list(csv.DictReader(open(csv_path)))
assert len(rows) == len(ids), (len(rows), len(ids))
v = [float(r["final_val_loss"]) for r in rows]
assert v == sorted(v), "csv not sorted by final validation loss"
assert rows[0]["id"] == ids[best] and rows[0]["best"] == "1", (rows[0]["id"], ids[best])
for r in rows:
    i = ids.index(r["id"])
    assert r["status"] == "done"
    assert float(r["lr"]) == t["lr"][i] and int(r["rank"]) == t["rank"][i] and int(r["ctx"]) == t["ctx"][i]
    for k in ("final_val_loss", "mse_both", "mae_prey", "flops_total", "wall_seconds"):
        assert math.isclose(float(r[k]), t[k][i], rel_tol=1e-8), (k, r[k], t[k][i])
j = json.load(open(json_path))
assert j["complete"] is True and j["being_written"] is False and j["journal"] is True
assert j["best"] == ids[best] and j["baseline"] == ids[base[0]], (j["best"], j["baseline"])
assert [s["name"] for s in j["stages"]] == ["baseline", "lr_rank", "ctx", "final"]
assert math.isclose(j["flops"]["total"], float(t["flops_total"][:].sum()), rel_tol=1e-9) and j["flops"]["budget"] == 1e14
assert len(j["trials"]) == len(ids)
for tr in j["trials"]:
    i = ids.index(tr["id"])
    assert tr["status"] == "done" and tr["hyperparameters"]["rank"] == t["rank"][i]
    assert math.isclose(tr["metrics"]["mse"]["both"], t["mse_both"][i], rel_tol=1e-12)
    assert tr["config"]["train"]["lr"] == t["lr"][i] and tr["config"]["lora"]["rank"] == t["rank"][i]
    assert tr["baseline"] == (maxs[i] == 0)
bl = [tr for tr in j["trials"] if tr["baseline"]][0]
assert bl["metrics"]["final_train_loss"] is None  # not measured: null, never NaN
# the text table lists trials in the same order as the CSV
cells = [line.split() for line in open(txt_path)]
order = [c[1] for c in cells if len(c) > 2 and c[0].isdigit() and len(c[1]) == 16 and c[1] in ids]
assert order[:len(ids)] == [r["id"] for r in rows], order
print("best %s, baseline %s, %d trials agree with h5py" % (ids[best], ids[base[0]], len(ids)))
PY
then ok "csv, json and table agree with the file"; else bad "csv/json/table against h5py"; fi

"$LS" report "$R" --format md >"$T/r.md"
grep -q "^## Trials by final validation loss" "$T/r.md" && grep -qE "^\| +# +\| id " "$T/r.md" && grep -qE '^\| -+: \|' "$T/r.md" \
  && ok "markdown: headings and pipe tables" || bad "markdown: $(head -20 "$T/r.md")"
"$LS" report "$R" --stage lr_rank --format csv >"$T/stage.csv"
check "--stage lr_rank: its 6 trials" "7" "$(wc -l <"$T/stage.csv")"
mkdir -p "$T/outdir"
"$LS" report "$R" --out "$T/outdir/report.txt" && cmp -s "$T/outdir/report.txt" "$T/report.txt" && ok "--out writes the same report" \
  || bad "--out"

# figures: PNGs decoded (size, not blank), SVGs parsed
"$LS" report "$R" --plots "$T/figs" >"$T/plots.txt"
check "report --plots exits 0" "0" "$?"
for name in loss_curves val_loss_heatmap flops_vs_val_loss; do
  grep -q "$T/figs/$name.png" "$T/plots.txt" && ok "names $name.png" || bad "does not name $name.png"
done
FC=$(ls "$T/figs" | grep '^forecast_.*\.png$')
[ -n "$FC" ] && grep -q "$FC" "$T/plots.txt" && ok "names the forecast figure $FC" || bad "forecast figure: $(ls "$T/figs")"
if $PY - "$T/figs" <<'PY'
import sys, os, struct, zlib, xml.etree.ElementTree as ET
d = sys.argv[1]
pngs = sorted(p for p in os.listdir(d) if p.endswith(".png"))
assert len(pngs) == 4, pngs
for p in pngs:
    data = open(os.path.join(d, p), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", p
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT": idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    assert len(raw) >= w * h * 3, (p, len(raw), w, h)      # RGB(A) rows, every pixel there
    assert len(set(raw[::7])) > 60, p                         # drawn on, not a blank page
    assert 600 <= w <= 4000 and 400 <= h <= 3000, (p, w, h)
    svg = os.path.join(d, p[:-4] + ".svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and float(root.get("width").rstrip("pt")) == w, (svg, root.get("width"))
    assert sum(1 for _ in root.iter()) > 100, svg
print("%d figures: PNG decoded, SVG parsed" % len(pngs))
PY
then ok "figures are real images"; else bad "figures"; fi
"$LS" report "$R" --plots "$T/figs2" --systems 0,1 --trial "$(head -2 "$T/r.csv" | tail -1 | cut -c1-6)" >/dev/null \
  && ok "--systems and a trial id prefix" || bad "--systems/--trial"
EXPECT_RC=1 EXPECT_PATTERN="did not forecast system 999" expect_error "a system that was not forecast" report "$R" --plots "$T/figs3" --systems 999

# the snippet of docs/analysis.md, exactly as written
sed -n '/^```python/,/^```/p' "$ROOT/docs/analysis.md" | sed '1d;$d' >"$T/snippet.py"
if $PY "$T/snippet.py" "$R" >"$T/snippet.out" 2>&1 && grep -q "^best: " "$T/snippet.out" && grep -q "MSE baseline / best" "$T/snippet.out"; then
  ok "docs/analysis.md snippet runs: $(grep '^best:' "$T/snippet.out")"
else bad "docs/analysis.md snippet: $(tail -5 "$T/snippet.out")"; fi

# A sweep killed (kill -9, every process) once a trial has reported training steps: that trial
# is interrupted, the rest pending, later stages never started. The report says all of it and
# still draws what exists. (Watched through the report itself, so no timing is assumed.)
P=$T/results/partial.h5
# trials of 400 steps (the demo's 20 on the tiny preset can run to their end between the report
# that saw one mid-training and the kill): seen at a validation, a trial has hundreds of steps left
sed 's/^    max_steps: 20$/    max_steps: 400/' "$T/sweep/demo.yaml" >"$T/sweep/partial.yaml"
grep -q "max_steps: 400" "$T/sweep/partial.yaml" || bad "the partial sweep's grid"
setsid $MPIRUN "$LS" sweep run "$T/sweep/partial.yaml" --out "$P" --quiet 2>/dev/null &
KPID=$!
PGID=$(ps -o pgid= $KPID | tr -d ' ')
seen=0
for _ in $(seq 1 900); do
  if [ -f "$P" ] && "$LS" report "$P" --format json 2>/dev/null | $PY -c "
import json, sys
j = json.load(sys.stdin)
# mid-training, not at its last step: a trial seen at step N/N may finish before the kill lands
def mid(d):
    if not d.startswith('running at step '): return False
    n, m = d.split()[-1].split('/')
    return 0 < int(n) < int(m)
sys.exit(0 if any(mid(t['status_detail']) for t in j['trials']) else 1)"; then seen=1; break; fi
  kill -0 $KPID 2>/dev/null || break
  sleep 0.3
done
kill -9 -- -"$PGID" 2>/dev/null
wait $KPID 2>/dev/null
# rank 0's lock goes with the process: wait until the kernel has let it go
for _ in $(seq 1 100); do
  "$LS" report "$P" --format json 2>/dev/null | $PY -c "import json, sys; sys.exit(1 if json.load(sys.stdin)['being_written'] else 0)" && break
  sleep 0.2
done
check "a trial was seen running before the kill" "1" "$seen"
"$LS" report "$P" --plots "$T/pfigs" >"$T/partial.txt"
check "report of a killed sweep exits 0" "0" "$?"
grep -qE "UNFINISHED: [1-9][0-9]* interrupted" "$T/partial.txt" && ok "marks interrupted trials: $(grep UNFINISHED "$T/partial.txt")" \
  || bad "no interrupted mark: $(head -8 "$T/partial.txt")"
grep -q "stage final: not started yet" "$T/partial.txt" && ok "names stages not started" || bad "stages not started"
grep -qE "interrupted at step [1-9]" "$T/partial.txt" && ok "interrupted rows in the table: $(grep -oE "interrupted at step [0-9]+/[0-9]+" "$T/partial.txt" | head -1)" || bad "table rows: $(grep -E "interrupted|running" "$T/partial.txt" | head -4)"
grep -q "loss_curves.png" "$T/partial.txt" && ok "figures of a partial sweep" || bad "figures of a partial sweep"
"$LS" report "$P" --format json | $PY -c "
import json, sys
j = json.load(sys.stdin)
assert j['complete'] is False and j['being_written'] is False and j['counts']['interrupted'] >= 1, j['counts']
assert any(t['interrupted'] for t in j['trials'])
assert [s['started'] for s in j['stages']][-1] is False
" && ok "json: complete false, interrupted trials" || bad "json of a partial file"

# not results files: one line, exit 1
EXPECT_RC=1 EXPECT_PATTERN="not a lorasweep results file" expect_error "a data file" report "$T/results/demo/lv_sim.h5"
echo "hello" >"$T/notes.txt"
EXPECT_RC=1 EXPECT_PATTERN="notes.txt: cannot open as HDF5" expect_error "a text file" report "$T/notes.txt"
head -c 3000 "$R" >"$T/cut.h5"
EXPECT_RC=1 expect_error "a truncated results file" report "$T/cut.h5"
EXPECT_RC=1 EXPECT_PATTERN="No such file" expect_error "a missing file" report "$T/none.h5"
EXPECT_RC=2 EXPECT_PATTERN="no such stage \(its stages: baseline, lr_rank, ctx, final\)" expect_error "an unknown stage" report "$R" --stage nope
EXPECT_RC=2 expect_error "a bad format" report "$R" --format xml
EXPECT_RC=2 expect_error "no file" report
EXPECT_RC=2 expect_error "a bad trial id" report "$R" --trial xyz
# hostile copies of the demo's file, made here: a row claiming 2^31-1 steps (its curve buffer
# would be 8 GiB) or stage INT_MAX (an index overflow): one line, exit 1; a FIFO where the journal
# belongs (once a hang): not read, said so, the report made from the file's own statuses.
for field in max_steps stage; do
  cp "$R" "$T/hostile-$field.h5"
  $PY -c "import sys, h5py; f = h5py.File(sys.argv[1], 'r+'); f['trials/$field'][3] = 2**31 - 1" "$T/hostile-$field.h5"
  EXPECT_RC=1 EXPECT_TIMEOUT=120 EXPECT_PATTERN="hostile-$field.h5: damaged results file: trial [0-9a-f]{16} has stage" \
    expect_error "a row with $field 2^31-1" report "$T/hostile-$field.h5"
done
cp "$R" "$T/fifo.h5" && mkfifo "$T/fifo.h5.journal"
timeout 120 "$LS" report "$T/fifo.h5" >"$T/fifo.txt" 2>"$T/fifo.err"
check "a FIFO as the journal: exit 0, nothing on stderr" "0 0" "$? $(wc -c <"$T/fifo.err")"
contains "a FIFO as the journal: not used, and said" "journal not used (" "$(grep -F 'not a regular file (a FIFO)' "$T/fifo.txt")"
"$LS" report --help | grep -q "^usage: lorasweep report" && ok "--help" || bad "--help"
finish
