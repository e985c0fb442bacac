#!/usr/bin/env bash
# Everything GPU-side in one go, for a lent GPU machine (see docs/performance.md, "GPU"):
# builds the GPU tests against the torch found on that machine, makes the tiny-model fixtures,
# runs `ctest -L gpu` and the steering/thread tests, and prints the device. Writes its log to
# $OUT (the device tool's output folder) when set, else to build-gpu/gpu_check.log.
# Usage on the device machine: ./scripts/gpu_check.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${STEER_GPU_BUILD_DIR:-$ROOT/build-gpu}
LOG=${OUT:-$BUILD_DIR}/gpu_check.log
mkdir -p "$BUILD_DIR" "$(dirname "$LOG")"
exec > >(tee "$LOG") 2>&1

PYTHON=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && PYTHON="$ROOT/.venv/bin/python"
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())' || { echo "gpu_check: no torch for $PYTHON"; exit 1; }
torch_prefix=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
  -DSTEER_PYTHON="$PYTHON" -DSTEER_BUILD_EXAMPLES=OFF -DSTEER_BUILD_BENCHMARKS=OFF >/dev/null || exit 1
cmake --build "$BUILD_DIR" -j "$(nproc)" --target runtime_gpu_test hooks_gpu_test steering_test \
  reliability_test || exit 1
# Tiny models (transformers from_config, no download), then the GPU-labelled tests.
ctest --test-dir "$BUILD_DIR" -R 'fixture.tiny_models' --output-on-failure
ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure
status=$?
ctest --test-dir "$BUILD_DIR" -R '^(Steering|Threads|NonFinite|IgnoredOptions)\.' \
  -E 'GenerationUnderAGuard' --output-on-failure || status=1
echo "gpu_check: exit $status"
exit $status
