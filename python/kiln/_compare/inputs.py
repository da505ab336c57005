"""The inputs of `kiln compare`: what the model declares, arrays loaded from .npz/.npy files, and seeded
random data for the rest (shapes of dynamic dimensions from --shapes)."""
import zlib
from dataclasses import dataclass

import numpy as np

from . import CompareError, UsageError

# Default value ranges of random data: [lo, hi) for floats and integers; bool is 0/1. The same as
# `kiln run`'s, so that the two tools feed a model alike.
DEFAULT_FLOAT_RANGE = (-1.0, 1.0)
DEFAULT_INT_RANGE = (0, 100)


@dataclass
class InputSpec:
    name: str
    dtype: np.dtype
    dims: list  # int for a fixed dimension, the dim_param string (or None) for a dynamic one

    def describe_dims(self):
        """1x3x224x224 when every dimension is fixed, else a list: [batch, 3, 224, 224] ('?' unnamed)."""
        if all(isinstance(d, int) for d in self.dims):
            return "x".join(map(str, self.dims)) or "scalar"
        return "[" + ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in self.dims) + "]"


def onnx_np_dtype(elem_type):
    """numpy dtype of an ONNX TensorProto element type, on every onnx from 1.12 (onnx.mapping) on."""
    from onnx import helper
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except AttributeError:  # onnx < 1.13
        from onnx import mapping
        return np.dtype(mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type])
    except (KeyError, ValueError, TypeError) as e:
        raise CompareError(f"element type {elem_type} has no numpy equivalent") from e


def model_inputs(graph):
    """The graph's real inputs (initializers that old exporters also list as inputs are not)."""
    inits = {t.name for t in graph.initializer}
    specs = []
    for vi in graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise CompareError(f"input '{vi.name}' is not a tensor (sequence/map inputs are not supported)")
        try:
            dtype = onnx_np_dtype(tt.elem_type)
        except KeyError as e:
            raise CompareError(f"input '{vi.name}' has element type {tt.elem_type}, which numpy cannot hold") from e
        if not tt.HasField("shape"):
            raise CompareError(f"input '{vi.name}' declares no shape; kiln compare needs at least its rank")
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
        specs.append(InputSpec(vi.name, dtype, dims))
    return specs


# ---- command-line values ---------------------------------------------------------------------------
def _split_name(entry, option, what):
    """'NAME:VALUE' -> (NAME, VALUE); a name may itself hold ':', the last one separates it."""
    name, sep, value = entry.rpartition(":")
    if not sep or not name:
        raise UsageError(f"{option}: '{entry}' is not NAME:{what}")
    return name, value


def parse_dims(text, option):
    if text in ("", "scalar"):
        return []
    dims = []
    for part in text.split("x"):
        if not part.isdigit():
            raise UsageError(f"{option}: '{text}' is not a shape like 1x3x224x224 (dimensions are integers >= 0)")
        dims.append(int(part))
    return dims


def parse_shapes(values, option="--shapes"):
    """['a:1x3x8x8,b:2x4', ...] -> {name: [dims]}."""
    shapes = {}
    for value in values or []:
        for entry in value.split(","):
            if not entry:
                continue
            name, dims = _split_name(entry, option, "DIMS")
            if name in shapes:
                raise UsageError(f"{option}: input '{name}' given twice")
            shapes[name] = parse_dims(dims, option)
    return shapes


def parse_ranges(values, option="--val-range"):
    """['-2,2', 'ids:0,30522'] -> {None: (-2.0, 2.0), 'ids': (0.0, 30522.0)} (None: every input)."""
    ranges = {}
    for entry in values or []:
        name, sep, bounds = entry.rpartition(":")
        lo_hi = bounds.split(",")
        try:
            lo, hi = (float(v) for v in lo_hi)
        except ValueError:
            raise UsageError(f"{option}: '{entry}' is not [NAME:]LO,HI (two numbers)") from None
        if not lo < hi:
            raise UsageError(f"{option}: '{entry}': LO must be smaller than HI")
        ranges[name if sep else None] = (lo, hi)
    return ranges


# ---- arrays ---------------------------------------------------------------------------------------
def _check_shape(spec, shape, origin):
    """UsageError when `shape` does not fit the input's declared rank and fixed dimensions."""
    if len(shape) != len(spec.dims) or any(isinstance(d, int) and d != s for d, s in zip(spec.dims, shape)):
        got = "x".join(map(str, shape)) or "scalar"
        raise UsageError(f"input '{spec.name}': {origin} gives shape {got}, but the model declares "
                         f"{spec.describe_dims()}")


def _lossless(a, spec, origin):
    if a.dtype == spec.dtype:
        return a
    b = a.astype(spec.dtype)
    if not np.array_equal(b.astype(a.dtype), a, equal_nan=a.dtype.kind == "f" and b.dtype.kind == "f"):
        raise CompareError(f"input '{spec.name}': {origin} holds {a.dtype} values that the model's "
                           f"{spec.dtype} cannot hold exactly")
    return b


def _load_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CompareError(f"input file '{path}' does not exist") from None
    except (OSError, ValueError) as e:
        raise CompareError(f"cannot read '{path}' as a .npy/.npz file: {e}") from None


def load_arrays(specs, npz_paths=(), input_args=()):
    """Arrays given on the command line: {name: (array, origin)}.

    npz_paths: archives whose entries are named like the inputs; input_args: 'NAME=FILE.npy', or a bare
    FILE.npy for a model with one input."""
    by_name = {s.name: s for s in specs}
    given = {}

    def take(name, array, origin):
        if name not in by_name:
            raise UsageError(f"{origin}: the model has no input '{name}' (its inputs: "
                             f"{', '.join(by_name) or 'none'})")
        if name in given:
            raise UsageError(f"input '{name}' given twice ({given[name][1]} and {origin})")
        given[name] = (array, origin)

    for path in npz_paths or ():
        archive = _load_npy(path)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UsageError(f"--inputs: '{path}' is a .npy file; give it with --input NAME={path}")
        with archive:
            for key in archive.files:
                take(key, archive[key], f"{path}:{key}")
    for arg in input_args or ():
        name, sep, path = arg.partition("=")
        if not sep:
            if len(specs) != 1:
                raise UsageError(f"--input: '{arg}' names no input; the model has {len(specs)} inputs, "
                                 f"so write NAME=FILE.npy")
            name, path = specs[0].name, arg
        array = _load_npy(path)
        if isinstance(array, np.lib.npyio.NpzFile):
            array.close()
            raise UsageError(f"--input: '{path}' is an .npz archive; give it with --inputs {path}")
        take(name, array, path)
    out = {}
    for name, (array, origin) in given.items():
        spec = by_name[name]
        _check_shape(spec, array.shape, origin)
        out[name] = (_lossless(array, spec, origin), origin)
    return out


def random_array(spec, shape, seed, value_range=None):
    """Seeded data for one input: the seed and the input's name pick the stream, so an input's data
    does not change when other inputs are added or given from files."""
    rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
    kind = spec.dtype.kind
    if kind == "b":
        return rng.integers(0, 2, size=shape).astype(np.bool_), "random 0/1"
    if kind in "iu":
        lo, hi = value_range or DEFAULT_INT_RANGE
        lo, hi = int(np.ceil(lo)), int(np.ceil(hi))
        info = np.iinfo(spec.dtype)
        if lo < info.min or hi - 1 > info.max or lo >= hi:
            raise UsageError(f"input '{spec.name}': integer range [{lo}, {hi}) does not fit {spec.dtype}")
        return rng.integers(lo, hi, size=shape).astype(spec.dtype), f"random integers [{lo}, {hi})"
    if kind == "f" or spec.dtype.name == "bfloat16":
        lo, hi = value_range or DEFAULT_FLOAT_RANGE
        return rng.uniform(lo, hi, size=shape).astype(spec.dtype), f"random uniform [{lo:g}, {hi:g})"
    raise CompareError(f"input '{spec.name}' has dtype {spec.dtype}, for which kiln compare cannot make data; "
                       f"give it from a file")


def prepare_inputs(specs, shapes, ranges, seed, npz_paths=(), input_args=()):
    """Every input's array and where it came from: [(spec, array, origin)] in the model's input order."""
    names = {s.name for s in specs}
    for name in shapes:
        if name not in names:
            raise UsageError(f"--shapes: the model has no input '{name}' (its inputs: {', '.join(names) or 'none'})")
    for name in ranges:
        if name is not None and name not in names:
            raise UsageError(f"--val-range: the model has no input '{name}' (its inputs: "
                             f"{', '.join(names) or 'none'})")
    loaded = load_arrays(specs, npz_paths, input_args)
    out = []
    for spec in specs:
        if spec.name in loaded:
            array, origin = loaded[spec.name]
            if spec.name in shapes and list(array.shape) != shapes[spec.name]:
                raise UsageError(f"input '{spec.name}': --shapes says {'x'.join(map(str, shapes[spec.name]))} "
                                 f"but {origin} holds {'x'.join(map(str, array.shape))}")
            out.append((spec, array, origin))
            continue
        if spec.name in shapes:
            shape = shapes[spec.name]
            _check_shape(spec, shape, "--shapes")
        else:
            dynamic = [d for d in spec.dims if not isinstance(d, int)]
            if dynamic:
                example = "x".join(str(d) if isinstance(d, int) else f"<{d or '?'}>" for d in spec.dims)
                raise UsageError(f"input '{spec.name}' has dynamic dimensions {spec.describe_dims()}; "
                                 f"give its shape with --shapes {spec.name}:{example} or its data with --input")
            shape = list(spec.dims)
        array, origin = random_array(spec, shape, seed, ranges.get(spec.name, ranges.get(None)))
        out.append((spec, array, origin))
    return out


def save_inputs(path, prepared):
    try:
        np.savez(path, **{spec.name: array for spec, array, _ in prepared})
    except OSError as e:
        raise CompareError(f"cannot write inputs to '{path}': {e}") from None
    return path if path.endswith(".npz") else path + ".npz"
