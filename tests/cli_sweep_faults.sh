#!/usr/bin/env bash
# cli_sweep_faults.sh LORASWEEP SHARED_DIR: a full disk is the machine's fault, not the trial's.
# A sweep whose writes meet ENOSPC (the checkpoint, the adapter, the curves, the journal, the
# results file: LS_FAULT fault sites; and a real tmpfs filled up while the sweep runs) must stop
# with exit 4 and one line naming the file and "No space left on device", mark no trial failed,
# start no later stage, and, once the same command runs again with room, end exactly as an
# undisturbed sweep: the same trials, skips, winners and metrics (a budget that binds included).
source "$(dirname "$0")/cli_lib.sh"
source "$(dirname "$0")/sweep_lib.sh"
cat >"$T/grid.yaml" <<YAML
name: ci-full-disk
budget_flops: 6.0e11
base:
  model: {path: $T/tiny}
  data: {path: $T/lv.h5}
  lora: {rank: 2}
  train: {ctx: 64, batch_size: 2, max_steps: 6, lr: 1.0e-3, eval_every: 2, val_max_windows: 4, checkpoint_every: 2}
  eval: {systems: 1, samples: 2}
stages:
  - name: lr
    grid: {train.lr: [1.0e-3, 3.0e-3, 1.0e-2]}
  - name: ctx
    select: {from: lr, metric: final_val_loss, keep: [train.lr]}
    grid: {train.ctx: [48, 96]}
YAML

same_as_ref() { same_trials "$T/ref/s.h5" "$1"; } # every row of the sweep at OUT as the reference's

$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/ref/s.h5" --quiet 2>"$T/ref.err" || { bad "reference sweep: $(tail -3 "$T/ref.err")"; finish; }
[ "$(journal_count "$T/ref/s.h5.journal" 7)" -ge 1 ] && ok "reference sweep (the budget skips a trial)" || bad "the budget does not bind"

# full_disk NAME OUT: the run just made (rc, log in $T/run.err) stopped as a full disk must stop
full_disk() {
  local name=$1 out=$2 why=""
  local line; line=$(grep "^lorasweep: stopped by a fault of the machine" "$T/run.err")
  [ "$rc" = 4 ] || why="exit $rc, want 4"
  [ -z "$why" ] && { [ "$(printf '%s' "$line" | grep -c .)" = 1 ] && [[ "$line" == *"No space left on device"* ]]; } \
    || why="${why:-no single line naming the cause}"
  [ -z "$why" ] && [ "$(journal_count "$out.journal" 6)" != 0 ] && why="a trial was marked failed"
  [ -z "$why" ] && grep -q " FAILED: " "$T/run.err" && why="a FAILED line in the log"
  if [ -z "$why" ]; then ok "$name: exit 4, ${line#lorasweep: }"; else bad "$name: $why; $(grep -v '^\[' "$T/run.err" | tail -4)"; fi
}

# Every kind of write, failing as on a full disk (LS_FAULT ... :enospc), then the same command
for fault in $(sample write@state.safetensors:3:enospc write@adapter_model.safetensors:1:enospc \
             write@curves.csv:1:enospc write@metrics.json:2:enospc journal_append:7:enospc results_write:40:enospc); do
  out="$T/${fault%%:*}/s.h5"
  LS_FAULT=$fault $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$out" 2>"$T/run.err"; rc=$?
  full_disk "$fault" "$out"
  $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$out" --quiet 2>"$T/again.err"; rc=$?
  if [ $rc = 0 ] && same_as_ref "$out"; then ok "$fault: the same command then ends as the undisturbed sweep"
  else bad "$fault: after the fault: rc=$rc $(tail -3 "$T/again.err")"; fi
done

# A crash inside a write (kill -9 of the process at the fault site): in the middle of a results
# row, with a trial's rows written and the journal not yet told, inside a checkpoint and an adapter
# write (data written, not yet renamed into place), as a stage's rows are added. Resumed, every trial
# is done exactly once (one done record each) and every row equals the undisturbed sweep's.
for fault in $(sample results_write:9:kill trial_written:2:kill write@state.safetensors:4:kill \
             write@adapter_model.safetensors:2:kill stage_added:2:kill); do
  out="$T/kill-${fault%%:*}/s.h5"
  LS_FAULT=$fault $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$out" >"$T/run.err" 2>&1; rc=$?
  done_before=$(journal_count "$out.journal" 5)
  $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$out" --quiet 2>"$T/again.err"; rc2=$?
  done_ids=$($PY - "$out.journal" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(); at = 8; ids = []
while at + 8 <= len(d):
    n, = struct.unpack_from("<I", d, at)
    if d[at + 8] == 5: ids.append(d[at + 8 + 10:at + 8 + 18])
    at += 8 + n
print(len(ids), len(set(ids)))
PY
)
  if [ $rc != 0 ] && [ $rc != 1 ] && [ $rc != 3 ] && [ "$done_before" -lt 5 ] && [ $rc2 = 0 ] && [ "${done_ids% *}" = "${done_ids#* }" ] \
     && same_as_ref "$out"; then ok "killed at $fault (exit $rc, $done_before done): resumed, each trial done once ($done_ids), rows as undisturbed"
  else bad "killed at $fault: rc=$rc done_before=$done_before rc2=$rc2 done records/ids=$done_ids $(tail -2 "$T/again.err")"; fi
done

# A damaged results file at start (truncated at several offsets, bytes flipped): set aside, rebuilt
# from the journal and the trial directories, and the report of the rebuilt file is the report of
# the original, value for value (JSON); nothing finished runs again.
"$LS" report "$T/ref/s.h5" --format json >"$T/ref.json"
size=$(stat -c %s "$T/ref/s.h5")
for damage in $(sample truncate:2 truncate:5 truncate:50 flip:3 flip:2); do
  set -- ${damage/:/ }
  d="$T/dmg-$1-$2"; cp -a "$T/ref" "$d"
  if [ "$1" = truncate ]; then truncate -s $((size / $2)) "$d/s.h5"
  else printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$d/s.h5" bs=1 seek=$((size / $2)) conv=notrunc 2>/dev/null; fi
  $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$d/s.h5" 2>"$T/run.err"; rc=$?
  "$LS" report "$d/s.h5" --format json >"$T/dmg.json" 2>&1
  if [ $rc = 0 ] && ! grep -q "started on rank" "$T/run.err" && $PY - "$T/ref.json" "$T/dmg.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("file"); b.pop("file")
assert a == b, [(k, a[k], b.get(k)) for k in a if a[k] != b.get(k)][:3]
PY
  then ok "results $damage: $(grep -o 'was damaged.*moved to [^;]*' "$T/run.err" | head -c 90)...; report equal, nothing rerun"
  else bad "results $damage: rc=$rc $(grep -v '^\[' "$T/run.err" | tail -3)"; fi
done
# A flipped bit in a done trial's row: the CRC-checked journal wins, in the report and in the file.
cp -a "$T/ref" "$T/flip"
$PY - "$T/flip/s.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    at = f["trials/final_val_loss"].id.get_chunk_info(0).byte_offset + 6  # row 0, a high byte
with open(sys.argv[1], "r+b") as g:
    g.seek(at); b = g.read(1); g.seek(at); g.write(bytes([b[0] ^ 0x10]))
PY
"$LS" report "$T/flip/s.h5" >"$T/flip.txt" 2>&1
"$LS" report "$T/flip/s.h5" --format json >"$T/dmg.json" 2>&1
if grep -q "disagrees with its journal on 1 done trial" "$T/flip.txt" && $PY - "$T/ref.json" "$T/dmg.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("file"); b.pop("file")
assert a == b
PY
then ok "a flipped bit in /trials/final_val_loss: the report shows the journal's values and says so"
else bad "report of a flipped row: $(grep note "$T/flip.txt")"; fi
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/flip/s.h5" 2>"$T/run.err"; rc=$?
[ $rc = 0 ] && grep -q "disagreed with its journal on 1 done trial" "$T/run.err" && ! grep -q "started on" "$T/run.err" \
  && $PY - "$T/ref/s.h5" "$T/flip/s.h5" <<'PY' && ok "and sweep run rewrites the row from the journal" || bad "repair: rc=$rc $(tail -2 "$T/run.err")"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["trials/final_val_loss"][:] for p in sys.argv[1:3])
assert np.array_equal(a, b, equal_nan=True), (a, b)
PY

# Two rows with one id are damage, not two trials to merge silently: the report refuses, the sweep rebuilds.
cp -a "$T/ref" "$T/dup"
$PY - "$T/dup/s.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    ids = f["trials/id"]; ids[1] = ids[0]
PY
EXPECT_PATTERN="more than one row" expect_error "report: a repeated /trials/id" report "$T/dup/s.h5"
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/dup/s.h5" 2>"$T/run.err"; rc=$?
[ $rc = 0 ] && grep -q "was damaged" "$T/run.err" && same_as_ref "$T/dup/s.h5" && ok "sweep run: a repeated id is rebuilt away" \
  || bad "repeated id: rc=$rc $(tail -2 "$T/run.err")"

# ... and a damaged file in the middle of a sweep: rebuilt, and the sweep goes on to the same end
LS_FAULT=trial_done:2 $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/mid/s.h5" 2>/dev/null
truncate -s 4000 "$T/mid/s.h5"
$MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/mid/s.h5" 2>"$T/run.err"; rc=$?
[ $rc = 0 ] && grep -q "was damaged" "$T/run.err" && same_as_ref "$T/mid/s.h5" \
  && ok "damaged mid-sweep: rebuilt and finished as the undisturbed sweep" || bad "damaged mid-sweep: rc=$rc $(tail -3 "$T/run.err")"

# Files that are not ours are never replaced: a text file, someone's HDF5, a symlink, a FIFO as --out.
echo "my notes" >"$T/notes.h5"
cp "$T/lv.h5" "$T/theirs.h5"
ln -s "$T/notes.h5" "$T/link.h5"
mkfifo "$T/fifo.h5"
sum_before=$(md5sum "$T/notes.h5" "$T/theirs.h5")
for out in notes theirs link fifo; do
  EXPECT_PATTERN="refusing" expect_error "--out $out.h5 is refused" sweep run "$T/grid.yaml" --out "$T/$out.h5" --ranks 3
done
[ "$sum_before" = "$(md5sum "$T/notes.h5" "$T/theirs.h5")" ] && [ -L "$T/link.h5" ] && [ -p "$T/fifo.h5" ] \
  && ! ls "$T" | grep -q "damaged\|notes.trials\|theirs.h5.journal" && ok "and left as they were, nothing created beside them" \
  || bad "a foreign --out was touched: $(ls "$T")"
EXPECT_PATTERN="symbolic link: refusing" expect_error "report --out a symlink is refused" report "$T/ref/s.h5" --format csv --out "$T/link.h5"

# A real full disk: the results on a 24 MB tmpfs that fills up once two trials are done.
if [ "$(id -u)" = 0 ] && mkdir -p "$T/disk" && mount -t tmpfs -o size=24m tmpfs "$T/disk" 2>"$T/mount.err"; then
  trap 'umount "$T/disk" 2>/dev/null; rm -rf "$T"' EXIT
  # bounded: with the full disk taken for the trials' fault, the sweep once went on failing forever
  timeout -s KILL 300 $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/disk/s.h5" >"$T/run.err" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do
    [ -f "$T/disk/s.h5.journal" ] && [ "$(journal_count "$T/disk/s.h5.journal" 5)" -ge 2 ] && break; sleep 0.1
  done
  dd if=/dev/zero of="$T/disk/ballast" bs=64k 2>/dev/null # until the disk is full
  wait $pid; rc=$?
  [ "$(journal_count "$T/disk/s.h5.journal" 5)" -lt 7 ] && full_disk "a real full tmpfs" "$T/disk/s.h5" \
    || bad "the tmpfs filled too late: the sweep had finished"
  rm -f "$T/disk/ballast"
  $MPIRUN "$LS" sweep run "$T/grid.yaml" --out "$T/disk/s.h5" --quiet 2>"$T/again.err"; rc=$?
  if [ $rc = 0 ] && same_as_ref "$T/disk/s.h5"; then ok "room made: the same command ends as the undisturbed sweep"
  else bad "after the full tmpfs: rc=$rc $(tail -3 "$T/again.err")"; fi
  umount "$T/disk"
else
  echo "note: no tmpfs could be mounted here ($(cat "$T/mount.err" 2>/dev/null)): the full disk was met through the fault sites only"
fi
finish
