"""The build's chain timing (on unless KILN_GEMM_CHAIN_TIES=0, src/backends/cuda/chain_tactics.h): the GEMMs' candidates
that tie when timed alone are decided by timing the whole engine with each. A wide margin
(KILN_GEMM_CHAIN_TIE_MARGIN=1: within 2x) makes ties certain on any GPU with more than one candidate, so the
test does not depend on this GPU's timings: every tie the log reports is decided once, by one of its own tactics,
and the engine built so is right on every run (its first eager, the rest CUDA-graph replays)."""
import re

import numpy as np

import kiln as trt

from gpu_helpers import build, rel_l2
from test_gpu_programmatic_launch import HIDDEN, TOKENS, _block_model, _block_reference, _runs
from test_progress_monitor import Recorder  # tests/python: the progress monitor that records its events

# Ties between Kiln's kernels and cuBLASLt (the matrix multiply's line) and between cuBLASLt's algorithms.
TIED = re.compile(r"kiln: (?:matrix multiply '[^']*'|cuBLASLt) .*, tied in((?: \[[^\]]+\])+) -> (.+)$")
DECIDED = re.compile(r"kiln: chain timing of (.*):((?: \[[^\]]+\] [0-9.]+ ms,)+) -> (.+?) "
                     r"\(the first tactic's first execution [0-9.]+ ms, its control [0-9.]+ ms; (\d+) replays a round\)$")


def test_ties_are_decided_in_the_chain_and_the_engine_stays_right(monkeypatch, capfd):
    monkeypatch.setenv("KILN_GEMM_CHAIN_TIES", "1")
    monkeypatch.setenv("KILN_GEMM_CHAIN_TIE_MARGIN", "1")
    monkeypatch.setenv("KILN_GEMM_LOG", "1")
    model, params = _block_model()
    capfd.readouterr()
    engine, logger = build(model, fp16=True)
    log = capfd.readouterr().err
    tied = [TIED.match(line) for line in log.splitlines() if ", tied in" in line]
    decided = [DECIDED.match(line) for line in log.splitlines() if line.startswith("kiln: chain timing of")]
    assert all(tied) and all(decided), log
    assert tied, "no GEMM reported a tie within 2x: this GPU offers one candidate only?\n" + log
    assert len(decided) == len(tied), "each tie is decided once\n" + log
    # The build log's summary (a person watching the build sees it): every tie counted, and at least the ties
    # whose kept tactic is named differently from the alone choice among those that changed (two of cuBLASLt's
    # algorithms can share a name).
    renamed = sum(d.group(3) != re.findall(r"\[([^\]]+)\]", d.group(2))[0] for d in decided)
    summary = re.compile(rf"profile 0: chain timing: {len(decided)} near tie\(s\) timed in the model's chain in "
                         r"[0-9.]+ s, (\d+) kept another tactic than timing alone chose \(KILN_GEMM_CHAIN_TIES=0")
    lines = [summary.match(m) for _, m in logger.messages if m.startswith("profile 0: chain timing:")]
    assert len(lines) == 1 and lines[0], logger.messages
    assert renamed <= int(lines[0].group(1)) <= len(decided), logger.messages
    labels = re.compile(r"\[([^\]]+)\]")
    for t in tied:
        assert labels.findall(t.group(1))[0] == t.group(2), "the tactic chosen alone comes first\n" + log
    # The chain decides the ties with most at stake first (TacticTies::take), not in the order they were reported:
    # each tie is matched to its decision by its tactics, and each decision keeps one of its own.
    assert sorted(tuple(labels.findall(d.group(2))) for d in decided) == \
        sorted(tuple(labels.findall(t.group(1))) for t in tied), log
    for d in decided:
        assert d.group(3) in labels.findall(d.group(2)), log
        assert 1 <= int(d.group(4)) <= 20, log
    assert any(t.group(0).startswith("kiln: cuBLASLt") for t in tied), "no cuBLASLt algorithms tied within 2x\n" + log
    rng = np.random.default_rng(23)
    inputs = [(rng.standard_normal((1, TOKENS, HIDDEN)) * s).astype(np.float32) for s in (1, 4, 0.25, 2)]
    for i, (a, y) in enumerate(zip(inputs, _runs(engine, inputs, (1, TOKENS, HIDDEN)))):
        assert np.isfinite(y).all(), f"run {i}: unwritten outputs"
        assert rel_l2(y, _block_reference(a, params)) < 1e-2, f"run {i}: {rel_l2(y, _block_reference(a, params)):.2e}"


def test_switched_off_no_tie_is_reported(monkeypatch, capfd):
    monkeypatch.setenv("KILN_GEMM_CHAIN_TIES", "0")
    monkeypatch.setenv("KILN_GEMM_CHAIN_TIE_MARGIN", "1")
    monkeypatch.setenv("KILN_GEMM_LOG", "1")
    model, _ = _block_model()
    capfd.readouterr()
    build(model, fp16=True)
    log = capfd.readouterr().err
    assert "tied in" not in log and "chain timing" not in log, log


def _build_watched(model, monitor):
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model)
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    config.progress_monitor = monitor
    return builder.build_serialized_network(network, config)


def test_the_chain_timing_is_a_phase_a_person_can_watch_and_cancel(monkeypatch):
    # A phase of its own under "Timing tactics", one step a tie; a monitor that cancels there ends the build
    # (not a timing failure that the build goes on from).
    monkeypatch.setenv("KILN_GEMM_CHAIN_TIE_MARGIN", "1")
    model, _ = _block_model()
    watched = Recorder()
    assert _build_watched(model, watched) is not None
    starts = [e for e in watched.events if e[0] == "start" and e[1] == "Chain timing of near ties"]
    assert len(starts) == 1 and starts[0][2] == "Timing tactics" and starts[0][3] >= 1, watched.events
    steps = [e[2] for e in watched.events if e[0] == "step" and e[1] == "Chain timing of near ties"]
    assert steps == list(range(starts[0][3])), watched.events
    assert ("finish", "Chain timing of near ties") in watched.events
    canceling = Recorder(cancel_at=("Chain timing of near ties", 0))
    assert _build_watched(model, canceling) is None
    assert ("finish", "Chain timing of near ties") in canceling.events, "its phase is closed when canceled"
    assert ("step", "Building engine", 2) not in canceling.events, "the build went on past its tactic timing"
