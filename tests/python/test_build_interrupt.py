"""Ctrl-C during a build (python/src/build_interrupt.h): the KeyboardInterrupt that Python raises inside the
logger's or the progress monitor's callback stops the build and reaches the caller of
build_serialized_network, instead of being reported as unraisable and dropped while the build went on. The
builder stays usable afterwards. Outside a build, a KeyboardInterrupt in the logger reaches the caller as the
call returns."""
import os
import signal
import sys

import pytest

import kiln as trt
from kiln_helpers import tiny_matmul_network


class InterruptingLogger(trt.ILogger):
    """Raises what `raise_with` makes on the `at`-th message (counting from 1); records every message."""

    def __init__(self, at=1, raise_with=KeyboardInterrupt):
        trt.ILogger.__init__(self)
        self.at, self.raise_with, self.messages = at, raise_with, []

    def log(self, severity, msg):
        self.messages.append(msg)
        if len(self.messages) == self.at and self.raise_with is not None:
            self.raise_with()


class Steps(trt.IProgressMonitor):
    def __init__(self, on_step=None):
        super().__init__()
        self.steps, self.on_step = 0, on_step

    def phase_start(self, phase_name, parent_phase, num_steps):
        pass

    def step_complete(self, phase_name, step):
        self.steps += 1
        if self.on_step:
            self.on_step(self.steps)
        return True

    def phase_finish(self, phase_name):
        pass


def _config(builder, monitor=None):
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    if monitor is not None:
        config.progress_monitor = monitor
    return config


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


def test_keyboard_interrupt_in_the_logger_stops_the_build_and_reaches_the_caller():
    logger = InterruptingLogger(at=1, raise_with=_raise_keyboard_interrupt)
    builder = trt.Builder(logger)
    monitor = Steps()
    with pytest.raises(KeyboardInterrupt):
        builder.build_serialized_network(tiny_matmul_network(builder), _config(builder, monitor))
    # The build stopped at the first step after the message, not at its end.
    full = Steps()
    quiet = trt.Builder(trt.Logger(trt.Logger.ERROR))
    assert quiet.build_serialized_network(tiny_matmul_network(quiet), _config(quiet, full)) is not None
    assert monitor.steps < full.steps
    # The same builder builds again once nothing interrupts it: no state was lost.
    logger.raise_with = None
    assert builder.build_serialized_network(tiny_matmul_network(builder), _config(builder)) is not None


def test_sigint_during_the_monitor_stops_the_build():
    # A real SIGINT, which Python's own handler turns into KeyboardInterrupt inside the monitor's code. (A signal
    # that arrives while the build is in C++ is taken by the build's own monitor at its next step, which runs
    # the pending handlers; no test here can time a signal into that window without a race.)
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    full = Steps()
    assert builder.build_serialized_network(tiny_matmul_network(builder), _config(builder, full)) is not None
    monitor = Steps(on_step=lambda n: os.kill(os.getpid(), signal.SIGINT) if n == 2 else None)
    # Python's own handler, whatever this process started with (a background job starts with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            builder.build_serialized_network(tiny_matmul_network(builder), _config(builder, monitor))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert monitor.steps == 2 < full.steps
    assert builder.build_serialized_network(tiny_matmul_network(builder), _config(builder)) is not None


def test_other_exceptions_in_the_logger_are_still_reported_and_the_build_goes_on():
    logger = InterruptingLogger(at=1, raise_with=lambda: 1 / 0)
    builder = trt.Builder(logger)
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_type)
    try:
        assert builder.build_serialized_network(tiny_matmul_network(builder), _config(builder)) is not None
    finally:
        sys.unraisablehook = old
    assert ZeroDivisionError in seen


def test_keyboard_interrupt_in_the_logger_outside_a_build_reaches_the_caller():
    # Runtime.deserialize_cuda_engine logs the bad plan's error through the logger, which raises: the interrupt
    # is raised again as the call returns, not reported as unraisable and dropped.
    logger = InterruptingLogger(at=1, raise_with=_raise_keyboard_interrupt)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # raised again through Python's handler
    try:
        with pytest.raises(KeyboardInterrupt):
            trt.Runtime(logger).deserialize_cuda_engine(b"not a plan")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert logger.messages, "the logger was called"
