#!/usr/bin/env bash
# bench/gpu/run.sh — what the GPU machine checks, in one run, as is (see bench/README.md):
#
#   1. configure and build kiln_tests and kiln_bench_compare against the LibTorch inside the
#      PyTorch of $KILN_GPU_PYTHON (default python3), Ninja on every core;
#   2. ctest, every test but the compile-failure and consumer ones: the CUDA tests run here
#      (tests/core/cuda.cpp, tests/precision/*.cpp, tests/execution/cuda_graph.cpp);
#   3. the comparison: kiln_bench_compare (kiln and the hand-written LibTorch loop, eager and
#      captured in a CUDA graph) and compare.py (PyTorch eager, Lightning Trainer), on the
#      784-256-10 MLP, the small CNN and the 4096-wide MLP; the table with the ratios;
#   4. while the time budget ($KILN_GPU_BUDGET_S, default 420 s) lasts: the compile-failure and
#      consumer tests (they need no GPU and pass on the development machines; here they show
#      that kiln compiles and installs against LibTorch 2.x too).
#
# Everything it prints goes to $OUT (the device tool's folder), or build-gpu/out: summary.txt,
# env.txt, configure.log, build.log, ctest*.log, compare_cpp.log, compare.log, results.json.
# Exit status 0 only when every step that ran passed.
#
# Before it goes to the GPU machine: bench/gpu/prepare.sh here, and carry what it names.
set -u -o pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
out=${OUT:-$PWD/build-gpu/out}
mkdir -p "$out"
build=build-gpu
py=${KILN_GPU_PYTHON:-python3}
budget=${KILN_GPU_BUDGET_S:-420}
jobs=$(nproc)
status=0
say() { echo "[run.sh $((SECONDS - start))s] $*" | tee -a "$out/summary.txt"; }
failed() { say "FAILED: $*"; status=1; }
show_tail() { echo "----- last lines of $1 -----"; tail -n "${2:-40}" "$1"; echo "-----"; }

# ---- the machine
{
  "$py" - <<'PY'
import sys
import torch
print("python", sys.version.split()[0])
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
print("cmake_prefix_path", torch.utils.cmake_prefix_path)
print("cxx11_abi", torch._C._GLIBCXX_USE_CXX11_ABI)
for name in ("numpy", "sklearn", "torchvision", "lightning", "pytorch_lightning"):
    try:
        __import__(name)
        print(name, "present")
    except Exception as e:
        print(name, "MISSING", type(e).__name__)
PY
  nvidia-smi -L 2>&1
  g++ --version | head -1
  cmake --version | head -1
  echo "ninja $(ninja --version 2>&1)"
  if command -v nvcc >/dev/null; then nvcc --version | tail -2; else echo "nvcc not on PATH"; fi
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
  { failed "no PyTorch in $py (set KILN_GPU_PYTHON)"; exit 1; }
grep -q "MISSING" "$out/env.txt" &&
  say "note: modules missing (above): reference tests needing scikit-learn or torchvision fail without them, Lightning rows are left out without it"

# ---- Boost.Hana: the system's, else the copy bench/gpu/prepare.sh made
hana=()
if [ -f /usr/include/boost/hana.hpp ]; then
  say "Boost.Hana: /usr/include/boost"
elif [ -f bench/gpu/third_party/boost/hana.hpp ]; then
  hana=(-DKILN_HANA_INCLUDE_DIR="$PWD/bench/gpu/third_party")
  say "Boost.Hana: the copy in bench/gpu/third_party (the consumer tests, which find Boost, are left out)"
else
  failed "Boost.Hana: /usr/include/boost/hana.hpp is missing and no copy came along; run bench/gpu/prepare.sh on the development machine and carry bench/gpu/third_party"
  exit 1
fi

# ---- a CUDA toolkit for Torch's CMake files, which look for one (a pip PyTorch has no nvcc)
cuda=()
if ! command -v nvcc >/dev/null; then
  for d in /usr/local/cuda /usr/local/cuda-13* /usr/local/cuda-12*; do
    if [ -x "$d/bin/nvcc" ]; then
      export PATH="$d/bin:$PATH"
      cuda=(-DCUDAToolkit_ROOT="$d")
      say "CUDA toolkit: $d"
      break
    fi
  done
fi

# ---- 1. configure and build
data=()
[ -f data/mnist/train-images-idx3-ubyte ] && data=(-DKILN_DATA_DIR="$PWD/data")
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DKILN_BUILD_TESTS=ON -DKILN_BUILD_EXAMPLES=OFF -DKILN_BUILD_BENCHMARKS=ON \
  "${hana[@]}" "${cuda[@]}" "${data[@]}" > "$out/configure.log" 2>&1 || {
  show_tail "$out/configure.log" 60
  failed "configure (configure.log). If Torch's CMake files found no CUDA toolkit: install one, or put its root in PATH (nvcc) or CUDAToolkit_ROOT"
  exit 1
}
grep -E "Caffe2: CUDA|CUDA detected|Found CUDAToolkit|Torch: CUDA" "$out/configure.log" | head -5
say "configured"
cmake --build "$build" -j "$jobs" --target kiln_tests kiln_bench_compare > "$out/build.log" 2>&1 || {
  grep -E "error" "$out/build.log" | head -40
  show_tail "$out/build.log" 40
  failed "build (build.log)"
  exit 1
}
say "built ($(grep -c 'warning:' "$out/build.log") warning lines in build.log)"

# ---- 2. the tests that matter on the GPU first
export KILN_PYTHON="$py"
ctest --test-dir "$build" -LE "compile_fail|consumer" --output-on-failure --timeout 600 > "$out/ctest.log" 2>&1 ||
  failed "ctest (ctest.log)"
tail -n 5 "$out/ctest.log"
# kiln_tests' own line counts: the CUDA tests say "skipped" when they found no device
"$build/tests/kiln_tests" -tc="*CUDA*,*captured*,*cuda_graph*,*pinned*" -s > "$out/cuda_tests.log" 2>&1 ||
  failed "the CUDA test cases (cuda_tests.log)"
grep -E "^\[doctest\] (test cases|assertions)|MESSAGE" "$out/cuda_tests.log" | head -30
say "tests done"

# ---- 3. the comparison
"$build/bench/kiln_bench_compare" --device cuda --epochs 10 --repeats 5 --out "$out/kiln.json" 2>&1 |
  tee "$out/compare_cpp.log" || failed "kiln_bench_compare (compare_cpp.log)"
"$py" bench/gpu/compare.py --device cuda --epochs 10 --repeats 5 --cpp-results "$out/kiln.json" \
  --out "$out/results.json" 2>&1 | tee "$out/compare.log" || failed "compare.py (compare.log)"
say "comparison done"

# ---- 4. compile-failure and consumer tests, while the budget lasts
if [ $((SECONDS - start)) -lt $((budget - 150)) ]; then
  labels="compile_fail"
  [ ${#hana[@]} -eq 0 ] && labels="compile_fail|consumer"
  timeout $((budget - (SECONDS - start))) ctest --test-dir "$build" -L "$labels" --output-on-failure \
    > "$out/ctest_compile.log" 2>&1 || failed "ctest -L '$labels' (ctest_compile.log; a timeout shows as 124)"
  tail -n 5 "$out/ctest_compile.log"
else
  say "left out for time: the compile-failure and consumer tests (ctest -L 'compile_fail|consumer')"
fi
say "done, status $status"
exit $status
