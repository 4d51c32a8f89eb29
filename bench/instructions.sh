#!/usr/bin/env bash
# Instructions per training step of each benchmark case, counted by callgrind: repeatable where
# wall time on a shared machine is not. Counts EPOCHS epochs of 64 steps after two of warm-up.
#
# Usage: bench/instructions.sh [build-dir] [epochs]      (defaults: build, 2)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
epochs="${2:-2}"
binary="$build/bench/kiln_bench_step"
[ -x "$binary" ] || { echo "instructions.sh: build $binary first" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {  # instructions per step of one case
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.%p" \
    "$binary" --instructions "$1" "$epochs" >/dev/null 2>&1
  local total
  total=$(grep -h '^totals:' "$out"/cg.* | awk '{ s += $2 } END { print s }')
  rm -f "$out"/cg.*
  echo $((total / (epochs * 64)))
}

printf '%-22s %14s %14s %8s\n' case kiln hand kiln/hand
for c in tiny_mlp/plain tiny_mlp/full mnist_mlp/plain mnist_mlp/full mnist_mlp/metrics; do
  k=$(count "kiln/$c")
  h=$(count "hand/$c")
  printf '%-22s %14d %14d %8.4f\n' "$c" "$k" "$h" "$(echo "$k / $h" | awk '{ print $1 / $3 }')"
done
