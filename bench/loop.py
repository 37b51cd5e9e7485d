"""The loop's latencies, from what the home recorded while `flywheel
quickstart` closed the loop (serve, monitor, trigger, retrain, canary,
promote) on the bike-sharing data:

- trigger: from the window that crossed a threshold being recorded to the
  run it fired starting (target: under 2 s);
- canary: from the triggered run moving `canary` (its push) to the server
  answering with that version (target: under 1 s);
- verdict: from the canary answering to its promotion or rollback (this
  depends on traffic: the hold counts its logged answers).

No peer is run beside it: TFX, Kubeflow Pipelines, MLflow and Evidently
stop at an alert and start no run; there is nothing to time side by side.
The figures are read back from metadata.db (runs, monitor_windows,
registry_audit), not from the printed story.

    python3 bench/loop.py                 # release build, 3 rounds, each in a fresh home
    python3 bench/loop.py --smoke --flywheel target/debug/flywheel
"""

import datetime
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

import common


def rfc3339_us(text):
    """`2026-11-30T18:13:11.190Z` as µs since 1970."""
    t = datetime.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6)


def one_round(binary, traffic_rows):
    """One quickstart in a fresh home; the latencies (ms) it recorded."""
    with tempfile.TemporaryDirectory() as home:
        cmd = [binary, "--home", home, "quickstart", "--json", "--act-timeout", "300"]
        if traffic_rows:
            cmd += ["--traffic-rows", str(traffic_rows)]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            sys.exit(f"quickstart failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        story = json.loads(p.stdout)
        db = sqlite3.connect(f"{home}/metadata.db")
        return wall, story["status"], latencies(db)


def latencies(db):
    """Trigger, canary and verdict latencies in ms (None when not recorded)."""
    run = db.execute(
        "SELECT id, trigger, started_at FROM runs WHERE started_by = 'flywheel up' ORDER BY id LIMIT 1"
    ).fetchone()
    if run is None:
        return None, None, None
    _, trigger, started = run
    last = re.search(r"windows? (?:\d+–)?(\d+)", trigger)
    fired = None
    if last:
        (at_us,) = db.execute("SELECT at_us FROM monitor_windows WHERE id = ?", (int(last.group(1)),)).fetchone()
        fired = (rfc3339_us(started) - at_us) / 1000
    moved = db.execute(
        "SELECT at, to_version FROM registry_audit WHERE action = 'set_alias' AND alias = 'canary' ORDER BY id LIMIT 1"
    ).fetchone()
    if moved is None:
        return fired, None, None
    swapped = db.execute(
        "SELECT at FROM registry_audit WHERE action = 'serve_swap' AND alias = 'canary' AND version = ? ORDER BY id LIMIT 1",
        (moved[1],),
    ).fetchone()
    decided = db.execute(
        "SELECT at FROM registry_audit WHERE caller = 'flywheel up' AND alias = 'canary' AND action = 'remove_alias' "
        "ORDER BY id LIMIT 1"
    ).fetchone()
    canary = (rfc3339_us(swapped[0]) - rfc3339_us(moved[0])) / 1000 if swapped else None
    verdict = (rfc3339_us(decided[0]) - rfc3339_us(swapped[0])) / 1000 if swapped and decided else None
    return fired, canary, verdict


def show(ms):
    return "-" if ms is None else f"{ms:,.0f} ms"


def main():
    ap = common.arguments(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    binary = common.flywheel(args)
    rounds = 1 if args.smoke else args.rounds
    common.smoke_note(args)
    print(f"{'round':>5}  {'wall':>7}  {'outcome':<10}  {'window→run':>11}  {'push→canary':>12}  {'canary→verdict':>15}")
    worst = [0.0, 0.0]
    for i in range(rounds):
        wall, status, (fired, canary, verdict) = one_round(binary, 3000 if args.smoke else None)
        print(f"{i + 1:>5}  {wall:>6.1f}s  {status:<10}  {show(fired):>11}  {show(canary):>12}  {show(verdict):>15}",
              flush=True)
        worst = [max(worst[0], fired or 0), max(worst[1], canary or 0)]
    print(f"\nworst window→run {worst[0]:,.0f} ms (target < 2,000 ms: {worst[0] / 2000:.2f} of it); "
          f"worst push→canary {worst[1]:,.0f} ms (target < 1,000 ms: {worst[1] / 1000:.2f} of it)")


if __name__ == "__main__":
    main()
