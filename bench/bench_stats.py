"""Pure helpers of the GPU benchmark (bench/gpu_bench.py, bench/switch_accuracy.py), kept apart so that they
are tested on any machine (tests/python/test_bench_stats.py): the memory figures of an engine's description,
the summary of an A/B run that alternates two settings, the environment switches those runs set, and the
relative error of an output."""
import contextlib
import os
import re

import numpy as np

_ARENA = re.compile(r"arena (\d+) bytes, liveness lower bound (\d+) bytes")
_PLAN = re.compile(r"plan: (\d+) bytes \(([0-9.]+)x the weights\)")


def rel_l2(got, ref):
    """||got - ref|| / ||ref|| in float64; NaN when got holds a non-finite value (an output left unwritten, or
    overflowed), so a broken run never reads as accurate."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise ValueError(f"output shape {got.shape} is not the reference's {ref.shape}")
    if not np.isfinite(got).all():
        return float("nan")
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-300))


def memory_figures(description):
    """From Engine.describe(): the largest activation arena over the profiles against its liveness lower bound,
    and the plan's size against its weights. Keys present only where the description states them."""
    out = {}
    arenas = [(int(a), int(b)) for a, b in _ARENA.findall(description)]
    if arenas:
        arena, bound = max(arenas, key=lambda ab: ab[0] / ab[1] if ab[1] else float("inf"))
        out.update(arena_bytes=arena, liveness_bound_bytes=bound, arena_over_bound=arena / bound if bound else None)
    plan = _PLAN.search(description)
    if plan:
        out.update(plan_bytes=int(plan.group(1)), plan_over_weights=float(plan.group(2)))
    return out


def round_order(i):
    """Which setting goes first in A/B round i: A in even rounds, B in odd ones. Counterbalanced so that whatever
    favours the first (or second) timing of a round, a clock still settling after the other setting's kernels or
    caches that one left warm, falls on both settings alike instead of biasing the ratio one way. With A always
    first, two contexts running the same kernels read up to 1.8% apart (eighteenth session, call 1). That bias
    was not the order: alternated, a rebuilt default still read 0.984-0.985 of the first engine on GPT-2
    (twentieth session), so a switch that needs its own engine is read against a rebuild control as well
    (over_rebuild_control)."""
    return ("a", "b") if i % 2 == 0 else ("b", "a")


def ab_summary(a_ms, b_ms):
    """Two settings timed in alternating rounds (a_ms[i] and b_ms[i]: medians of round i). Rounds share the
    GPU's clock and thermal state, so the median of the per-round ratios is steadier than a ratio of two
    separate runs. Returns the medians, that ratio (B over A: below 1, B is faster) and its range."""
    if len(a_ms) != len(b_ms) or not a_ms:
        raise ValueError(f"need as many rounds of A as of B, at least one (got {len(a_ms)} and {len(b_ms)})")
    ratios = [b / a for a, b in zip(a_ms, b_ms)]
    return {"a_ms": float(np.median(a_ms)), "b_ms": float(np.median(b_ms)), "b_over_a": float(np.median(ratios)),
            "b_over_a_min": float(min(ratios)), "b_over_a_max": float(max(ratios)), "rounds": len(ratios)}


def parse_switches(text):
    """'KILN_SIDE_STREAMS=0;KILN_GEMM_SPLIT_K=0' -> [('KILN_SIDE_STREAMS', '0'), ('KILN_GEMM_SPLIT_K', '0')]."""
    out = []
    for item in filter(None, (s.strip() for s in (text or "").split(";"))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"an A/B switch is NAME=VALUE, got '{item}'")
        out.append((name.strip(), value.strip()))
    return out


def ab_items(text):
    """gpu_bench --ab's items, each one A/B with the variables it sets:
    'A=0;B=1,C=2' -> [('A=0', [('A', '0')]), ('B=1,C=2', [('B', '1'), ('C', '2')])]."""
    return [(item.strip(), parse_switches(item.replace(",", ";")))
            for item in (text or "").split(";") if item.strip()]


@contextlib.contextmanager
def switched_env(assignments):
    """Sets each (NAME, VALUE) of `assignments` (parse_switches' list) for the block, then restores what the
    environment held before, unset variables included."""
    saved = {name: os.environ.get(name) for name, _ in assignments}
    os.environ.update(dict(assignments))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


REBUILD_CONTROL = "KILN_REBUILD_CONTROL"


def over_rebuild_control(row_ab, key):
    """A switch's B / A read against the rebuild control of the same model and batch: (switch's b_over_a) /
    (control's b_over_a). A switch that needs an engine of its own is compared with a second build of the default,
    which carries the same build noise and the same place in the process (a second engine ran ~1.5% faster than
    the first on GPT-2 with the same choices, bench/NOTES.md, twentieth session). None where the row has no
    rebuild control (an --ab item setting KILN_REBUILD_CONTROL alone), `key` is that control, the switch shared
    the default's engine (its "rebuilt" is False: run-time switches), or either failed."""
    control = next((k for k, v in row_ab.items()
                    if {name for name, _ in parse_switches(k.replace(",", ";"))} == {REBUILD_CONTROL}
                    and "error" not in v), None)
    ab = row_ab.get(key, {})
    if control is None or key == control or "error" in ab or not ab.get("rebuilt", True):
        return None
    return ab["b_over_a"] / row_ab[control]["b_over_a"]
