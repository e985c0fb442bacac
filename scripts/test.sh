#!/usr/bin/env bash
# Installs what is missing, exports the default model if needed, builds everything and runs
# the whole test suite with ctest. Extra arguments go to ctest, e.g. `./scripts/test.sh -R model`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/export_default_model.sh"
"$ROOT/scripts/fetch_gemma3_tokenizer.sh"
"$ROOT/scripts/build.sh"
ctest --test-dir "${STEER_BUILD_DIR:-$ROOT/build}" --output-on-failure -j "$(nproc)" "$@"
