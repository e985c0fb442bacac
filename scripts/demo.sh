#!/usr/bin/env bash
# Installs what is missing, exports the default model if needed, builds the examples and runs
# them on SmolLM2-135M-Instruct: hello_model (layout, next tokens, a chat answer), then
# activation_addition ("Love" - "Hate" added while the model continues "I hate you because",
# unsteered and steered side by side). Extra arguments go to hello_model.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/export_default_model.sh"
"$ROOT/scripts/build.sh" --target hello_model activation_addition >/dev/null
examples="${STEER_BUILD_DIR:-$ROOT/build}/examples"
"$examples/hello_model" "$ROOT/models/smollm2-135m-instruct" "$@"
echo
"$examples/activation_addition" --model "$ROOT/models/smollm2-135m-instruct"
