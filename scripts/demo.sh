#!/usr/bin/env bash
# Set-up, build and run the flagship example: transfer learning on real MNIST digits.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$root/build" -j2 --target mnist_transfer
mkdir -p "$root/build/demo"
"$root/build/examples/mnist_transfer" "$root/data/mnist" "$root/build/demo"
