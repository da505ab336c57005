"""One zoo case end to end: run the PyTorch module (the reference), export it to ONNX, parse, build and run
it on Kiln (through kiln.compare's runner: the builder's default target, TF32 off), compare, and keep a
Result for the table. A Kiln failure is recorded with its stage and the error the library reported."""
import gc
import inspect
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

TOLERANCE = 1e-4  # max |kiln - torch| / max |torch|, per output (fp32)
OPSET = int(os.environ.get("KILN_ZOO_OPSET", "17"))


@dataclass
class Result:
    name: str
    source: str
    status: str = "not run"    # PASS, FAIL (accuracy), FAIL parse/build/run, EXPORT FAILED, SKIPPED
    parsed: object = None      # True / False / None (not reached)
    built: object = None
    max_abs: float = float("nan")
    max_ref: float = float("nan")
    rel: float = float("nan")  # max over outputs of max|kiln - torch| / max|torch|
    reason: str = ""           # why it failed, as the library said it
    times: dict = field(default_factory=dict)
    nodes: int = 0

    @property
    def passed(self):
        return self.status.startswith("PASS")


def _flatten(out):
    import torch
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in _flatten(o)]


def _export(module, args, in_names, out_names, path):
    import torch
    kwargs = dict(opset_version=OPSET, input_names=in_names, output_names=out_names, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # torch >= 2.9 defaults to the dynamo exporter (which needs onnxscript); the TorchScript exporter
        # is what most deployed models went through. KILN_ZOO_EXPORTER=dynamo picks the new one.
        kwargs["dynamo"] = os.environ.get("KILN_ZOO_EXPORTER", "torchscript") == "dynamo"
    torch.onnx.export(module, args, path, **kwargs)  # not under no_grad: see catalog._eval


def _first_lines(text, n=3, width=160):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " | ".join(line[:width] for line in lines[:n])


def run_case(case, device="auto"):
    """Runs one catalog case; never raises for a model-level failure (the Result says what happened)."""
    import onnx
    import torch

    from kiln._compare import CompareError, runners

    r = Result(case.name, case.source)
    t0 = time.perf_counter()
    module, args, in_names, out_names = case.make()
    with torch.no_grad():
        ref = [t.detach().float().numpy() if t.is_floating_point() else t.numpy() for t in _flatten(module(*args))]
    r.times["torch"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="kiln-zoo-") as tmp:
        path = os.path.join(tmp, f"{case.name}.onnx")
        t1 = time.perf_counter()
        try:
            _export(module, args, in_names, out_names, path)
        except Exception as e:  # noqa: BLE001 - the exporter's own errors: not Kiln's
            r.status, r.reason = "EXPORT FAILED", f"{type(e).__name__}: {_first_lines(e)}"
            return r
        finally:
            del module
            gc.collect()
        r.times["export"] = time.perf_counter() - t1
        if os.environ.get("KILN_ZOO_KEEP"):  # keep the exported models, to reproduce a failure
            os.makedirs(os.environ["KILN_ZOO_KEEP"], exist_ok=True)
            shutil.copy(path, os.environ["KILN_ZOO_KEEP"])
        model = onnx.load(path, load_external_data=False)
        r.nodes = len(model.graph.node)
        names = [o.name for o in model.graph.output]
        kept_inputs = {i.name for i in model.graph.input}
        del model
        if len(names) != len(ref):
            r.status = "EXPORT FAILED"
            r.reason = f"the ONNX model has {len(names)} outputs, the module returned {len(ref)}"
            return r
        feeds = {n: a.numpy() for n, a in zip(in_names, args) if n in kept_inputs}
        kiln = runners.KilnRunner(device)
        t2 = time.perf_counter()
        try:
            got = kiln.run(runners.ModelSource(path), feeds, names)
        except CompareError as e:
            r.parsed = kiln.stage != "parse"
            r.built = kiln.stage not in ("parse", "build") if r.parsed else None
            r.status, r.reason = f"FAIL {kiln.stage}", str(e)
            return r
        r.parsed = r.built = True
        r.times["kiln"] = time.perf_counter() - t2
        r.times.update({f"kiln {k}": v for k, v in kiln.times.items()})
    problems = []
    r.max_abs = r.max_ref = r.rel = 0.0
    for name, want in zip(names, ref):
        have = got[name]
        if have.shape != want.shape:
            problems.append(f"output '{name}': shape {have.shape}, torch's {want.shape}")
            continue
        a, b = have.astype(np.float64), want.astype(np.float64)
        bad = np.isnan(a) != np.isnan(b)
        if bad.any():
            problems.append(f"output '{name}': {int(bad.sum())} NaN where torch has numbers (or the reverse)")
        err = float(np.nanmax(np.abs(a - b))) if a.size else 0.0
        scale = float(np.nanmax(np.abs(b))) if b.size else 0.0
        rel = err / scale if scale > 0 else (0.0 if err == 0 else float("inf"))
        if rel > r.rel or name == names[0]:
            r.max_abs, r.max_ref = err, scale
        r.rel = max(r.rel, rel)
        if not rel <= TOLERANCE:
            problems.append(f"output '{name}': max abs error {err:.3g}, max |torch| {scale:.3g}, "
                            f"ratio {rel:.3g} > {TOLERANCE:g}")
    r.status = "PASS" if not problems else "FAIL accuracy"
    r.reason = "; ".join(problems)
    if problems and not any("shape" in p or "NaN" in p for p in problems):
        _judge_by_fp64(case, feeds, names, got, r)
    return r


def _judge_by_fp64(case, feeds, names, got, r):
    """Over 1e-4 against PyTorch's fp32 output: deep networks accumulate fp32 rounding of that order in
    PyTorch too. The module is run again in float64; when Kiln is no further from that exact answer than
    PyTorch's own fp32 output is (within 1.5x), the difference is fp32 rounding, not a Kiln error."""
    import torch

    module, args, _, _ = case.make()
    try:
        with torch.no_grad():
            exact = [t.numpy() for t in _flatten(module.double()(*[a.double() if a.is_floating_point() else a
                                                                  for a in args]))]
            fp32 = [t.numpy() for t in _flatten(module.float()(*args))]
    except Exception as e:  # noqa: BLE001 - a module that cannot run in float64 keeps its verdict
        r.reason += f" (no float64 check: {type(e).__name__}: {e})"
        return
    notes = []
    ok = True
    for name, want, torch32 in zip(names, exact, fp32):
        scale = float(np.abs(want).max()) or 1.0
        k = float(np.abs(got[name].astype(np.float64) - want).max()) / scale
        t = float(np.abs(torch32.astype(np.float64) - want).max()) / scale
        ok &= k <= max(TOLERANCE, 1.5 * t)
        notes.append(f"'{name}' vs float64: kiln {k:.2e}, torch fp32 {t:.2e}")
    r.reason += "; " + "; ".join(notes)
    if ok:
        r.status = "PASS (fp64)"



def _yes_no(v):
    return "-" if v is None else ("yes" if v else "NO")


def table(results):
    """The zoo table (plain text), then the reason of each failure in full."""
    head = ["model", "source", "nodes", "parsed", "built", "max abs err", "max |ref|", "err/max|ref|", "status",
            "export s", "kiln s"]
    rows = []
    for r in results:
        num = (lambda v: "-" if v != v else f"{v:.2e}")
        rows.append([r.name, r.source, str(r.nodes or "-"), _yes_no(r.parsed), _yes_no(r.built), num(r.max_abs),
                     num(r.max_ref), num(r.rel), r.status, f"{r.times.get('export', 0):.1f}",
                     f"{r.times.get('kiln', 0):.1f}"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} passed (tolerance: max abs error / max |torch output| <= {TOLERANCE:g}; "
                 f"PASS (fp64): over it, but no further from a float64 run than PyTorch's fp32 is)")
    failures = [r for r in results if r.reason]
    if failures:
        lines.append("")
        lines.append("failures and notes:")
        for r in failures:
            lines.append(f"- {r.name} [{r.status}]: " + _first_lines(r.reason, n=6, width=300))
    return "\n".join(lines)
