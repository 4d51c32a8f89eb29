#!/usr/bin/env bash
# Idempotent machine setup for kiln on Debian 12 (bookworm).
#
#   1. Installs the Debian packages kiln needs to build, test and benchmark,
#      but only those that are missing (apt-get runs only when something is).
#   2. Prepares the MNIST subset in data/mnist/ (see scripts/prepare_mnist.sh).
#
# Runs as root, or through sudo when not root. Safe to run any number of
# times; on a prepared machine it does nothing and finishes in well under 2 s.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
  libtorch-dev
  libboost-dev
  doctest-dev
  libbenchmark-dev
  libopenblas0-openmp
  libgloo-dev
  cmake
  g++
  make
  nodejs
  npm
  python3-torch
  python3-torchvision
  python3-sklearn
  python3-optuna     # hyperparameter studies (tools/kiln_optuna.py), with cmaes and sqlalchemy
  python3-matplotlib # the study report's figures
  python3-psycopg2   # studies shared through PostgreSQL
  postgresql         # tests/tune/postgres_study.sh starts a throwaway server (pg_virtualenv)
  nlohmann-json3-dev
  protobuf-compiler
  chromium
  valgrind
  clang              # libFuzzer targets (fuzz/, scripts/fuzz.sh)
  libclang-rt-14-dev # clang's sanitizer and libFuzzer runtimes
  llvm               # llvm-symbolizer: function names and lines in the fuzzers' reports
  ca-certificates
)

log() { echo "[setup] $*"; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  log "error: not root and sudo is not available" >&2
  exit 1
fi

is_installed() {
  local pkg="$1"
  # A node.js from another source (e.g. NodeSource) ships its own npm and
  # conflicts with Debian's npm package: accept the commands themselves.
  case "$pkg" in
    nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
    npm)    command -v npm  >/dev/null 2>&1 && return 0 ;;
  esac
  local status
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing missing packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
else
  log "all ${#PACKAGES[@]} packages present"
fi

bash "$REPO_ROOT/scripts/prepare_mnist.sh"
/usr/bin/python3 "$REPO_ROOT/scripts/prepare_tables.py"  # data/breast_cancer.csv from python3-sklearn
log "done"
