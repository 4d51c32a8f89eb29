#!/bin/sh
# The MNIST CNN trained data-parallel on this machine: 1 process × 1 thread, 1 process × 2 threads,
# then 2 processes × 1 thread under torchrun, where kiln's bucketed, overlapped averaging runs
# beside the hand-written loop that all-reduces each gradient after backward().
#   bench/distributed.sh <build dir> [data dir]     (from the source tree; data: data/mnist)
set -eu
build=${1:?usage: bench/distributed.sh <build dir> [mnist dir]}
export KILN_MNIST_DIR=${2:-data/mnist}
bench=$build/bench/kiln_bench_distributed
# Three repetitions of each row, reported as mean, median and spread; alone, the rows interleave at
# random (this machine's speed drifts by several percent over a minute). Under torchrun they keep
# their order: every process must run the same collectives in the same order.
repeat="--benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_counters_tabular=true"
echo "== 1 process x 1 thread"
OMP_NUM_THREADS=1 "$bench" $repeat --benchmark_enable_random_interleaving=true
echo "== 1 process x 2 threads"
OMP_NUM_THREADS=2 "$bench" $repeat --benchmark_enable_random_interleaving=true
echo "== 2 processes x 1 thread (torchrun sets OMP_NUM_THREADS=1)"
# Debian's torchrun under Python 3.11 needs -r 1 -t 1 (its default '0' does not parse).
/usr/bin/python3 -m torch.distributed.run --standalone --nproc_per_node=2 --no_python -r 1 -t 1 \
  "$bench" $repeat 2>&1 | grep -v '^\*\|OMP_NUM_THREADS\|^WARNING'
