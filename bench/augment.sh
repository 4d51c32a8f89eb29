#!/usr/bin/env bash
# The augmentation chain (random crop with padding 4, horizontal flip, normalize; 256 images of
# 3 x 32 x 32, one thread) three ways — kiln's batched transforms, the same written by hand in
# LibTorch, torchvision's per-sample transforms — and a training step with and without it.
# Wall times are medians of interleaved repetitions; the kiln/hand verdict also gets callgrind's
# instruction counts, which a shared machine does not disturb.
#
# Usage: bench/augment.sh [build-dir] [repetitions]   (build the target kiln_bench_augment first)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
repetitions="${2:-7}"
binary="$build/bench/kiln_bench_augment"
[ -x "$binary" ] || { echo "augment.sh: build $binary first (cmake --build $build --target kiln_bench_augment)" >&2; exit 1; }
python="${KILN_PYTHON:-/usr/bin/python3}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$binary" --benchmark_repetitions="$repetitions" --benchmark_enable_random_interleaving=true \
  --benchmark_format=json --benchmark_out="$out/wall.json" --benchmark_out_format=json >/dev/null
torchvision_ms="$("$python" "$root/bench/torchvision_chain.py" "$repetitions")"
count() {  # instructions of one run of the chain, from 10 runs after 2 of warm-up
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.%p" \
    "$binary" --instructions "$1" 10 >/dev/null 2>&1
  grep -h '^totals:' "$out"/cg.* | awk '{ s += $2 } END { printf "%d", s / 10 }'
  rm -f "$out"/cg.*
}
kiln_instructions=$(count chain/kiln)
hand_instructions=$(count chain/hand)
"$python" - "$out/wall.json" "$torchvision_ms" "$kiln_instructions" "$hand_instructions" <<'PY'
import json, sys
rows = {b["run_name"]: b["real_time"] for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("aggregate_name") == "median"}
tv, ki, hi = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
k, h = rows["chain/kiln"], rows["chain/hand"]
print(f"{'row':<28}{'ms (median)':>12}{'instructions':>16}")
print(f"{'chain/kiln':<28}{k:>12.3f}{ki:>16,}")
print(f"{'chain/hand (LibTorch)':<28}{h:>12.3f}{hi:>16,}")
print(f"{'chain/torchvision':<28}{tv:>12.3f}")
print(f"kiln/hand: {k / h:.3f} wall, {ki / hi:.4f} instructions; torchvision/kiln: {tv / k:.1f}x")
p, a = rows["step/plain"], rows["step/augmented"]
print(f"{'step/plain (8 batches of 64)':<28}{p:>12.3f}")
print(f"{'step/augmented':<28}{a:>12.3f}")
print(f"augmented/plain: {a / p:.3f}")
PY
