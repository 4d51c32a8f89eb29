#!/usr/bin/env bash
# bench/gpu/run.sh — what the GPU machine checks, in one run, as is (see bench/README.md):
#
#   1. configure and build kiln_tests, kiln_fault_run and kiln_bench_compare against the LibTorch
#      inside the PyTorch of $KILN_GPU_PYTHON (default python3), Ninja on every core, keeping
#      going past a target that fails so that every compile error shows in one run;
#   2. the CUDA test cases of kiln_tests (tests/trainer/cuda.cpp, tests/precision/*.cpp,
#      tests/execution/cuda_graph.cpp), first, so that a run cut short still has them;
#   3. the comparison: kiln_bench_compare (kiln and the hand-written LibTorch loop, eager and
#      captured in a CUDA graph) and compare.py (PyTorch eager, Lightning Trainer), on the
#      784-256-10 MLP, the small CNN and the 4096-wide MLP; the table with the ratios;
#   4. kiln_tests, whole, and the fault test beside it; a test case that needs a program the
#      machine lacks (chromium, protoc) is left out, by name;
#   5. while the time budget ($KILN_GPU_BUDGET_S, default 420 s) lasts: the compile-failure and
#      consumer tests (they need no GPU and pass on the development machines; here they show
#      that kiln compiles and installs against LibTorch 2.x too).
#
# What it prints goes to $OUT (the device tool's folder, which takes back 8 files at most), or
# build-gpu/out: summary.txt, results.json, and logs.tar.gz (env, configure, build, test and
# comparison logs), packed again after every step so that a run stopped early still returns them.
# Exit status 0 only when every step that ran passed.
#
# Before it goes to the GPU machine: bench/gpu/prepare.sh here, and carry what it names.
set -u -o pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
out=${OUT:-$PWD/build-gpu/out}
build=build-gpu
logs=$build/logs
mkdir -p "$out" "$logs"
py=${KILN_GPU_PYTHON:-python3}
budget=${KILN_GPU_BUDGET_S:-420}
# the comparison's arguments (a check of this script on a CPU: "--device cpu --models mlp,cnn
# --epochs 1 --repeats 1 --batches 4")
read -r -a compare_args <<< "${KILN_GPU_COMPARE_ARGS:---device cuda --epochs 10 --repeats 5}"
jobs=$(nproc)
status=0
say() { echo "[run.sh $((SECONDS - start))s] $*" | tee -a "$out/summary.txt"; }
pack() { tar -czf "$out/logs.tar.gz" -C "$logs" . 2>/dev/null || true; }
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
} > "$logs/env.txt" 2>&1
cat "$logs/env.txt"
torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
  { failed "no PyTorch in $py (set KILN_GPU_PYTHON)"; exit 1; }
grep -q "MISSING" "$logs/env.txt" &&
  say "note: modules missing (above): reference tests needing scikit-learn or torchvision fail without them, Lightning rows are left out without it"

# ---- header-only dependencies: the system's, else the copies bench/gpu/prepare.sh made
# (Boost.Hana, nlohmann/json, doctest), searched after the system's folders (-idirafter)
headers=()
third_party="$PWD/bench/gpu/third_party"
extra_flags=""
[ -d "$third_party" ] && extra_flags="-idirafter $third_party"
for header in boost/hana.hpp nlohmann/json.hpp doctest/doctest.h; do
  if [ -f "/usr/include/$header" ]; then
    say "$header: /usr/include"
  elif [ -f "$third_party/$header" ]; then
    say "$header: the copy in bench/gpu/third_party"
  else
    failed "$header is missing and no copy came along; run bench/gpu/prepare.sh on the development machine and carry bench/gpu/third_party"
    exit 1
  fi
done
system_hana=yes
if [ ! -f /usr/include/boost/hana.hpp ]; then
  system_hana=
  headers+=(-DKILN_HANA_INCLUDE_DIR="$third_party")
  say "Boost.Hana from bench/gpu/third_party: the consumer tests, which find Boost, are left out"
fi
[ -f /usr/include/doctest/doctest.h ] || headers+=(-DKILN_DOCTEST_INCLUDE="$third_party")

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
  -DCMAKE_CXX_FLAGS="$extra_flags" "${headers[@]}" "${cuda[@]}" "${data[@]}" > "$logs/configure.log" 2>&1 || {
  show_tail "$logs/configure.log" 80
  failed "configure (configure.log). If Torch's CMake files found no CUDA toolkit: install one, or put its root in PATH (nvcc) or CUDAToolkit_ROOT"
  pack
  exit 1
}
grep -E "Caffe2: CUDA|CUDA detected|Found CUDAToolkit|Torch: CUDA|cuDNN|Torch version" "$logs/configure.log" | head -8
say "configured"
pack
# -k 0: every translation unit that can compile does, so one run shows every error
cmake --build "$build" -j "$jobs" --target kiln_tests kiln_fault_run kiln_bench_compare -- -k 0 \
  > "$logs/build.log" 2>&1 || {
  grep -E "error|Error" "$logs/build.log" | head -60
  failed "build (build.log); what did build runs below"
}
say "build ended ($(grep -c 'warning:' "$logs/build.log") warning lines in build.log)"
pack

# ---- 2. the CUDA test cases first (kiln_tests' own counts: they say "skipped" without a device)
export KILN_PYTHON="$py"
if [ -x "$build/tests/kiln_tests" ]; then
  (cd "$build/tests" && timeout 300 ./kiln_tests -tc="*CUDA*,*captured*,*cuda_graph*,*pinned*" -s) \
    > "$logs/cuda_tests.log" 2>&1 || failed "the CUDA test cases (cuda_tests.log)"
  grep -E "^\[doctest\] (test cases|assertions)|MESSAGE|ERROR|FAILED|skipped" "$logs/cuda_tests.log" | head -40
else
  failed "kiln_tests did not build"
fi
say "CUDA tests done"
pack

# ---- 3. the comparison
if [ -x "$build/bench/kiln_bench_compare" ]; then
  "$build/bench/kiln_bench_compare" "${compare_args[@]}" --out "$logs/kiln.json" 2>&1 |
    tee "$logs/compare_cpp.log" || failed "kiln_bench_compare (compare_cpp.log)"
  cpp=(--cpp-results "$logs/kiln.json")
  [ -f "$logs/kiln.json" ] || cpp=()
else
  failed "kiln_bench_compare did not build"
  cpp=()
fi
PYTHONUNBUFFERED=1 "$py" bench/gpu/compare.py "${compare_args[@]}" "${cpp[@]}" \
  --out "$out/results.json" 2>&1 | tee "$logs/compare.log" || failed "compare.py (compare.log)"
say "comparison done"
pack

# ---- 4. the whole of kiln_tests, and the fault test beside it
exclude=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
  exclude+=("the HTML report renders in headless chromium*")
command -v protoc >/dev/null || exclude+=("kiln::tensorboard_logger writes records that protoc decodes*")
[ ${#exclude[@]} -gt 0 ] && say "left out, for programs this machine lacks: ${exclude[*]}"
faults_pid=
if [ -x "$build/tests/kiln_fault_run" ]; then
  ctest --test-dir "$build" -R '^faults$' --output-on-failure --timeout 400 > "$logs/faults.log" 2>&1 &
  faults_pid=$!
fi
if [ -x "$build/tests/kiln_tests" ]; then
  # one process per test file, several at once: a crash shows which file, and hides no other
  filter=()
  [ ${#exclude[@]} -gt 0 ] && filter=("-tce=$(IFS=,; echo "${exclude[*]}")")
  export KILN_RUN_FILTER="${filter[*]:-}"
  (cd tests && ls ./*/*.cpp) | sed 's|^\./||' | grep -v -e '^fault/' -e '^compile_fail/' -e '^consumer/' |
    OMP_NUM_THREADS=2 xargs -P "$(( jobs / 2 > 1 ? jobs / 2 : 1 ))" -I{} sh -c \
      'log="$0/t_$(echo {} | tr / _).log"
       (cd "$1/tests" && timeout 300 ./kiln_tests -sf="*tests/{}" ${KILN_RUN_FILTER:+"$KILN_RUN_FILTER"} -d) > "$log" 2>&1
       echo "{}: exit $?"' "$PWD/$logs" "$PWD/$build" | sort > "$logs/kiln_tests.txt"
  grep -v ": exit 0" "$logs/kiln_tests.txt" && failed "kiln_tests (the files above; t_<file>.log)"
  grep -h -E "ERROR|FATAL|CRASHED" "$logs"/t_*.log | head -40
  say "kiln_tests: $(grep -c ': exit 0' "$logs/kiln_tests.txt") of $(wc -l < "$logs/kiln_tests.txt") test files passed"
fi
if [ -n "$faults_pid" ]; then
  wait "$faults_pid" || failed "faults (faults.log)"
  tail -n 3 "$logs/faults.log"
fi
say "tests done"
pack

# ---- 5. compile-failure and consumer tests, while the budget lasts
if [ $((SECONDS - start)) -lt $((budget - 120)) ]; then
  labels="compile_fail"
  [ -n "$system_hana" ] && labels="compile_fail|consumer"
  timeout $((budget - (SECONDS - start))) ctest --test-dir "$build" -L "$labels" -j "$jobs" --output-on-failure \
    > "$logs/ctest_compile.log" 2>&1 || failed "ctest -L '$labels' (ctest_compile.log; a timeout shows as 124)"
  tail -n 8 "$logs/ctest_compile.log"
else
  say "left out for time: the compile-failure and consumer tests (ctest -L 'compile_fail|consumer')"
fi
say "done, status $status"
pack
exit $status
