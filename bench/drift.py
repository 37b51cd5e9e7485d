#!/usr/bin/env python3
"""`flywheel drift` side by side with Evidently's DataDriftPreset and TFDV
(statistics of both files + skew/drift validation), in one run, on the same
generated files: 100k + 100k rows × 20 columns (12 numeric, 8 categorical),
as CSV and as Parquet. Wall time and peak memory (max RSS) of each tool's
process, imports included, reported as ratios.

    python3 bench/drift.py               # installs the peers once, one virtualenv each
    python3 bench/drift.py --no-tfdv     # skip TFDV (it pulls in TensorFlow, ~1.5 GB)
    python3 bench/drift.py --smoke --flywheel target/debug/flywheel   # 2k rows, peers only if installed

The peers come from PyPI, installed with `uv` (itself from PyPI): pip's
resolver spends more than 20 minutes backtracking over TFDV's Apache Beam
and Google Cloud dependencies, uv resolves them in about 25 s. Evidently and
TFDV need different pandas/pyarrow versions, hence two virtualenvs.
"""

import os
import subprocess
import tempfile

from common import arguments, data_python, flywheel, measure, python_for, smoke_note, version

# Evidently 0.7 imports pandas internals that pandas 3 removed; TFDV 1.16
# pins pandas < 2, pyarrow 10 and TensorFlow 2.16, and tfx-bsl imports dill
# without declaring it.
PEERS = {
    "evidently": (".venv-drift", ["numpy", "pandas<3", "pyarrow", "evidently"]),
    "tfdv": (".venv-tfdv", ["tensorflow-data-validation==1.16.1", "pandas<2", "dill"]),
}

GENERATE = r"""
import sys, numpy as np, pandas as pd
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
def frame(shift):
    d = {}
    for i in range(12):
        d[f"num{i}"] = rng.normal(shift * (i % 3) * 0.05, 1 + 0.1 * (i % 4), n).round(5)
    cats = ["a", "b", "c", "d", "e", "f", "g", "h"]
    for i in range(8):
        p = np.ones(len(cats)); p[i % len(cats)] += 2 + shift * (i % 2); p = p / p.sum()
        d[f"cat{i}"] = rng.choice(cats, n, p=p)
    return pd.DataFrame(d)
for name, shift in [("reference", 0.0), ("current", 1.0)]:
    df = frame(shift)
    df.to_csv(f"{out}/{name}.csv", index=False)
    df.to_parquet(f"{out}/{name}.parquet", index=False)
"""

EVIDENTLY = r"""
import sys, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
read = pd.read_parquet if fmt == "parquet" else pd.read_csv
r = Report([DataDriftPreset()]).run(read(cur), read(ref))
r.dict()
"""

TFDV = r"""
import sys
import tensorflow_data_validation as tfdv
ref, cur, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
if fmt == "parquet":
    import pandas as pd
    rs = tfdv.generate_statistics_from_dataframe(pd.read_parquet(ref))
    cs = tfdv.generate_statistics_from_dataframe(pd.read_parquet(cur))
else:
    rs = tfdv.generate_statistics_from_csv(ref)
    cs = tfdv.generate_statistics_from_csv(cur)
schema = tfdv.infer_schema(rs)
for f in schema.feature:
    if f.type == 2 or f.type == 3:  # numeric: Jensen-Shannon drift
        tfdv.get_feature(schema, f.name).drift_comparator.jensen_shannon_divergence.threshold = 0.1
    else:
        tfdv.get_feature(schema, f.name).drift_comparator.infinity_norm.threshold = 0.1
tfdv.validate_statistics(cs, schema, previous_statistics=rs)
"""


MODULES = {"evidently": ["evidently", "pandas"], "tfdv": ["tensorflow_data_validation", "pandas"]}


def ensure_peer(args, name):
    """The peer's Python and version: installed into its own virtualenv once
    on a full run; on a smoke run, only if already there (else None, None)."""
    venv, pkgs = PEERS[name]
    dist = "tensorflow-data-validation" if name == "tfdv" else name
    py = python_for(args, venv, pkgs, MODULES[name], dist)
    return (py, f"{dist} {version(py, dist)}") if py else (None, None)


def main():
    ap = arguments(__doc__)
    ap.add_argument("--no-tfdv", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000, help="rows in each of the two files")
    args = ap.parse_args()
    if args.smoke:
        args.repeat, args.rows = 1, 2_000
    ev_py, ev_version = ensure_peer(args, "evidently")
    tf_py, tf_version = (None, None) if args.no_tfdv else ensure_peer(args, "tfdv")
    versions = [v for v in [ev_version, tf_version] if v] or ["none"]
    gen_py = ev_py or data_python(args, PEERS["evidently"][0], PEERS["evidently"][1])
    fw = flywheel(args)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([gen_py, "-c", GENERATE, tmp, str(args.rows)], check=True)
        rows = []
        for fmt in ["csv", "parquet"]:
            ref, cur = f"{tmp}/reference.{fmt}", f"{tmp}/current.{fmt}"
            tools = [("flywheel drift", [fw, "drift", ref, cur, "--json"])]
            if ev_py:
                tools.append(("Evidently DataDriftPreset", [ev_py, "-c", EVIDENTLY, ref, cur, fmt]))
            if tf_py:
                tools.append(("TFDV stats + validate", [tf_py, "-c", TFDV, ref, cur, fmt]))
            for name, cmd in tools:
                runs = [measure(cmd) for _ in range(args.repeat)]
                wall = sorted(r[0] for r in runs)[len(runs) // 2]
                rss = max(r[1] for r in runs)
                rows.append((fmt, name, wall, rss))
    print()
    smoke_note(args)
    print(f"{args.rows:,} + {args.rows:,} rows × 20 columns; median of {args.repeat} runs; {os.cpu_count()} cores; peers: {', '.join(versions)}\n")
    print("| format | tool | wall | peak RSS | wall vs flywheel | RSS vs flywheel |")
    print("|---|---|---:|---:|---:|---:|")
    for fmt in ["csv", "parquet"]:
        base = next(r for r in rows if r[0] == fmt and r[1] == "flywheel drift")
        for r in [r for r in rows if r[0] == fmt]:
            print(f"| {fmt} | {r[1]} | {r[2]:.2f} s | {r[3]:.0f} MB | {r[2] / base[2]:.1f}× | {r[3] / base[3]:.1f}× |")


if __name__ == "__main__":
    main()
