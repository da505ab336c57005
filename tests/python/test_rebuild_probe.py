"""bench/rebuild_probe.py's readers of KILN_GEMM_LOG=1 lines (the formats of cublaslt/matmul_kernel.cpp's
log_own_choice and lt_gemm.cpp's log_lt_choice)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

import rebuild_probe  # noqa: E402

LOG = """\
kiln: matrix multiply '/m/h.0/mlp/c_proj/Gemm' 128 x 768 x 3072: cuBLASLt 7.9 us (Kiln's kernels credited 0.5 us), \
split-K kernel 64x64 x4 8.5 us, split-K kernel 128x64 x8 8.4 us -> split-K kernel 128x64 x8
kiln: cuBLASLt 128 x 3072 x 768 (batch 1): fastest of 20 timed, 5.6 us -> algo 66 tile 20 stages 8 split-K 1 \
reduction 0 swizzle 0
some other line
kiln: matrix multiply '/m/h.1/mlp/c_proj/Gemm' 128 x 768 x 3072: recorded -> split-K kernel 128x64 x8
kiln: cuBLASLt 128 x 3072 x 768 (batch 1): recorded -> algo 66 tile 20 stages 8 split-K 1 reduction 0 swizzle 0
"""


def test_reads_kilns_choices_by_layer(tmp_path):
    path = tmp_path / "build0.log"
    path.write_text(LOG)
    got = rebuild_probe.choices(str(path))
    assert list(got) == ["/m/h.0/mlp/c_proj/Gemm", "/m/h.1/mlp/c_proj/Gemm"]
    assert got["/m/h.0/mlp/c_proj/Gemm"][0] == "128 x 768 x 3072"
    assert got["/m/h.0/mlp/c_proj/Gemm"][2] == "split-K kernel 128x64 x8"
    assert got["/m/h.1/mlp/c_proj/Gemm"][1] == "recorded"


def test_reads_cublaslt_setups_in_order(tmp_path):
    path = tmp_path / "build0.log"
    path.write_text(LOG)
    got = rebuild_probe.lt_choices(str(path))
    assert [how for _, how, _ in got] == ["fastest of 20 timed, 5.6 us", "recorded"]
    assert got[0][0] == "128 x 3072 x 768 (batch 1)"
    assert got[0][2] == got[1][2] == "algo 66 tile 20 stages 8 split-K 1 reduction 0 swizzle 0"


CHAIN_LOG = """\
kiln: cuBLASLt 128 x 3072 x 768 (batch 1): fastest of 18 timed, 5.6 us, tied in [algo 66 tile 15 stages 35 split-K 1 \
reduction 0 swizzle 0] [algo 66 tile 92 stages 35 split-K 1 reduction 0 swizzle 0] -> algo 66 tile 15 stages 35 \
split-K 1 reduction 0 swizzle 0
kiln: cuBLASLt 128 x 768 x 768 (batch 1): fastest of 18 timed, 5.1 us -> algo 66 tile 312 stages 35 split-K 1 \
reduction 0 swizzle 0
kiln: cuBLASLt 128 x 3072 x 768 (batch 1): recorded -> algo 66 tile 15 stages 35 split-K 1 reduction 0 swizzle 0
kiln: cuBLASLt 128 x 3072 x 768 (batch 1): recorded -> algo 66 tile 92 stages 35 split-K 1 reduction 0 swizzle 0
kiln: cuBLASLt 128 x 3072 x 768 (batch 1): recorded -> algo 66 tile 92 stages 35 split-K 1 reduction 0 swizzle 0
"""


def test_cublaslt_choice_per_problem_is_the_last_setups(tmp_path):
    # A build with chain timing: the setup timed alone (a tie), the chain's executions with each tactic, then the
    # context's own run with the tactic the chain kept (the last line).
    path = tmp_path / "build1.log"
    path.write_text(CHAIN_LOG)
    got = rebuild_probe.lt_choices_per_problem(rebuild_probe.lt_choices(str(path)))
    assert list(got) == ["128 x 3072 x 768 (batch 1)", "128 x 768 x 768 (batch 1)"]
    how, algo = got["128 x 3072 x 768 (batch 1)"]
    assert how.startswith("fastest of 18 timed, 5.6 us, tied in [algo 66 tile 15"), how
    assert algo == "algo 66 tile 92 stages 35 split-K 1 reduction 0 swizzle 0"
    assert got["128 x 768 x 768 (batch 1)"] == ("fastest of 18 timed, 5.1 us",
                                                 "algo 66 tile 312 stages 35 split-K 1 reduction 0 swizzle 0")
