#!/usr/bin/env bash
# Runs every benchmark script (bench/*.py but common.py) in --smoke mode:
# tiny sizes, seconds each, peers used only when already installed. CI runs
# it after the tests so a script that breaks fails CI instead of rotting
# until the next full run. Exits non-zero when any script fails.
#
#   bash bench/smoke.sh [FLYWHEEL_BINARY]    # default: target/debug/flywheel (built by `cargo test`)
#
# A Python with numpy, pandas and pyarrow generates the data: the bench
# virtualenvs, $FLYWHEEL_TEST_PYTHON (CI sets it), or python3 itself.
set -uo pipefail
cd "$(dirname "$0")/.."

binary="${1:-target/debug/flywheel}"
if [ ! -x "$binary" ]; then
    echo "bench smoke: $binary is not an executable; build it with \`cargo build -p flywheel-cli\` or pass its path" >&2
    exit 2
fi
python_args=()
if [ -n "${FLYWHEEL_TEST_PYTHON:-}" ]; then python_args=(--python "$FLYWHEEL_TEST_PYTHON"); fi

failed=()
count=0
for script in bench/*.py; do
    name=$(basename "$script" .py)
    [ "$name" = common ] && continue
    count=$((count + 1))
    echo
    echo "== bench smoke: $name"
    start=$(date +%s)
    if python3 "$script" --smoke --flywheel "$binary" "${python_args[@]}"; then
        echo "-- $name ok ($(( $(date +%s) - start )) s)"
    else
        echo "-- $name FAILED (exit $?, $(( $(date +%s) - start )) s)"
        failed+=("$name")
    fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench smoke: ${#failed[@]} of $count scripts broke: ${failed[*]}"
    exit 1
fi
echo "bench smoke: all $count scripts ran"
