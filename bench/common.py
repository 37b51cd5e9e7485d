"""What the benchmark scripts share: a peer's Python, installed from PyPI
into its own virtualenv with `uv` (pip's resolver can take longer than 20
minutes on TFDV's dependencies); a release build of flywheel; and a child
process timed with its peak memory."""

import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def venv_python(name, packages):
    """The Python of virtualenv bench/NAME, with `packages` installed (once)."""
    venv = ROOT / "bench" / name
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "uv"], check=True)
    subprocess.run([str(venv / "bin" / "uv"), "pip", "install", "-q", "--python", str(py)] + list(packages), check=True)
    return str(py)


def version(py, dist):
    """The installed version of distribution `dist` in that Python."""
    return subprocess.run([py, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def build_flywheel(*extra):
    """Builds the release binary (plus any extra cargo arguments) and returns its path."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "flywheel-cli", *extra], cwd=ROOT, check=True)
    return str(ROOT / "target" / "release" / "flywheel")


def measure(cmd):
    """Wall seconds and peak RSS (MB) of a child process; exits on failure."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"{cmd[:3]} failed: {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024
