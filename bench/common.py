"""What the benchmark scripts share: a peer's Python, installed from PyPI
into its own virtualenv with `uv` (pip's resolver can take longer than 20
minutes on TFDV's dependencies); a release build of flywheel; a child
process timed with its peak memory; and the `--smoke` mode every script
has, so CI runs each one on tiny data and a script that breaks fails CI
instead of rotting until the next full run."""

import argparse
import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_MODULES = ("numpy", "pandas", "pyarrow")


class Parser(argparse.ArgumentParser):
    def parse_args(self, *a, **kw):
        args = super().parse_args(*a, **kw)
        if args.smoke:
            # Tiny data on a busy machine: OpenMP threads (scikit-learn's
            # boosting) spinning against each other cost more than the work.
            os.environ.setdefault("OMP_NUM_THREADS", "1")
        return args


def arguments(doc):
    """The parser every script starts from: `--smoke`, `--flywheel`, `--python`."""
    ap = Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, seconds not minutes; installs nothing: a peer not already "
                         "installed is skipped, and the output says so (CI runs this)")
    ap.add_argument("--flywheel", metavar="PATH",
                    help="the flywheel binary to run (default: a release build made now); "
                         "CI passes the debug binary `cargo test` built")
    ap.add_argument("--python", metavar="PATH",
                    help="a Python that has numpy, pandas and pyarrow, to generate data in --smoke "
                         "(default: the bench virtualenvs, $FLYWHEEL_TEST_PYTHON, then this Python)")
    return ap


def venv_python(name, packages):
    """The Python of virtualenv bench/NAME, with `packages` installed (once)."""
    venv = ROOT / "bench" / name
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "uv"], check=True)
    subprocess.run([str(venv / "bin" / "uv"), "pip", "install", "-q", "--python", str(py)] + list(packages), check=True)
    return str(py)


def has_modules(py, modules):
    """Whether that Python imports every module in `modules` (found, not loaded: fast)."""
    if py == sys.executable:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    check = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))"
    try:
        return subprocess.run([py, "-c", check, *modules], capture_output=True).returncode == 0
    except OSError:
        return False


def python_for(args, venv, packages, modules, what):
    """A Python for `what`. A full run installs `packages` into bench/VENV
    (once); a smoke run installs nothing and takes the first Python that
    already has `modules` (that virtualenv, --python, $FLYWHEEL_TEST_PYTHON,
    this Python), or None, saying that `what` is skipped."""
    if not args.smoke:
        return venv_python(venv, packages)
    candidates = [ROOT / "bench" / venv / "bin" / "python", args.python,
                  os.environ.get("FLYWHEEL_TEST_PYTHON"), sys.executable]
    for py in candidates:
        if py and pathlib.Path(py).exists() and has_modules(str(py), modules):
            return str(py)
    print(f"smoke: skipped {what}: no Python here has {', '.join(modules)} "
          f"(a smoke run installs nothing; a full run installs it into bench/{venv})", flush=True)
    return None


def data_python(args, venv, packages):
    """The Python that generates the data: like `python_for`, but a smoke
    run without numpy, pandas and pyarrow cannot go on, so it stops here."""
    py = python_for(args, venv, packages, DATA_MODULES, "generating data")
    if py is None:
        sys.exit("smoke: no Python with numpy, pandas and pyarrow: pass --python PATH")
    return py


def version(py, dist):
    """The installed version of distribution `dist` in that Python."""
    return subprocess.run([py, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def build_flywheel(*extra):
    """Builds the release binary (plus any extra cargo arguments) and returns its path."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "flywheel-cli", *extra], cwd=ROOT, check=True)
    return str(ROOT / "target" / "release" / "flywheel")


def flywheel(args):
    """The binary to run: --flywheel as given, else a release build made now."""
    if args.flywheel:
        path = pathlib.Path(args.flywheel).resolve()
        if not os.access(path, os.X_OK):
            sys.exit(f"--flywheel {args.flywheel}: not an executable file; build it with `cargo build -p flywheel-cli`")
        return str(path)
    return build_flywheel()


def measure(cmd):
    """Wall seconds and peak RSS (MB) of a child process; exits on failure."""
    # stderr goes to a file: a pipe nobody reads until the end could fill and stall the child.
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = 0  # reaped by wait4 above
        if status != 0:
            err.seek(0)
            sys.exit(f"{cmd[:3]} failed: {err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def smoke_note(args):
    """The line a smoke run's table starts with: its figures mean nothing."""
    if args.smoke:
        print("smoke run: tiny sizes, figures are not measurements", flush=True)
