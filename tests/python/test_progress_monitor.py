"""TensorRT 10's IProgressMonitor on Kiln: the builder reports nested phases with their steps, in order,
and a monitor that returns False from step_complete cancels the build."""
import pytest

import kiln as trt
from kiln_helpers import tiny_matmul_network


class Recorder(trt.IProgressMonitor):
    def __init__(self, cancel_at=None):
        super().__init__()
        self.events = []
        self.cancel_at = cancel_at

    def phase_start(self, phase_name, parent_phase, num_steps):
        self.events.append(("start", phase_name, parent_phase, num_steps))

    def step_complete(self, phase_name, step):
        self.events.append(("step", phase_name, step))
        return (phase_name, step) != self.cancel_at

    def phase_finish(self, phase_name):
        self.events.append(("finish", phase_name))


def _build(monitor):
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    config.progress_monitor = monitor
    assert config.progress_monitor is monitor
    return builder.build_serialized_network(tiny_matmul_network(builder), config)


def test_phases_nest_and_every_step_is_reported():
    rec = Recorder()
    assert _build(rec) is not None
    ev = rec.events
    assert ev[0] == ("start", "Building engine", None, 3)
    assert ev[-1] == ("finish", "Building engine")
    starts = {e[1]: e for e in ev if e[0] == "start"}
    assert starts["Optimizing graph"][2] == "Building engine"
    assert starts["Planning memory"][2] == "Building engine"
    for phase, (_, _, _, n) in starts.items():
        steps = [e[2] for e in ev if e[0] == "step" and e[1] == phase]
        assert steps == list(range(n)), phase  # each step once, in order, as many as announced
        # a nested phase finishes before its parent's next step
        assert ev.index(("finish", phase)) > ev.index(starts[phase])


def test_returning_false_cancels_the_build():
    rec = Recorder(cancel_at=("Optimizing graph", 1))
    assert _build(rec) is None
    assert ("finish", "Building engine") in rec.events  # phases are closed even when canceled
    assert not any(e[0] == "start" and e[1] == "Planning memory" for e in rec.events)


def test_monitor_needs_the_three_methods():
    config = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(TypeError, match="progress_monitor"):
        config.progress_monitor = object()
    config.progress_monitor = None
    assert config.progress_monitor is None
