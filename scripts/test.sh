#!/usr/bin/env bash
# Every test: builds Kiln, runs the C++ unit tests, the same unit tests under AddressSanitizer, and
# the Python tests (the TensorRT-style flows and the model suite against ONNX Runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
echo "== C++ unit tests"
./build/kiln_unit_tests --gtest_brief=1
echo "== C++ unit tests under AddressSanitizer + UBSan"
scripts/setup.sh build-asan -DKILN_ASAN=ON -DKILN_PYTHON=OFF -DKILN_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ASAN_OPTIONS=detect_leaks=1 ./build-asan/kiln_unit_tests --gtest_brief=1
echo "== Python tests"
PYTHONPATH=python python3 -m pytest -q tests/python "$@"
echo "== ONNX backend conformance (newest onnx from PyPI)"
PYTHONPATH=python python3 -m pytest -q -p no:cacheprovider tests/conformance
echo "== ONNX backend conformance (Debian python3-onnx 1.12, /usr/bin/python3)"
tests/conformance/run_debian_onnx.sh
# The GPU target's graph rewrites (channels-last, quantization lowering, ...) on CPU engines: CI has no
# GPU, but every rewritten form has a CPU kernel, so the rewrites are checked against the same references.
echo "== GPU graph rewrites on the CPU (KILN_CPU_RUNS_GPU_PIPELINE=1): models and conformance"
KILN_CPU_RUNS_GPU_PIPELINE=1 PYTHONPATH=python python3 -m pytest -q -p no:cacheprovider tests/python/test_models.py \
  tests/python/test_fuse_attention.py
KILN_CPU_RUNS_GPU_PIPELINE=1 PYTHONPATH=python python3 -m pytest -q -p no:cacheprovider tests/conformance
