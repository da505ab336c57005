"""GPU tests: run only where a CUDA device and a CUDA build of Kiln are present (the GPU machine, through
scripts/gpu_check.sh); skipped with a message elsewhere."""
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "python"))  # kiln_helpers, models


def _gpu_reason():
    try:
        import torch
    except ImportError:
        return "torch is not installed (the GPU tests use it for device buffers and references)"
    if not torch.cuda.is_available():
        return "no CUDA device"
    import kiln
    if not kiln._kiln.gpu_available():
        return "this build of Kiln has no usable CUDA backend: " + kiln._kiln.gpu_unavailable_reason()
    return None


REASON = _gpu_reason()


def pytest_collection_modifyitems(config, items):
    if REASON is None:
        return
    skip = pytest.mark.skip(reason=REASON)
    for item in items:
        if "tests/gpu" in str(item.fspath):
            item.add_marker(skip)
