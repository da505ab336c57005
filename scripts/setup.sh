#!/usr/bin/env bash
# Installs what Kiln needs on a fresh Debian 12 machine (apt + pip) and builds it with ccache and ninja.
# Usage: scripts/setup.sh [build-dir] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true

need_apt=()
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v ccache >/dev/null || need_apt+=(ccache)
command -v cmake >/dev/null || need_apt+=(cmake)
[ -f /usr/include/gtest/gtest.h ] || need_apt+=(libgtest-dev)
[ -f /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy, onnx, onnxruntime, pybind11, pytest" 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check numpy onnx onnxruntime pybind11 pytest
fi

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/kiln-ccache}
# Paths relative to the checkout, so a fresh clone elsewhere (CI) hits the same cache entries.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD" -G Ninja -DPython3_EXECUTABLE="$(command -v "$PY")" "$@" >/dev/null
ninja -C "$BUILD" -j"$(nproc)"
