"""bench/sass_prologue.py: instructions before a kernel's first global load, and from its wait for the previous
kernel (ACQBULK) to the first load after it, on SASS text in cuobjdump's layout (predicated loads, the
encoding lines between instructions, kernels without a load or a wait)."""
import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
sys.path.insert(0, BENCH)

import sass_prologue  # noqa: E402


def ins(addr, text):
    return f"        /*{addr:04x}*/                   {text} ;                /* 0x000000000000782e */\n" \
           "                                                                 /* 0x000fe20000000000 */\n"


def function(name, ops):
    return f"\t\tFunction : {name}\n\t.headerflags\t@\"EF_CUDA_SM90\"\n" + \
        "".join(ins(16 * i, op) for i, op in enumerate(ops)) + "\t\t..........\n\n"


SASS = ("\nFatbin elf code:\n================\narch = sm_90\n\n" +
        function("_Z7waitingv", ["LDC R1, c[0x0][0x28]", "@P5 LDGSTS.E.BYPASS.128 [R7+0x2000], desc[UR18][R4.64]",
                                 "ACQBULK", "IMAD R2, R3, R4, RZ", "IADD3 R2, R2, 0x1, RZ",
                                 "@!P0 LDG.E.64 R14, desc[UR18][R22.64]", "EXIT"]) +
        function("_Z5plainv", ["S2R R0, SR_TID.X", "IMAD R2, R0, 4, RZ", "ISETP.GE.AND P0, PT, R0, 9, PT",
                               "LDG.E R3, desc[UR4][R2.64]", "STG.E desc[UR4][R2.64], R3", "EXIT"]) +
        function("_Z5storev", ["S2R R0, SR_TID.X", "STG.E desc[UR4][R2.64], R0", "EXIT"]))


def test_counts_before_the_first_load_and_after_the_wait():
    ks = sass_prologue.kernels(SASS)
    assert [k[0] for k in ks] == ["_Z7waitingv", "_Z5plainv", "_Z5storev"]
    assert len(ks[0][1]) == 7  # the encoding lines are not instructions
    assert sass_prologue.prologue(ks[0][1]) == (1, 2, 3)  # the LDGSTS before the wait counts as the first load
    assert sass_prologue.prologue(ks[1][1]) == (3, None, None)
    assert sass_prologue.prologue(ks[2][1]) == (None, None, None)


def test_command_line_on_saved_sass(tmp_path):
    path = tmp_path / "k.sass"
    path.write_text(SASS)
    script = os.path.join(BENCH, "sass_prologue.py")
    out = subprocess.run([sys.executable, script, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    waiting = next(l for l in lines if "waiting" in l)
    assert "| 3 | 2 |" in waiting  # 3 instructions from the wait to the load, the wait at 2
    plain = next(l for l in lines if "plain" in l)
    assert "| 3 | 6 |" in plain
    assert not any("store" in l for l in lines)  # no load: nothing to say
    out = subprocess.run([sys.executable, script, "--match", "nothing", str(path)], capture_output=True, text=True)
    assert out.returncode == 1 and "matching nothing" in out.stderr
    out = subprocess.run([sys.executable, script], capture_output=True, text=True)
    assert out.returncode == 2
