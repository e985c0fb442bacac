#!/usr/bin/env bash
# Configures and builds steer (library checks, tests, examples, benchmarks) into build/.
# Extra arguments go to `cmake --build`, e.g. `./scripts/build.sh --target hello_model`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${STEER_BUILD_DIR:-$ROOT/build}
torch_prefix=$("$ROOT/.venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
mkdir -p "$BUILD_DIR"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths inside the clone hash as relative ones, so fresh clones (CI) share the cache.
  export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix" "${launcher[@]}" >"$BUILD_DIR/configure.log" 2>&1 ||
  { cat "$BUILD_DIR/configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$(nproc)" "$@"
