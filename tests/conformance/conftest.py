"""The ONNX backend conformance suite: set-up that must run before `onnx` is imported, per-test
crash/hang guards, and the pass counts printed at the end of the session.

Works with the newest onnx from PyPI (its node tests are generated in memory by the runner) and with
Debian's python3-onnx 1.12, which ships no test data: the data is generated once with that onnx's
own `cmd_tools` into a cache folder (KILN_ONNX_TEST_DATA, default ~/.cache/kiln/onnx-<version>-data)
and the runner's loader is pointed at it.

Options (environment):
  KILN_CONFORMANCE_SUITES   comma list of node, simple, pytorch-converted, pytorch-operator
                            (default: all four; the ones the installed onnx has no data for are empty)
  KILN_CONFORMANCE_TIMEOUT  seconds one test may take before the run is stopped with a traceback (120)
  KILN_CONFORMANCE_JSON     write every test's outcome and reason there (scripts/conformance_report.py reads it)
"""
import collections
import faulthandler
import importlib.metadata
import json
import os
import sys
import threading
import warnings

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
for p in (os.path.join(ROOT, "python"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)


def onnx_version():
    try:
        return importlib.metadata.version("onnx")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "0"


def onnx_major_minor():
    parts = onnx_version().split(".")
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}"


def _restore_numpy_aliases():
    """onnx 1.12 still uses np.float, np.int, np.bool, np.object (removed in numpy 1.24)."""
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, value in (("float", float), ("int", int), ("bool", bool), ("object", object),
                            ("complex", complex), ("str", str), ("long", int), ("unicode", str)):
            if name not in np.__dict__:
                setattr(np, name, value)


def _old_onnx():
    major, minor = (int(x) for x in onnx_major_minor().split("."))
    return (major, minor) < (1, 13)


if _old_onnx():
    _restore_numpy_aliases()


def _generated_data_dir():
    """onnx < 1.13 has no node data installed (Debian strips it): generate it once into a cache."""
    import onnx.backend.test.loader as loader

    if os.path.isdir(os.path.join(loader.DATA_DIR, "node")):
        return loader.DATA_DIR
    cache = os.environ.get("KILN_ONNX_TEST_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "kiln", f"onnx-{onnx_version()}-data")
    stamp = os.path.join(cache, ".complete")
    if not os.path.exists(stamp):
        import argparse

        from onnx.backend.test import cmd_tools

        os.makedirs(cache, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmd_tools.generate_data(argparse.Namespace(output=cache, op_type=None))
        with open(stamp, "w") as f:
            f.write(onnx_version() + "\n")
    return cache


def _point_old_runner_at_data():
    import onnx.backend.test.loader as loader
    import onnx.backend.test.runner as runner

    data_dir = _generated_data_dir()
    original = loader.load_model_tests

    def load_model_tests(data_dir=data_dir, kind=None):
        if not os.path.isdir(os.path.join(data_dir, kind or "")):
            return []  # pytorch-converted / pytorch-operator data is not shipped by Debian
        return original(data_dir=data_dir, kind=kind)

    runner.load_model_tests = load_model_tests


if _old_onnx():
    _point_old_runner_at_data()


# -- guards: a crash or hang in the core names the test instead of killing CI silently -------------
# (pytest's own faulthandler plugin prints a crash's traceback; a hang is stopped here: the traceback
# of every thread goes to the real stderr and the process exits.)
_TIMEOUT = float(os.environ.get("KILN_CONFORMANCE_TIMEOUT", "120"))
_guard = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    fd = _guard.get("stderr_fd")
    timer = None
    if fd is not None and _TIMEOUT > 0:
        # The note names the test (it needs the GIL; the traceback dump below does not).
        note = f"\n== conformance: {item.nodeid} has run for {_TIMEOUT:.0f}s; stopping the run\n".encode()
        timer = threading.Timer(max(_TIMEOUT - 1.0, 0.1), os.write, (fd, note))
        timer.daemon = True
        timer.start()
        faulthandler.dump_traceback_later(_TIMEOUT, exit=True, file=fd)
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
            faulthandler.cancel_dump_traceback_later()


# -- counts -----------------------------------------------------------------------------------------
SUITE_OF_CLASS = {
    "OnnxBackendNodeModelTest": "node",
    "OnnxBackendSimpleModelTest": "simple",
    "OnnxBackendPyTorchConvertedModelTest": "pytorch-converted",
    "OnnxBackendPyTorchOperatorModelTest": "pytorch-operator",
    "OnnxBackendRealModelTest": "real",
}
_results = {}  # nodeid -> {suite, name, outcome, reason, error}


def _suite_and_name(nodeid):
    parts = nodeid.split("::")
    return (SUITE_OF_CLASS.get(parts[-2], parts[-2]) if len(parts) >= 2 else "?"), parts[-1]


def _error(report):
    """The exception message of a failed (or expected-to-fail) test."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[2])
    return str(longrepr or "")[-2000:]


def _outcome(report):
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
        return "xpassed"  # an expected failure that passed: take it off the list
    return report.outcome


def pytest_runtest_logreport(report):
    if "conformance" not in report.nodeid.replace("\\", "/"):
        return
    suite, name = _suite_and_name(report.nodeid)
    if report.when == "call" or (report.when == "setup" and not report.passed) or (
            report.when == "teardown" and report.failed):
        outcome = "failed" if report.when == "teardown" else _outcome(report)
        reason = getattr(report, "wasxfail", "") or (str(report.longrepr) if outcome == "xpassed" else "")
        error = _error(report) if outcome in ("failed", "xfailed", "skipped") else ""
        _results[report.nodeid] = {"suite": suite, "name": name, "outcome": outcome, "reason": reason,
                                   "error": error}


def _counts():
    by_suite = collections.OrderedDict()
    for r in _results.values():
        suite, name, outcome = r["suite"], r["name"], r["outcome"]
        if name.endswith("_cuda"):
            if outcome == "skipped":
                continue  # the CUDA twin of each test: skipped where no GPU is usable (counted by its own run there)
            suite += " (CUDA)"  # counted apart from the CPU run of the same test
        c = by_suite.setdefault(suite, collections.Counter())
        c[outcome] += 1
        c["total"] += 1
    return by_suite


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _results:
        return
    tr = terminalreporter
    tr.section(f"Kiln ONNX conformance (onnx {onnx_version()}, Python {sys.version.split()[0]})")
    for suite, c in _counts().items():
        label = f"ONNX backend {suite} tests".replace("backend node (CUDA) tests", "backend node tests on CUDA")
        label = "ONNX backend node tests" if suite == "node" else label
        passed = c["passed"]
        pct = 100.0 * passed / c["total"] if c["total"] else 0.0
        tr.write_line(f"{label}: {passed} passed ({pct:.1f}% of {c['total']}), {c['xfailed']} expected failures, "
                      f"{c['failed']} failed, {c['xpassed']} unexpectedly passed, {c['skipped']} skipped")
    path = os.environ.get("KILN_CONFORMANCE_JSON")
    if path:
        with open(path, "w") as f:
            json.dump({"onnx_version": onnx_version(), "python": sys.version.split()[0],
                       "tests": list(_results.values())},
                      f, indent=1)
        tr.write_line(f"per-test outcomes written to {path}")


def pytest_configure(config):
    # Global output capture is suspended while plugins configure: fd 2 is the real stderr here.
    if "stderr_fd" not in _guard:
        _guard["stderr_fd"] = os.dup(2)
    config.addinivalue_line("markers", "onnx_coverage(proto, category): set by onnx's BackendTest.enable_report")
    # The onnx test generators divide by zero and overflow on purpose.
    config.addinivalue_line("filterwarnings", "ignore::RuntimeWarning")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
