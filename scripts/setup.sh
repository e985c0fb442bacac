#!/usr/bin/env bash
# Installs what steer needs, idempotently: Debian packages (apt-get) and the project's Python
# virtualenv (LibTorch comes from its torch wheel). Sourced or run by the other scripts.
#
# The virtualenv lives outside the clone, in $STEER_CACHE_DIR (default ~/.cache/steer), keyed by
# a hash of tools/requirements.txt and the Python version, and .venv links to it: a fresh clone
# reuses it, a change of requirements makes a new one. The plotting tools of the examples
# (tools/requirements-plot.txt, matplotlib) are installed into it afterwards, constrained by
# requirements.txt: they are not part of the key, so they leave the virtualenv and the default
# model's export cache (keyed by requirements.txt too) valid.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEER_CACHE_DIR=${STEER_CACHE_DIR:-$HOME/.cache/steer}
PYTHON=${PYTHON:-python3}

APT_PACKAGES=(cmake g++ make pkg-config ccache libeigen3-dev libgtest-dev libgmock-dev
              libbenchmark-dev nlohmann-json3-dev libpcre2-dev)

log() { echo "[steer setup] $*" >&2; }

install_apt_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_venv() {
  local key venv
  key=$( { cat "$ROOT/tools/requirements.txt"; "$PYTHON" --version; } | sha256sum | cut -c1-12)
  venv="$STEER_CACHE_DIR/venv-$key"
  if [ ! -f "$venv/.steer-complete" ]; then
    log "creating the Python virtualenv $venv (torch 2.11.0 and export tools)"
    rm -rf "$venv"
    mkdir -p "$STEER_CACHE_DIR"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$ROOT/tools/requirements.txt"
    touch "$venv/.steer-complete"
  fi
  if [ -d "$ROOT/.venv" ] && [ ! -L "$ROOT/.venv" ]; then
    log "$ROOT/.venv is a directory of your own; installing the requirements into it"
    "$ROOT/.venv/bin/python" -m pip install --quiet -r "$ROOT/tools/requirements.txt"
  else
    ln -sfn "$venv" "$ROOT/.venv"
  fi
}

install_plot_tools() {
  local venv key
  venv=$(readlink -f "$ROOT/.venv")
  key=$(sha256sum <"$ROOT/tools/requirements-plot.txt" | cut -c1-12)
  [ -f "$venv/.steer-plot-$key" ] && return
  log "installing the plotting tools (tools/requirements-plot.txt) into $venv"
  "$venv/bin/python" -m pip install --quiet -r "$ROOT/tools/requirements-plot.txt" \
    -c "$ROOT/tools/requirements.txt"
  touch "$venv/.steer-plot-$key"
}

install_apt_packages
install_venv
install_plot_tools
