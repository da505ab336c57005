#!/usr/bin/env bash
# The ONNX backend conformance suite under Debian's python3-onnx 1.12 and /usr/bin/python3, with the same
# Kiln extension module the main build wrote into python/kiln (built for CPython 3.11, as /usr/bin/python3 is).
# Debian's package ships no test data: conftest.py generates it once with onnx 1.12's own generators
# into ~/.cache/kiln/onnx-1.12.0-data (override with KILN_ONNX_TEST_DATA).
#
# Usage: tests/conformance/run_debian_onnx.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${DEBIAN_PYTHON:-/usr/bin/python3}

if ! "$PY" -c "import onnx, numpy, pytest" 2>/dev/null; then
  pkgs=(python3-onnx python3-numpy python3-pytest)
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
fi

# The extension module must load in this interpreter (same CPython minor version as the build's).
if ! PYTHONPATH=python "$PY" -c "import kiln" 2>/tmp/kiln-import-error.$$; then
  echo "kiln does not import in $PY ($("$PY" --version 2>&1)); the extension module is:" >&2
  ls python/kiln/_kiln*.so >&2 || true
  cat /tmp/kiln-import-error.$$ >&2
  rm -f /tmp/kiln-import-error.$$
  exit 1
fi
rm -f /tmp/kiln-import-error.$$

echo "== ONNX backend conformance: $("$PY" -c 'import importlib.metadata as m; print("onnx", m.version("onnx"))'), $("$PY" --version)"
PYTHONPATH=python exec "$PY" -m pytest -q -p no:cacheprovider tests/conformance "$@"
