"""A small ONNX graph builder that writes graphs the way torch.onnx.export (opset 17) does.

Naming follows the exporter: a node in module `encoder.layer.0.attention` is called
`/encoder/layer.0/attention/MatMul` (suffixed `_1`, `_2`, ... when repeated) and its output
`/encoder/layer.0/attention/MatMul_output_0`; parameters keep their module names
(`encoder.layer.0.attention.self.query.bias`); weights the exporter transposed or folded get names
like `onnx::MatMul_123`; small constants are `Constant` nodes. Supported opsets: 13 and later.

Weights are random with fan-in scaling (variance gain / fan_in, the gain chosen for the activation
that feeds the layer) so activations stay O(1) through deep networks; CNNs also get BatchNorm
running statistics calibrated on random images (build_cnn).
"""
import contextlib
import json
import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

FLOAT_MIN = float(np.finfo(np.float32).min)
# second moment E[act(z)^2] for z ~ N(0, 1): a layer fed by `act` uses gain 1 / that.
ACT_GAIN = {None: 1.0, "relu": 2.0, "relu6": 2.0, "silu": 1 / 0.3553, "gelu": 1 / 0.4264}
HEAD_GAIN = 4.0  # classifier after global pooling: pooled activations are ~0.2..0.5 per channel
_NP2ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
            np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.float16): TensorProto.FLOAT16}


def resolve(full_cfg, small_cfg, full, **overrides):
    """The full or small default configuration with the non-None overrides applied."""
    cfg = dict(full_cfg if full else small_cfg)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def config_of(model_or_config):
    """The config dict of a model built here (stored in metadata_props) or the dict itself."""
    if isinstance(model_or_config, dict):
        return model_or_config
    meta = {p.key: p.value for p in model_or_config.metadata_props}
    return json.loads(meta["kiln.config"])


class Graph:
    def __init__(self, name, opset=17, seed=0):
        if opset < 13:
            raise ValueError("opset 13 or later is required (Split/Unsqueeze take tensor inputs)")
        self.name, self.opset = name, opset
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inputs, self.outputs, self.initializers = [], [], [], []
        self.num_params = 0
        self.bn_stats = {}  # conv_bn: module -> (mean, var); None while calibrating
        self._used, self._scope, self._anon = set(), [], 0

    # ---- names -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self, module_path):
        """Enter a module (a dotted path like `layer1.0.conv1`, relative to the current one)."""
        parts = []
        for p in str(module_path).split("."):
            if p.isdigit() and parts:
                parts[-1] += "." + p      # ModuleList items: `layer.0` is one path element
            else:
                parts.append(p)
        self._scope.append(parts)
        try:
            yield
        finally:
            self._scope.pop()

    def _path(self):
        return [p for parts in self._scope for p in parts]

    def _unique(self, base):
        name, i = base, 0
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def pname(self, leaf):
        """A parameter name in the current module: `layer1.0.conv1.weight`."""
        return self._unique(".".join(self._path() + [leaf]))

    def anon(self, op_type):
        """A name like the exporter gives to folded/transposed weights: `onnx::Conv_12`."""
        self._anon += 1
        return self._unique(f"onnx::{op_type}_{self._anon}")

    # ---- nodes and tensors ---------------------------------------------------------------------
    def op(self, op_type, *inputs, outputs=1, **attrs):
        """Add a node; returns its output name (or a list of names when outputs > 1)."""
        name = self._unique("/" + "/".join(self._path() + [op_type]))
        outs = [f"{name}_output_{i}" for i in range(outputs)]
        self._used.update(outs)
        self.nodes.append(helper.make_node(op_type, [i or "" for i in inputs], outs, name=name,
                                           **{k: v for k, v in attrs.items() if v is not None}))
        return outs[0] if outputs == 1 else outs

    def const(self, value, dtype=np.float32):
        """A `Constant` node (scalars and shape vectors, as the exporter emits them)."""
        arr = np.asarray(value, dtype=dtype)
        return self.op("Constant", value=numpy_helper.from_array(arr, "value"))

    def initializer(self, name, array, param=True):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if param:
            self.num_params += int(np.prod(array.shape))
        return name

    def param(self, leaf, array):
        return self.initializer(self.pname(leaf), array)

    def randn(self, shape, std=1.0, mean=0.0):
        x = self.rng.standard_normal(shape, dtype=np.float32)
        x *= np.float32(std)
        if mean:
            x += np.float32(mean)
        return x

    def weight(self, shape, fan_in, gain=1.0):
        """Uniform with variance gain / fan_in (like torch's default init; faster than normal)."""
        bound = math.sqrt(3.0 * gain / fan_in)
        x = self.rng.random(shape, dtype=np.float32)
        x *= np.float32(2 * bound)
        x -= np.float32(bound)
        return x

    def input(self, name, dtype, shape):
        self.inputs.append(helper.make_tensor_value_info(name, _NP2ONNX[np.dtype(dtype)], shape))
        return name

    def output(self, tensor, name, dtype, shape):
        """Make `tensor` the graph output `name` (the exporter renames the producer's output)."""
        for node in self.nodes:
            for seq in (node.input, node.output):
                for i, t in enumerate(seq):
                    if t == tensor:
                        seq[i] = name
        self.outputs.append(helper.make_tensor_value_info(name, _NP2ONNX[np.dtype(dtype)], shape))
        return name

    def model(self, config):
        opsets = [helper.make_opsetid("", self.opset)]
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs)
        model = helper.make_model(graph, producer_name="pytorch", producer_version="2.1.0",
                                  opset_imports=opsets,
                                  ir_version=helper.find_min_ir_version_for(opsets))
        model.graph.initializer.extend(self.initializers)  # one copy of the weights, not two
        cfg = dict(config, name=self.name, opset=self.opset, num_params=self.num_params)
        helper.set_model_props(model, {"kiln.config": json.dumps(cfg)})
        return model

    # ---- shape idioms ----------------------------------------------------------------------------
    def dim(self, x, index):
        """`x.size(index)` as traced: Shape -> Gather(index), a 0-d int64."""
        return self.op("Gather", self.op("Shape", x), self.const(index, np.int64), axis=0)

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", x, self.const(axes, np.int64))

    def shape_of(self, dims):
        """A shape vector from ints and 0-d int64 tensors: Unsqueeze each tensor, Concat."""
        if all(isinstance(d, int) for d in dims):
            return self.const(dims, np.int64)
        parts = [self.unsqueeze(d, [0]) if isinstance(d, str) else self.const([d], np.int64)
                 for d in dims]
        return self.op("Concat", *parts, axis=0)

    def reshape(self, x, dims):
        return self.op("Reshape", x, self.shape_of(dims))

    def reduce_mean(self, x, axes, keepdims=1):
        if self.opset >= 18:
            return self.op("ReduceMean", x, self.const(axes, np.int64), keepdims=keepdims)
        return self.op("ReduceMean", x, axes=axes, keepdims=keepdims)


# ---- layers shared by the architectures (each in its own module scope) ------------------------
def linear(g, x, cin, cout, module, gain=1.0, bias=True, gemm=False):
    """nn.Linear: Gemm(transB=1) on 2-D input, MatMul (pre-transposed weight) + Add otherwise."""
    with g.scope(module):
        w = g.weight((cout, cin), cin, gain)
        b = g.param("bias", g.randn(cout, 0.1)) if bias else None
        if gemm:
            return g.op("Gemm", x, g.param("weight", w), b, alpha=1.0, beta=1.0, transB=1)
        y = g.op("MatMul", x, g.initializer(g.anon("MatMul"), w.T.copy()))
        return g.op("Add", b, y) if bias else y  # the exporter writes the bias first


def layer_norm(g, x, dim, eps, module, decomposed=False):
    """nn.LayerNorm over the last axis: the opset-17 op, or the form older exporters wrote."""
    with g.scope(module):
        gamma, beta = g.param("weight", g.randn(dim, 0.1, 1.0)), g.param("bias", g.randn(dim, 0.1))
        if g.opset >= 17 and not decomposed:
            return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)
        d = g.op("Sub", x, g.reduce_mean(x, [-1]))
        var = g.reduce_mean(g.op("Pow", d, g.const(2.0)), [-1])
        y = g.op("Div", d, g.op("Sqrt", g.op("Add", var, g.const(eps))))
        return g.op("Add", g.op("Mul", y, gamma), beta)


def gelu_erf(g, x):
    """nn.GELU() / F.gelu as exported: x * (erf(x / sqrt 2) + 1) * 0.5."""
    e = g.op("Erf", g.op("Div", x, g.const(1.4142135623730951)))
    return g.op("Mul", g.op("Mul", x, g.op("Add", e, g.const(1.0))), g.const(0.5))


def gelu_tanh(g, x):
    """HF gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))."""
    cube = g.op("Mul", g.const(0.044715), g.op("Pow", x, g.const(3.0)))
    inner = g.op("Mul", g.const(math.sqrt(2.0 / math.pi)), g.op("Add", x, cube))
    return g.op("Mul", g.op("Mul", g.const(0.5), x), g.op("Add", g.const(1.0), g.op("Tanh", inner)))


def activation(g, x, act):
    if act == "relu":
        return g.op("Relu", x)
    if act == "relu6":  # F.hardtanh(0, 6) / nn.ReLU6: Clip with min/max inputs (opset >= 11)
        return g.op("Clip", x, g.const(0.0), g.const(6.0))
    if act == "silu":   # nn.SiLU has no ONNX op before opset 24: x * sigmoid(x)
        return g.op("Mul", x, g.op("Sigmoid", x))
    assert act is None, act
    return x


def conv_bn(g, x, cin, cout, k, module, bn="bn", stride=1, groups=1, act=None, fold_bn=True,
            out_scale=1.0):
    """Conv2d(bias=False) + BatchNorm2d (+ activation). `module` names the conv and `bn` the norm
    (relative to the current scope). fold_bn=True writes what the exporter writes in eval mode:
    one Conv with bias (weights named `onnx::Conv_N`); fold_bn=False keeps bias-less Conv +
    BatchNormalization. Both give the same function for the same seed.

    Running statistics are calibrated (see build_cnn): the channel statistics of the conv output
    on random images, jittered. out_scale scales gamma: residual branches end small so sums of
    many branches stay O(1)."""
    w = g.weight((cout, cin // groups, k, k), cin // groups * k * k)
    gamma = g.randn(cout, 0.1, 1.0) * out_scale
    beta, jitter_mean = g.randn(cout, 0.1), g.randn(cout, 0.1)
    jitter_var = g.rng.uniform(0.8, 1.25, cout).astype(np.float32)
    attrs = dict(dilations=[1, 1], group=groups, kernel_shape=[k, k], pads=[(k - 1) // 2] * 4,
                 strides=[stride, stride])
    key = ".".join(g._path() + [module])
    if g.bn_stats is None:  # calibration pass: normalize by this batch's statistics, export them
        with g.scope(module):
            y = g.op("Conv", x, g.const(w), **attrs)
        with g.scope(bn):
            m = g.reduce_mean(y, [0, 2, 3])
            d = g.op("Sub", y, m)
            v = g.reduce_mean(g.op("Mul", d, d), [0, 2, 3])
            y = g.op("Div", d, g.op("Sqrt", g.op("Add", v, g.const(1e-5))))
            y = g.op("Mul", y, g.const(gamma[:, None, None]))
            y = g.op("Add", y, g.const(beta[:, None, None]))
        g.calibration.append((key, m, v))
    else:
        m, v = g.bn_stats[key]
        mean = (m + jitter_mean * np.sqrt(v)).astype(np.float32)
        var = (v * jitter_var).astype(np.float32)
        if fold_bn:
            s = gamma / np.sqrt(var + 1e-5)
            with g.scope(module):
                wf = g.initializer(g.anon("Conv"), (w * s[:, None, None, None]).astype(np.float32))
                bf = g.initializer(g.anon("Conv"), (beta - mean * s).astype(np.float32))
                y = g.op("Conv", x, wf, bf, **attrs)
        else:
            with g.scope(module):
                y = g.op("Conv", x, g.param("weight", w), **attrs)
            with g.scope(bn):
                y = g.op("BatchNormalization", y, g.param("weight", gamma), g.param("bias", beta),
                         g.initializer(g.pname("running_mean"), mean, param=False),
                         g.initializer(g.pname("running_var"), var, param=False),
                         epsilon=1e-5, momentum=0.9)
    with g.scope(bn):
        return activation(g, y, act)


def build_cnn(name, opset, seed, body, batch, image_size):
    """A CNN graph with realistic BatchNorm running statistics: body(g, batch) builds the graph
    (outputs included) once with every BN normalizing by batch statistics, which onnxruntime
    computes on N(0, 1) images (enough that the last 1/32-size feature map gives 256 samples per
    channel); then again, with the same random weights, using those statistics. Returns the
    second Graph."""
    import onnxruntime as ort
    cal = Graph(name, opset, seed)
    cal.bn_stats, cal.calibration = None, []
    body(cal, "N")
    for _, m, v in cal.calibration:
        cal.outputs += [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in (m, v)]
    model = cal.model({})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(seed + 1).standard_normal(
        (-(-256 // max(1, image_size // 32) ** 2), 3, image_size, image_size), dtype=np.float32)
    values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": images})))
    g = Graph(name, opset, seed)
    g.bn_stats = {key: (values[m].ravel(), values[v].ravel()) for key, m, v in cal.calibration}
    body(g, batch)
    return g


def classifier_head(g, x, cin, num_classes, module, gain=1.0, dropout=None):
    """adaptive_avg_pool2d(1) -> flatten(1) -> [Dropout] -> Linear, as in torchvision.
    `dropout` names the Dropout module (eval-mode exports drop it; keep it to test that)."""
    x = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)
    if dropout:
        with g.scope(dropout):
            x = g.op("Dropout", x, g.const(0.2))
    return linear(g, x, cin, num_classes, module, gain=gain, gemm=True)


def image_input(g, batch, size, name="input"):
    return g.input(name, np.float32, [batch, 3, size, size])


def image_sample(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    size = cfg["image_size"]
    return {"input": rng.standard_normal((batch, 3, size, size), dtype=np.float32)}


def token_sample(cfg, batch, seed, seq=None, names=("input_ids", "attention_mask")):
    """ids within the vocabulary; masks of ones with a few zeros at the end of each row;
    token types 0 then 1."""
    rng = np.random.default_rng(seed)
    seq = seq or (cfg["seq"] if isinstance(cfg["seq"], int) else min(128, cfg["max_positions"]))
    ids = rng.integers(0, cfg["vocab"], (batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), np.int64)
    for b in range(batch):  # row b: the last ~(b + 1) / (4 batch) of the positions are padding
        mask[b, seq - min(seq - 1, max(1, seq * (b + 1) // (4 * batch))):] = 0
    types = np.repeat((np.arange(seq) >= seq // 2)[None].astype(np.int64), batch, 0)
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {k: out[k] for k in names}
