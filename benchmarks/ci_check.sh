#!/usr/bin/env bash
# Benchmark smoke test for CI, a few minutes on 2 cores:
#   1. `asv check`: the asv suite imports and its parameters are valid;
#   2. `asv run --quick` on one parameter combination of every benchmark
#      function in the current environment (results are not saved);
#   3. `tconv-sparse bench` on one small case, correctness check included
#      (it exits 1 on a FAIL).
# Needs the project installed with the bench extra (pip install -e ".[bench]").
set -euo pipefail
cd "$(dirname "$0")/.."

# a fresh clone (or CI runner) has no asv machine file yet
asv machine --yes > /dev/null

asv check --python=same

subset=(
    "conv\.ConvTranspose\..*\('signal:1x1->1x65536:k9s4', '(gather|im2col|torch)', 'float32'\)"
    "conv\.Conv\..*\('signal:1x1->1x65536:k9s4', '(direct|torch)', 'float32'\)"
    "sparse\.ConvMatrix\..*\('image:1x1->1x512x512:k3s2', 'float32'\)"
    "sparse\.SparseApply\..*\('image:1x1->1x512x512:k5s1', 'C\.T @ y', 1, 'float32'\)"
    "lsqr\.OperatorLsqr\..*\('volume:1x4->4x32x32x32:k3s2', 'direct\+gather', 'float32'\)"
    "damp\.DeblurDampAuto\..*\('gcv', 'zeros'\)"
)
bench_args=()
for regex in "${subset[@]}"; do
    bench_args+=(--bench "$regex")
done
asv run --python=same --quick --show-stderr "${bench_args[@]}"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
tconv-sparse bench --case "signal:1x1->1x65536:k9s4" --out "$out"
test -s "$out/bench.json" && test -s "$out/bench.csv"
