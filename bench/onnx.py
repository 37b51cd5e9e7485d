#!/usr/bin/env python3
"""ONNX tree ensembles (100 trees) run by Flywheel and by onnxruntime, on
the same files, in one run.

    python3 bench/onnx.py      # installs scikit-learn, skl2onnx and onnxruntime into bench/.venv-onnx once
    python3 bench/onnx.py --smoke --flywheel target/debug/flywheel   # 10 trees, 2k + 10k rows; onnxruntime if installed

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

import sys

from common import arguments, flywheel, python_for, smoke_note, version

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

out, n_train, n_predict, trees = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(11)
cols = [f"f{i}" for i in range(20)]
def data(n):
    x = rng.normal(size=(n, 20)).astype(np.float32)
    z = x[:, 0] - 0.5 * x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + np.sin(2 * x[:, 4]) + rng.normal(0, 1, n)
    return x, z
x, z = data(n_train)
px, _ = data(n_predict)
np.save(f"{out}/predict.npy", px)
pd.DataFrame(px, columns=cols).to_parquet(f"{out}/predict.parquet", index=False)
models = {
    "forest_classifier": (RandomForestClassifier(n_estimators=trees, max_depth=10, n_jobs=-1, random_state=0), z > 0),
    "forest_regressor": (RandomForestRegressor(n_estimators=trees, max_depth=10, n_jobs=-1, random_state=0), z),
    "hist_gbt_classifier": (HistGradientBoostingClassifier(max_iter=trees, early_stopping=False, random_state=0), z > 0),
}
for name, (m, y) in models.items():
    m.fit(x, y)
    onx = to_onnx(m, x[:1], options={id(m): {"zipmap": False}} if hasattr(m, "classes_") else {})
    onx.metadata_props.add(key="flywheel.signature", value=json.dumps({"inputs": cols, "target": "y"}))
    open(f"{out}/{name}.onnx", "wb").write(onx.SerializeToString())
"""

ORT = r"""
import json, sys, time, numpy as np, onnxruntime as ort
path, data, batch, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.load(data)
opts = ort.SessionOptions()
opts.intra_op_num_threads = __import__("os").cpu_count()
sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
best = float("inf")
for _ in range(repeat):
    t = time.perf_counter()
    for a in range(0, len(x), batch):
        sess.run(None, {name: x[a:a + batch]})
    best = min(best, time.perf_counter() - t)
print(json.dumps({"rows": len(x), "seconds": best, "batches": -(-len(x) // batch)}))
"""

MAKERS = ["sklearn", "skl2onnx", "onnx", "pandas", "pyarrow"]


def main():
    ap = arguments(__doc__)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--train-rows", type=int, default=200_000)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to predict")
    ap.add_argument("--batch", type=int, default=65_536)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.smoke:
        args.trees, args.train_rows, args.rows, args.batch, args.repeat = 10, 2_000, 10_000, 4_096, 1
    packages = ["numpy", "pandas", "pyarrow", "scikit-learn", "skl2onnx", "onnxruntime", "onnx"]
    # The models come from scikit-learn through skl2onnx: without them there is nothing to run.
    py = python_for(args, ".venv-onnx", packages, MAKERS, "the whole ONNX benchmark (it needs models made by skl2onnx)")
    if py is None:
        return
    ort_py = python_for(args, ".venv-onnx", packages, MAKERS + ["onnxruntime"], "onnxruntime")
    dists = ["scikit-learn", "skl2onnx"] + (["onnxruntime"] if ort_py else [])
    versions = {d: version(py, d) for d in dists}
    fw = flywheel(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([py, "-c", PREPARE, tmp, str(args.train_rows), str(args.rows), str(args.trees)], check=True)
        for name in ["forest_classifier", "forest_regressor", "hist_gbt_classifier"]:
            model = f"{tmp}/{name}.onnx"
            best = None
            for _ in range(args.repeat):
                out = subprocess.run([fw, "predict", model, f"{tmp}/predict.parquet", "-o", f"{tmp}/out.parquet",
                                      "--json", "--home", f"{tmp}/home"], capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"flywheel predict {name}.onnx failed: {out.stderr[-2000:]}")
                r = json.loads(out.stdout)
                best = r if best is None or r["seconds"] < best["seconds"] else best
            o = None
            if ort_py:
                o = json.loads(subprocess.run([ort_py, "-c", ORT, model, f"{tmp}/predict.npy", str(args.batch), str(args.repeat)],
                                              check=True, capture_output=True, text=True).stdout)
            rows.append((name, best, o))
    print()
    smoke_note(args)
    print(f"{args.rows:,} rows × 20 columns, batches of {args.batch:,} rows; best of {args.repeat}; {os.cpu_count()} cores; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    print(f"| model ({args.trees} trees) | Flywheel | per batch | onnxruntime | per batch | Flywheel / onnxruntime | target ≤ 2× |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    batches = -(-args.rows // args.batch)
    for name, f, o in rows:
        if o is None:
            print(f"| {name} | {f['seconds']:.3f} s | {1000 * f['seconds'] / batches:.1f} ms | – | – | – | – |")
            continue
        ratio = f["seconds"] / o["seconds"]
        print(f"| {name} | {f['seconds']:.3f} s | {1000 * f['seconds'] / batches:.1f} ms | {o['seconds']:.3f} s | "
              f"{1000 * o['seconds'] / batches:.1f} ms | {ratio:.2f}× | {'met' if ratio <= 2 else 'not met'} |")


if __name__ == "__main__":
    main()
