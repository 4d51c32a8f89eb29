#!/usr/bin/env bash
# bench/gpu/prepare.sh — on the development machine, before bench/gpu/run.sh goes to the GPU
# machine: puts into git-ignored paths of this working tree what that machine may lack, so that
# the device tool can carry them:
#   bench/gpu/third_party/                   copies of the header-only libraries kiln and its
#                                            tests use: Boost.Hana, nlohmann/json and
#                                            doctest (run.sh searches them after the system's
#                                            folders, so a library installed there wins)
#   data/mnist, data/breast_cancer.csv       the prepared data two tests read
# then prints the carry list to give the device tool.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench/gpu/third_party/boost
cp -r /usr/include/boost/hana /usr/include/boost/hana.hpp bench/gpu/third_party/boost/
cp -r /usr/include/nlohmann /usr/include/doctest bench/gpu/third_party/
data=${KILN_DATA_DIR:-/work/main/data}
if [ ! -f data/mnist/train-images-idx3-ubyte ]; then
  if [ -f "$data/mnist/train-images-idx3-ubyte" ]; then
    mkdir -p data && cp -r "$data/mnist" data/
  else
    echo "prepare.sh: no prepared MNIST in $data/mnist (scripts/setup.sh makes it); the MNIST test will fail there" >&2
  fi
fi
if [ ! -f data/breast_cancer.csv ] && [ -f "$data/breast_cancer.csv" ]; then cp "$data/breast_cancer.csv" data/; fi
du -sh bench/gpu/third_party data/mnist data/breast_cancer.csv 2>/dev/null || true
echo 'carry: ["bench/gpu/third_party", "data/mnist", "data/breast_cancer.csv"]'
