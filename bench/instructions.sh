#!/usr/bin/env bash
# Instructions per training step of each benchmark case, counted by callgrind: repeatable where
# wall time on a shared machine is not. Counts EPOCHS iterations after two of warm-up: for the
# step cases an iteration is an epoch of 64 steps, and the count is per step; for cv5 (a whole
# 5-fold cross-validation) and ensemble4 (a four-model prediction) it is per iteration. The pair
# of tiny_mlp/one_of is not the hand loop but kiln/tiny_mlp/config: the trainer written with the
# type that one_of chooses at run time.
#
# Usage: bench/instructions.sh [build-dir] [epochs] [case ...]   (defaults: build, 2, every case)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
epochs="${2:-2}"
binary="$build/bench/kiln_bench_step"
[ -x "$binary" ] || { echo "instructions.sh: build $binary first" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {  # instructions per unit (the second argument: units per iteration) of one case
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.%p" \
    "$binary" --instructions "$1" "$epochs" >/dev/null 2>&1
  local total
  total=$(grep -h '^totals:' "$out"/cg.* | awk '{ s += $2 } END { print s }')
  rm -f "$out"/cg.*
  echo $((total / (epochs * $2)))
}

shift $(( $# < 2 ? $# : 2 ))
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(tiny_mlp/plain tiny_mlp/full mnist_mlp/plain mnist_mlp/full mnist_mlp/metrics
                                  tiny_mlp/cv5 mnist_mlp/ensemble4)
printf '%-22s %14s %14s %8s  %s\n' case kiln hand kiln/hand unit
for c in "${cases[@]}"; do
  case "$c" in
    */cv5|*/ensemble4) units=1 unit=iteration ;;
    *) units=64 unit=step ;;
  esac
  case "$c" in
    */one_of) pair="kiln/${c%/*}/config" ;;
    *) pair="hand/$c" ;;
  esac
  k=$(count "kiln/$c" $units)
  h=$(count "$pair" $units)
  printf '%-22s %14d %14d %8.4f  %s\n' "$c" "$k" "$h" "$(echo "$k / $h" | awk '{ print $1 / $3 }')" "per $unit"
done
