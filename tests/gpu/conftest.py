"""GPU tests: run only where a CUDA device and a CUDA build of Kiln are present (the GPU machine, through
scripts/gpu_check.sh); skipped with a message elsewhere."""
import os
import sys
import time

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


# KILN_GPU_SUITE_DEADLINE_S: after this many seconds from collection the run stops once the current test ends,
# and says so, with pytest's summary and --durations (exit status 2: not everything ran). The GPU machine's
# calls have a hard limit; a run killed by it returns nothing of where its time went (twenty-third session).
_START = time.monotonic()


def _deadline_s():
    v = os.environ.get("KILN_GPU_SUITE_DEADLINE_S", "")
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        raise pytest.UsageError(f"KILN_GPU_SUITE_DEADLINE_S='{v}': a number of seconds") from None


DEADLINE_S = _deadline_s()


def pytest_runtest_teardown(item, nextitem):
    if DEADLINE_S is None or nextitem is None:
        return
    elapsed = time.monotonic() - _START
    if elapsed >= DEADLINE_S:
        item.session.shouldstop = (f"KILN_GPU_SUITE_DEADLINE_S={DEADLINE_S:g} reached after {elapsed:.0f} s: "
                                   f"the tests from {nextitem.nodeid} on did not run")
