"""`kiln compare`: run an ONNX model on Kiln and on a reference and say whether they agree.

    python3 -m kiln.compare model.onnx [--ref onnxruntime|kiln-cpu] [--atol A] [--rtol R] [--per-layer] ...
    kiln compare model.onnx ...          (the C++ command line runs this module)

What Polygraphy's `run --trt --onnxrt` does for TensorRT: the same inputs (seeded random data, or arrays
from .npz/.npy files) go to both sides; each output's max absolute and relative error is printed with
whether it is within tolerance (numpy.allclose's rule, |kiln - ref| <= atol + rtol*|ref|). With
--per-layer every intermediate tensor is marked as an output on both sides, the tensors are compared in
topological order, and the first layer whose output diverges is named, with a table of the worst ones.

Exit status: 0 when every compared tensor is within tolerance, 1 when one is not or a side failed to
parse, build or run the model, 2 on a usage error.
"""
import argparse
import sys

from ._compare import CompareError, UsageError
from ._compare import inputs as inputs_mod
from ._compare import metrics, runners

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PROG = "kiln compare"

EPILOG = """\
inputs: arrays named in --inputs/--input are used as given (they must have the input's dtype, or values it
holds exactly, and a shape its fixed dimensions accept); every other input gets seeded random data:
uniform in [-1, 1) for floating-point inputs, integers in [0, 100), bool 0/1 (change with --val-range).
Dynamic dimensions need --shapes (or a file).

--per-layer: every node output becomes a graph output on both sides (Kiln then cannot fuse across them,
so this compares Kiln's unfused layers); the exit status then covers every compared tensor.

exit status: 0 all within tolerance, 1 a mismatch or a failure to parse/build/run, 2 usage error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be >= 0")
    return v


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be >= 1")
    return v


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be >= 0")
    return v


def make_parser():
    p = _Parser(prog=PROG, description="Run an ONNX model on Kiln and on a reference and compare the outputs.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    p.add_argument("--ref", "--reference", dest="ref", choices=("onnxruntime", "kiln-cpu"), default="onnxruntime",
                   help="the reference: ONNX Runtime's CPU provider (default) or Kiln's CPU backend")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto",
                   help="Kiln's target for the side under test: auto (a CUDA GPU where this Kiln has one, "
                        "else the CPU; default) or cpu")
    p.add_argument("--tf32", action="store_true",
                   help="let Kiln's GPU engine use TF32 (off by default: fp32 is compared with fp32)")
    p.add_argument("--fp16", action="store_true", help="let Kiln's engine use fp16 (loosen --atol/--rtol to match)")
    p.add_argument("--atol", type=_nonneg_float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument("--rtol", type=_nonneg_float, default=1e-5, help="relative tolerance (default 1e-5)")
    p.add_argument("--seed", type=_seed, default=1, help="seed of the random inputs (default 1)")
    p.add_argument("--shapes", action="append", metavar="NAME:DIMS[,...]",
                   help="shapes of inputs with dynamic dimensions, e.g. input:1x3x224x224 (repeatable)")
    p.add_argument("--val-range", action="append", metavar="[NAME:]LO,HI",
                   help="range of the random data of one input, or of all without NAME (repeatable)")
    p.add_argument("--inputs", action="append", metavar="FILE.npz", help="input arrays by name (numpy.savez)")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="one input array (repeatable); FILE.npy alone for a model with one input")
    p.add_argument("--save-inputs", metavar="FILE.npz", help="write the inputs used to an .npz archive")
    p.add_argument("--per-layer", action="store_true",
                   help="compare every intermediate tensor and name the first layer that diverges")
    p.add_argument("--top", type=_positive_int, default=10, help="rows of the worst-layers table (default 10)")
    p.add_argument("-v", "--verbose", action="store_true", help="print Kiln's log messages to stderr")
    return p


# ---- report ----------------------------------------------------------------------------------------------
def _short(name, width):
    """A long tensor name shortened in the middle, so tables stay readable."""
    return name if len(name) <= width else name[: width // 2 - 1] + "..." + name[-(width - width // 2 - 2):]


def _table(headers, rows, out):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print("  " + line.format(*headers).rstrip(), file=out)
    for r in rows:
        print("  " + line.format(*map(str, r)).rstrip(), file=out)


def _status(d):
    return "PASS" if d.ok else "FAIL"


def _diff_row(d, name_width=48):
    shape = "x".join(map(str, d.shape)) or "scalar"
    return [_short(d.name, name_width), shape, metrics.fmt(d.max_abs), metrics.fmt(d.max_rel),
            f"{d.mismatched}/{d.count}", _status(d) + ("" if not d.notes else " (" + "; ".join(d.notes) + ")")]


def _print_outputs(diffs, out):
    print("\noutputs:", file=out)
    _table(["output", "shape", "max abs", "max rel", "mismatched", "status"], [_diff_row(d) for d in diffs], out)


def _print_per_layer(layers, diffs, top, out):
    """The first diverging layer in topological order, then the worst layers."""
    compared = sum(1 for layer in layers for o in layer.outputs if o in diffs)
    print(f"\nper-layer: {compared} tensors of {len(layers)} layers compared in topological order", file=out)
    first = next((layer for layer in layers if any(not diffs[o].ok for o in layer.outputs if o in diffs)), None)
    if first is None:
        print("  every layer's output is within tolerance", file=out)
    else:
        print(f"first divergence: layer #{first.index} {first.op_type} '{first.label()}'", file=out)
        for o in first.outputs:
            if o in diffs:
                print(f"  output '{o}' ({'x'.join(map(str, diffs[o].shape)) or 'scalar'}): {diffs[o].summary()}",
                      file=out)
        bad_inputs = [x for x in first.inputs if x in diffs and not diffs[x].ok]
        if bad_inputs:  # only possible for inputs Kiln did not produce in order (a missing tensor)
            print(f"  inputs that also differ: {', '.join(bad_inputs)}", file=out)
        else:
            print("  its inputs agree: the difference starts in this layer", file=out)
    by_tensor = [(layer, diffs[o]) for layer in layers for o in layer.outputs if o in diffs]
    worst = sorted(by_tensor, key=lambda ld: (-_ratio_key(ld[1]), ld[0].index))[:top]
    print(f"\nworst layers (by max |kiln - ref| / (atol + rtol*|ref|); <= 1 is within tolerance):", file=out)
    rows = [[f"#{layer.index}", layer.op_type, _short(layer.label(), 40), _short(d.name, 40),
             metrics.fmt(d.max_abs), metrics.fmt(d.max_rel), metrics.fmt(d.ratio), _status(d)]
            for layer, d in worst]
    _table(["layer", "op", "name", "output", "max abs", "max rel", "ratio", "status"], rows, out)


def _ratio_key(d):
    if d.ok:
        return d.ratio
    return float("inf") if d.ratio != d.ratio else max(d.ratio, 1.0)  # NaN (shape/missing) sorts first


# ---- the command ----------------------------------------------------------------------------------------
def _load_model(path, with_weights):
    try:
        import onnx
    except ImportError:
        raise CompareError("kiln compare needs the onnx package (pip install onnx) to read the model") from None
    try:
        return onnx.load(path, load_external_data=with_weights)
    except FileNotFoundError:
        raise CompareError(f"model file '{path}' does not exist") from None
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise CompareError(f"cannot read '{path}' as an ONNX model: {type(e).__name__}: {e}") from None


def compare(args, out=sys.stdout):
    """Runs the comparison described by parsed `args`; returns the exit status."""
    model = _load_model(args.model, with_weights=args.per_layer)
    specs = inputs_mod.model_inputs(model.graph)
    prepared = inputs_mod.prepare_inputs(specs, inputs_mod.parse_shapes(args.shapes),
                                         inputs_mod.parse_ranges(args.val_range), args.seed, args.inputs, args.input)
    feeds = {spec.name: array for spec, array, _ in prepared}
    reference = runners.make_reference(args.ref, args.verbose)  # before building: a missing ORT fails fast
    kiln = runners.KilnRunner(args.device, args.verbose, tf32=args.tf32, fp16=args.fp16)

    output_names = [o.name for o in model.graph.output]
    source = runners.ModelSource(args.model)
    layers = None
    if args.per_layer:
        from ._compare.layers import mark_all_outputs
        marked, layers = mark_all_outputs(model)
        output_names = [o.name for o in marked.graph.output]
        data = marked.SerializeToString()
        source = runners.ModelSource(args.model, data)

    print(f"{PROG}: {args.model}", file=out)
    print(f"  tolerance: |kiln - ref| <= atol + rtol*|ref|, atol {args.atol:g}, rtol {args.rtol:g}", file=out)
    print(f"  inputs (seed {args.seed}):", file=out)
    for spec, array, origin in prepared:
        print(f"    {spec.name}  {array.dtype}  {'x'.join(map(str, array.shape)) or 'scalar'}  {origin}", file=out)
    if args.save_inputs:
        print(f"  inputs saved to {inputs_mod.save_inputs(args.save_inputs, prepared)}", file=out)
    out.flush()

    got = kiln.run(source, feeds, output_names)
    print(f"  kiln ({'target ' + str(kiln.target)}): built in {kiln.times['build']:.2f} s, ran in "
          f"{kiln.times['run']:.3f} s", file=out)
    ref = reference.run(source, feeds, output_names)
    if isinstance(reference, runners.KilnRunner):
        print(f"  reference kiln-cpu (target {reference.target}): built in {reference.times['build']:.2f} s, "
              f"ran in {reference.times['run']:.3f} s", file=out)
    else:
        print(f"  reference {reference.label}: loaded in {reference.times['load']:.2f} s, ran in "
              f"{reference.times['run']:.3f} s", file=out)

    diffs = {}
    for name in output_names:
        if name not in got:
            diffs[name] = metrics.missing(name, "kiln")
        elif name not in ref:
            diffs[name] = metrics.missing(name, "the reference")
        else:
            diffs[name] = metrics.diff(name, got[name], ref[name], args.atol, args.rtol)
    model_outputs = [o.name for o in model.graph.output]
    _print_outputs([diffs[n] for n in model_outputs], out)
    if layers is not None:
        _print_per_layer(layers, diffs, args.top, out)

    failed = [d for d in diffs.values() if not d.ok]
    what = "tensors" if args.per_layer else "outputs"
    if failed:
        print(f"\nFAILED: {len(failed)} of {len(diffs)} {what} outside tolerance", file=out)
        return EXIT_FAIL
    print(f"\nPASSED: all {len(diffs)} {what} within tolerance", file=out)
    return EXIT_OK


def _join_negative_values(argv):
    """'--val-range -3,3' as '--val-range=-3,3': argparse would take '-3,3' for an option."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("--val-range", "--shapes"):
            nxt = next(it, None)
            out.append(a if nxt is None else f"{a}={nxt}")
        else:
            out.append(a)
    return out


def main(argv=None, out=None):
    out = out or sys.stdout
    parser = make_parser()
    argv = _join_negative_values(sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
        return compare(args, out)
    except UsageError as e:
        out.flush()
        print(f"{PROG}: error: {e}\nsee '{PROG} --help'", file=sys.stderr)
        return EXIT_USAGE
    except CompareError as e:
        out.flush()
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_FAIL
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
