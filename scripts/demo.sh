#!/usr/bin/env bash
# Kiln's main job on a model it ships: parse ONNX -> build -> save the plan -> load -> infer, then
# compare with ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build >/dev/null
PYTHONPATH=python python3 scripts/demo.py "${@:-models/lenet.onnx}"
