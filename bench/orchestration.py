#!/usr/bin/env python3
"""Orchestration overhead of Flywheel, side by side with DVC (`dvc repro`),
the pipeline tool with content-addressed caching a user would most likely
run on one machine instead. Kubeflow Pipelines needs a Kubernetes cluster
and starts a pod per step, so it cannot run here.

    python3 bench/orchestration.py            # builds flywheel --release, installs DVC in bench/.venv
    python3 bench/orchestration.py --no-peer  # Flywheel only
    python3 bench/orchestration.py --smoke --flywheel target/debug/flywheel   # 10 steps, DVC only if installed

Measures, in one run, on the same machine:
  1. a chain of N trivial steps (each runs `sh -c ': > "$OUT"'` and depends on
     the previous one), cold: orchestration + process start per step;
  2. the same chain fully cached (nothing to do): pure overhead per step;
  3. a fully cached re-run of the bike-sharing example, process start included.
The cost of starting `sh` itself is measured and reported so the overhead can
be read net of it.
"""

import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import ROOT, arguments, flywheel, smoke_note, venv_python

VENV = ROOT / "bench" / ".venv"


def sh(cmd, cwd=None, env=None, check=True):
    return subprocess.run(cmd, cwd=cwd, env=env, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(cmd, cwd=None, env=None, repeat=1):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stderr}")
    return statistics.median(times)


def flywheel_chain(path: pathlib.Path, n: int):
    lines = ['[pipeline]\nname = "chain"\n']
    for i in range(n):
        lines.append(f"[steps.s{i}]\ncomponent = \"command\"\nparams = {{ run = [\"sh\", \"-c\", ': > \"$FLYWHEEL_OUTPUT_OUT\"'] }}\noutputs = [\"out\"]\n")
        if i:
            lines.append(f'inputs = {{ prev = "s{i - 1}.out" }}\n')
    path.write_text("".join(lines))


def dvc_chain(folder: pathlib.Path, n: int):
    stages = ["stages:"]
    for i in range(n):
        stages.append(f"  s{i}:\n    cmd: \": > out{i}\"\n    outs:\n      - out{i}")
        if i:
            stages.append(f"    deps:\n      - out{i - 1}")
    (folder / "dvc.yaml").write_text("\n".join(stages) + "\n")


def ensure_dvc(smoke):
    dvc = VENV / "bin" / "dvc"
    if not dvc.exists() and smoke:
        print("smoke: skipped DVC: not installed in bench/.venv (a smoke run installs nothing)", flush=True)
        return None, None
    if not dvc.exists():
        print("installing DVC into bench/.venv (once)…", file=sys.stderr)
        venv_python(".venv", ["dvc"])
    version = subprocess.run([str(dvc), "version"], capture_output=True, text=True).stdout.splitlines()
    return dvc, next((l for l in version if l.startswith("DVC version")), "DVC")


def main():
    ap = arguments(__doc__)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.steps = 10
    n = args.steps
    # A smoke run times each thing once.
    rep = (lambda k: 1) if args.smoke else (lambda k: k)

    fw = pathlib.Path(flywheel(args))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        env = dict(os.environ, FLYWHEEL_HOME=str(tmp / "home"))

        spawn = timed(["sh", "-c", f"i=0; while [ $i -lt {n} ]; do sh -c ':'; i=$((i+1)); done"], repeat=rep(3)) / n

        flywheel_chain(tmp / "chain.toml", n)
        cold = []
        for k in range(rep(3)):
            cold.append(timed([fw, "run", tmp / "chain.toml", "--no-cache"], env=env))
        fw_cold = statistics.median(cold) / n
        fw_cached = timed([fw, "run", tmp / "chain.toml"], env=env, repeat=rep(5)) / n

        bike = ROOT / "examples" / "bike-sharing" / "pipeline.toml"
        sh([fw, "run", bike], env=env)
        fw_bike = timed([fw, "run", bike], env=env, repeat=rep(10))

        rows.append(("startup of `sh -c :` (subtract from cold)", spawn * 1e3, None))
        peer = None
        dvc, version = (None, None) if args.no_peer else ensure_dvc(args.smoke)
        if dvc:
            d = tmp / "dvc"
            d.mkdir()
            sh(["git", "init", "-q"], cwd=d)
            sh([dvc, "init", "-q"], cwd=d)
            sh([dvc, "config", "core.analytics", "false"], cwd=d)
            dvc_chain(d, n)
            dvc_cold = []
            for _ in range(rep(2)):
                for f in d.glob("out*"):
                    f.unlink()
                shutil.rmtree(d / ".dvc" / "cache", ignore_errors=True)
                (d / "dvc.lock").unlink(missing_ok=True)
                dvc_cold.append(timed([dvc, "repro", "-q"], cwd=d))
            dvc_cold = statistics.median(dvc_cold) / n
            dvc_cached = timed([dvc, "repro", "-q"], cwd=d, repeat=rep(3)) / n
            peer = (version, dvc_cold, dvc_cached)

    print()
    smoke_note(args)
    print(f"Orchestration overhead, {n}-step chain; median wall time per step ({os.cpu_count()} cores)\n")
    print(f"| measure | Flywheel | {peer[0] if peer else 'DVC (not run)'} | DVC / Flywheel |")
    print("|---|---:|---:|---:|")
    def row(name, a, b):
        ratio = f"{b / a:.1f}×" if b else "–"
        bs = f"{b * 1e3:.2f} ms" if b else "–"
        print(f"| {name} | {a * 1e3:.2f} ms | {bs} | {ratio} |")
    row("cold run, per step (incl. starting `sh`)", fw_cold, peer[1] if peer else None)
    row("fully cached re-run, per step", fw_cached, peer[2] if peer else None)
    print(f"\nstarting `sh -c :` alone: {spawn * 1e3:.2f} ms; Flywheel's own overhead per cold step ≈ {(fw_cold - spawn) * 1e3:.2f} ms")
    print(f"fully cached re-run of the bike-sharing example (8 steps), process start included: {fw_bike * 1e3:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
