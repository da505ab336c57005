"""bench/timing_lines.py: the convolutions' timing lines (KILN_CUDNN_GRAPH_LOG=1) read into Kiln's best and
the libraries' best per layer, on lines in the build log's own layout (nested 'chosen before' brackets, the
candidates' times inside them, lines from the timing cache without times)."""
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, BENCH)

import timing_lines  # noqa: E402

# A split-K winner over cuDNN (engines and legacy) and cuBLASLt; a narrow-input winner; a cuDNN winner with a
# split-K candidate; a layer with no Kiln candidate; the same shapes read from the timing cache.
SPLITK = ("kiln: convolution '/m/layer4/layer4.1/conv2/Conv' x [1, 7, 7, 512]: split-K kernel x8 0.0086 ms "
          "[chosen before: split-K kernel x4 0.0094 ms [chosen before: legacy [legacy 0.0124 ms, engine 41 knobs "
          "none conv+bias+relu 0.0125 ms, engine 62 knobs none conv 0.0153 ms] [split-K kernel x1 0.0257 ms] "
          "[split-K kernel x2 0.0151 ms] 0.0124 ms] 0.0094 ms]; timed and recorded; legacy setup 3.8 ms, choice 28.7 ms")
NARROW = ("kiln: convolution '/m/conv1/Conv' x [1, 115, 115, 16]: narrow-input kernel 0.0078 ms [chosen before: "
          "graph engine 41 knobs none conv+bias+relu [legacy 0.0479 ms, engine 10 knobs none conv+bias+relu 0.0140 ms, "
          "engine 41 knobs none conv+bias+relu 0.0096 ms] 0.0096 ms]; timed and recorded; legacy setup 5.5 ms")
LIB_WINS = ("kiln: convolution '/m/layer1/layer1.1/conv1/Conv' x [1, 56, 56, 256]: cuBLASLt GEMM 0.0044 ms "
            "[chosen before: graph engine 39 knobs none conv+bias+relu [legacy 0.0403 ms, engine 39 knobs none "
            "conv+bias+relu 0.0045 ms] [split-K kernel x1 0.0047 ms] [split-K kernel x2 0.0056 ms] 0.0045 ms]; "
            "timed and recorded; legacy setup 4.6 ms, choice 57.1 ms")
NO_KILN = ("kiln: convolution '/m/layer1/layer1.0/conv3/Conv' x [1, 56, 56, 64]: graph engine 4 knobs none "
           "(runtime-compiled) conv+bias+residual+relu [legacy 0.0070 ms, engine 4 knobs none (runtime-compiled) "
           "conv+bias+residual+relu 0.0049 ms] 0.0049 ms; timed and recorded")
CACHED = ("kiln: convolution '/m/layer4/layer4.1/conv2/Conv' x [1, 7, 7, 512]: split-K kernel x8; from the "
          "timing-cache record; legacy setup 0.0 ms, choice 0.0 ms")


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("kiln: something else\n" + "\n".join(lines) + "\n")
    return str(p)


def test_each_layer_gets_kilns_best_and_the_libraries_best(tmp_path):
    runs = timing_lines.read(write(tmp_path, "a.log", [SPLITK, NARROW, LIB_WINS, NO_KILN, CACHED]))
    got = {k[0]: v for k, v in runs.items()}
    assert got["/m/layer4/layer4.1/conv2/Conv"] == (("split-K kernel x8", 0.0086), ("legacy", 0.0124))
    assert got["/m/conv1/Conv"] == (("narrow-input kernel", 0.0078), ("engine 41 knobs none conv+bias+relu", 0.0096))
    assert got["/m/layer1/layer1.1/conv1/Conv"] == (("split-K kernel x1", 0.0047), ("cuBLASLt GEMM", 0.0044))
    assert got["/m/layer1/layer1.0/conv3/Conv"][0] is None  # no Kiln candidate: no ratio
    assert timing_lines.ratio(got["/m/layer1/layer1.0/conv3/Conv"]) is None
    assert timing_lines.ratio(got["/m/layer4/layer4.1/conv2/Conv"]) == pytest.approx(0.0086 / 0.0124)
    assert len(runs) == 4  # the cached line adds nothing


def test_two_runs_compare_by_ratio_over_the_layers_both_timed(tmp_path):
    faster = SPLITK.replace("x8 0.0086 ms", "x8 0.0074 ms")
    a = timing_lines.read(write(tmp_path, "a.log", [SPLITK, NARROW, LIB_WINS]))
    b = timing_lines.read(write(tmp_path, "b.log", [faster, LIB_WINS]))  # the narrow layer missing in run 2
    rows, medians = timing_lines.table([a, b])
    assert [r[0][0] for r in rows] == ["/m/layer4/layer4.1/conv2/Conv", "/m/layer1/layer1.1/conv1/Conv"]
    assert rows[0][1][1] == pytest.approx((7.4, 12.4, 0.0074 / 0.0124))
    assert medians[0] == pytest.approx((0.0086 / 0.0124 + 0.0047 / 0.0044) / 2)
    assert medians[1] == pytest.approx((0.0074 / 0.0124 + 0.0047 / 0.0044) / 2)


def test_command_line_filters_layers_and_says_when_nothing_compares(tmp_path):
    a = write(tmp_path, "a.log", [SPLITK, NARROW, LIB_WINS])
    script = os.path.join(BENCH, "timing_lines.py")
    out = subprocess.run([sys.executable, script, "--layers", "^/m/layer4", a], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "/m/layer4/layer4.1/conv2/Conv" in out.stdout and "/m/conv1/Conv" not in out.stdout
    assert "1 layers; median Kiln / library: run 1 0.694" in out.stdout
    empty = write(tmp_path, "e.log", [NO_KILN, CACHED])
    out = subprocess.run([sys.executable, script, empty], capture_output=True, text=True)
    assert out.returncode == 1 and "KILN_CUDNN_GRAPH_LOG=1" in out.stderr
    out = subprocess.run([sys.executable, script], capture_output=True, text=True)
    assert out.returncode == 2 and "usage" not in out.stdout
