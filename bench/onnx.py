#!/usr/bin/env python3
"""ONNX tree ensembles (100 trees) run by Flywheel and by onnxruntime, on
the same files, in one run.

    python3 bench/onnx.py      # installs scikit-learn, skl2onnx and onnxruntime into bench/.venv-onnx once

scikit-learn trains three 100-tree models on 200k rows × 20 columns
(random forest classifier and regressor, max_depth 10; histogram gradient
boosting classifier, 100 iterations); skl2onnx exports them (class scores
as a tensor, no ZipMap, so onnxruntime's Python dict conversion is not
timed). Both then predict 1M rows in batches of 65,536 rows, on all cores:
onnxruntime's `InferenceSession.run` per batch on float32 arrays already in
memory; Flywheel's `flywheel predict FILE.onnx` over the same rows in the
same batch size (its own prediction time, reported with `--json`, which
includes turning the table's columns into the graph's input tensor).

Target (issue 4): Flywheel within 2× of onnxruntime's time per batch.
"""

import json
import os
import subprocess
import tempfile
import time

from common import build_flywheel, venv_python, version

PREPARE = r"""
import json, sys, numpy as np, pandas as pd, onnx, onnx.helper
from skl2onnx import to_onnx
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor

# skl2onnx 1.20 + numpy 2: plain ints for HistGradientBoosting's attribute lists.
_make = onnx.helper.make_attribute
def _plain(v):
    v = v.item() if isinstance(v, np.generic) else v
    return int(v) if isinstance(v, bool) else v
onnx.helper.make_attribute = lambda k, v, *a, **kw: _make(k, [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v, *a, **kw)

out = sys.argv[1]
rng = np.random.default_rng(11)
cols = [f"f{i}" for i in range(20)]
def data(n):
    x = rng.normal(size=(n, 20)).astype(np.float32)
    z = x[:, 0] - 0.5 * x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + np.sin(2 * x[:, 4]) + rng.normal(0, 1, n)
    return x, z
x, z = data(200_000)
px, _ = data(1_000_000)
np.save(f"{out}/predict.npy", px)
pd.DataFrame(px, columns=cols).to_parquet(f"{out}/predict.parquet", index=False)
models = {
    "forest_classifier": (RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=-1, random_state=0), z > 0),
    "forest_regressor": (RandomForestRegressor(n_estimators=100, max_depth=10, n_jobs=-1, random_state=0), z),
    "hist_gbt_classifier": (HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0), z > 0),
}
for name, (m, y) in models.items():
    m.fit(x, y)
    onx = to_onnx(m, x[:1], options={id(m): {"zipmap": False}} if hasattr(m, "classes_") else {})
    onx.metadata_props.add(key="flywheel.signature", value=json.dumps({"inputs": cols, "target": "y"}))
    open(f"{out}/{name}.onnx", "wb").write(onx.SerializeToString())
"""

ORT = r"""
import json, sys, time, numpy as np, onnxruntime as ort
path, data, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.load(data)
opts = ort.SessionOptions()
opts.intra_op_num_threads = __import__("os").cpu_count()
sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    for a in range(0, len(x), batch):
        sess.run(None, {name: x[a:a + batch]})
    best = min(best, time.perf_counter() - t)
print(json.dumps({"rows": len(x), "seconds": best, "batches": -(-len(x) // batch)}))
"""

BATCH = 65_536


def main():
    py = venv_python(".venv-onnx", ["numpy", "pandas", "pyarrow", "scikit-learn", "skl2onnx", "onnxruntime", "onnx"])
    versions = {d: version(py, d) for d in ["scikit-learn", "skl2onnx", "onnxruntime"]}
    fw = build_flywheel()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([py, "-c", PREPARE, tmp], check=True)
        for name in ["forest_classifier", "forest_regressor", "hist_gbt_classifier"]:
            model = f"{tmp}/{name}.onnx"
            best = None
            for _ in range(3):
                out = subprocess.run([fw, "predict", model, f"{tmp}/predict.parquet", "-o", f"{tmp}/out.parquet",
                                      "--json", "--home", f"{tmp}/home"], check=True, capture_output=True, text=True)
                r = json.loads(out.stdout)
                best = r if best is None or r["seconds"] < best["seconds"] else best
            o = json.loads(subprocess.run([py, "-c", ORT, model, f"{tmp}/predict.npy", str(BATCH)],
                                          check=True, capture_output=True, text=True).stdout)
            rows.append((name, best, o))
    print(f"\n1,000,000 rows × 20 columns, batches of {BATCH:,} rows; best of 3; {os.cpu_count()} cores; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    print("| model (100 trees) | Flywheel | per batch | onnxruntime | per batch | Flywheel / onnxruntime | target ≤ 2× |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f, o in rows:
        batches = o["batches"]
        ratio = f["seconds"] / o["seconds"]
        print(f"| {name} | {f['seconds']:.3f} s | {1000 * f['seconds'] / batches:.1f} ms | {o['seconds']:.3f} s | "
              f"{1000 * o['seconds'] / batches:.1f} ms | {ratio:.2f}× | {'met' if ratio <= 2 else 'not met'} |")


if __name__ == "__main__":
    main()
