"""bench/bench_stats.py: the memory figures read from an engine's description (the text of a real CPU engine
and of hand-made reports), the A/B summary and the switch list of bench/gpu_bench.py --ab."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

import bench_stats  # noqa: E402
import kiln as trt  # noqa: E402


def test_memory_figures_of_a_real_description():
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    x = network.add_input("x", trt.float32, (2, 8))
    w = network.add_constant((8, 4), np.arange(32, dtype=np.float32).reshape(8, 4))
    y = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w.get_output(0), trt.MatrixOperation.NONE)
    r = network.add_activation(y.get_output(0), trt.ActivationType.RELU)
    w2 = network.add_constant((4, 3), np.ones((4, 3), dtype=np.float32))
    z = network.add_matrix_multiply(r.get_output(0), trt.MatrixOperation.NONE, w2.get_output(0),
                                    trt.MatrixOperation.NONE)  # the first product is an activation in between
    network.mark_output(z.get_output(0))
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    m = bench_stats.memory_figures(engine.describe())
    assert m["arena_bytes"] >= m["liveness_bound_bytes"] > 0
    assert m["arena_over_bound"] == pytest.approx(m["arena_bytes"] / m["liveness_bound_bytes"])
    assert m["plan_bytes"] == plan.nbytes
    assert m["plan_over_weights"] >= 1.0


def test_memory_figures_take_the_worst_profile_and_tolerate_missing_lines():
    text = ("  profile 0 max shapes: arena 100 bytes, liveness lower bound 100 bytes (arena / bound = 1.000)\n"
            "  profile 1 max shapes: arena 300 bytes, liveness lower bound 200 bytes (arena / bound = 1.500)\n"
            "plan: 1050 bytes (1.050x the weights)\n")
    m = bench_stats.memory_figures(text)
    assert (m["arena_bytes"], m["liveness_bound_bytes"], m["arena_over_bound"]) == (300, 200, 1.5)
    assert (m["plan_bytes"], m["plan_over_weights"]) == (1050, 1.05)
    assert bench_stats.memory_figures("no figures here") == {}


def test_ab_summary_is_the_median_of_per_round_ratios():
    s = bench_stats.ab_summary([1.0, 2.0, 1.0], [0.9, 1.9, 1.2])
    assert s["a_ms"] == 1.0 and s["b_ms"] == pytest.approx(1.2)
    assert s["b_over_a"] == pytest.approx(0.95)
    assert (s["b_over_a_min"], s["b_over_a_max"]) == (pytest.approx(0.9), pytest.approx(1.2))
    assert s["rounds"] == 3
    with pytest.raises(ValueError, match="as many rounds"):
        bench_stats.ab_summary([1.0], [])


def test_round_order_alternates_which_setting_goes_first():
    orders = [bench_stats.round_order(i) for i in range(6)]
    assert orders == [("a", "b"), ("b", "a")] * 3
    assert sum(o[0] == "a" for o in orders) == sum(o[0] == "b" for o in orders)


def test_parse_switches():
    assert bench_stats.parse_switches("KILN_SIDE_STREAMS=0; KILN_GEMM_SPLIT_K=0") == [
        ("KILN_SIDE_STREAMS", "0"), ("KILN_GEMM_SPLIT_K", "0")]
    assert bench_stats.parse_switches("") == []
    with pytest.raises(ValueError, match="NAME=VALUE"):
        bench_stats.parse_switches("KILN_SIDE_STREAMS")


def test_ab_items_keep_one_item_per_ab_with_all_its_variables():
    assert bench_stats.ab_items("KILN_REBUILD_CONTROL=1; KILN_TIMING_HOLD=0,KILN_REBUILD_CONTROL=2") == [
        ("KILN_REBUILD_CONTROL=1", [("KILN_REBUILD_CONTROL", "1")]),
        ("KILN_TIMING_HOLD=0,KILN_REBUILD_CONTROL=2", [("KILN_TIMING_HOLD", "0"), ("KILN_REBUILD_CONTROL", "2")])]
    assert bench_stats.ab_items("") == []
    with pytest.raises(ValueError, match="NAME=VALUE"):
        bench_stats.ab_items("KILN_TIMING_HOLD=0,KILN_REBUILD_CONTROL")


def test_switched_env_sets_then_restores_set_and_unset_variables(monkeypatch):
    monkeypatch.setenv("KILN_BENCH_TEST_SET", "before")
    monkeypatch.delenv("KILN_BENCH_TEST_UNSET", raising=False)
    switches = bench_stats.parse_switches("KILN_BENCH_TEST_SET=1;KILN_BENCH_TEST_UNSET=0")
    with bench_stats.switched_env(switches):
        assert os.environ["KILN_BENCH_TEST_SET"] == "1"
        assert os.environ["KILN_BENCH_TEST_UNSET"] == "0"
    assert os.environ["KILN_BENCH_TEST_SET"] == "before"
    assert "KILN_BENCH_TEST_UNSET" not in os.environ
    with pytest.raises(RuntimeError, match="inside"):  # restored when the block raises too
        with bench_stats.switched_env(switches):
            raise RuntimeError("inside")
    assert os.environ["KILN_BENCH_TEST_SET"] == "before"
    assert "KILN_BENCH_TEST_UNSET" not in os.environ
    with bench_stats.switched_env([]):  # the default context: nothing set
        assert os.environ["KILN_BENCH_TEST_SET"] == "before"


def test_rel_l2_of_an_output():
    ref = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    assert bench_stats.rel_l2(ref, ref) == 0.0
    assert bench_stats.rel_l2(ref * 1.5, ref) == pytest.approx(0.5)
    got = ref.copy()
    got[1, 1] = 0.5  # ||(0, 0, 0, 0.5)|| / ||(3, 4, 0, 0)||
    assert bench_stats.rel_l2(got, ref) == pytest.approx(0.1)


def test_rel_l2_is_nan_for_an_unwritten_or_overflowed_output():
    ref = np.ones((2, 3), dtype=np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        got = ref.copy()
        got[0, 2] = bad
        assert np.isnan(bench_stats.rel_l2(got, ref)), bad


def test_rel_l2_refuses_another_shape():
    with pytest.raises(ValueError, match="shape"):
        bench_stats.rel_l2(np.ones((2, 3)), np.ones((3, 2)))


def test_over_rebuild_control_reads_rebuilt_switches_against_the_control():
    # Call 5 of the twentieth session, GPT-2 b1: the control read 0.984, so the gather switch's 0.991 is +0.7%.
    row = {
        "KILN_FUSE_GATHER_ADDEND=0": {"b_over_a": 0.991, "rebuilt": True},
        "KILN_PDL=0": {"b_over_a": 1.010, "rebuilt": False},
        "KILN_REBUILD_CONTROL=1": {"b_over_a": 0.984, "rebuilt": True},
        "KILN_TIMING_HOLD=0,KILN_REBUILD_CONTROL=2": {"b_over_a": 0.990, "rebuilt": True},
        "KILN_GEMM_SPLITK=0": {"error": "build failed"},
    }
    assert bench_stats.over_rebuild_control(row, "KILN_FUSE_GATHER_ADDEND=0") == pytest.approx(0.991 / 0.984)
    assert bench_stats.over_rebuild_control(row, "KILN_TIMING_HOLD=0,KILN_REBUILD_CONTROL=2") == pytest.approx(
        0.990 / 0.984), "an item that also sets another variable is a switch, not the control"
    assert bench_stats.over_rebuild_control(row, "KILN_REBUILD_CONTROL=1") is None
    assert bench_stats.over_rebuild_control(row, "KILN_PDL=0") is None, "a run-time switch shares the engine"
    assert bench_stats.over_rebuild_control(row, "KILN_GEMM_SPLITK=0") is None
    del row["KILN_REBUILD_CONTROL=1"]
    assert bench_stats.over_rebuild_control(row, "KILN_FUSE_GATHER_ADDEND=0") is None, "no control in the row"
    row["KILN_REBUILD_CONTROL=1"] = {"error": "out of memory"}
    assert bench_stats.over_rebuild_control(row, "KILN_FUSE_GATHER_ADDEND=0") is None, "a failed control"
