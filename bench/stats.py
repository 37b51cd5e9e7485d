#!/usr/bin/env python3
"""`flywheel stats` on a large Parquet file, against the practical limit:
decoding the same file with the `parquet` crate alone (no statistics, one
thread, as a reader does), in one run. Reports throughput (MB/s of file), the ratio, and peak memory.

    python3 bench/stats.py              # generates a ~1 GB file once, in bench/.data/
    python3 bench/stats.py --gb 0.2     # a smaller file
    python3 bench/stats.py --smoke --flywheel target/debug/flywheel   # ~2 MB, in a temporary folder

Target (issue 3): at least a third of the decode-only throughput, with peak
memory under 500 MB.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

from common import ROOT, arguments, build_flywheel, data_python, flywheel, measure, smoke_note

GENERATE = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
out, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(3)
cats = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
with pq.ParquetWriter(out, pa.schema(
        [(f"f{i}", pa.float64()) for i in range(8)] + [(f"i{i}", pa.int64()) for i in range(4)] + [(f"s{i}", pa.string()) for i in range(4)]),
        compression="snappy") as w:
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        cols = [pa.array(rng.normal(i, 1 + i, n)) for i in range(8)]
        cols += [pa.array(rng.integers(0, 10 ** (i + 2), n)) for i in range(4)]
        cols += [pa.array(cats[rng.integers(0, len(cats), n)]) for i in range(4)]
        w.write_table(pa.Table.from_arrays(cols, names=[f"f{i}" for i in range(8)] + [f"i{i}" for i in range(4)] + [f"s{i}" for i in range(4)]))
"""


def decode_parquet(args):
    """The decode-only example, built the way the flywheel binary was: beside
    a given binary (`cargo test` builds examples too) or a release build now."""
    if not args.flywheel:
        build_flywheel("-p", "flywheel-data", "--example", "decode_parquet")
        return str(ROOT / "target" / "release" / "examples" / "decode_parquet")
    profile_dir = pathlib.Path(args.flywheel).resolve().parent
    built = sorted((p for p in (profile_dir / "examples").glob("decode_parquet*")
                    if p.suffix == "" and os.access(p, os.X_OK)), key=lambda p: p.stat().st_mtime)
    example = built[-1] if built else None
    if example is None and args.smoke:
        # Building it alone would rebuild arrow and parquet with other features: minutes, not seconds.
        print(f"smoke: skipped decode only: no decode_parquet example in {profile_dir / 'examples'} "
              "(`cargo test` builds it)", flush=True)
        return None
    if example is None:
        release = ["--release"] if profile_dir.name == "release" else []
        subprocess.run(["cargo", "build", "-q", *release, "-p", "flywheel-data", "--example", "decode_parquet"],
                       cwd=ROOT, check=True)
        example = ROOT / "target" / ("release" if release else "debug") / "examples" / "decode_parquet"
    return str(example)


def main():
    ap = arguments(__doc__)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.smoke:
        args.gb, args.repeat = 0.002, 1
    py = data_python(args, ".venv-drift", ["numpy", "pyarrow"])
    with tempfile.TemporaryDirectory() as tmp:
        # A full run keeps its ~1 GB file for the next; a smoke run's is thrown away.
        data = pathlib.Path(tmp) if args.smoke else ROOT / "bench" / ".data"
        data.mkdir(exist_ok=True)
        run(args, py, data)


def run(args, py, data):
    # ~74 bytes per row with this schema after snappy compression.
    rows = int(args.gb * 1e9 / 74)
    path = data / f"stats_{rows}.parquet"
    if not path.exists():
        print(f"generating {path} ({rows:,} rows)…", file=sys.stderr)
        subprocess.run([py, "-c", GENERATE, str(path), str(rows)], check=True)
    size_mb = path.stat().st_size / 1e6
    fw = flywheel(args)
    decode = decode_parquet(args)
    tools = [("parquet crate, decode only", [decode, str(path)])] if decode else []
    tools.append(("flywheel stats", [fw, "stats", str(path), "--json"]))
    results = []
    for name, cmd in tools:
        runs = [measure(cmd) for _ in range(args.repeat)]
        wall = sorted(r[0] for r in runs)[len(runs) // 2]
        results.append((name, wall, max(r[1] for r in runs)))
    base = results[0][1] if decode else None
    print()
    smoke_note(args)
    print(f"{path.name}: {size_mb:.0f} MB, {rows:,} rows × 16 columns; median of {args.repeat}; {os.cpu_count()} cores\n")
    print("| tool | wall | throughput | vs decode only | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, rss in results:
        ratio = f"{base / wall:.2f}" if base else "–"
        print(f"| {name} | {wall:.2f} s | {size_mb / wall:.0f} MB/s | {ratio} | {rss:.0f} MB |")


if __name__ == "__main__":
    main()
