# sweep_lib.sh: sourced (after cli_lib.sh) by the cli tests that run whole sweeps under mpirun:
# the tiny model and a data set in $T, Open MPI's settings for root and few cores, and checks
# that read a sweep's journal and results. Not a test itself (no cli_ prefix: not registered).
TOK=$SHARED/qwen/tokenizer.json
[ -f "$TOK" ] || [ -z "${LS_TOKENIZER:-}" ] || TOK=$LS_TOKENIZER
need_shared "$TOK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=detect_leaks=0 # no leak report at exit: Open MPI's own leaks (the mpi_* tests check ours)
MPIRUN="mpirun --oversubscribe -np 3"
"$LS" model init --preset tiny --out "$T/tiny" --tokenizer "$TOK" >/dev/null || { echo "FAIL model init"; exit 1; }
"$LS" data generate --out "$T/lv.h5" --seed 5 >/dev/null || { echo "FAIL data generate"; exit 1; }

# journal_count FILE TYPE: complete records of one type in a journal, read by its format
# (docs/results.md: 2 start, 3 progress, 4 checkpoint, 5 done, 6 failed, 7 skipped); 0 without one
journal_count() {
  [ -f "$1" ] || { echo 0; return; }
  $PY - "$1" "$2" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
at, n = 8, 0
while at + 8 <= len(d):
    length, = struct.unpack_from("<I", d, at)
    if at + 8 + length > len(d): break
    n += d[at + 8] == int(sys.argv[2])
    at += 8 + length
print(n)
PY
}

# same_trials A.h5 B.h5: the two results files hold the same trials with the same rows (status,
# stage, steps, losses, forecast errors, FLOPS, message), bit for bit
same_trials() {
  $PY - "$1" "$2" <<'PY'
import sys, h5py, math
def rows(path):
    t = h5py.File(path, "r")["trials"]
    keys = ("status", "stage", "steps", "final_train_loss", "final_val_loss", "mse_both", "mae_both",
            "flops_total", "error")
    cols = {k: t[k][:] for k in keys}
    return {i: tuple(cols[k][n] for k in keys) for n, i in enumerate(t["id"][:])}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert sorted(a) == sorted(b), ("different trials", sorted(a), sorted(b))
same = lambda x, y: x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
for i in a:
    assert all(same(x, y) for x, y in zip(a[i], b[i])), ("trial", i, a[i], b[i])
PY
}

# sample WORDS...: the words, or under LS_TEST_SAMPLE=1 (the sanitizer build, where each sweep
# takes minutes) the first and the last of them: every kind of check still runs there
sample() {
  if [ "${LS_TEST_SAMPLE:-0}" = 1 ] && [ $# -gt 2 ]; then echo "$1 ${!#}"; else echo "$*"; fi
}
