"""kiln build / inspect / bench on the shipped LeNet: the build's phase report (-v), inspect's memory figures
and fused layers, and bench's per-layer profile table (CPU plans; the GPU prints the same tables)."""
import os
import re
import subprocess

from test_compare import _kiln_cli

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
LENET = os.path.join(ROOT, "models", "lenet.onnx")


def _run(*args):
    return subprocess.run([_kiln_cli(), *args], capture_output=True, text=True)


def test_build_inspect_and_profile(tmp_path):
    plan = str(tmp_path / "lenet.plan")
    built = _run("build", LENET, "-o", plan, "--device", "cpu", "--shapes", "input:2x1x28x28", "-v")
    assert built.returncode == 0, built.stdout + built.stderr
    # Progress (stderr is not a terminal here): each phase with its steps, nested under the build.
    steps = re.search(r"Optimizing graph: (\d+)/(\d+) steps", built.stderr)
    assert steps and steps.group(1) == steps.group(2), built.stderr
    assert "Planning memory: 3/3 steps" in built.stderr and "Building engine: 3/3 steps" in built.stderr

    info = _run("inspect", plan)
    assert info.returncode == 0, info.stderr
    assert re.search(r"profile 0 max shapes: arena \d+ bytes, liveness lower bound \d+ bytes \(arena / bound = "
                     r"\d\.\d{3}\)", info.stdout), info.stdout
    assert re.search(r"plan: \d+ bytes \(\d\.\d{3}x the weights\)", info.stdout), info.stdout
    assert "Convolution 'conv1' (fused: relu1)" in info.stdout  # the epilogue fusion took the ReLU

    bench = _run("bench", plan, "--iterations", "5", "--warmup", "1", "--profile", "--profile-runs", "3", "--top", "4")
    assert bench.returncode == 0, bench.stderr
    out = bench.stdout
    assert "per-layer profile" in out and "by op:" in out, out
    table = out[out.index("per-layer profile"):out.index("by op:")]
    rows = [line for line in table.splitlines()[2:] if line.strip()]
    assert len(rows) == 4, table  # --top 4
    assert any(" Convolution " in r for r in rows), table
    bad = _run("bench", plan, "--profile", "--profile-runs", "0")
    assert bad.returncode == 2 and "--profile-runs" in bad.stderr, bad.stderr
    alone = _run("bench", plan, "--top", "3")
    assert alone.returncode == 2 and "go with --profile" in alone.stderr, alone.stderr


def test_build_timing_cache_file(tmp_path):
    plan, cache = str(tmp_path / "lenet.plan"), tmp_path / "tactics.cache"
    built = _run("build", LENET, "-o", plan, "--device", "cpu", "--shapes", "input:1x1x28x28", "--timing-cache", str(cache))
    assert built.returncode == 0, built.stdout + built.stderr
    assert "timing cache" in built.stdout and cache.read_bytes()[:4] == b"KLTC"  # a CPU build times nothing
    again = _run("build", LENET, "-o", plan, "--device", "cpu", "--shapes", "input:1x1x28x28", "--timing-cache", str(cache))
    assert again.returncode == 0, again.stdout + again.stderr
    cache.write_bytes(b"garbage")
    bad = _run("build", LENET, "-o", plan, "--device", "cpu", "--shapes", "input:1x1x28x28", "--timing-cache", str(cache))
    assert bad.returncode == 1 and "not a Kiln timing cache" in bad.stderr, bad.stderr
