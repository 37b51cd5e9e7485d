#!/usr/bin/env python3
"""Monitoring (issue 14): one window's drift check over 100,000 logged rows
× 20 numeric columns, side by side with Evidently's DataDriftPreset on the
same rows; and what monitoring adds to serving latency at the serving
benchmark's load (`flywheel up` against `flywheel serve`).

    python3 bench/monitor.py     # builds flywheel (release); installs Evidently into bench/.venv-drift
                                 # once, and wrk (apt-get, as root) when missing
    python3 bench/monitor.py --flywheel target/release/flywheel --json /tmp/monitor.json
    python3 bench/monitor.py --no-large --no-evidently --rounds 1
    python3 bench/monitor.py --smoke --flywheel target/debug/flywheel   # seconds, installs nothing

The model: a logistic regression on 20 numeric features f0..f19 and a
yes/no label (numpy, fixed seed, 20k rows), trained by a pipeline (ingest
→ train → push to `production`) in a temporary home.

1. The window. `flywheel serve` serves the model and logs every request;
   `flywheel replay TRAFFIC --batch 1000` sends 100,000 rows (f0..f3
   shifted, f4 scaled); the server is stopped (SIGTERM: the log is
   flushed), and 6 s later (windows are cut from rows older than 5 s) the
   home is copied. Then `flywheel monitor update DEPLOYMENT --json`, with
   `[monitoring] window = 100000`, reads the log, cuts one window, compares
   it with the training data of the version that answered (Evidently's
   default methods) and records it: wall time and peak RSS of the whole
   process, median of `--repeat`, each on a fresh copy of the home (a
   recorded window is not scored again). The peer: Evidently's
   `Report([DataDriftPreset()])` on the same rows (read from Parquet)
   against the same training split, timed as a whole process (imports and
   reading included, as a user runs it) and the report alone. With
   `--large` rows (1M; not in --smoke): the same log of 1M rows as ten
   windows of 100,000 in one update, and as one window of 1M.

2. Serving. The same model served by `flywheel serve` (logging every
   request, the default) and by `flywheel up DEPLOYMENT` (the same server
   plus the monitor loop, every tick: `[monitoring] window = 500` rows,
   and a performance trigger that never fires, as no labels are sent),
   each in a fresh copy of the trained home, loaded with wrk like
   bench/serve.py (1 thread, 32 connections, one-row `/invocations`
   requests; here 1,000 different rows in turn, so that windows look like
   traffic, not one row repeated) for `--duration` s after a warm-up, in
   `--rounds` back-to-back pairs (the order swapped every round; with
   `--aa`, triples with a second `serve`, each first in turn, whose ratio
   to the first is the noise floor: p99 of one 10 s load on 2 cores
   strays by 10–20% between loads of the same server).
   Requests/s, p50, p99 and the server's CPU seconds; the cost is the
   median of the pairs' ratios. `flywheel serve` serves the split `up`
   serves (production 90 and the delivery's canary arm 10, empty: all
   answers are production's), so that the two differ by monitoring alone.
   Windows recorded by `up` by the end of its load are counted with
   `flywheel monitor status --json`, and then how long after the load it
   takes to window every served row (while the cores are saturated, `up`
   keeps monitoring to 3% of a core and falls behind).

Targets (issue 14): a window's drift check over 100,000 rows × 20 columns
under 0.5 s with bounded memory; monitoring adding under 5% to serving
latency at that load.
"""

import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import serve as srv
from common import arguments, data_python, flywheel, python_for, smoke_note, version

MODEL = "monitor-bench"
FEATURES = [f"f{i}" for i in range(20)]
BATCH = 1000
# Windows are cut only from rows logged this long ago (flywheel-monitor's
# SETTLED_US is 5 s), plus a margin.
SETTLE_WAIT = 6.0
EVIDENTLY = (".venv-drift", ["numpy", "pandas<3", "pyarrow", "evidently"])

GENERATE = r"""
import json, sys, numpy as np, pandas as pd
out, n_train, n_traffic, n_large, n_bodies = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(14)
w = rng.normal(size=20)
cols = [f"f{i}" for i in range(20)]
def rows(n, shifted):
    x = rng.normal(size=(n, 20))
    if shifted:
        x[:, :4] += [0.5, 0.3, 0.25, 0.2]
        x[:, 4] *= 1.5
    x = x.round(5)
    z = x @ w + rng.normal(0, 2, n)
    return pd.DataFrame(x, columns=cols), np.where(z > 0, "yes", "no")
df, y = rows(n_train, False)
df["label"] = y
df.to_parquet(f"{out}/train.parquet", index=False)
for name, n in (("traffic", n_traffic), ("traffic_large", n_large)):
    if n:
        rows(n, True)[0].to_parquet(f"{out}/{name}.parquet", index=False)
with open(f"{out}/bodies.txt", "w") as f:
    for r in rows(n_bodies, True)[0].itertuples(index=False):
        f.write(json.dumps({"dataframe_split": {"columns": cols, "data": [list(r)]}}) + "\n")
"""

EVIDENTLY_RUN = r"""
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = sys.argv[1], sys.argv[2]
cols = [f"f{i}" for i in range(20)]
reference, current = pd.read_parquet(ref, columns=cols), pd.read_parquet(cur, columns=cols)
t1 = time.perf_counter()
d = Report([DataDriftPreset()]).run(current, reference).dict()
t2 = time.perf_counter()
drifted = []
for m in d["metrics"]:
    name = m.get("metric_name", "")
    if name.startswith("ValueDrift(column="):
        conf = m["config"]
        p_value = "p_value" in conf["method"]
        if (m["value"] < conf["threshold"]) if p_value else (m["value"] >= conf["threshold"]):
            drifted.append(conf["column"])
print(json.dumps({"report_s": t2 - t1, "before_s": t1 - t0, "drifted": sorted(drifted), "rows": len(current)}))
"""

PIPELINE = """
[pipeline]
name = "{model}"
[steps.ingest]
component = "ingest"
params = {{ path = "{train}", eval_fraction = 0.1 }}
# Its kept reference is what a window is compared with (no training rows read).
[steps.statistics]
component = "statistics"
inputs = {{ data = "ingest.train" }}

[steps.train]
component = "train"
inputs = {{ data = "ingest.train" }}
params = {{ target = "label", model = "logistic" }}
[steps.push]
component = "push"
inputs = {{ model = "train.model" }}
params = {{ model_name = "{model}", alias = "production" }}
"""

# `monitor update`'s deployment: the window only.
DEPLOYMENT = """
[deployment]
name = "{model}"
pipeline = "pipeline.toml"
[monitoring]
window = {window}
"""

# `up`'s: windows cut and scored every tick; a trigger that reads them but
# never fires (no feedback labels are sent, so there is no accuracy).
UP_DEPLOYMENT = """
[deployment]
name = "{model}"
pipeline = "pipeline.toml"
[monitoring]
window = {window}
performance = {{ accuracy = ">= 0.5" }}
[[trigger]]
on = "performance"
windows = 1
"""

# wrk: one-row requests, the next of the file's bodies each time (prepared
# once per thread), and bench/serve.py's `done` line.
WRK_ROTATE = """
local bodies = {}
for line in io.lines("{path}") do
  bodies[#bodies + 1] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, line)
end
local i = 0
function request()
  i = i % #bodies + 1
  return bodies[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def run_measured(cmd, env=None):
    """(wall s, peak RSS MB, stdout) of a child process; exits on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = 0  # reaped by wait4 above
        out.seek(0)
        text = out.read().decode(errors="replace")
        if status != 0:
            err.seek(0)
            sys.exit(f"{' '.join(map(str, cmd[:4]))} failed: {err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024, text


def median(xs):
    return statistics.median(xs) if xs else None


def copy_home(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


def training_split(fw, home):
    """The Parquet file the model was trained on (`ingest.train`), from its lineage."""
    doc = json.loads(subprocess.run([fw, "lineage", f"{MODEL}@1", "--home", home, "--json"], capture_output=True,
                                    text=True, check=True).stdout)
    for up in doc.get("upstream", []):
        if up["execution"]["step"] == "train":
            for i in up["execution"]["inputs"]:
                if i["name"] == "data" and i["artifact"]["uri"].startswith("file://"):
                    return i["artifact"]["uri"][len("file://"):], i["artifact"]["properties"].get("rows")
    sys.exit("monitor bench: no training data in the model's lineage")


def prepare(args, tmp, fw, gen_py):
    """Data, the pipeline and the trained home (kept untouched: every
    measurement starts from a copy)."""
    subprocess.run([gen_py, "-c", GENERATE, tmp, str(args.train_rows), str(args.rows), str(args.large or 0),
                    str(args.bodies)], check=True)
    pathlib.Path(f"{tmp}/pipeline.toml").write_text(PIPELINE.format(model=MODEL, train=f"{tmp}/train.parquet"))
    trained = f"{tmp}/trained"
    p = subprocess.run([fw, "run", f"{tmp}/pipeline.toml", "--home", trained], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"monitor bench: the pipeline failed: {p.stdout[-1000:]}{p.stderr[-1000:]}")
    return trained


def deployment(tmp, window, text=DEPLOYMENT):
    path = pathlib.Path(f"{tmp}/deployment-{window}.toml")
    path.write_text(text.format(model=MODEL, window=window))
    return str(path)


def log_traffic(args, fw, tmp, trained, traffic, name):
    """A copy of the trained home with `traffic` served and logged, settled
    (older than 5 s), as a snapshot to restore for every update."""
    home = f"{tmp}/{name}.logged"
    copy_home(trained, home)
    server = srv.Server("flywheel serve", [fw, "serve", "--home", home, "--addr", "127.0.0.1:{port}",
                                           f"{MODEL}@production"], "/v2/health/ready")
    server.start(args.start_timeout)
    try:
        out = subprocess.run([fw, "replay", traffic, "--to", f"http://127.0.0.1:{server.port}", "--batch", str(BATCH),
                              "--json"], capture_output=True, text=True)
        sent = time.monotonic()
        if out.returncode != 0:
            raise srv.Failed(f"replay failed: {out.stdout[-1000:]}{out.stderr[-1000:]}")
        replay = json.loads(out.stdout)
    finally:
        server.stop()
    time.sleep(max(0.0, SETTLE_WAIT - (time.monotonic() - sent)))
    return home, replay


def updates(args, fw, tmp, snapshot, dep):
    """`monitor update` `--repeat` times, each on a fresh copy of the logged home."""
    home = f"{tmp}/update-home"
    runs = []
    for _ in range(args.repeat):
        copy_home(snapshot, home)
        wall, rss, out = run_measured([fw, "monitor", "update", dep, "--home", home, "--json"])
        windows = json.loads(out)
        if not windows:
            raise srv.Failed(f"monitor update recorded no window ({dep})")
        runs.append((wall, rss, windows))
    shutil.rmtree(home)
    walls = [r[0] for r in runs]
    windows = runs[0][2]
    drifted = [w["scores"]["from_training"]["drifted"] for w in windows if w["scores"].get("from_training")]
    return {"wall_s": median(walls), "walls": walls, "rss_mb": max(r[1] for r in runs), "windows": len(windows),
            "rows": sum(w["rows"] for w in windows), "drifted": drifted,
            "drifted_columns": (windows[0]["scores"].get("from_training") or {}).get("columns", [])}


def evidently(ev_py, reference, current, repeat):
    runs = [run_measured([ev_py, "-c", EVIDENTLY_RUN, reference, current]) for _ in range(repeat)]
    docs = [json.loads(r[2]) for r in runs]
    return {"wall_s": median([r[0] for r in runs]), "walls": [r[0] for r in runs],
            "report_s": median([d["report_s"] for d in docs]), "rss_mb": max(r[1] for r in runs),
            "drifted_columns": docs[0]["drifted"], "rows": docs[0]["rows"]}


def window_check(args, fw, tmp, trained, ev_py, reference):
    """Part 1: the window's drift check, and the larger log when asked."""
    out = {}
    snapshot, replay = log_traffic(args, fw, tmp, trained, f"{tmp}/traffic.parquet", "window")
    out["replay"] = replay
    out["flywheel"] = updates(args, fw, tmp, snapshot, deployment(tmp, args.rows))
    print(f"  flywheel monitor update, {args.rows:,} rows: {out['flywheel']['wall_s']:.3f} s, "
          f"{out['flywheel']['rss_mb']:.0f} MB", flush=True)
    shutil.rmtree(snapshot)
    if ev_py:
        out["evidently"] = evidently(ev_py, reference, f"{tmp}/traffic.parquet", args.repeat)
        print(f"  Evidently, {args.rows:,} rows: {out['evidently']['wall_s']:.2f} s "
              f"(report {out['evidently']['report_s']:.2f} s), {out['evidently']['rss_mb']:.0f} MB", flush=True)
    if args.large:
        snapshot, replay = log_traffic(args, fw, tmp, trained, f"{tmp}/traffic_large.parquet", "large")
        out["large_replay"] = replay
        out["large_windows"] = updates(args, fw, tmp, snapshot, deployment(tmp, args.rows))
        print(f"  flywheel monitor update, {args.large:,} rows as windows of {args.rows:,}: "
              f"{out['large_windows']['wall_s']:.3f} s, {out['large_windows']['rss_mb']:.0f} MB", flush=True)
        out["large_one"] = updates(args, fw, tmp, snapshot, deployment(tmp, args.large))
        print(f"  flywheel monitor update, {args.large:,} rows as one window: {out['large_one']['wall_s']:.3f} s, "
              f"{out['large_one']['rss_mb']:.0f} MB", flush=True)
        shutil.rmtree(snapshot)
        if ev_py and not args.no_evidently_large:
            out["large_evidently"] = evidently(ev_py, reference, f"{tmp}/traffic_large.parquet", 1)
            print(f"  Evidently, {args.large:,} rows: {out['large_evidently']['wall_s']:.2f} s, "
                  f"{out['large_evidently']['rss_mb']:.0f} MB", flush=True)
    return out


def run_wrk(args, wrk, tmp, port, seconds):
    """One wrk run of one-row requests in turn from bodies.txt."""
    script = pathlib.Path(tmp) / "rotate.lua"
    script.write_text(WRK_ROTATE.replace("{path}", f"{tmp}/bodies.txt"))
    cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
           f"http://127.0.0.1:{port}/invocations"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise srv.Failed(f"wrk printed no summary: {out[-1000:]}")
    n, duration_us, p50, p99, errors, non2xx = (int(v) for v in line.split()[1:])
    if errors or non2xx:
        raise srv.Failed(f"/invocations: {errors} socket errors and {non2xx} non-2xx answers in {n} requests")
    return {"requests": n, "rps": n / (duration_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000}


def cpu_seconds(pid):
    """User + system CPU seconds of a process, its threads (ended ones too) together."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fmt_s(x):
    return "not within --catch-up" if x is None else f"{x:.1f} s"


def windows_recorded(fw, home):
    out = subprocess.run([fw, "monitor", "status", "--home", home, "--json", "--limit", "1000000"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise srv.Failed(f"monitor status failed: {out.stderr[-1000:]}")
    windows = json.loads(out.stdout or "[]")
    return len(windows), sum(w["rows"] for w in windows)


def caught_up(args, fw, home, served):
    """Seconds after the load until `up` has windowed every served row but
    the last window's worth (rows are cut once 5 s old); None past
    `--catch-up` s."""
    t = time.perf_counter()
    while time.perf_counter() - t < args.catch_up:
        if windows_recorded(fw, home)[1] >= served - args.up_window:
            return time.perf_counter() - t
        time.sleep(0.25)
    return None


def one_load(args, fw, wrk, tmp, trained, kind, up_dep, first_body):
    """A fresh home and server of `kind` (serve or up), warmed and loaded."""
    home = f"{tmp}/load-{kind.replace(' ', '-')}"
    copy_home(trained, home)
    addr = ["--home", home, "--addr", "127.0.0.1:{port}"]
    if kind in ("serve", "serve again"):
        # The split `up` serves (its delivery's 10% canary arm, empty until
        # a canary is out): the two differ by monitoring alone.
        cmd = [fw, "serve", *addr, f"{MODEL}@production:90", f"{MODEL}@canary:10"]
    else:
        cmd = [fw, "up", up_dep, *addr] + (["--tick-ms", str(args.tick_ms)] if args.tick_ms else [])
    server = srv.Server(f"flywheel {kind}", cmd, "/v2/health/ready")
    server.start(args.start_timeout)
    try:
        srv.check_answer(server, "/invocations", srv.Body(first_body), 1)
        warm = run_wrk(args, wrk, tmp, server.port, args.warmup)["requests"] if args.warmup else 0
        cpu = cpu_seconds(server.proc.pid)
        r = run_wrk(args, wrk, tmp, server.port, args.duration)
        r["served"] = warm + r["requests"] + 1
        r["cpu_s"] = cpu_seconds(server.proc.pid) - cpu
        server.alive()
        if kind == "up":
            r["windows"], r["window_rows"] = windows_recorded(fw, home)
            r["catch_up_s"] = caught_up(args, fw, home, r["served"])
        r["rss_mb"], r["hwm_mb"], _ = server.memory()
        t = time.perf_counter()
    finally:
        server.stop()
    r["stop_s"] = time.perf_counter() - t
    # Server.stop sends SIGKILL when SIGTERM has not ended it in 15 s.
    r["killed"] = server.proc.returncode == -signal.SIGKILL
    shutil.rmtree(home)
    return r


def serving_cost(args, fw, wrk, tmp, trained):
    """Part 2: `--rounds` back-to-back pairs of serve and up loads."""
    up_dep = deployment(tmp, args.up_window, UP_DEPLOYMENT)
    first = pathlib.Path(f"{tmp}/bodies.txt").read_text().splitlines()[0].encode()
    kinds = ["serve", "up"] + (["serve again"] if args.aa else [])
    runs = {k: [] for k in kinds}
    for i in range(args.rounds):
        # Each kind first, second and last in turn.
        for kind in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
            r = one_load(args, fw, wrk, tmp, trained, kind, up_dep, first)
            runs[kind].append(r)
            extra = (f", {r['windows']} windows ({r['window_rows']:,} of {r['served']:,} rows) recorded, "
                     f"all after {fmt_s(r['catch_up_s'])}" if kind == "up" else "")
            print(f"  round {i + 1} {kind}: {r['rps']:,.0f} requests/s, p50 {r['p50_ms']:.2f} ms, "
                  f"p99 {r['p99_ms']:.2f} ms, server CPU {r['cpu_s']:.1f} s{extra}", flush=True)
    out = {"runs": runs, **ratios(runs["serve"], runs["up"])}
    if args.aa:
        # The same server twice: how far apart two loads of one thing fall.
        out["aa"] = ratios(runs["serve"], runs["serve again"])
    return out


def ratios(base, other):
    """Medians of the pairs' ratios, `other` over `base`."""
    pairs = list(zip(base, other))
    return {
        "rps_ratio": median([u["rps"] / s["rps"] for s, u in pairs]),
        "p50_ratio": median([u["p50_ms"] / s["p50_ms"] for s, u in pairs]),
        "p99_ratio": median([u["p99_ms"] / s["p99_ms"] for s, u in pairs]),
        "cpu_ratio": median([(u["cpu_s"] / u["requests"]) / (s["cpu_s"] / s["requests"]) for s, u in pairs
                             if s["cpu_s"] > 0]),
    }


def print_report(args, info, w, s):
    print()
    smoke_note(args)
    print(f"{info['machine']}; {info['date']}; {info['flywheel']}; {info['evidently'] or 'Evidently not run'}; "
          f"{info['wrk'] or 'no load generator'}\n")
    f = w["flywheel"]
    rows = [(f"{args.rows:,} rows, one window", "flywheel monitor update", f)]
    if "evidently" in w:
        rows.append((f"{args.rows:,} rows", "Evidently DataDriftPreset (process)", w["evidently"]))
    if "large_windows" in w:
        rows.append((f"{args.large:,} rows, {w['large_windows']['windows']} windows of {args.rows:,}",
                     "flywheel monitor update", w["large_windows"]))
        rows.append((f"{args.large:,} rows, one window", "flywheel monitor update", w["large_one"]))
    if "large_evidently" in w:
        rows.append((f"{args.large:,} rows", "Evidently DataDriftPreset (process, 1 run)", w["large_evidently"]))
    print(f"Window drift check ({args.train_rows:,} generated training rows, {info['training_rows']:,} in the "
          f"training split; median of {args.repeat}; whole process):\n")
    print("| log | tool | wall | report alone | peak RSS | wall vs Flywheel | RSS vs Flywheel | drifted columns |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for label, tool, r in rows:
        # Evidently against Flywheel on the same rows in one window; Flywheel's rows against themselves.
        base = r if "Evidently" not in tool else f if r is w.get("evidently") else w.get("large_one", f)
        drifted = r.get("drifted_columns", [])
        if "drifted" in r and len(r["drifted"]) > 1:
            lo, hi = min(r["drifted"]), max(r["drifted"])
            drifted_text = f"{lo if lo == hi else f'{lo}–{hi}'} of 20 in each window"
        else:
            drifted_text = f"{len(drifted)} of 20 ({', '.join(drifted)})"
        report = f"{r['report_s']:.2f} s" if "report_s" in r else "–"
        print(f"| {label} | {tool} | {r['wall_s']:.3f} s | {report} | {r['rss_mb']:.0f} MB | "
              f"{r['wall_s'] / base['wall_s']:.1f}× | {r['rss_mb'] / base['rss_mb']:.1f}× | {drifted_text} |")
    for key in ("replay", "large_replay"):
        if key in w:
            r = w[key]
            print(f"\n{key.replace('_', ' ')}: {r['rows']:,} rows in {r['requests']:,} requests in "
                  f"{r['seconds']:.2f} s, failed {r['failed']}, unsent {r['unsent']}", end="")
    print()
    if s:
        print(f"\nServing: one-row `/invocations`, wrk {args.threads} thread, {args.connections} connections, "
              f"{args.duration} s after {args.warmup} s warm-up, {args.rounds} pair(s); `up` with window = "
              f"{args.up_window} rows, tick {args.tick_ms or 1000} ms\n")
        print("| round | server | requests/s | p50 | p99 | server CPU per request | windows recorded by the load's end "
              "| all windowed after the load | memory (VmRSS / peak) | SIGTERM to exit |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i in range(args.rounds):
            for kind, r in ((f"`flywheel {k}`", s["runs"][k][i]) for k in s["runs"]):
                win = (f"{r['windows']} ({r['window_rows']:,} of {r['served']:,} rows served)"
                       if r.get("windows") is not None else "–")
                stop = f"{r['stop_s']:.2f} s" + (" (SIGKILLed)" if r["killed"] else "")
                caught = fmt_s(r["catch_up_s"]) if "catch_up_s" in r else "–"
                print(f"| {i + 1} | {kind} | {r['rps']:,.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
                      f"{1e6 * r['cpu_s'] / r['requests']:.1f} µs | {win} | {caught} | {r['rss_mb']:.0f} / "
                      f"{r['hwm_mb']:.0f} MB | {stop} |")
        print(f"\nup / serve, median of the pairs: requests/s {s['rps_ratio']:.3f}, p50 {s['p50_ratio']:.3f}, "
              f"p99 {s['p99_ratio']:.3f}, server CPU per request {s['cpu_ratio']:.3f}")
        if "aa" in s:
            a = s["aa"]
            print(f"serve again / serve (the noise between two loads of one server): requests/s "
                  f"{a['rps_ratio']:.3f}, p50 {a['p50_ratio']:.3f}, p99 {a['p99_ratio']:.3f}, server CPU per "
                  f"request {a['cpu_ratio']:.3f}")
    print("\n| target (issue 14) | Flywheel | peer | compared | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    ev = w.get("evidently")
    met = "met" if f["wall_s"] < 0.5 else f"**missed** ({f['wall_s'] / 0.5:.1f}× the bound)"
    print(f"| drift check of one {args.rows:,}-row × 20 window (`monitor update`, whole process) | "
          f"{f['wall_s']:.3f} s | {'Evidently %.2f s' % ev['wall_s'] if ev else '–'} | "
          f"{'%.0f× faster' % (ev['wall_s'] / f['wall_s']) if ev else '–'} | < 0.5 s | {met} |")
    if "large_windows" in w:
        lw, lo = w["large_windows"], w["large_one"]
        grows = lw["rss_mb"] / f["rss_mb"]
        # `monitor update` reads a backlog a part at a time: about 200,000
        # rows, or two windows when larger (flywheel_monitor::windows::
        # READ_ROWS). Bounded: memory follows the part, not the log.
        part = min(max(200_000, 2 * args.rows), args.large) / args.rows
        bounded = grows <= 1.25 * part
        print(f"| peak RSS, {args.rows:,} → {args.large:,} logged rows ({lw['windows']} windows) | {f['rss_mb']:.0f} → "
              f"{lw['rss_mb']:.0f} MB | {'Evidently %.0f MB' % ev['rss_mb'] if ev else '–'} | {grows:.1f}× for "
              f"{args.large / args.rows:.0f}× the rows (a part read at once: {part:.0f}× one window) | bounded | "
              f"{'met' if bounded else '**missed** (grows with the log)'} |")
    else:
        print(f"| peak RSS of that update | {f['rss_mb']:.0f} MB | {'Evidently %.0f MB' % ev['rss_mb'] if ev else '–'} | "
              f"{'%.1f× less' % (ev['rss_mb'] / f['rss_mb']) if ev else '–'} | bounded | not measured: no larger log |")
    if s:
        worst = max(s["p50_ratio"], s["p99_ratio"], 1 / s["rps_ratio"]) - 1
        ok = "met" if worst < 0.05 else f"**missed** (+{100 * worst:.0f}%)"
        print(f"| serving latency with monitoring (`up` vs `serve`, median of pairs) | p50 ×{s['p50_ratio']:.3f}, p99 "
              f"×{s['p99_ratio']:.3f} | requests/s ×{s['rps_ratio']:.3f} | {100 * worst:+.1f}% | < 5% | {ok} |")
    else:
        print("| serving latency with monitoring | – | – | – | < 5% | not measured: no load generator |")


def main():
    ap = arguments(__doc__)
    ap.add_argument("--rows", type=int, default=100_000, help="logged rows in the window (default 100,000)")
    ap.add_argument("--train-rows", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=1_000_000,
                    help="a larger log, cut into windows of --rows and as one window (default 1,000,000; 0: none)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each update and of Evidently; the median counts")
    ap.add_argument("--no-evidently", action="store_true", help="Flywheel only")
    ap.add_argument("--no-evidently-large", action="store_true", help="no Evidently run on the larger log")
    ap.add_argument("--no-load", action="store_true", help="skip the serving comparison")
    ap.add_argument("--duration", type=int, default=10, help="seconds of each load (default 10; windows are cut "
                                                              "from rows 5 s old, so at least 10)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load (default 2)")
    ap.add_argument("--rounds", type=int, default=8, help="pairs of serve/up loads (default 8: p99 strays by 10–20%% between loads)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1, as bench/serve.py)")
    ap.add_argument("--aa", action="store_true",
                    help="a third load per round, `serve` again: the noise floor of the ratios")
    ap.add_argument("--up-window", type=int, default=500, help="`up`'s window in rows (default 500)")
    ap.add_argument("--tick-ms", type=int, help="`up --tick-ms` (default: up's own, 1000)")
    ap.add_argument("--bodies", type=int, default=1000, help="different one-row bodies the load cycles through")
    ap.add_argument("--catch-up", type=float, default=60,
                    help="seconds `up` may take after its load to window every served row (default 60)")
    ap.add_argument("--start-timeout", type=float, default=60)
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.train_rows, args.large, args.repeat = 2_000, 2_000, 0, 1
        args.duration, args.warmup, args.rounds, args.bodies = 1, 0, 1, 100
        args.catch_up = min(args.catch_up, 20)
    if min(args.rows, args.repeat, args.duration, args.rounds, args.up_window) < 1:
        ap.error("--rows, --repeat, --duration, --rounds and --up-window must be at least 1")
    ev_py = None if args.no_evidently else python_for(args, EVIDENTLY[0], EVIDENTLY[1], ["evidently", "pandas"],
                                                      "evidently")
    gen_py = ev_py or data_python(args, *EVIDENTLY)
    fw = flywheel(args)
    wrk = None if args.no_load else srv.load_generator(args)
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {srv.cpu_model()}",
        "flywheel": subprocess.run([fw, "--version"], capture_output=True, text=True).stdout.strip(),
        "binary": fw,
        "evidently": f"Evidently {version(ev_py, 'evidently')} (pandas {version(ev_py, 'pandas')})" if ev_py else None,
        "wrk": srv.wrk_version(wrk),
        "smoke": args.smoke,
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            trained = prepare(args, tmp, fw, gen_py)
            reference, info["training_rows"] = training_split(fw, trained)
            print("window drift check:", flush=True)
            w = window_check(args, fw, tmp, trained, ev_py, reference)
            s = None
            if wrk:
                print("serving, `flywheel serve` against `flywheel up`:", flush=True)
                s = serving_cost(args, fw, wrk, tmp, trained)
        except srv.Failed as e:
            sys.exit(f"monitor bench: {e}")
    print_report(args, info, w, s)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"info": info, "window": w, "serving": s}, indent=2) + "\n")


if __name__ == "__main__":
    # A stopped run leaves no server behind: servers run in their own process groups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
