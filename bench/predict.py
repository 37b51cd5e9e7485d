#!/usr/bin/env python3
"""Batch prediction throughput, transform and model together, side by side
with scikit-learn, in one run: a logistic regression and a 100-tree
boosted ensemble, trained on the same 200k rows, predicting 1M rows × 20
columns on the machine's cores.

    python3 bench/predict.py      # installs scikit-learn into bench/.venv-train once
    python3 bench/predict.py --smoke --flywheel target/debug/flywheel   # 2k + 10k rows

Flywheel's figure is what `flywheel predict --json` reports for the
prediction itself (transform + model over the whole frame, in blocks on
all cores); the file read is reported separately. scikit-learn's is
`predict_proba` of the fitted pipeline on a DataFrame already in memory.

Targets (issue 4): at least 1M rows/s for logistic regression and 200k
rows/s for a 100-tree ensemble, on 2 cores.
"""

import json
import os
import pathlib
import subprocess
import tempfile
import time

from common import arguments, data_python, flywheel, python_for, smoke_note, version

PREPARE = r"""
import sys, numpy as np, pandas as pd
out, n_train, n_predict = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(11)
def frame(n):
    x = rng.normal(size=(n, 20))
    z = x[:, 0] - 0.5 * x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + np.sin(2 * x[:, 4]) + rng.normal(0, 1, n)
    df = pd.DataFrame(x.round(5), columns=[f"f{i}" for i in range(20)])
    df["label"] = np.where(z > 0, "yes", "no")
    return df
frame(n_train).to_parquet(f"{out}/train.parquet", index=False)
frame(n_predict).to_parquet(f"{out}/predict.parquet", index=False)
"""

SKLEARN = r"""
import json, sys, time, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
train, data, model, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tr = pd.read_parquet(train)
y = tr.pop("label") == "yes"
est = make_pipeline(StandardScaler(), LogisticRegression()) if model == "logistic" else \
    HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0)
est.fit(tr, y)
x = pd.read_parquet(data).drop(columns="label")
best = float("inf")
for _ in range(repeat):
    t = time.perf_counter()
    est.predict_proba(x)
    best = min(best, time.perf_counter() - t)
print(json.dumps({"rows": len(x), "seconds": best}))
"""

PIPELINE = """
[pipeline]
name = "predict-{model}"
[steps.ingest]
component = "ingest"
params = {{ path = "{train}", eval_fraction = 0.1 }}
[steps.train]
component = "train"
inputs = {{ data = "ingest.train" }}
params = {{ target = "label", model = "{model}", max_iterations = 100, early_stopping = "off" }}
[steps.push]
component = "push"
inputs = {{ model = "train.model" }}
params = {{ model_name = "{model}" }}
"""


def main():
    ap = arguments(__doc__)
    ap.add_argument("--train-rows", type=int, default=200_000)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to predict")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.smoke:
        args.train_rows, args.rows, args.repeat = 2_000, 10_000, 1
    packages = ["numpy", "pandas", "pyarrow", "scikit-learn"]
    py = python_for(args, ".venv-train", packages, ["sklearn", "pandas", "pyarrow"], "scikit-learn")
    sklearn_version = version(py, "scikit-learn") if py else None
    gen_py = py or data_python(args, ".venv-train", packages)
    fw = flywheel(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([gen_py, "-c", PREPARE, tmp, str(args.train_rows), str(args.rows)], check=True)
        home = f"{tmp}/home"
        for model in ["logistic", "gbt"]:
            p = pathlib.Path(tmp) / f"{model}.toml"
            p.write_text(PIPELINE.format(model=model, train=f"{tmp}/train.parquet"))
            subprocess.run([fw, "run", str(p), "--home", home], check=True, capture_output=True)
            best = None
            for _ in range(args.repeat):
                t = time.perf_counter()
                out = subprocess.run([fw, "predict", model, f"{tmp}/predict.parquet", "--json", "--home", home],
                                     check=True, capture_output=True, text=True)
                wall = time.perf_counter() - t
                r = json.loads(out.stdout)
                if best is None or r["seconds"] < best[0]["seconds"]:
                    best = (r, wall)
            sk = None
            if py:
                sk = json.loads(subprocess.run([py, "-c", SKLEARN, f"{tmp}/train.parquet", f"{tmp}/predict.parquet", model,
                                                str(args.repeat)], check=True, capture_output=True, text=True).stdout)
            rows.append((model, best[0], best[1], sk))
    print()
    smoke_note(args)
    print(f"{args.rows:,} rows × 20 columns; best of {args.repeat}; {os.cpu_count()} cores; scikit-learn {sklearn_version or '(not run)'}\n")
    print("| model | Flywheel predict | Flywheel rows/s | whole command (read + predict) | scikit-learn predict_proba | sklearn rows/s | speed vs sklearn | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for model, f, wall, sk in rows:
        target = 1_000_000 if model == "logistic" else 200_000
        fr = f["rows"] / f["seconds"]
        met = "met" if fr >= target else "not met"
        if sk is None:
            print(f"| {model} | {f['seconds']:.3f} s | {fr:,.0f} | {wall:.2f} s | – | – | – | {target:,} rows/s {met} |")
            continue
        sr = sk["rows"] / sk["seconds"]
        print(f"| {model} | {f['seconds']:.3f} s | {fr:,.0f} | {wall:.2f} s | {sk['seconds']:.3f} s | {sr:,.0f} | {fr / sr:.2f}× | {target:,} rows/s {met} |")


if __name__ == "__main__":
    main()
