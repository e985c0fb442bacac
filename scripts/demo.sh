#!/usr/bin/env bash
# Installs what is missing, exports the default model if needed, builds the main example and
# runs it on SmolLM2-135M-Instruct. Extra arguments go to the example.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/export_default_model.sh"
"$ROOT/scripts/build.sh" --target hello_model >/dev/null
"${STEER_BUILD_DIR:-$ROOT/build}/examples/hello_model" "$ROOT/models/smollm2-135m-instruct" "$@"
