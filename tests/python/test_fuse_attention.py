"""Attention fusion on exported-model patterns: the attention blocks of HF BERT and GPT-2 (eager attention as
torch.onnx.export writes it at opset 17), torchvision ViT (nn.MultiheadAttention: 3-D [B*H, S, D], q
divided before the MatMul, k^T a Transpose(perm [1, 2, 0])) and a packed-qkv ViT (Reshape [B, S, 3, H, D],
Transpose [2, 0, 3, 1, 4], Gather q/k/v) are written by hand with onnx.helper, built by Kiln and compared with
ONNX Runtime; the engine must hold one FusedAttention layer per block and none of the head Transposes around
it (the layer reads and writes those layouts itself). Attention is fused for GPU targets: these CPU engines
are built with the GPU target's passes (KILN_CPU_RUNS_GPU_PIPELINE)."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from test_onnx_import import build, make_model, run_kiln
from kiln_helpers import ort_run

RNG = np.random.default_rng(7)
F32_MIN = float(np.finfo(np.float32).min)


@pytest.fixture(autouse=True)
def gpu_passes(monkeypatch):
    monkeypatch.setenv("KILN_CPU_RUNS_GPU_PIPELINE", "1")


def w(*shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def c64(name, values):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.INT64, [len(values)], values))


def s64(name, value):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.INT64, [], [value]))


def cf(name, value):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.FLOAT, [], [value]))


def split_heads(nodes, x, p, heads, d, perm=(0, 2, 1, 3), view="static"):
    """x [B, S, heads*d] -> Transpose(Reshape(x, target), perm). The target as exporters write it: "static"
    [0, 0, heads, d]; "batch" [B, -1, heads, d] with B read from the Shape of the block's input "x" (newer
    transformers' view(batch, -1, H, D)); "prefix" [*x.shape[:-1], -1, d] (GPT-2's view); "input" the same
    read from the block input's Shape (newer transformers' view(*hidden_states.shape[:-1], -1, D));
    "dims_of:T" the same with the two leading dims gathered from T's Shape (newer GPT-2: v with k's dims)."""
    if view == "static":
        nodes.append(c64(p + "_shape", [0, 0, heads, d]))
    elif view == "batch":
        nodes += [helper.make_node("Shape", ["x"], [p + "_xs"]), c64(p + "_i0", [0]),
                  helper.make_node("Gather", [p + "_xs", p + "_i0"], [p + "_b"], axis=0),
                  c64(p + "_rest", [-1, heads, d]),
                  helper.make_node("Concat", [p + "_b", p + "_rest"], [p + "_shape"], axis=0)]
    elif view == "input":  # newer transformers: view(*hidden_states.shape[:-1], -1, D) of the projection
        nodes += [helper.make_node("Shape", ["x"], [p + "_xs"]), c64(p + "_st", [0]), c64(p + "_en", [2]),
                  helper.make_node("Slice", [p + "_xs", p + "_st", p + "_en"], [p + "_lead"]),
                  c64(p + "_rest", [-1, d]),
                  helper.make_node("Concat", [p + "_lead", p + "_rest"], [p + "_shape"], axis=0)]
    elif view.startswith("dims_of:"):  # GPT-2 in newer transformers: v viewed with the dims of k's Shape
        src = view.split(":", 1)[1]
        nodes.append(helper.make_node("Shape", [src], [p + "_xs"]))
        for i in (0, 1):
            nodes += [c64(f"{p}_i{i}", [i]), helper.make_node("Gather", [p + "_xs", f"{p}_i{i}"], [f"{p}_d{i}"], axis=0)]
        nodes += [c64(p + "_rest", [-1, d]),
                  helper.make_node("Concat", [p + "_d0", p + "_d1", p + "_rest"], [p + "_shape"], axis=0)]
    else:
        nodes += [helper.make_node("Shape", [x], [p + "_xs"]), c64(p + "_st", [0]), c64(p + "_en", [2]),
                  helper.make_node("Slice", [p + "_xs", p + "_st", p + "_en"], [p + "_lead"]),
                  c64(p + "_rest", [-1, d]),
                  helper.make_node("Concat", [p + "_lead", p + "_rest"], [p + "_shape"], axis=0)]
    nodes += [helper.make_node("Reshape", [x, p + "_shape"], [p + "_r"]),
              helper.make_node("Transpose", [p + "_r"], [p], perm=list(perm))]
    return p


def check(model, inputs, blocks, profile=None, rtol=1e-4, atol=1e-5, transposes=0):
    data = model.SerializeToString()
    engine, logger = build(data, profile)
    got = run_kiln(engine, inputs)
    ref = ort_run(data, inputs)
    for name, r in ref.items():
        g = got[name]
        assert g.shape == r.shape, name
        assert not np.isnan(g).any(), name
        err = np.max(np.abs(g.astype(np.float64) - r))
        assert err <= atol + rtol * np.max(np.abs(r)), f"{name}: max error {err}"
    layers = [line.strip() for line in engine.describe().splitlines()]
    assert len([l for l in layers if l.startswith("FusedAttention")]) == blocks, engine.describe()
    left = [l for l in layers if l.startswith("Shuffle") and ("Transpose" in l or "Gather" in l)]
    assert len(left) == transposes, engine.describe()
    return engine


def bert_model(B, S, heads=4, d=8, dynamic=False, view="static", mask="given"):
    hidden = heads * d
    nodes, inits = [], {}
    for n in ("q", "k", "v"):
        inits["W" + n], inits["b" + n] = w(hidden, hidden), w(hidden)
        nodes += [helper.make_node("MatMul", ["x", "W" + n], [n + "_mm"]),
                  helper.make_node("Add", [n + "_mm", "b" + n], [n + "_lin"])]
    q = split_heads(nodes, "q_lin", "q", heads, d, view=view)
    kt = split_heads(nodes, "k_lin", "kt", heads, d, perm=(0, 2, 3, 1), view=view)  # both transposes merged
    v = split_heads(nodes, "v_lin", "v", heads, d, view=view)
    if mask == "given":
        nodes += [  # extended mask: (1 - mask[:, None, None, :]) * finfo.min
            c64("ax12", [1, 2]),
            helper.make_node("Unsqueeze", ["mask", "ax12"], ["m4"]),
            helper.make_node("Cast", ["m4"], ["m4f"], to=TensorProto.FLOAT),
            cf("one", 1.0), cf("fmin", F32_MIN),
            helper.make_node("Sub", ["one", "m4f"], ["inv"]),
            helper.make_node("Mul", ["inv", "fmin"], ["ext"])]
    else:  # newer transformers without an attention mask: Where(Expand(Range(0, S)[None, None, :, None] >= 0,
        # [B, 1, S, S]), 0, finfo.min), zeros at the batch's size
        nodes += [
            helper.make_node("Shape", ["x"], ["xs"]), c64("i0", [0]), c64("i1", [1]),
            helper.make_node("Gather", ["xs", "i0"], ["bsz"], axis=0),
            helper.make_node("Gather", ["xs", "i1"], ["slen"], axis=0),
            s64("r0", 0), s64("r1", 1), helper.make_node("Squeeze", ["slen"], ["slen0"]),
            helper.make_node("Range", ["r0", "slen0", "r1"], ["pos"]),
            c64("ax013", [0, 1, 3]), helper.make_node("Unsqueeze", ["pos", "ax013"], ["pos4"]),
            s64("zero_i", 0), helper.make_node("GreaterOrEqual", ["pos4", "zero_i"], ["vis"]),
            c64("one_i", [1]), helper.make_node("Concat", ["bsz", "one_i", "slen", "slen"], ["mshape"], axis=0),
            helper.make_node("Expand", ["vis", "mshape"], ["vis4"]),
            cf("zero_f", 0.0), cf("fmin", F32_MIN),
            helper.make_node("Where", ["vis4", "zero_f", "fmin"], ["ext"])]
    nodes += [
        helper.make_node("MatMul", [q, kt], ["scores"]),
        cf("sqrt_d", float(np.sqrt(d))),
        helper.make_node("Div", ["scores", "sqrt_d"], ["scaled"]),
        helper.make_node("Add", ["scaled", "ext"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", v], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        c64("out_shape", [0, 0, hidden]),
        helper.make_node("Reshape", ["ctx_t", "out_shape"], ["y"]),
    ]
    x = w(B, S, hidden, scale=1.0)
    if mask == "given":
        mask = np.ones((B, S), np.int64)
        mask[0, S - 3:] = 0  # padding in the first sequence
        dyn = {"x": [None, None, hidden], "mask": [None, None]} if dynamic else None
        model = make_model(nodes, {"x": x, "mask": mask}, ["y"], inits, opset=17, dyn=dyn)
        return model, {"x": x, "mask": mask}
    dyn = {"x": [None, S, hidden]} if dynamic else None
    return make_model(nodes, {"x": x}, ["y"], inits, opset=17, dyn=dyn), {"x": x}


def test_bert_attention_fuses():
    model, inputs = bert_model(2, 11)
    check(model, inputs, 1)


def test_bert_attention_dynamic_shapes():
    model, inputs = bert_model(2, 11, dynamic=True)
    profile = {"x": ((1, 1, 32), (2, 11, 32), (4, 64, 32)), "mask": ((1, 1), (2, 11), (4, 64))}
    engine = check(model, inputs, 1, profile)
    mask = np.ones((3, 20), np.int64)
    mask[1, 15:] = 0
    inputs2 = {"x": w(3, 20, 32, scale=1.0), "mask": mask}  # other shapes, same engine
    got = run_kiln(engine, inputs2)["y"]
    ref = ort_run(model.SerializeToString(), inputs2)["y"]
    assert np.max(np.abs(got - ref)) <= 1e-5 + 1e-4 * np.max(np.abs(ref))


def test_bert_without_a_mask_drops_the_zero_mask_exporters_build():
    """No attention mask given: the export still builds an additive mask of zeros at the batch's size; the
    fused attention takes no mask and nothing computes it (no Expand or Select left), for any batch."""
    model, inputs = bert_model(2, 11, dynamic=True, mask="none")
    engine = check(model, inputs, 1, {"x": ((1, 11, 32), (2, 11, 32), (4, 11, 32))})
    layers = [line.strip() for line in engine.describe().splitlines()]
    assert not [l for l in layers if l.startswith(("Select", "Expand", "Range"))], engine.describe()
    inputs3 = {"x": w(3, 11, 32, scale=1.0)}
    got = run_kiln(engine, inputs3)["y"]
    ref = ort_run(model.SerializeToString(), inputs3)["y"]
    assert np.max(np.abs(got - ref)) <= 1e-5 + 1e-4 * np.max(np.abs(ref))


@pytest.mark.parametrize("view", ["static", "batch", "prefix", "input"])
def test_bert_merged_projections_read_packed(view):
    """The q/k/v projections merge into one GEMM; attention reads its output through the Split, whatever form
    the head reshapes' targets take (static, a batch from another tensor's Shape, a -1), dynamic batch."""
    model, inputs = bert_model(2, 11, dynamic=True, view=view)
    profile = {"x": ((1, 11, 32), (2, 11, 32), (4, 11, 32)), "mask": ((1, 11), (2, 11), (4, 11))}
    engine = check(model, inputs, 1, profile)
    layers = [line.strip() for line in engine.describe().splitlines()]
    assert len([l for l in layers if l.startswith("MatrixMultiply")]) == 1, engine.describe()
    assert not [l for l in layers if l.startswith("Split")], engine.describe()
    mask = np.ones((3, 11), np.int64)
    mask[2, 6:] = 0
    inputs2 = {"x": w(3, 11, 32, scale=1.0), "mask": mask}
    got = run_kiln(engine, inputs2)["y"]
    ref = ort_run(model.SerializeToString(), inputs2)["y"]
    assert np.max(np.abs(got - ref)) <= 1e-5 + 1e-4 * np.max(np.abs(ref))


def gpt2_model(S, heads=2, d=16, max_pos=32, views=("prefix", "prefix", "prefix"), dynamic=False, mask="select"):
    """mask "select": the causal Where(causal, scores, min) and an additive padding mask (attn_mask input);
    "additive": newer transformers without a padding mask, scores + Where(Expand(causal, [B, 1, S, S]), 0, min)."""
    hidden = heads * d
    inits = {"Wqkv": w(hidden, 3 * hidden), "bqkv": w(3 * hidden),
             "bias": np.tril(np.ones((max_pos, max_pos), bool)).reshape(1, 1, max_pos, max_pos)}
    nodes = [helper.make_node("MatMul", ["x", "Wqkv"], ["qkv_mm"]),
             helper.make_node("Add", ["qkv_mm", "bqkv"], ["qkv"]),
             c64("split", [hidden, hidden, hidden]),
             helper.make_node("Split", ["qkv", "split"], ["q_lin", "k_lin", "v_lin"], axis=2)]
    q = split_heads(nodes, "q_lin", "q", heads, d, view=views[0])
    k = split_heads(nodes, "k_lin", "k", heads, d, view=views[1])
    v = split_heads(nodes, "v_lin", "v", heads, d, view=views[2])
    nodes += [
        helper.make_node("Transpose", [k], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", [q, "kt"], ["w0"]),
        cf("sqrt_d", float(np.sqrt(d))),
        helper.make_node("Div", ["w0", "sqrt_d"], ["w1"]),
        # causal_mask = bias[:, :, k_len - q_len : k_len, :k_len] (static here: folds to a constant)
        c64("starts", [0, 0]), c64("ends", [S, S]), c64("axes", [2, 3]),
        helper.make_node("Slice", ["bias", "starts", "ends", "axes"], ["causal"]),
        cf("mask_value", F32_MIN)]
    if mask == "select":
        nodes += [helper.make_node("Where", ["causal", "w1", "mask_value"], ["w2"]),
                  helper.make_node("Add", ["w2", "attn_mask"], ["w3"])]
    else:
        nodes += [helper.make_node("Shape", ["x"], ["xs"]), c64("i0", [0]),
                  helper.make_node("Gather", ["xs", "i0"], ["bsz"], axis=0), c64("rest", [1, S, S]),
                  helper.make_node("Concat", ["bsz", "rest"], ["mshape"], axis=0),
                  helper.make_node("Expand", ["causal", "mshape"], ["causal4"]), cf("zero_f", 0.0),
                  helper.make_node("Where", ["causal4", "zero_f", "mask_value"], ["additive"]),
                  helper.make_node("Add", ["w1", "additive"], ["w3"])]
    nodes += [
        helper.make_node("Softmax", ["w3"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", v], ["a"]),
        helper.make_node("Transpose", ["a"], ["a_t"], perm=[0, 2, 1, 3]),
        c64("out_shape", [0, 0, hidden]),
        helper.make_node("Reshape", ["a_t", "out_shape"], ["y"]),
    ]
    x = w(2, S, hidden, scale=1.0)
    attn_mask = np.zeros((2, 1, 1, S), np.float32)
    attn_mask[1, ..., :2] = F32_MIN  # left padding in the second sequence
    if mask != "select":
        dyn = {"x": [None, S, hidden]} if dynamic else None
        return make_model(nodes, {"x": x}, ["y"], inits, opset=17, dyn=dyn), {"x": x}
    dyn = {"x": [None, S, hidden], "attn_mask": [None, 1, 1, S]} if dynamic else None
    model = make_model(nodes, {"x": x, "attn_mask": attn_mask}, ["y"], inits, opset=17, dyn=dyn)
    return model, {"x": x, "attn_mask": attn_mask}


def test_gpt2_causal_attention_fuses():
    model, inputs = gpt2_model(9)
    check(model, inputs, 1)


def test_gpt2_additive_causal_mask_becomes_causal():
    """Newer transformers add the causal mask as Where(Expand(tril, [B, 1, S, S]), 0, min): with no other mask
    the fused attention runs causal, and nothing computes the [B, 1, S, S] mask (no Expand or Select left)."""
    model, inputs = gpt2_model(9, dynamic=True, mask="additive")
    engine = check(model, inputs, 1, {"x": ((1, 9, 32), (2, 9, 32), (4, 9, 32))})
    layers = [line.strip() for line in engine.describe().splitlines()]
    assert not [l for l in layers if l.startswith(("Select", "Expand"))], engine.describe()
    inputs3 = {"x": w(3, 9, 32, scale=1.0)}
    got = run_kiln(engine, inputs3)["y"]
    ref = ort_run(model.SerializeToString(), inputs3)["y"]
    assert np.max(np.abs(got - ref)) <= 1e-5 + 1e-4 * np.max(np.abs(ref))


def test_gpt2_split_read_packed_when_v_takes_k_dims():
    """Newer transformers' GPT-2: k and v are viewed with the batch and sequence read from k's Shape, q with its
    own. With a dynamic batch the attention still reads the c_attn output through the Split, which goes."""
    model, inputs = gpt2_model(9, views=("dims_of:q_lin", "dims_of:k_lin", "dims_of:k_lin"), dynamic=True)
    profile = {"x": ((1, 9, 32), (2, 9, 32), (4, 9, 32)), "attn_mask": ((1, 1, 1, 9), (2, 1, 1, 9), (4, 1, 1, 9))}
    engine = check(model, inputs, 1, profile)
    layers = [line.strip() for line in engine.describe().splitlines()]
    assert not [l for l in layers if l.startswith("Split")], engine.describe()
    inputs3 = {"x": w(3, 9, 32, scale=1.0), "attn_mask": np.zeros((3, 1, 1, 9), np.float32)}
    got = run_kiln(engine, inputs3)["y"]
    ref = ort_run(model.SerializeToString(), inputs3)["y"]
    assert np.max(np.abs(got - ref)) <= 1e-5 + 1e-4 * np.max(np.abs(ref))


def vit_model(B=2, S=10, heads=4, d=8):
    """torchvision's nn.MultiheadAttention export (batch_first=False inside the encoder), from q/k/v projections."""
    e = heads * d
    nodes = []
    for n in ("q", "k", "v"):
        nodes += [c64(n + "_shape", [S, B * heads, d]),
                  helper.make_node("Reshape", [n + "_in", n + "_shape"], [n + "_r"])]
    nodes += [
        helper.make_node("Transpose", ["q_r"], ["q"], perm=[1, 0, 2]),
        helper.make_node("Transpose", ["v_r"], ["v"], perm=[1, 0, 2]),
        cf("c", float(np.sqrt(d))),
        helper.make_node("Div", ["q", "c"], ["q_scaled"]),
        helper.make_node("Transpose", ["k_r"], ["kt"], perm=[1, 2, 0]),
        helper.make_node("MatMul", ["q_scaled", "kt"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
        helper.make_node("Transpose", ["o"], ["o_t"], perm=[1, 0, 2]),
        c64("out_shape", [S * B, e]),
        helper.make_node("Reshape", ["o_t", "out_shape"], ["y"]),
    ]
    inputs = {n + "_in": w(S, B, e, scale=1.0) for n in ("q", "k", "v")}
    return make_model(nodes, inputs, ["y"], opset=17), inputs


def test_vit_attention_fuses():
    model, inputs = vit_model()
    check(model, inputs, 1)


def vit_packed_model(B=2, S=10, heads=4, d=8, slots=(0, 1, 2)):
    """tests/python/models/vit.py's attention: one qkv projection, split by Reshape, Transpose and Gathers."""
    e = heads * d
    nodes = [c64("qkv_shape", [B, S, 3, heads, d]),
             helper.make_node("Reshape", ["qkv", "qkv_shape"], ["qkv_r"]),
             helper.make_node("Transpose", ["qkv_r"], ["qkv_t"], perm=[2, 0, 3, 1, 4])]
    for n, i in zip("qkv", slots):
        nodes += [helper.make_node("Constant", [], [n + "_i"], value=helper.make_tensor(n + "_it", TensorProto.INT64, [], [i])),
                  helper.make_node("Gather", ["qkv_t", n + "_i"], [n], axis=0)]
    nodes += [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        cf("c", float(1 / np.sqrt(d))),
        helper.make_node("Mul", ["s", "c"], ["s_scaled"]),
        helper.make_node("Softmax", ["s_scaled"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
        helper.make_node("Transpose", ["o"], ["o_t"], perm=[0, 2, 1, 3]),
        c64("out_shape", [B, S, e]),
        helper.make_node("Reshape", ["o_t", "out_shape"], ["y"]),
    ]
    inputs = {"qkv": w(B, S, 3 * e, scale=1.0)}
    return make_model(nodes, inputs, ["y"], opset=17), inputs


@pytest.mark.parametrize("slots", [(0, 1, 2), (2, 0, 1)])
def test_vit_packed_qkv_attention_fuses(slots):
    model, inputs = vit_packed_model(slots=slots)
    check(model, inputs, 1)


def test_two_blocks_fuse_and_softmax_elsewhere_stays():
    """Two stacked BERT-style blocks without projections, and a softmax classifier that is not attention."""
    B, H, S, D = 1, 2, 6, 4
    nodes = []
    prev = "x"
    for i in range(2):
        nodes += [helper.make_node("Transpose", [prev], [f"kt{i}"], perm=[0, 1, 3, 2]),
                  helper.make_node("MatMul", [prev, f"kt{i}"], [f"s{i}"]),
                  cf(f"c{i}", 0.5),
                  helper.make_node("Mul", [f"s{i}", f"c{i}"], [f"ss{i}"]),
                  helper.make_node("Softmax", [f"ss{i}"], [f"p{i}"], axis=-1),
                  helper.make_node("MatMul", [f"p{i}", prev], [f"o{i}"])]
        prev = f"o{i}"
    nodes.append(helper.make_node("Softmax", [prev], ["y"], axis=-1))
    x = w(B, H, S, D, scale=1.0)
    check(make_model(nodes, {"x": x}, ["y"], opset=17), {"x": x}, 2)


def i64(name, value):
    """An int64 scalar Constant (Gather indices, Unsqueeze-free scalars)."""
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.INT64, [], [value]))


def mha_torch211_model(B=2, S=9, heads=2, d=8, xt_output=False):
    """nn.MultiheadAttention(batch_first=True) as torch 2.11's exporter writes it (torchvision's ViT encoder
    block at opset 17): x [B, S, E] -> Transpose to [S, B, E], in_proj, the q/k/v split through Reshape
    [S, B, 3, E] -> Unsqueeze(0) -> Transpose[3, 1, 2, 0, 4] -> Squeeze(3) -> Gathers, each head split by
    Reshape [S, B*H, D] -> Transpose[1, 0, 2] -> Reshape [B, H, S, D] with every reshape target computed from
    Shape ops (the batch is dynamic), q and K^T each scaled by sqrt(1/sqrt(D)) computed from a Shape, then
    Transpose[2, 0, 1, 3] -> Reshape [S*B, E] -> out_proj Gemm -> Reshape [S, B, E] -> Transpose back."""
    e = heads * d
    inits = {"w_in": w(e, 3 * e), "b_in": w(3 * e), "w_out": w(e, e), "b_out": w(e)}
    n = helper.make_node
    nodes = [n("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), n("Shape", ["xt"], ["sh"])]
    for i, nm in enumerate(("S", "B", "E")):
        nodes += [i64(f"i{i}", i), n("Gather", ["sh", f"i{i}"], [nm], axis=0)]
    nodes += [i64("two", 2), n("Div", ["E", "two"], ["Dq"]), n("Cast", ["Dq"], ["D"], to=TensorProto.INT64),
              c64("ax0", [0])]
    unsq = lambda x: (nodes.append(n("Unsqueeze", [x, "ax0"], [x + "_u"])), x + "_u")[1]
    nodes += [n("MatMul", ["xt", "w_in"], ["proj_mm"]), n("Add", ["b_in", "proj_mm"], ["proj"]),
              c64("st0", [0]), c64("en2", [2]), n("Slice", ["sh", "st0", "en2"], ["sh_sb"]),
              c64("three", [3]), c64("e_", [e]), n("Concat", ["sh_sb", "three", "e_"], ["qkv_shape"], axis=0)]
    nodes += [n("Reshape", ["proj", "qkv_shape"], ["qkv4"]), n("Unsqueeze", ["qkv4", "ax0"], ["qkv5"]),
              n("Transpose", ["qkv5"], ["qkv_t"], perm=[3, 1, 2, 0, 4]), c64("ax3", [3]),
              n("Squeeze", ["qkv_t", "ax3"], ["qkv_s"])]
    nodes += [n("Mul", ["B", "two"], ["BH"])]
    s_u, bh_u, d_u, b_u = unsq("S"), unsq("BH"), unsq("D"), unsq("B")
    for i, t in enumerate("qkv"):
        nodes += [i64(f"slot{t}", i), n("Gather", ["qkv_s", f"slot{t}"], [t + "_g"], axis=0),
                  n("Concat", [s_u, bh_u, d_u], [t + "_s3"], axis=0)]
        nodes += [n("Reshape", [t + "_g", t + "_s3"], [t + "_r3"]), n("Transpose", [t + "_r3"], [t + "_t3"], perm=[1, 0, 2]),
                  c64(t + "_two", [2]), n("Concat", [b_u, t + "_two", s_u, d_u], [t + "_s4"], axis=0),
                  n("Reshape", [t + "_t3", t + "_s4"], [t + "_4"])]
    nodes += [n("Shape", ["q_4"], ["qsh"]), c64("m1", [-1]), c64("big", [2**63 - 1]),
              n("Slice", ["qsh", "m1", "big"], ["dlast"]), n("Cast", ["dlast"], ["dlast_f"], to=TensorProto.FLOAT),
              n("Sqrt", ["dlast_f"], ["sqd"]), cf("one", 1.0), n("Div", ["one", "sqd"], ["scale"]),
              n("Sqrt", ["scale"], ["sq_scale"]),
              n("Transpose", ["k_4"], ["kT"], perm=[0, 1, 3, 2]),
              n("Mul", ["q_4", "sq_scale"], ["q_s"]), n("Mul", ["kT", "sq_scale"], ["k_s"]),
              n("MatMul", ["q_s", "k_s"], ["scores"]), n("Softmax", ["scores"], ["p"], axis=-1),
              n("MatMul", ["p", "v_4"], ["o"]), n("Transpose", ["o"], ["o_t"], perm=[2, 0, 1, 3]),
              n("Mul", ["B", "S"], ["SB"])]
    sb_u = unsq("SB")
    nodes += [c64("e1", [e]), n("Concat", [sb_u, "e1"], ["o_shape"], axis=0),
              n("Reshape", ["o_t", "o_shape"], ["o2"]),
              n("Gemm", ["o2", "w_out", "b_out"], ["proj_out"]),
              n("Concat", [s_u, b_u, "e1"], ["back_shape"], axis=0),
              n("Reshape", ["proj_out", "back_shape"], ["o3"]), n("Transpose", ["o3"], ["o_bt"], perm=[1, 0, 2]),
              n("Add", ["o_bt", "x"], ["y"])]
    outputs = ["y"]
    if xt_output:  # the sequence-first x is read by something else too
        nodes.append(n("Relu", ["xt"], ["xt_relu"]))
        outputs.append("xt_relu")
    inputs = {"x": w(B, S, e, scale=1.0)}
    return make_model(nodes, inputs, outputs, inits, opset=17, dyn={"x": [None, S, e]}), inputs


def test_torch211_multihead_attention_reads_packed_in_proj():
    """The whole split reads as slot views of in_proj's output and the output is written in place: none of the
    exporter's nine Transposes is left, the two batch-first <-> sequence-first ones around the block included
    (the block runs batch-first), with a dynamic batch; the residual add is out_proj's epilogue."""
    model, inputs = mha_torch211_model()
    profile = {"x": ((1, 9, 16), (2, 9, 16), (5, 9, 16))}
    engine = check(model, inputs, 1, profile, transposes=0)
    layers = [line.strip() for line in engine.describe().splitlines()]
    assert not [l for l in layers if l.startswith("Shuffle") and "Transpose" in l], engine.describe()
    assert not [l for l in layers if l.startswith("ElementWise") and "float" in l], engine.describe()
    inputs2 = {"x": w(5, 9, 16, scale=1.0)}
    got = run_kiln(engine, inputs2)["y"]
    ref = ort_run(model.SerializeToString(), inputs2)["y"]
    assert np.max(np.abs(got - ref)) <= 1e-5 + 1e-4 * np.max(np.abs(ref))
    layers = engine.describe()
    assert "Sqrt" not in layers, "the scale computed from a Shape must fold to a constant"


def test_torch211_multihead_attention_stays_sequence_first_when_x_transposed_is_shared():
    """The transposed x feeds another layer: the block keeps running sequence-first (its two transposes stay)."""
    model, inputs = mha_torch211_model(xt_output=True)
    profile = {"x": ((1, 9, 16), (2, 9, 16), (5, 9, 16))}
    check(model, inputs, 1, profile, transposes=2)
