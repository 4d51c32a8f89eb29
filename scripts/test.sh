#!/usr/bin/env bash
# Set-up, build and run kiln's whole test suite: unit tests, compile-failure checks, consumer
# projects and every example.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$root/build" -j2
ctest --test-dir "$root/build" --output-on-failure
