#!/usr/bin/env python3
"""Native trainers side by side with scikit-learn, in one run, on the same
train/test rows: quality (accuracy and ROC AUC on the test rows) and
training time.

    python3 bench/train.py               # installs scikit-learn into bench/.venv-train once
    python3 bench/train.py --no-large    # skip the generated 1M-row set
    python3 bench/train.py --smoke --flywheel target/debug/flywheel   # 3k rows of each set, no 1M set

Datasets: adult-income (random 80/20 split), Elec2 (time-ordered: the
first 80% of rows train), and a generated 1M × 20 binary task (speed).
Models: logistic regression and histogram gradient boosting, defaults on
both sides. scikit-learn gets the preparation a user would write:
StandardScaler + OneHotEncoder before LogisticRegression, pandas
categoricals (native categorical splits) for HistGradientBoostingClassifier.
Flywheel runs a pipeline (ingest → train → evaluate) with its defaults;
its time is the `train` step (reading the training split, fitting the
transform and the model, writing it), scikit-learn's is `fit` on data
already in memory.

Targets (issue 4): accuracy and ROC AUC within 0.5 points of
scikit-learn's; training time at most scikit-learn's.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from common import ROOT, arguments, data_python, flywheel as flywheel_binary, python_for, smoke_note, version

DATA = ROOT.parent / "shared" / "datasets"

PREPARE = r"""
import sys, numpy as np, pandas as pd
data, out, large, limit = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
rng = np.random.default_rng(7)
adult = pd.read_csv(f"{data}/adult_census_income.csv.gz", na_values=["?"])
adult = adult.iloc[rng.permutation(len(adult))[:limit]].reset_index(drop=True)
adult.insert(0, "_row", np.arange(len(adult)))
adult.to_csv(f"{out}/adult.csv", index=False)
elec = pd.read_csv(f"{data}/electricity_elec2.csv").drop(columns=["timestamp", "date"]).iloc[:limit]
elec.insert(0, "_row", np.arange(len(elec)))
elec.to_csv(f"{out}/elec2.csv", index=False)
if large:
    n, d = 1_000_000, 20
    x = rng.normal(size=(n, d))
    z = x[:, 0] - 0.5 * x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + np.sin(2 * x[:, 4]) + rng.normal(0, 1, n)
    df = pd.DataFrame(x.round(5), columns=[f"f{i}" for i in range(d)])
    df["label"] = np.where(z > 0, "yes", "no")
    df.insert(0, "_row", np.arange(n))
    df.to_parquet(f"{out}/large.parquet", index=False)
"""

SKLEARN = r"""
import json, sys, time, numpy as np, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.impute import SimpleImputer
path, target, cut, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
train, test = df[df._row < cut].drop(columns="_row"), df[df._row >= cut].drop(columns="_row")
classes = sorted(train[target].unique())
ytr, yte = (train.pop(target) == classes[1]).astype(int), (test.pop(target) == classes[1]).astype(int)
cats = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
nums = [c for c in train.columns if c not in cats]
if model == "logistic":
    prep = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), nums),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])
    est = make_pipeline(prep, LogisticRegression())
else:
    for c in cats:
        train[c] = train[c].astype("category")
        test[c] = pd.Categorical(test[c], categories=train[c].cat.categories)
    est = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
t = time.perf_counter()
est.fit(train, ytr)
fit = time.perf_counter() - t
p = est.predict_proba(test)[:, 1]
print(json.dumps({"fit_s": fit, "accuracy": accuracy_score(yte, p >= 0.5), "roc_auc": roc_auc_score(yte, p)}))
"""

PIPELINE = """
[pipeline]
name = "bench-{name}"

[steps.ingest]
component = "ingest"
params = {{ path = "{path}", split = "time", time_column = "_row", cutoff = "{cut}" {missing} }}

[steps.train]
component = "train"
inputs = {{ data = "ingest.train" }}
params = {{ target = "{target}", model = "{model}", drop = ["_row"] }}

[steps.evaluate]
component = "evaluate"
inputs = {{ model = "train.model", data = "ingest.eval" }}
"""


def flywheel(fw, tmp, name, path, target, cut, model, missing):
    d = pathlib.Path(tmp) / f"{name}-{model}"
    d.mkdir()
    (d / "p.toml").write_text(PIPELINE.format(name=name, path=path, cut=cut, target=target, model=model, missing=missing))
    out = subprocess.run([fw, "run", str(d / "p.toml"), "--json", "--home", str(d / "home")], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"flywheel failed on {name}/{model}: {out.stderr[-2000:]}")
    steps = {s["step"]: s for s in json.loads(out.stdout)["steps"]}
    m = steps["evaluate"]["summary"]["metrics"]
    return {"fit_s": steps["train"]["duration_ms"] / 1000, "accuracy": m["accuracy"], "roc_auc": m["roc_auc"]}


def main():
    ap = arguments(__doc__)
    ap.add_argument("--no-large", action="store_true")
    ap.add_argument("--limit", type=int, default=10 ** 9, help="at most this many rows of adult and of Elec2")
    args = ap.parse_args()
    if args.smoke:
        args.no_large, args.limit = True, 3_000
    packages = ["numpy", "pandas", "pyarrow", "scikit-learn"]
    py = python_for(args, ".venv-train", packages, ["sklearn", "pandas", "pyarrow"], "scikit-learn")
    sklearn_version = version(py, "scikit-learn") if py else None
    gen_py = py or data_python(args, ".venv-train", packages)
    fw = flywheel_binary(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([gen_py, "-c", PREPARE, str(DATA), tmp, "0" if args.no_large else "1", str(args.limit)], check=True)
        cases = [("adult", f"{tmp}/adult.csv", "income", int(min(48842, args.limit) * 0.8), ', missing_values = ["", "?"]'),
                 ("elec2", f"{tmp}/elec2.csv", "class", int(min(45312, args.limit) * 0.8), "")]
        if not args.no_large:
            cases.append(("generated 1M×20", f"{tmp}/large.parquet", "label", 800_000, ""))
        for name, path, target, cut, missing in cases:
            for model, sk in [("logistic", "logistic"), ("gbt", "hgb")]:
                s = sklearn(py, path, target, cut, sk) if py else None
                f = flywheel(fw, tmp, name.split()[0], path, target, cut, model, missing)
                rows.append((name, model, f, s))
    print()
    smoke_note(args)
    print(f"scikit-learn {sklearn_version or '(not run)'}; {os.cpu_count()} cores; test rows: last 20% of each set\n")
    print("| data | model | Flywheel acc | sklearn acc | Δ acc (pt) | Flywheel AUC | sklearn AUC | Δ AUC (pt) | Flywheel train | sklearn fit | time ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, model, f, s in rows:
        if s is None:
            print(f"| {name} | {model} | {f['accuracy']:.4f} | – | – | {f['roc_auc']:.4f} | – | – | {f['fit_s']:.2f} s | – | – |")
            continue
        print(f"| {name} | {model} | {f['accuracy']:.4f} | {s['accuracy']:.4f} | {100 * (f['accuracy'] - s['accuracy']):+.2f} "
              f"| {f['roc_auc']:.4f} | {s['roc_auc']:.4f} | {100 * (f['roc_auc'] - s['roc_auc']):+.2f} "
              f"| {f['fit_s']:.2f} s | {s['fit_s']:.2f} s | {f['fit_s'] / s['fit_s']:.2f} |")


def sklearn(py, path, target, cut, model):
    out = subprocess.run([py, "-c", SKLEARN, path, target, str(cut), model], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
