#!/bin/sh
# ResNet-50 on the CPU: kiln::models::resnet50 (C++, bench/resnet50.cpp) beside torchvision's
# resnet50 run by PyTorch eager (bench/resnet50.py), on the same LibTorch with the same threads.
#   bench/resnet50.sh <build dir> [threads]      (threads: 2)
set -eu
build=${1:?usage: bench/resnet50.sh <build dir> [threads]}
threads=${2:-2}
here=$(dirname "$0")
OMP_NUM_THREADS=$threads "$build/bench/kiln_bench_resnet50" --benchmark_counters_tabular=true 2>&1 | grep -E "Benchmark|_median|_cv"
OMP_NUM_THREADS=$threads /usr/bin/python3 "$here/resnet50.py" "$threads"
