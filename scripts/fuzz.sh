#!/usr/bin/env bash
# Builds kiln's libFuzzer targets (fuzz/, clang, in build-fuzz/) and runs each for a bounded time.
#
#   bash scripts/fuzz.sh              # every target, 60 s each
#   bash scripts/fuzz.sh 600 csv      # only fuzz_csv, 10 minutes
#
# Each target starts from its seeds in fuzz/corpus/<target>/ (kept in the repository) and keeps
# what it discovers in build-fuzz/corpus/<target>/, so that a second run continues where the
# first stopped. An input that crashes a target, or makes it break one of its checks (see
# fuzz/fuzz.hpp), is written to build-fuzz/artifacts/ and the script exits non-zero: fix the
# reader, and keep the input as a regression test in tests/data/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=()
  for seeds in "$root"/fuzz/corpus/*/; do targets+=("$(basename "$seeds")"); done
fi
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: the first argument is seconds per target, got '$seconds'" >&2; exit 2 ;; esac

build="$root/build-fuzz"
(cd "$root" && cmake --preset fuzz >/dev/null)  # clang, KILN_FUZZ=ON, into build-fuzz/
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

failed=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus" "$build/artifacts"
  dict=()
  [ -f "$root/fuzz/$target.dict" ] && dict=(-dict="$root/fuzz/$target.dict")
  echo "[fuzz] $target for ${seconds} s"
  if ! "$build/fuzz/fuzz_$target" "$corpus" "$root/fuzz/corpus/$target" "${dict[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$target-" 2>"$build/$target.log"; then
    failed+=("$target")
    tail -n 40 "$build/$target.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ *DONE' "$build/$target.log" || true
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "[fuzz] found problems in: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
echo "[fuzz] no problems found in ${targets[*]}"
