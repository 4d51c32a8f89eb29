#!/usr/bin/env bash
# bench/gpu/prepare.sh — on the development machine, before bench/gpu/run.sh goes to the GPU
# machine: puts into git-ignored paths of this working tree what that machine may lack, so that
# the device tool can carry them:
#   bench/gpu/third_party/boost/hana{,.hpp}  a copy of Boost.Hana (run.sh uses it only when
#                                            /usr/include/boost/hana.hpp is missing there)
#   data/mnist                               the prepared MNIST split one test reads
# then prints the carry list to give the device tool.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench/gpu/third_party/boost
cp -r /usr/include/boost/hana /usr/include/boost/hana.hpp bench/gpu/third_party/boost/
data=${KILN_DATA_DIR:-/work/main/data}
if [ ! -f data/mnist/train-images-idx3-ubyte ]; then
  if [ -f "$data/mnist/train-images-idx3-ubyte" ]; then
    mkdir -p data && cp -r "$data/mnist" data/
  else
    echo "prepare.sh: no prepared MNIST in $data/mnist (scripts/setup.sh makes it); the MNIST test will fail there" >&2
  fi
fi
du -sh bench/gpu/third_party data/mnist 2>/dev/null || true
echo 'carry: ["bench/gpu/third_party", "data/mnist"]'
