#!/usr/bin/env python3
"""The prediction server (issue 13) side by side with `mlflow models serve`
and a bare axum hello-world, in one run, reported as ratios.

    python3 bench/serve.py          # builds flywheel and bench/axum-hello (release); installs
                                    # MLflow into bench/.venv-serve and wrk (as root) once
    python3 bench/serve.py --flywheel target/release/flywheel --json /tmp/serve.json
    python3 bench/serve.py --smoke --flywheel target/debug/flywheel   # seconds, installs nothing

The same model on both sides: a logistic regression on 20 numeric features
(numpy, fixed seed, a yes/no label). Flywheel trains it with a pipeline
(ingest → train `model = "logistic"` → push to `production`) in a temporary
home and serves it with `flywheel serve`; MLflow gets scikit-learn's
StandardScaler + LogisticRegression on the same rows, saved with
`mlflow.sklearn.save_model` and served by `mlflow models serve
--env-manager local` (its default single uvicorn worker unless
`--mlflow-workers`). The hello-world (bench/axum-hello) answers every POST
with fixed JSON on the same axum, hyper and tokio, two workers like
`flywheel serve`: the ceiling for any handler on that stack.

The load generator is wrk on this machine, concurrency 32, the same
duration for every endpoint after a warm-up; its Lua `done` hook prints
requests, p50 and p99. Each load runs `--repeat` times, interleaved across
the servers (all of them stay up) so a burst of work from elsewhere on the
machine hits every server alike; the best run of each counts. The
comparison with the hello-world is then made in `--pair-rounds` pairs of
back-to-back loads per Flywheel endpoint (hello-world and endpoint, the
order swapped every round, like the logging pairs below), each load
`--pair-seconds` long: its ratio is the median of the pairs' ratios, since
the best of two runs on each side compares whichever quiet moments each
happened to get (on a shared machine, the same hello-world gave 55k to 96k
requests/s within minutes). Pairs are short and many because the
machine's other work moves on a scale of seconds: two 10-second loads
back to back differed by up to 25% with nothing changed between them, so
a few long pairs measured that, not the servers.

Measured: requests/s and p99 of one-row requests to Flywheel's
`/invocations` (`dataframe_split`) and `/v2/models/NAME/infer` (one tensor
per input the model's metadata lists), MLflow's `/invocations` and the
hello-world; rows/s of 1,000-row requests to both Flywheel endpoints and
MLflow's; start to the first 200 from the readiness endpoint (median of
several starts); resident memory of each server halfway through each of
its loads, and after them all, the server quiet (the whole process tree
for MLflow); and, when `flywheel serve --help` lists
`--no-log`, requests/s with prediction logging on (the default, every
request) against `--no-log`.

Targets (issue 13): both Flywheel endpoints at least 50× MLflow's
requests/s and 70% of the hello-world's, p99 under 5 ms; 1,000-row batches
at least 1M rows/s; start to ready under 200 ms; resident memory
while serving one-row requests under 50 MB; logging costing at most 10% of requests/s.
"""

import http.client
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from common import ROOT, arguments, data_python, flywheel, python_for, smoke_note, version

MODEL = "serve-bench"
FEATURES = [f"f{i}" for i in range(20)]
BATCH_ROWS = 1000
AXUM_DIR = ROOT / "bench" / "axum-hello"
AXUM_BIN = AXUM_DIR / "target" / "release" / "axum-hello"
# Pinned in bench/axum-hello/Cargo.toml to the workspace's versions.
AXUM_VERSIONS = "axum 0.8.9, tokio 1.54.1"
# MLflow imports for seconds, longer on a busy machine.
MLFLOW_START_TIMEOUT = 300
LABELS = {
    "flywheel_invocations_1": "Flywheel `/invocations`, 1 row",
    "flywheel_infer_1": "Flywheel `/v2/.../infer`, 1 row",
    "flywheel_invocations_batch": f"Flywheel `/invocations`, {BATCH_ROWS:,} rows",
    "flywheel_infer_batch": f"Flywheel `/v2/.../infer`, {BATCH_ROWS:,} rows",
    "flywheel_infer_binary_batch": f"Flywheel `/v2/.../infer`, {BATCH_ROWS:,} rows, binary tensors",
    "mlflow_invocations_1": "MLflow `/invocations`, 1 row",
    "mlflow_invocations_batch": f"MLflow `/invocations`, {BATCH_ROWS:,} rows",
    "axum_hello": "axum hello-world",
}
MLFLOW_PACKAGES = ["mlflow", "scikit-learn", "pandas", "pyarrow", "numpy"]

PREPARE = r"""
import json, sys, numpy as np, pandas as pd
out, n_train, n_request = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(13)
w = rng.normal(size=20)
def rows(n):
    x = rng.normal(size=(n, 20)).round(5)
    z = x @ w + rng.normal(0, 2, n)
    return x, np.where(z > 0, "yes", "no")
x, y = rows(n_train)
df = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
df["label"] = y
df.to_parquet(f"{out}/train.parquet", index=False)
x, _ = rows(n_request)
json.dump(x.tolist(), open(f"{out}/request_rows.json", "w"))
"""

MLFLOW_SAVE = r"""
import sys, pandas as pd, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
train, out = sys.argv[1], sys.argv[2]
x = pd.read_parquet(train)
y = x.pop("label")
model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
mlflow.sklearn.save_model(model, out, signature=infer_signature(x, model.predict(x)))
"""

PIPELINE = """
[pipeline]
name = "serve-bench"
[steps.ingest]
component = "ingest"
params = {{ path = "{train}", eval_fraction = 0.1 }}
[steps.train]
component = "train"
inputs = {{ data = "ingest.train" }}
params = {{ target = "label", model = "logistic" }}
[steps.push]
component = "push"
inputs = {{ model = "train.model" }}
params = {{ model_name = "{model}", alias = "production" }}
"""

# wrk's Lua: the POST body read from a file (binary tensors too), and a
# `done` hook printing what the report needs on one line (latencies in
# microseconds; `status` counts non-2xx answers).
WRK_SCRIPT = """
local f = assert(io.open("{path}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


class Body:
    """A request body and the headers it goes with."""

    def __init__(self, data, **headers):
        self.data = data
        self.headers = {"Content-Type": "application/json", **headers}


class Failed(Exception):
    """A server that would not start or answer, or a load with errors."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, timeout=30):
    """(status, body bytes) of one request to 127.0.0.1:PORT; `body` is a `Body`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body and body.data, headers=body.headers if body else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Server:
    """A server process in its own process group, its stderr kept for errors."""

    def __init__(self, name, cmd, ready_path, ready_method="GET", env=None):
        self.name, self.cmd, self.ready_path, self.ready_method = name, cmd, ready_path, ready_method
        self.port = free_port()
        self.cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        self.env = env
        self.proc = None

    def start(self, timeout):
        """Spawns the server and polls its readiness endpoint tightly;
        returns the seconds from spawn to the first 200."""
        self.err = tempfile.TemporaryFile()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self.err, env=self.env,
                                     start_new_session=True)
        while True:
            try:
                status, _ = request(self.port, self.ready_method, self.ready_path, timeout=timeout)
                if status == 200:
                    return time.perf_counter() - t0
            except (ConnectionError, OSError, http.client.HTTPException):
                pass
            if self.proc.poll() is not None:
                raise Failed(f"{self.name} exited ({self.proc.returncode}) before it was ready: {self.stderr()}")
            if time.perf_counter() - t0 > timeout:
                self.stop()
                raise Failed(f"{self.name} not ready after {timeout} s: {self.stderr()}")
            time.sleep(0.001)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-2000:]

    def alive(self):
        if self.proc.poll() is not None:
            raise Failed(f"{self.name} died ({self.proc.returncode}): {self.stderr()}")

    def memory(self):
        """(VmRSS, VmHWM) in MB, summed over the process and its descendants."""
        pids = descendants(self.proc.pid)
        rss = hwm = 0
        for pid in pids:
            try:
                status = pathlib.Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            hwm += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
        return rss / 1024, hwm / 1024, len(pids)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def descendants(root):
    """`root` and every process below it (from /proc's parent pids)."""
    children = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def load_generator(args):
    """wrk's path; a full run installs it (as root) when missing, a smoke run skips the loads."""
    wrk = shutil.which("wrk")
    if wrk or args.smoke:
        if not wrk:
            print("smoke: skipped the loads: wrk is not installed (a full run installs it: apt-get install wrk)",
                  flush=True)
        return wrk
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: `sudo apt-get install -y wrk`, then run this again")
    print("installing wrk (apt-get install -y wrk)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk")


def run_wrk(args, wrk, tmp, port, path, body, seconds, server=None):
    """One wrk run: requests/s, p50 and p99 in ms, and with `server` its
    resident memory halfway through the load; refuses a run with errors."""
    data, script = pathlib.Path(tmp) / "body", pathlib.Path(tmp) / "load.lua"
    data.write_bytes(body.data)
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in body.headers.items())
    script.write_text(WRK_SCRIPT.replace("{path}", str(data)).replace("{headers}", headers))
    cmd = [wrk, f"-t{min(args.threads, args.connections)}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "30s",
           "-s", str(script), f"http://127.0.0.1:{port}{path}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = None
    if server is not None:
        time.sleep(seconds / 2)
        rss = server.memory()[0]
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise Failed(f"wrk failed ({proc.returncode}): {err[-1000:]}")
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise Failed(f"wrk printed no summary: {out[-1000:]}")
    n, duration_us, p50, p99, errors, non2xx = (int(v) for v in line.split()[1:])
    if errors or non2xx:
        raise Failed(f"{path}: {errors} socket errors and {non2xx} non-2xx answers in {n} requests")
    return {"requests": n, "rps": n / (duration_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "rss_mb": rss}


def bodies(rows, metadata):
    """The request bodies by (format, rows): MLflow's `dataframe_split`, and
    with the model's metadata, OIP tensors (one per input it lists) as JSON
    and with the binary tensor extension."""
    out = {}
    for n in (1, BATCH_ROWS):
        part = rows[:n]
        out[("split", n)] = Body(json.dumps({"dataframe_split": {"columns": FEATURES, "data": part}}).encode())
        if metadata is None:
            continue
        columns = [(spec, [r[FEATURES.index(spec["name"])] for r in part]) for spec in metadata["inputs"]]
        tensors = [{"name": spec["name"], "datatype": spec["datatype"], "shape": [n], "data": values}
                   for spec, values in columns]
        out[("oip", n)] = Body(json.dumps({"inputs": tensors}).encode())
        if all(spec["datatype"] == "FP64" for spec, _ in columns):
            head = json.dumps({"inputs": [{"name": spec["name"], "datatype": "FP64", "shape": [n],
                                           "parameters": {"binary_data_size": 8 * n}} for spec, _ in columns]})
            raw = b"".join(struct.pack(f"<{n}d", *values) for _, values in columns)
            out[("binary", n)] = Body(head.encode() + raw, **{"Inference-Header-Content-Length": len(head.encode())})
    return out


def check_answer(server, path, body, rows):
    """One request before the load: a 200 with one prediction per row (so
    the load never measures refusals). Returns the predictions."""
    status, answer = request(server.port, "POST", path, body)
    if status != 200:
        raise Failed(f"{server.name} {path}: HTTP {status}: {answer[:500].decode(errors='replace')}")
    doc = json.loads(answer)
    if "predictions" in doc:
        preds = doc["predictions"]
    else:
        preds = next(o["data"] for o in doc["outputs"] if o["name"] == "prediction")
    if len(preds) != rows:
        raise Failed(f"{server.name} {path}: {len(preds)} predictions for {rows} rows")
    return preds


def prepare(args, tmp, fw, mlflow_py):
    """Data, Flywheel's model in a temporary home, MLflow's saved model."""
    gen = mlflow_py or data_python(args, ".venv-serve", MLFLOW_PACKAGES)
    subprocess.run([gen, "-c", PREPARE, tmp, str(args.train_rows), str(BATCH_ROWS)], check=True)
    home = f"{tmp}/home"
    toml = pathlib.Path(tmp) / "pipeline.toml"
    toml.write_text(PIPELINE.format(train=f"{tmp}/train.parquet", model=MODEL))
    subprocess.run([fw, "run", str(toml), "--home", home], check=True, capture_output=True)
    if mlflow_py:
        subprocess.run([mlflow_py, "-c", MLFLOW_SAVE, f"{tmp}/train.parquet", f"{tmp}/mlflow-model"], check=True,
                       capture_output=True)
    return home, json.loads(pathlib.Path(f"{tmp}/request_rows.json").read_text())


def flywheel_server(fw, home, *extra):
    return Server("flywheel serve", [fw, "serve", MODEL, "--home", home, "--addr", "127.0.0.1:{port}", *extra],
                  "/v2/health/ready")


def mlflow_server(args, mlflow_py, tmp):
    mlflow = str(pathlib.Path(mlflow_py).parent / "mlflow")
    # MLflow execs `uvicorn` by name: the virtualenv's bin first, as when it is activated.
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"file://{tmp}/mlruns",
               PATH=f"{pathlib.Path(mlflow_py).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return Server("mlflow models serve", [mlflow, "models", "serve", "-m", f"{tmp}/mlflow-model", "--env-manager",
                                          "local", "-h", "127.0.0.1", "-p", "{port}", "-w", str(args.mlflow_workers)],
                  "/ping", env=env)


def start_times(make, count, timeout):
    """Seconds from spawn to ready of `count` fresh starts."""
    out = []
    for _ in range(count):
        s = make()
        try:
            out.append(s.start(timeout))
        finally:
            s.stop()
    return out


def axum_binary(args):
    """The hello-world: built (release) by a full run; a smoke run takes it when already built."""
    if not args.smoke:
        subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", str(AXUM_DIR / "Cargo.toml")],
                       check=True)
    elif not AXUM_BIN.exists():
        print("smoke: skipped the axum hello-world: not built (a full run builds bench/axum-hello)", flush=True)
        return None
    return str(AXUM_BIN)


def loads_for(servers, body):
    """Every (key, server, path, body, rows) load of this run."""
    fw, ml, ax = servers.get("flywheel"), servers.get("mlflow"), servers.get("axum")
    out = [("flywheel_invocations_1", fw, "/invocations", body[("split", 1)], 1),
           ("flywheel_infer_1", fw, f"/v2/models/{MODEL}/infer", body[("oip", 1)], 1),
           ("flywheel_invocations_batch", fw, "/invocations", body[("split", BATCH_ROWS)], BATCH_ROWS),
           ("flywheel_infer_batch", fw, f"/v2/models/{MODEL}/infer", body[("oip", BATCH_ROWS)], BATCH_ROWS)]
    if ("binary", BATCH_ROWS) in body:
        out.append(("flywheel_infer_binary_batch", fw, f"/v2/models/{MODEL}/infer", body[("binary", BATCH_ROWS)],
                    BATCH_ROWS))
    if ml:
        out += [("mlflow_invocations_1", ml, "/invocations", body[("split", 1)], 1),
                ("mlflow_invocations_batch", ml, "/invocations", body[("split", BATCH_ROWS)], BATCH_ROWS)]
    if ax:
        out.append(("axum_hello", ax, "/", body[("split", 1)], 1))
    return out


def measure_loads(args, wrk, tmp, loads):
    """Warm-up, then `--repeat` interleaved rounds; the best run of each load."""
    best = {}
    if args.warmup:
        for _, server, path, body, _ in loads:
            run_wrk(args, wrk, tmp, server.port, path, body, args.warmup)
    for _ in range(args.repeat):
        for key, server, path, body, rows in loads:
            r = run_wrk(args, wrk, tmp, server.port, path, body, args.duration, server)
            server.alive()
            r["rows_per_s"] = r["rps"] * rows
            if key not in best or r["rps"] > best[key]["rps"]:
                best[key] = r
            print(f"  {key}: {r['rps']:,.0f} requests/s, p99 {r['p99_ms']:.2f} ms", flush=True)
    return best


def hello_pairs(args, wrk, tmp, loads):
    """Per one-row Flywheel load, `--pair-rounds` back-to-back runs of it and
    the hello-world, the order swapped every round so that a drift of the
    machine's load favours neither: every pair, and the median ratio."""
    by_key = {key: (server, path, body) for key, server, path, body, _ in loads}
    hello = by_key["axum_hello"]
    out = {}
    for key in ("flywheel_invocations_1", "flywheel_infer_1"):
        pairs = []
        for i in range(args.pair_rounds):
            runs = {}
            for name, (server, path, body) in (("flywheel", by_key[key]), ("hello", hello))[:: 1 if i % 2 else -1]:
                runs[name] = run_wrk(args, wrk, tmp, server.port, path, body, args.pair_seconds)["rps"]
                server.alive()
            pairs.append(runs)
            print(f"  {key} vs axum_hello: {runs['flywheel']:,.0f} vs {runs['hello']:,.0f} requests/s", flush=True)
        out[key] = {"pairs": pairs, "ratio": statistics.median(p["flywheel"] / p["hello"] for p in pairs)}
    return out


def serving(args, tmp, fw, home, mlflow_py, axum, rows, wrk, start):
    """All servers up at once (started one after the other, each start added
    to `start`): answers checked, loads measured, memory read."""
    servers = {"flywheel": flywheel_server(fw, home)}
    if mlflow_py:
        servers["mlflow"] = mlflow_server(args, mlflow_py, tmp)
    if axum:
        servers["axum"] = Server("axum hello-world", [axum, "127.0.0.1:{port}"], "/", ready_method="POST")
    try:
        for name, s in servers.items():
            t = s.start(MLFLOW_START_TIMEOUT if name == "mlflow" else args.start_timeout)
            if name in start:
                start[name].append(t)
        status, meta = request(servers["flywheel"].port, "GET", f"/v2/models/{MODEL}")
        if status != 200:
            raise Failed(f"GET /v2/models/{MODEL}: HTTP {status}")
        body = bodies(rows, json.loads(meta))
        loads = loads_for(servers, body)
        preds = {}
        for key, server, path, b, n in loads:
            if server is not servers.get("axum"):
                preds[key] = check_answer(server, path, b, n)
        agreement = None
        if "mlflow_invocations_batch" in preds:
            mine, theirs = preds["flywheel_invocations_batch"], preds["mlflow_invocations_batch"]
            agreement = sum(a == b for a, b in zip(mine, theirs)) / len(mine)
        figures = measure_loads(args, wrk, tmp, loads) if wrk else {}
        memory = {name: s.memory() for name, s in servers.items() if name != "axum"}
        if wrk and axum:
            figures["pairs"] = hello_pairs(args, wrk, tmp, loads)
        return figures, memory, agreement
    finally:
        for s in servers.values():
            s.stop()


def logging_cost(args, fw, home, wrk, tmp, rows):
    """Requests/s with prediction logging on (the default) and `--no-log`,
    in `--log-rounds` back-to-back pairs, the order swapped every round so
    that a drift of the machine's load favours neither; the cost is the
    median of the pairs' ratios. Or None and why it was not measured."""
    help_text = subprocess.run([fw, "serve", "--help"], capture_output=True, text=True).stdout
    if "--no-log" not in help_text:
        return None, "no `--no-log` in `flywheel serve --help` (no prediction logging in this build)"
    if not wrk:
        return None, "no load generator (wrk not installed)"
    # The loads before this one logged millions of rows, which the kernel
    # would write back while the pairs run: in one hand-run pairing, 1.5 GB
    # written back meanwhile took the median cost from 6% to 10%. Written
    # back first, the pairs measure logging, not the loads before them.
    os.sync()
    on, off = flywheel_server(fw, home), flywheel_server(fw, home, "--no-log")
    body = bodies(rows, None)[("split", 1)]
    runs = {"on": [], "off": []}
    try:
        for s in (on, off):
            s.start(args.start_timeout)
            check_answer(s, "/invocations", body, 1)
        if args.warmup:
            for s in (on, off):
                run_wrk(args, wrk, tmp, s.port, "/invocations", body, args.warmup)
        for i in range(args.log_rounds):
            for name, s in (("on", on), ("off", off))[:: 1 if i % 2 == 0 else -1]:
                runs[name].append(run_wrk(args, wrk, tmp, s.port, "/invocations", body, args.pair_seconds))
                s.alive()
    finally:
        on.stop()
        off.stop()
    ratios = [a["rps"] / b["rps"] for a, b in zip(runs["on"], runs["off"])]
    result = {name: max(r, key=lambda x: x["rps"]) for name, r in runs.items()}
    result["cost_percent"] = 100 * (1 - statistics.median(ratios))
    result["rounds"] = runs
    return result, None


def goal(measure, value, unit, op, bound, flywheel_text, peer_text=""):
    """One target: `value` compared with `bound` by `op` (">=", "<" or
    "<="), met or missed and by how much; `value` None when not measured."""
    bound_text = {"rows/s": f"{bound / 1e6:g}M rows/s", "×": f"{bound:g}×", "%": f"{bound:g}%"}.get(unit)
    row = {"measure": measure, "flywheel": flywheel_text, "peer": peer_text, "value": value, "unit": unit,
           "target": f"{'≥' if op == '>=' else op.replace('<=', '≤')} {bound_text or f'{bound:g} {unit}'}",
           "met": None, "by": ""}
    if value is None:
        return row
    row["met"] = {">=": value >= bound, "<": value < bound, "<=": value <= bound}[op]
    if not row["met"]:
        short = 100 * (1 - value / bound)
        row["by"] = f"{short:.{1 if short < 10 else 0}f}% short" if op == ">=" else f"{value / bound:.1f}× the bound"
    return row


def targets(f, start, memory, log, log_skip):
    """Every target of issue 13, as `goal` rows."""
    def get(key, field="rps"):
        return f.get(key, {}).get(field)

    def ratio(a, b):
        return a / b if a is not None and b else None

    def rps(key):
        v = get(key)
        return "–" if v is None else f"{v:,.0f}/s"

    out = []
    for key, label in (("flywheel_invocations", "`/invocations`"), ("flywheel_infer", "`/v2 infer`")):
        mine = get(f"{key}_1")
        out.append(goal(f"{label}, 1 row: requests/s vs MLflow", ratio(mine, get("mlflow_invocations_1")), "×", ">=",
                        50, rps(f"{key}_1"), get("mlflow_invocations_1") and f"MLflow {rps('mlflow_invocations_1')}"))
        paired = f.get("pairs", {}).get(f"{key}_1")
        if paired:
            r = paired["ratio"]
            fl = statistics.median(p["flywheel"] for p in paired["pairs"])
            he = statistics.median(p["hello"] for p in paired["pairs"])
            texts = f"{fl:,.0f}/s (median)", f"axum {he:,.0f}/s (median)"
        else:
            r = ratio(mine, get("axum_hello"))
            texts = rps(f"{key}_1"), get("axum_hello") and f"axum {rps('axum_hello')}"
        out.append(goal(f"{label}, 1 row: requests/s vs axum hello-world (median of paired runs)", r and 100 * r,
                        "%", ">=", 70, *texts))
        p, mp = get(f"{key}_1", "p99_ms"), get("mlflow_invocations_1", "p99_ms")
        out.append(goal(f"{label}, 1 row: p99", p, "ms", "<", 5, fmt(p, "ms"), mp and f"MLflow {fmt(mp, 'ms')}"))
        b, mb = get(f"{key}_batch", "rows_per_s"), get("mlflow_invocations_batch", "rows_per_s")
        out.append(goal(f"{label}, {BATCH_ROWS:,}-row requests: rows/s", b, "rows/s", ">=", 1e6, fmt(b, "rows/s"),
                        mb and f"MLflow {fmt(mb, 'rows/s')} ({times(b / mb)})"))
    b = get("flywheel_infer_binary_batch", "rows_per_s")
    out.append(goal(f"`/v2 infer`, binary tensors, {BATCH_ROWS:,}-row requests: rows/s", b, "rows/s", ">=", 1e6,
                    fmt(b, "rows/s")))
    s = statistics.median(start["flywheel"]) * 1000
    ms = start.get("mlflow") and statistics.median(start["mlflow"]) * 1000
    out.append(goal(f"start to ready (median of {len(start['flywheel'])})", s, "ms", "<", 200, fmt(s, "ms"),
                    ms and f"MLflow {ms / 1000:.1f} s ({times(ms / s)})"))
    rss, mrss = get("flywheel_invocations_1", "rss_mb"), get("mlflow_invocations_1", "rss_mb")
    out.append(goal("resident memory while serving one-row `/invocations` (halfway through the load)", rss, "MB",
                    "<", 50, fmt(rss, "MB"), mrss and f"MLflow {fmt(mrss, 'MB')} ({times(mrss / rss)})"))
    cost = None if log is None else log["cost_percent"]
    out.append(goal("requests/s lost to logging every request (median of paired runs)", cost, "%", "<=", 10,
                    log and f"on {log['on']['rps']:,.0f}/s", log and f"off {log['off']['rps']:,.0f}/s"))
    out[-1]["why"] = log_skip
    return out


def loads_only(f):
    """The loads of `measure_loads`, without the hello-world pairs."""
    return {k: v for k, v in f.items() if k != "pairs"}


def times(x):
    return f"{x:.1f}×" if x < 10 else f"{x:,.0f}×"


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "rows/s":
        return f"{v / 1e6:.2f}M rows/s" if v >= 1e6 else f"{v:,.0f} rows/s"
    if unit in ("×", "%"):
        return f"{v:.1f}{unit}" if v < 100 else f"{v:,.0f}{unit}"
    return f"{v:.2f} {unit}" if v < 100 else f"{v:,.0f} {unit}"


def print_report(args, info, f, start, memory, log, log_skip, goals):
    print()
    smoke_note(args)
    print(f"{info['machine']}; {info['date']}; {info['flywheel']}; MLflow {info['mlflow'] or '(not run)'} "
          f"(scikit-learn {info['sklearn'] or '–'}, {args.mlflow_workers} uvicorn worker); {AXUM_VERSIONS}; "
          f"{info['wrk'] or 'no load generator'}, {args.threads} thread(s), {args.connections} connections, "
          f"{args.duration} s per load after {args.warmup} s warm-up, best of {args.repeat}; "
          f"{args.pair_rounds} hello-world pairs per endpoint and {args.log_rounds} logging pairs, "
          f"{args.pair_seconds} s per load of a pair\n")
    if f:
        print("| load | requests/s | rows/s | p50 | p99 |")
        print("|---|---:|---:|---:|---:|")
        for key, r in loads_only(f).items():
            print(f"| {LABELS[key]} | {r['rps']:,.0f} | {r['rows_per_s']:,.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms |")
        print()
    fs = start["flywheel"]
    print(f"start to ready: Flywheel {len(fs)} starts: {', '.join(f'{t * 1000:.0f}' for t in fs)} ms", end="")
    if start.get("mlflow"):
        print(f"; MLflow {len(start['mlflow'])}: {', '.join(f'{t:.1f}' for t in start['mlflow'])} s", end="")
    print()
    for key, paired in f.get("pairs", {}).items():
        rounds = "; ".join(f"{p['flywheel']:,.0f} vs {p['hello']:,.0f}" for p in paired["pairs"])
        print(f"{key} vs the hello-world, requests/s per round: {rounds}")
    for key, r in loads_only(f).items():
        if r.get("rss_mb") is not None:
            print(f"memory halfway through {key}: VmRSS {r['rss_mb']:.1f} MB")
    for name, (rss, hwm, procs) in memory.items():
        print(f"memory after the loads (the server quiet): {name} VmRSS {rss:.1f} MB, peak {hwm:.1f} MB "
              f"({procs} process(es))")
    if info.get("agreement") is not None:
        print(f"same predictions on {BATCH_ROWS:,} rows, Flywheel vs MLflow: {100 * info['agreement']:.1f}%")
    if log_skip:
        print(f"logging on vs off: skipped: {log_skip}")
    else:
        pairs = zip(log["rounds"]["on"], log["rounds"]["off"])
        rounds = "; ".join(f"{a['rps']:,.0f} vs {b['rps']:,.0f}" for a, b in pairs)
        print(f"logging on vs off, requests/s per round: {rounds}")
    print("\n| target (issue 13) | Flywheel | peer | compared | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    for g in goals:
        result = f"not measured{': ' + g['why'] if g.get('why') else ''}" if g["met"] is None else ("met" if g["met"] else f"**missed** ({g['by']})")
        print(f"| {g['measure']} | {g['flywheel'] or '–'} | {g['peer'] or '–'} | {fmt(g['value'], g['unit'])} "
              f"| {g['target']} | {result} |")


def main():
    ap = arguments(__doc__)
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load per endpoint (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of every load; the best counts (default 2)")
    ap.add_argument("--pair-rounds", type=int, default=10,
                    help="pairs of hello-world and Flywheel one-row loads per endpoint (default 10)")
    ap.add_argument("--log-rounds", type=int, default=12,
                    help="pairs of logging on/off loads when --no-log exists (default 12)")
    ap.add_argument("--pair-seconds", type=int, default=4,
                    help="seconds of each load of a pair, hello-world or logging (default 4)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--threads", type=int, default=1,
                    help="wrk threads (default 1: on 2 cores, one core is left to the server)")
    ap.add_argument("--starts", type=int, default=7,
                    help="starts of flywheel serve timed, the one serving the loads among them (default 7)")
    ap.add_argument("--mlflow-starts", type=int, default=3,
                    help="starts of mlflow models serve timed, the one serving the loads among them (default 3)")
    ap.add_argument("--mlflow-workers", type=int, default=1, help="uvicorn workers of mlflow (default 1, its own)")
    ap.add_argument("--train-rows", type=int, default=20_000)
    ap.add_argument("--start-timeout", type=float, default=60, help="seconds a server may take to be ready")
    ap.add_argument("--no-mlflow", action="store_true", help="Flywheel and the hello-world only")
    ap.add_argument("--json", metavar="FILE", help="also write every figure and target as JSON to FILE")
    args = ap.parse_args()
    for name in ("duration", "repeat", "pair_rounds", "log_rounds", "pair_seconds", "connections", "threads", "starts",
                 "mlflow_starts"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        ap.error("--warmup must be 0 or more")
    if args.smoke:
        args.duration, args.warmup, args.repeat, args.log_rounds, args.starts, args.mlflow_starts = 1, 0, 1, 2, 3, 1
        args.pair_rounds, args.pair_seconds = 1, 1
        args.train_rows = 2_000
    mlflow_py = None if args.no_mlflow else python_for(
        args, ".venv-serve", MLFLOW_PACKAGES, ["mlflow", "sklearn", "pandas", "pyarrow"], "MLflow")
    fw = flywheel(args)
    axum = axum_binary(args)
    wrk = load_generator(args)
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "flywheel": subprocess.run([fw, "--version"], capture_output=True, text=True).stdout.strip(),
        "binary": fw,
        "mlflow": version(mlflow_py, "mlflow") if mlflow_py else None,
        "sklearn": version(mlflow_py, "scikit-learn") if mlflow_py else None,
        "wrk": wrk_version(wrk),
        "smoke": args.smoke,
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            home, rows = prepare(args, tmp, fw, mlflow_py)
            # The start of the servers the loads go to is the last of each.
            start = {"flywheel": start_times(lambda: flywheel_server(fw, home), args.starts - 1, args.start_timeout)}
            if mlflow_py:
                start["mlflow"] = start_times(lambda: mlflow_server(args, mlflow_py, tmp), args.mlflow_starts - 1,
                                              MLFLOW_START_TIMEOUT)
            print("loads:", flush=True)
            figures, memory, info["agreement"] = serving(args, tmp, fw, home, mlflow_py, axum, rows, wrk, start)
            log, log_skip = logging_cost(args, fw, home, wrk, tmp, rows)
        except Failed as e:
            sys.exit(f"serve bench: {e}")
    goals = targets(figures, start, memory, log, log_skip)
    print_report(args, info, figures, start, memory, log, log_skip, goals)
    if args.json:
        doc = {"info": info, "loads": figures, "start_seconds": start,
               "memory_mb": {k: {"rss": v[0], "peak": v[1], "processes": v[2]} for k, v in memory.items()},
               "logging": log, "logging_skipped": log_skip,
               "targets": goals}
        pathlib.Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")


def wrk_version(wrk):
    """`wrk 4.1.0`, from its banner (`wrk debian/4.1.0-3+b2 [epoll] ...`)."""
    if not wrk:
        return None
    banner = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split()
    return f"wrk {banner[1].split('/')[-1].split('-')[0]}" if len(banner) > 1 else "wrk"


def cpu_model():
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
        return re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
