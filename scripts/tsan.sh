#!/usr/bin/env bash
# Builds the thread tests (tests/steering_test.cpp) with ThreadSanitizer into build-tsan/ and
# runs them. steer's headers are instrumented; LibTorch is not (the wheel is built without
# TSan), so races inside LibTorch are not seen, while every access steer makes to its own state
# (hook lists, guards, Record buffers, Add's coefficient) is. See docs/reliability.md.
# Extra arguments go to the test program, e.g. `./scripts/tsan.sh --gtest_filter='Threads.*'`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${STEER_TSAN_BUILD_DIR:-$ROOT/build-tsan}
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/export_default_model.sh"
torch_prefix=$("$ROOT/.venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
mkdir -p "$BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DCMAKE_CXX_FLAGS="-fsanitize=thread" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >"$BUILD_DIR/configure.log" 2>&1 ||
  { cat "$BUILD_DIR/configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$(nproc)" --target steering_test
# The tiny models the tests load come from the main build's fixtures (made by ctest there).
fixtures="${STEER_BUILD_DIR:-$ROOT/build}/tests/fixtures"
[ -d "$fixtures/tiny-llama" ] || {
  echo "tsan.sh: run ./scripts/test.sh (or ctest -R fixture.tiny_models) first: no $fixtures/tiny-llama" >&2
  exit 1
}
rm -rf "$BUILD_DIR/tests/fixtures"
ln -sfn "$fixtures" "$BUILD_DIR/tests/fixtures"
# halt_on_error: the first report fails the run; second_deadlock_stack for lock-order reports.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
OMP_NUM_THREADS=1 "$BUILD_DIR/tests/steering_test" --gtest_filter='Threads.*:Steering.*-Steering.GenerationUnderAGuardEqualsAttachedHooks' "$@"
