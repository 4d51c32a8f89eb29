#!/usr/bin/env bash
# Set-up, build and run kiln's whole test suite: unit tests, compile-failure checks, consumer
# projects and every example; then the unit tests and examples again, built with
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included; the preset "sanitize",
# in build-sanitize/); then each fuzz target for a short while.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$root/build" -j2
ctest --test-dir "$root/build" --output-on-failure

(cd "$root" && cmake --preset sanitize)
cmake --build "$root/build-sanitize" -j2
ctest --test-dir "$root/build-sanitize" --output-on-failure

bash "$root/scripts/fuzz.sh" "${KILN_FUZZ_SECONDS:-30}"
