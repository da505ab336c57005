"""engine.describe() of a GPU plan: its target, the number of tactics the build timed, its layers and memory.
The description formats numbers through C++ streams, which a GPU engine exercises beyond a CPU one (the
tactic count); it ran into a crash on the H200 once, so it runs in a child process here: a crash is then
this test's failure, not the end of the GPU suite."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from gpu_helpers import build
from models import resnet
engine, _ = build(resnet.build(full=False, seed=0).SerializeToString(), fp16=True)
print(engine.describe(), flush=True)
"""


def test_describe_a_gpu_plan():
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CHILD, HERE, os.path.join(HERE, "..", "python")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"describe() exited with {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    text = r.stdout
    assert " target cuda:" in text.splitlines()[0], "not a GPU plan: " + text[:500]
    tactics = [line for line in text.splitlines() if line.startswith("tactics: ")]
    assert tactics and int(tactics[0].split()[1]) > 0, text[:2000]
    assert "Convolution" in text and "activation memory" in text and "plan: " in text, text[:2000]
