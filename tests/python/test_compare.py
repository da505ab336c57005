"""`kiln compare` (python/kiln/compare.py and the `kiln compare` verb of the C++ command line): agreement
on real models, a divergence planted in the model Kiln runs found at the right layer with --per-layer,
the error metric against numpy.isclose, inputs from files, exit codes and messages for bad arguments."""
import io
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import kiln.compare as kc
from kiln._compare import metrics, runners
from models import bert, resnet

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_main(argv):
    out = io.StringIO()
    code = kc.main([str(a) for a in argv], out=out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def resnet_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmp") / "resnet_small.onnx"
    onnx.save(resnet.build(full=False, seed=0), str(path))
    return str(path)


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmp") / "bert_small.onnx"
    onnx.save(bert.build(full=False, seed=0, batch="batch", seq="seq"), str(path))
    return str(path)


BERT_ARGS = ["--shapes", "input_ids:2x16,attention_mask:2x16,token_type_ids:2x16",
             "--val-range", "attention_mask:0,2", "--val-range", "token_type_ids:0,2"]


# ---- agreement ----------------------------------------------------------------------------------------------
def test_resnet_agrees_with_onnxruntime(resnet_path):
    code, out = run_main([resnet_path])
    assert code == 0, out
    assert "PASSED: all 1 outputs within tolerance" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("output ") and "1x10" in line)
    assert row.split()[-1] == "PASS"


def test_kiln_cpu_reference_is_bitwise_equal(resnet_path):
    code, out = run_main([resnet_path, "--ref", "kiln-cpu", "--atol", "0", "--rtol", "0"])
    assert code == 0, out
    assert "reference kiln-cpu (target cpu)" in out


def test_bert_with_dynamic_shapes_and_integer_inputs(bert_path):
    code, out = run_main([bert_path, *BERT_ARGS, "--atol", "1e-4", "--rtol", "1e-4"])
    assert code == 0, out
    assert "random integers [0, 2)" in out and "random integers [0, 100)" in out
    assert "last_hidden_state" in out and "pooler_output" in out


def test_per_layer_all_agree(resnet_path):
    code, out = run_main([resnet_path, "--per-layer", "--top", "3"])
    assert code == 0, out
    assert "every layer's output is within tolerance" in out
    table = out.split("worst layers")[1].split("\n\n")[0].strip().splitlines()
    assert len(table) == 1 + 1 + 3  # title remainder, header, 3 rows
    assert all(row.split()[-1] == "PASS" for row in table[2:])


# Every intermediate is an output here, including host-computed shape tensors (position ids) that layers
# read: those must be read from Kiln's host copy, not from the not-yet-written output buffer.
def test_bert_per_layer(bert_path):
    code, out = run_main([bert_path, *BERT_ARGS, "--per-layer", "--atol", "1e-4", "--rtol", "1e-4"])
    assert code == 0, out


def test_data_dependent_output_shape(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    model = helper.make_model(helper.make_graph([helper.make_node("NonZero", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "nonzero.onnx"
    onnx.save(model, str(path))
    data = np.array([[0, 1, 0, 2], [3, 0, 0, 0], [0, 0, 4, 5]], np.float32)
    np.save(tmp_path / "x.npy", data)
    code, out = run_main([path, "--input", tmp_path / "x.npy"])
    assert code == 0, out
    assert "y       2x5" in out


# ---- a planted divergence ------------------------------------------------------------------------------------
def _plant(monkeypatch, node_name, new_op):
    """Kiln runs the model with one node's op replaced; the reference runs the model as it is."""
    original = runners.KilnRunner.run

    def planted(self, model, inputs, output_names):
        m = onnx.load_from_string(model.bytes())
        hits = [n for n in m.graph.node if n.name == node_name]
        assert len(hits) == 1
        hits[0].op_type = new_op
        return original(self, runners.ModelSource(model.path, m.SerializeToString()), inputs, output_names)

    monkeypatch.setattr(runners.KilnRunner, "run", planted)


def _middle_relu(path):
    relus = [n.name for n in onnx.load(path).graph.node if n.op_type == "Relu"]
    return relus[len(relus) // 2]


def test_planted_divergence_is_found_at_its_layer(resnet_path, monkeypatch):
    target = _middle_relu(resnet_path)
    _plant(monkeypatch, target, "Sigmoid")
    code, out = run_main([resnet_path, "--per-layer"])
    assert code == 1, out
    first = out.split("first divergence: ")[1].splitlines()
    assert first[0].startswith("layer #") and first[0].endswith(f"Relu '{target}'"), first[0]
    assert "elements outside tolerance" in first[1] and "worst at [" in first[1]
    assert first[2].strip() == "its inputs agree: the difference starts in this layer"
    # Every layer before it agrees, and the divergence reaches the model's output.
    assert "FAILED:" in out
    assert out.split("outputs:")[1].split("per-layer")[0].count("FAIL") == 1
    worst = out.split("worst layers")[1]
    assert "FAIL" in worst


def test_planted_divergence_fails_the_outputs_without_per_layer(resnet_path, monkeypatch):
    _plant(monkeypatch, _middle_relu(resnet_path), "Sigmoid")
    code, out = run_main([resnet_path])
    assert code == 1, out
    assert "FAILED: 1 of 1 outputs outside tolerance" in out


def test_first_divergence_is_topologically_first(monkeypatch, tmp_path):
    """Two planted changes, one feeding the other: the earlier one is named, not the one with the
    larger error, and the later one is reported among the worst layers."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    nodes = [helper.make_node("Relu", ["x"], ["b1"], name="early"),
             helper.make_node("Relu", ["b1"], ["b2"], name="late"),
             helper.make_node("Add", ["b2", "x"], ["y"], name="join")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "order.onnx"
    onnx.save(model, str(path))
    original = runners.KilnRunner.run

    def planted(self, src, inputs, output_names):
        m = onnx.load_from_string(src.bytes())
        for n in m.graph.node:
            if n.name == "early":
                n.op_type = "Sigmoid"   # off by up to 0.5
            elif n.name == "late":
                n.op_type = "Exp"       # off by more
        return original(self, runners.ModelSource(src.path, m.SerializeToString()), inputs, output_names)

    monkeypatch.setattr(runners.KilnRunner, "run", planted)
    code, out = run_main([path, "--per-layer"])
    assert code == 1, out
    assert "first divergence: layer #0 Relu 'early'" in out
    worst = out.split("worst layers")[1].split("\n\n")[0].splitlines()[2:]
    assert [row.split()[2] for row in worst] == ["late", "join", "early"]


def test_topological_order_keeps_file_order_and_sorts_when_needed():
    from kiln._compare.layers import topo_order
    nodes = [helper.make_node("Relu", ["b1"], ["b2"], name="late"),
             helper.make_node("Relu", ["x"], ["b1"], name="early"),
             helper.make_node("Relu", ["x"], ["c"], name="side"),
             helper.make_node("Add", ["b2", "c"], ["y"], name="join")]
    assert [nodes[i].name for i in topo_order(nodes, {"x"})] == ["early", "late", "side", "join"]
    with pytest.raises(kc.CompareError, match="cycle"):
        topo_order([helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["b"], ["a"])], set())


# ---- the error metric -----------------------------------------------------------------------------------------
def test_metric_matches_numpy_isclose():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((64, 33)).astype(np.float32)
    got = ref + rng.standard_normal(ref.shape).astype(np.float32) * 1e-4
    got[0, 0], ref[0, 0] = np.nan, np.nan     # NaN in both agrees
    got[1, 1] = np.nan                        # NaN on one side does not
    got[2, 2], ref[2, 2] = np.inf, np.inf     # equal infinities agree
    got[3, 3], ref[3, 3] = -np.inf, np.inf
    got[4, 4], ref[4, 4] = 1.0, 0.0           # relative error against zero is infinite
    for atol, rtol in ((1e-5, 1e-5), (1e-4, 0.0), (0.0, 1e-3), (0.0, 0.0)):
        d = metrics.diff("t", got, ref, atol, rtol)
        want = int((~np.isclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol,
                                equal_nan=True)).sum())
        assert d.mismatched == want, (atol, rtol)
        assert d.ok == (want == 0)
    d = metrics.diff("t", got, ref, 1e-5, 1e-5)
    assert d.max_abs == np.inf and d.max_rel == np.inf
    assert "NaN: 2 in kiln, 1 in the reference" in d.notes
    finite = metrics.diff("t", got[5:], ref[5:], 0, 0)
    err = np.abs(got[5:].astype(np.float64) - ref[5:])
    assert finite.max_abs == pytest.approx(err.max())
    assert finite.max_rel == pytest.approx((err / np.abs(ref[5:].astype(np.float64))).max())


def test_metric_shape_and_integer_cases():
    d = metrics.diff("t", np.zeros((2, 3)), np.zeros((3, 2)), 1, 1)
    assert not d.ok and "shape 2x3 differs from the reference's 3x2" in d.summary()
    d = metrics.diff("t", np.array([1, 2, 3], np.int64), np.array([1, 2, 4], np.int64), 0, 0)
    assert not d.ok and d.mismatched == 1 and d.max_abs == 1 and d.worst_index == (2,)
    assert metrics.diff("t", np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), 0, 0).ok


# ---- inputs ---------------------------------------------------------------------------------------------------
def test_saved_inputs_reproduce_and_seeds_differ(resnet_path, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert run_main([resnet_path, "--seed", "7", "--save-inputs", a])[0] == 0
    assert run_main([resnet_path, "--seed", "8", "--save-inputs", b])[0] == 0
    xa, xb = np.load(a)["input"], np.load(b)["input"]
    assert xa.dtype == np.float32 and xa.min() >= -1 and xa.max() < 1
    assert not np.array_equal(xa, xb)
    code, out = run_main([resnet_path, "--inputs", a])
    assert code == 0 and f"{a}:input" in out
    np.save(tmp_path / "x.npy", xa)
    code, out = run_main([resnet_path, "--input", tmp_path / "x.npy"])
    assert code == 0 and str(tmp_path / "x.npy") in out
    code, out = run_main([resnet_path, "--input", f"input={tmp_path / 'x.npy'}", "--val-range", "-3,3"])
    assert code == 0, out
    code, out = run_main([resnet_path, "--val-range", "-3,3", "--save-inputs", a])
    x = np.load(a)["input"]
    assert code == 0 and x.min() < -1 and x.max() > 1 and "random uniform [-3, 3)" in out


# ---- bad arguments ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, code, message", [
    ([], 2, "the following arguments are required: MODEL.onnx"),
    (["{m}", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["{m}", "--ref", "tensorflow"], 2, "invalid choice: 'tensorflow'"),
    (["{m}", "--atol", "-1"], 2, "'-1' must be >= 0"),
    (["{m}", "--top", "0"], 2, "'0' must be >= 1"),
    (["{m}", "--shapes", "input:1x3xAx4"], 2, "not a shape like 1x3x224x224"),
    (["{m}", "--shapes", "nosuch:1x3"], 2, "the model has no input 'nosuch' (its inputs: input)"),
    (["{m}", "--shapes", "input:1x3x32x32"], 2, "--shapes gives shape 1x3x32x32, but the model declares 1x3x64x64"),
    (["{m}", "--val-range", "1,0"], 2, "LO must be smaller than HI"),
    (["{m}", "--input", "{npy_bad}"], 2, "input 'input': {npy_bad} gives shape 2x2"),
    (["{m}", "--inputs", "{npz_bad}"], 2, "the model has no input 'other'"),
    (["{m}", "--input", "{tmp}/missing.npy"], 1, "input file '{tmp}/missing.npy' does not exist"),
    (["{tmp}/missing.onnx"], 1, "model file '{tmp}/missing.onnx' does not exist"),
    (["{npy_bad}"], 1, "cannot read '{npy_bad}' as an ONNX model"),
])
def test_bad_arguments_give_clear_messages(resnet_path, tmp_path, capsys, args, code, message):
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), np.float32))
    np.savez(tmp_path / "bad.npz", other=np.zeros(3))
    fill = dict(m=resnet_path, tmp=tmp_path, npy_bad=tmp_path / "bad.npy", npz_bad=tmp_path / "bad.npz")
    got, out = run_main([a.format(**fill) for a in args])
    err = capsys.readouterr().err
    assert got == code, out + err
    assert message.format(**fill) in err, err
    assert err.startswith("usage:") or err.startswith("kiln compare: error:")


def test_dynamic_input_without_shape_names_the_fix(bert_path, capsys):
    code, _ = run_main([bert_path])
    err = capsys.readouterr().err
    assert code == 2
    assert ("input 'input_ids' has dynamic dimensions [batch, seq]; give its shape with --shapes "
            "input_ids:<batch>x<seq>") in err


def test_missing_onnxruntime_is_explained(resnet_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` then raises ImportError
    code, _ = run_main([resnet_path])
    err = capsys.readouterr().err
    assert code == 1
    assert "the onnxruntime reference needs the onnxruntime package" in err and "--ref kiln-cpu" in err


def test_kiln_failure_names_the_stage(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery", domain="")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "bad_op.onnx"
    path.write_bytes(model.SerializeToString())
    code, _ = run_main([path, "--ref", "kiln-cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Kiln failed to parse the model" in err and "NoSuchOp" in err


# ---- as a process: python -m kiln.compare and the C++ `kiln compare` ----------------------------------------------
def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_module_exit_codes(resnet_path):
    ok = subprocess.run([sys.executable, "-m", "kiln.compare", resnet_path], env=_env(), capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # With zero tolerance, ONNX Runtime's and Kiln's different summation orders show.
    strict = subprocess.run([sys.executable, "-m", "kiln.compare", resnet_path, "--atol", "0", "--rtol", "0"],
                            env=_env(), capture_output=True, text=True)
    assert strict.returncode == 1 and "FAILED" in strict.stdout, strict.stdout + strict.stderr
    usage = subprocess.run([sys.executable, "-m", "kiln.compare", resnet_path, "--nope"], env=_env(),
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "unrecognized arguments: --nope" in usage.stderr


def _kiln_cli():
    """The `kiln` executable of the build under test: KILN_CLI, else beside KILN_EXT_DIR's build tree."""
    cands = [os.environ.get("KILN_CLI", "")]
    if os.environ.get("KILN_EXT_DIR"):  # BUILD/python/kiln: the CLI is BUILD/kiln
        build_tree = os.path.dirname(os.path.dirname(os.path.abspath(os.environ["KILN_EXT_DIR"])))
        cands.append(os.path.join(build_tree, "kiln"))
    cands += [os.path.join(ROOT, d, "kiln") for d in ("build", "build-gpu")]  # scripts/test.sh, gpu_check.sh
    for c in cands:
        # A file: BUILD/python/kiln, the extension's package folder, is executable-searchable too.
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    # The CLI is part of every build (scripts/test.sh builds it): not finding it is a failure, not a skip.
    pytest.fail("no kiln executable found: set KILN_CLI, or build into build/ (scripts/setup.sh build)")


def test_cli_verb_runs_the_module(resnet_path):
    cli = _kiln_cli()
    env = dict(os.environ, KILN_PYTHON=sys.executable)
    ok = subprocess.run([cli, "compare", resnet_path, "--ref", "kiln-cpu"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASSED" in ok.stdout
    bad = subprocess.run([cli, "compare", resnet_path, "--shapes", "x"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--shapes: 'x' is not NAME:DIMS" in bad.stderr
    helped = subprocess.run([cli, "compare", "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "--per-layer" in helped.stdout
    static = subprocess.run([cli, "help", "compare"], capture_output=True, text=True)
    assert static.returncode == 0 and "usage: kiln compare MODEL.onnx" in static.stdout


def test_cli_without_python_says_so(resnet_path):
    cli = _kiln_cli()
    env = dict(os.environ, KILN_PYTHON="/nonexistent/python3")
    r = subprocess.run([cli, "compare", resnet_path], env=env, capture_output=True, text=True)
    assert r.returncode == 1
    assert "cannot run Python '/nonexistent/python3'" in r.stderr and "KILN_PYTHON" in r.stderr
