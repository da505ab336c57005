"""bench/kernel_timeline.py: the digest of Nsight Compute's CSV (the timeline phase of scripts/gpu_check.sh),
on hand-made reports in ncu's layout: its own lines before the header, other metrics beside the duration,
thousands separators and the units it may print."""
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, BENCH)

import kernel_timeline  # noqa: E402

HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size",'
          '"Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"\n')


def row(i, name, unit, value, metric="gpu__time_duration.sum", grid="(4, 16, 8)", block="(256, 1, 1)"):
    return (f'"{i}","77","python3","h","{name}","1","13","{block}","{grid}","0","9.0",'
            f'"Command line profiler metrics","{metric}","{unit}","{value}"\n')


def write(tmp_path, body):
    p = tmp_path / "timeline.csv"
    p.write_text("==PROF== Connected to process 77\n==PROF== Profiling \"k\": 0%...100%\n" + HEADER + body)
    return str(p)


def test_rows_in_launch_order_with_units_and_separators(tmp_path):
    path = write(tmp_path,
                 row(0, "void kiln::cuda::k_splitk_conv<__half, 1>(kiln::cuda::SkArgs)", "nsecond", "9,312") +
                 row(0, "void kiln::cuda::k_splitk_conv<__half, 1>(kiln::cuda::SkArgs)", "byte", "123",
                     metric="dram__bytes.sum") +
                 row(1, "sm90_xmma_gemm_f16f16", "usecond", "4.5") +
                 row(2, "cudnn_kernel", "msecond", "0.002"))
    rows = kernel_timeline.read_rows(path)
    assert [r[0].split("<")[0] for r in rows] == ["void kiln::cuda::k_splitk_conv", "sm90_xmma_gemm_f16f16",
                                                   "cudnn_kernel"]
    assert [round(r[3], 3) for r in rows] == [9.312, 4.5, 2.0]
    assert rows[0][1] == "(4, 16, 8)"


def test_the_gap_line_either_way(tmp_path):
    path = write(tmp_path, row(0, "a", "nsecond", "3000") + row(1, "b", "nsecond", "5000"))
    out = subprocess.run([sys.executable, os.path.join(BENCH, "kernel_timeline.py"), path, "--model-ms", "0.012"],
                         capture_output=True, text=True, check=True).stdout
    assert "2 kernels, 8.0 us of kernel time" in out
    assert "replay 12.0 us: 4.0 us between or around kernels (2.00 us a kernel)" in out
    shorter = subprocess.run([sys.executable, os.path.join(BENCH, "kernel_timeline.py"), path, "--model-ms", "0.006"],
                             capture_output=True, text=True, check=True).stdout
    assert "replay 6.0 us: 2.0 us less than the kernels alone" in shorter


def test_an_unknown_unit_is_named(tmp_path):
    path = write(tmp_path, row(0, "a", "cycle", "3000"))
    with pytest.raises(SystemExit, match="unknown duration unit 'cycle'"):
        kernel_timeline.read_rows(path)


def test_a_report_without_header_or_kernels_says_so(tmp_path):
    bare = tmp_path / "bare.csv"
    bare.write_text("==PROF== Disconnected\n")
    with pytest.raises(SystemExit, match="no CSV header"):
        kernel_timeline.read_rows(str(bare))
    empty = write(tmp_path, "")
    r = subprocess.run([sys.executable, os.path.join(BENCH, "kernel_timeline.py"), empty], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "no gpu__time_duration rows" in r.stderr
