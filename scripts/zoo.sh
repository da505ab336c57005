#!/usr/bin/env bash
# The model zoo (tests/python/test_zoo.py) under Debian's CPU PyTorch: /usr/bin/python3 with python3-torch
# and python3-torchvision (torch 1.13, torchvision 0.14), installed here when missing. transformers is not
# packaged by Debian, so its models are skipped here (they run where transformers is installed, e.g. the
# GPU machine: PYTHONPATH=python python3 -m pytest tests/python/test_zoo.py).
#
# Usage: scripts/zoo.sh [pytest args...]     e.g. scripts/zoo.sh -m "not slow", scripts/zoo.sh -k resnet
# Environment: KILN_EXT_DIR (a build tree's extension folder, as for the other tests), KILN_ZOO_REPORT
# (where the table is also written; default: a temporary file, named at the end),
# DEBIAN_PYTHON (the interpreter, default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${DEBIAN_PYTHON:-/usr/bin/python3}

if ! "$PY" -c "import torch, torchvision, onnx, numpy, pytest" 2>/dev/null; then
  pkgs=(python3-torch python3-torchvision python3-onnx python3-numpy python3-pytest)
  echo "== installing ${pkgs[*]} for $PY"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
fi

# The extension module must load in this interpreter (the same CPython minor version as the build's).
if ! PYTHONPATH=python "$PY" -c "import kiln" 2>/tmp/kiln-zoo-import.$$; then
  echo "kiln does not import in $PY ($("$PY" --version 2>&1)):" >&2
  cat /tmp/kiln-zoo-import.$$ >&2
  rm -f /tmp/kiln-zoo-import.$$
  exit 1
fi
rm -f /tmp/kiln-zoo-import.$$

report=${KILN_ZOO_REPORT:-$(mktemp /tmp/kiln-zoo.XXXXXX)}
echo "== model zoo: $("$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'), $("$PY" --version)"
status=0
KILN_ZOO_REPORT="$report" PYTHONPATH=python "$PY" -m pytest -q -p no:cacheprovider tests/python/test_zoo.py "$@" \
  || status=$?
if [ -s "$report" ]; then
  echo
  echo "== table (also in $report)"
  cat "$report"
fi
exit $status
