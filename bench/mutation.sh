#!/usr/bin/env bash
# The long mutation run: the same properties as
# crates/flywheel-cli/tests/mutation.rs (no panic, a documented exit code),
# on SCALE times as many mutated inputs, counting panics instead of stopping
# at the first. Prints the inputs tried and the panics found per kind.
#
#   bench/mutation.sh [SCALE] [SEED]      # defaults: 25, a seed from the clock
#
# Reproducers of any violation are kept under target/tmp/mutation-findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-25}"
seed="${2:-$(date +%s)}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "mutation run: scale $scale, seed $seed"
status=0
FLYWHEEL_MUTATION_SCALE="$scale" FLYWHEEL_MUTATION_SEED="$seed" FLYWHEEL_MUTATION_KEEP_GOING=1 \
  cargo test -q --workspace --test mutation -- --nocapture --test-threads 2 >"$log" 2>&1 || status=$?
# Test progress dots may precede a summary line: match anywhere in the line.
grep -oE 'mutation [^ ]+: [0-9]+ inputs, [0-9]+ panics or undocumented exits' "$log" >"$log.sum" || true
cat "$log.sum"
awk '{ inputs += $3; panics += $5 } END { printf "total: %d inputs, %d panics or undocumented exits\n", inputs, panics }' "$log.sum"
rm -f "$log.sum"
if [ "$status" -ne 0 ]; then
  echo "the run failed (exit $status); its output:"
  grep -E 'panicked at|input saved as' "$log" | head -n 20
fi
exit "$status"
