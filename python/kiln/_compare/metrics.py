"""How far Kiln's tensor is from the reference's, with numpy.allclose's rule: an element agrees when
|kiln - ref| <= atol + rtol * |ref|.

Non-finite values: NaN in both at the same place agrees (both sides computed "undefined" alike), equal
infinities agree; anything else non-finite is a mismatch with an infinite error."""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TensorDiff:
    name: str
    shape: tuple = ()
    ok: bool = False
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    # max over elements of |kiln - ref| / (atol + rtol*|ref|): <= 1 means within tolerance; the
    # worst-layers table is sorted by it.
    ratio: float = float("nan")
    mismatched: int = 0
    count: int = 0
    worst_index: tuple = ()
    worst_values: tuple = ()  # (kiln, ref) at worst_index
    notes: list = field(default_factory=list)  # shape/dtype differences, NaNs, a missing side

    def summary(self):
        """One line: the errors and, on a mismatch, where the worst element is."""
        if self.count == 0 and not self.ok:
            return "; ".join(self.notes)
        text = (f"max abs {fmt(self.max_abs)}, max rel {fmt(self.max_rel)}, "
                f"{self.mismatched}/{self.count} elements outside tolerance")
        if self.mismatched and self.worst_index is not None:
            k, r = self.worst_values
            text += f" (worst at [{', '.join(map(str, self.worst_index))}]: kiln {fmt(k)} vs ref {fmt(r)})"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def fmt(v):
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def missing(name, side):
    return TensorDiff(name, ok=False, notes=[f"{side} did not produce it"])


def diff(name, kiln, ref, atol, rtol):
    """Compares Kiln's array with the reference's."""
    kiln, ref = np.asarray(kiln), np.asarray(ref)
    d = TensorDiff(name, shape=tuple(ref.shape))
    if kiln.shape != ref.shape:
        d.notes.append(f"shape {'x'.join(map(str, kiln.shape)) or 'scalar'} differs from the reference's "
                       f"{'x'.join(map(str, ref.shape)) or 'scalar'}")
        return d
    if kiln.dtype != ref.dtype:
        d.notes.append(f"dtype {kiln.dtype} vs the reference's {ref.dtype}")
    d.count = int(ref.size)
    if ref.size == 0:
        d.max_abs = d.max_rel = d.ratio = 0.0
        d.ok = True
        d.worst_index = None
        return d
    # Flat views: 0-d tensors (scalars) would make every expression below a numpy scalar.
    a = np.asarray(_as_float64(kiln)).reshape(-1)
    b = np.asarray(_as_float64(ref)).reshape(-1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(a - b)
        agree_special = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
        err[agree_special] = 0.0
        err[np.isnan(err)] = np.inf  # one side NaN
        mag = np.abs(b)
        tol = atol + rtol * mag
        tol[~np.isfinite(b)] = 0.0  # a non-finite reference is only met exactly
        bad = ~(err <= tol)
        rel = np.where(err == 0, 0.0, err / np.where(np.isfinite(b), mag, np.inf))
        rel[((err > 0) & (mag == 0)) | np.isinf(err)] = np.inf
        ratio = np.where(err == 0, 0.0, err / tol)
    d.max_abs = float(err.max())
    d.max_rel = float(rel.max())
    d.ratio = float(ratio.max())
    d.mismatched = int(bad.sum())
    d.ok = d.mismatched == 0
    worst = int(np.argmax(ratio))
    d.worst_index = tuple(int(i) for i in np.unravel_index(worst, ref.shape))
    d.worst_values = (kiln.reshape(-1)[worst].item(), ref.reshape(-1)[worst].item())
    nan_k, nan_r = int(np.isnan(a).sum()), int(np.isnan(b).sum())
    if nan_k or nan_r:
        d.notes.append(f"NaN: {nan_k} in kiln, {nan_r} in the reference")
    return d


def _as_float64(a):
    if a.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    return a.astype(np.float64)
