#!/bin/bash
# results_h5py.sh FILE: the results file mpi_results leaves is readable by h5dump and by h5py
# (Debian's python3-h5py), with the schema docs/results.md describes.
set -euo pipefail
f=$1
[ -f "$f" ] || { echo "missing $f (run mpi_results first)"; exit 1; }
h5dump -H "$f" > /dev/null
h5dump -d /trials/lr "$f" | grep -q "DATASPACE  SIMPLE { ( 5 ) / ( H5S_UNLIMITED ) }"
h5dump -a /grid_hash "$f" | grep -q '"0123456789abcdef"'
/usr/bin/python3 - "$f" <<'PY'
import sys, math
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["grid_hash"].decode() == "0123456789abcdef", f.attrs["grid_hash"]
    assert f.attrs["sweep_name"].decode() == "test-sweep"
    assert f.attrs["format_version"] == 1
    assert f.attrs["data_checksum"].decode() == "fnv1a64:1122334455667788"
    assert "train.lr" in f["grid"][()].decode()
    t = f["trials"]
    ids = [x.decode() for x in t["id"][:]]
    assert ids == ["00000000000000a0", "00000000000000a1", "00000000000000a2", "00000000000000a3",
                   "00000000000000b1"], ids
    assert list(t["status"][:]) == [2, 2, 3, 0, 2], t["status"][:]
    assert list(t["stage"][:]) == [0, 0, 0, 0, 1]
    assert t["error"][2].decode() == "NaN loss at step 8"
    assert math.isnan(t["mse_both"][3]) and abs(t["mse_both"][0] - 60.3) < 1e-9, t["mse_both"][:]
    assert t["config"][0].decode().startswith("name: t0")
    tl = f["curves/train_loss"]
    assert tl.shape == (5, 13), tl.shape
    assert tl[0, 0] == np.float32(60.125) and np.isnan(tl[0, 6]) and tl[4, 12] == np.float32(77 + 0.125 * 13)
    assert f["forecast/mean"].shape == (5, 2, 3, 2)
    assert list(f["forecast/system"][1]) == [7, 9]
    assert f["curves/val_step"][0, 2] == -1
    # the pandas recipe of docs/results.md, without pandas: one column per 1-D dataset
    cols = {k: t[k][:] for k in t if t[k].ndim == 1}
    assert len(set(len(v) for v in cols.values())) == 1
print("h5py: ok")
PY
echo "results_h5py: ok"
