"""INetworkDefinition, ITensor and the layer classes over the C++ network (kiln._kiln.Network).

A layer's TensorRT properties are its IR node's attributes (src/ir/OPS.md); the property descriptors below
translate names, enums and axis bitmasks."""
import numpy as np

from . import _kiln
from .dims import Dims, as_array, as_dims
from .enums import (ActivationType, DataType, ElementWiseOperation, FillOperation, GatherMode, InterpolationMode,
                    LayerType, MatrixOperation, PaddingMode, PoolingType, ReduceOperation, ResizeCoordinateTransformation,
                    ResizeRoundMode, ResizeSelector, SampleMode, ScaleMode, TopKOperation, UnaryOperation)


def _mask(axes):
    m = 0
    for a in axes or []:
        m |= 1 << int(a)
    return m


def _axes(mask):
    return [i for i in range(32) if int(mask) & (1 << i)]


class ITensor:
    def __init__(self, network, handle):
        self._network = network
        self._h = handle

    def __eq__(self, other):
        # pybind11 hands back the same wrapper object for the same C++ tensor while one is alive.
        return isinstance(other, ITensor) and self._h is other._h

    def __hash__(self):
        return hash(id(self._h))

    @property
    def name(self):
        return self._h.name

    @name.setter
    def name(self, value):
        self._h.name = str(value)

    @property
    def shape(self):
        self._network._refresh()
        return Dims(self._h.shape)

    @shape.setter
    def shape(self, value):
        raise AttributeError("set a network input's shape when adding it; other shapes are inferred")

    @property
    def dtype(self):
        self._network._refresh()
        return DataType(self._h.dtype)

    @dtype.setter
    def dtype(self, value):
        self._h.set_dtype(int(value))
        self._network._dirty = True

    @property
    def is_network_input(self):
        return self._h.is_input

    @property
    def is_network_output(self):
        return self._h.is_output

    @property
    def is_shape_tensor(self):
        return False

    @property
    def is_execution_tensor(self):
        return True

    def __repr__(self):
        return f"<kiln.ITensor {self.name!r} {self.dtype} {tuple(self.shape)}>"


class _Attr:
    """A layer property stored as a node attribute, converted on the way in and out."""

    def __init__(self, key, get=None, put=None, default=None):
        self.key, self.get, self.put, self.default = key, get, put, default

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        v = layer._h.get_attr(self.key)
        if v is None:
            return self.default
        return self.get(v) if self.get else v

    def __set__(self, layer, value):
        layer._h.set_attr(self.key, self.put(value) if self.put else value)
        layer._network._dirty = True


def _dims_attr(key):
    return _Attr(key, get=Dims, put=as_dims)


def _enum_attr(key, enum):
    return _Attr(key, get=lambda v: enum(int(v)), put=int)


def _hw(key):  # TensorRT 8's 2-D properties (stride, padding, ...)
    return _Attr(key, get=lambda v: Dims(v[-2:]) if len(v) >= 2 else Dims(v), put=as_dims)


class ILayer:
    type = LayerType.KILN_OP

    def __init__(self, network, handle):
        self._network = network
        self._h = handle

    @property
    def name(self):
        return self._h.name

    @name.setter
    def name(self, v):
        self._h.name = str(v)

    @property
    def num_inputs(self):
        return self._h.num_inputs

    @property
    def num_outputs(self):
        return self._h.num_outputs

    def get_input(self, index):
        t = self._h.get_input(index)
        return None if t is None else self._network._tensor(t)

    def get_output(self, index):
        t = self._h.get_output(index)
        return None if t is None else self._network._tensor(t)

    def set_input(self, index, tensor):
        self._h.set_input(index, tensor._h)
        self._network._dirty = True

    @property
    def precision(self):
        p = self._h.precision
        return DataType.FLOAT if p is None else DataType(p)

    @precision.setter
    def precision(self, dtype):
        self._h.precision = int(dtype)

    @property
    def precision_is_set(self):
        return self._h.precision is not None

    def reset_precision(self):
        self._h.precision = None

    def set_output_type(self, index, dtype):
        self._h.set_output_type(index, int(dtype))

    def get_output_type(self, index):
        return DataType(self._h.get_output_type(index))

    def output_type_is_set(self, index):
        return self._h.output_type_is_set(index)

    def __repr__(self):
        return f"<kiln.{type(self).__name__} {self.name!r}>"


class _WeightsAttr:
    """kernel / bias / shift / scale / power: constant inputs owned by the layer."""

    def __init__(self, index):
        self.index = index

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        from .dims import Weights
        a = layer._network._c.weights_of(layer._h, self.index)
        return Weights(a) if a is not None else Weights()

    def __set__(self, layer, value):
        a = as_array(value)
        if a is None:
            a = np.zeros((0,), np.float32)
        layer._network._c.set_weights(layer._h, self.index, a)
        layer._network._dirty = True


class IConvolutionLayer(ILayer):
    type = LayerType.CONVOLUTION
    num_output_maps = _Attr("num_output_maps")
    kernel_size_nd = _dims_attr("kernel")
    stride_nd = _dims_attr("stride")
    dilation_nd = _dims_attr("dilation")
    pre_padding = _dims_attr("pre_padding")
    post_padding = _dims_attr("post_padding")
    num_groups = _Attr("groups")
    padding_mode = _enum_attr("padding_mode", PaddingMode)
    kernel_size = _hw("kernel")
    stride = _hw("stride")
    dilation = _hw("dilation")
    kernel = _WeightsAttr(1)
    bias = _WeightsAttr(2)

    @property
    def padding_nd(self):
        return Dims(self._h.get_attr("pre_padding"))

    @padding_nd.setter
    def padding_nd(self, v):
        self.pre_padding = v
        self.post_padding = v

    padding = property(lambda self: Dims(self.padding_nd[-2:]), lambda self, v: setattr(self, "padding_nd", v))


class IDeconvolutionLayer(IConvolutionLayer):
    type = LayerType.DECONVOLUTION


class IPoolingLayer(ILayer):
    type = LayerType.POOLING
    window_size_nd = _dims_attr("window")
    stride_nd = _dims_attr("stride")
    pre_padding = _dims_attr("pre_padding")
    post_padding = _dims_attr("post_padding")
    padding_mode = _enum_attr("padding_mode", PaddingMode)
    average_count_excludes_padding = _Attr("exclude_pad", get=bool, put=int)
    blend_factor = _Attr("blend_factor", put=float)
    window_size = _hw("window")
    stride = _hw("stride")

    @property
    def padding_nd(self):
        return Dims(self._h.get_attr("pre_padding"))

    @padding_nd.setter
    def padding_nd(self, v):
        self.pre_padding = v
        self.post_padding = v

    padding = property(lambda self: Dims(self.padding_nd[-2:]), lambda self, v: setattr(self, "padding_nd", v))


# The pooling/activation "type" property clashes with ILayer.type (LayerType): TensorRT resolves it
# per class; Kiln does the same with a descriptor that answers the layer kind on the class and the
# operation on instances only where TensorRT does.
class _KindOrAttr:
    def __init__(self, layer_type, key, enum):
        self.layer_type, self.key, self.enum = layer_type, key, enum

    def __get__(self, layer, owner=None):
        if layer is None:
            return self.layer_type
        return self.enum(int(layer._h.get_attr(self.key)))

    def __set__(self, layer, value):
        layer._h.set_attr(self.key, int(value))
        layer._network._dirty = True


IPoolingLayer.type = _KindOrAttr(LayerType.POOLING, "type", PoolingType)


class IActivationLayer(ILayer):
    type = _KindOrAttr(LayerType.ACTIVATION, "type", ActivationType)
    alpha = _Attr("alpha", put=float)
    beta = _Attr("beta", put=float)


class IElementWiseLayer(ILayer):
    type = LayerType.ELEMENTWISE
    op = _enum_attr("op", ElementWiseOperation)


class IUnaryLayer(ILayer):
    type = LayerType.UNARY
    op = _enum_attr("op", UnaryOperation)


class IMatrixMultiplyLayer(ILayer):
    type = LayerType.MATRIX_MULTIPLY

    def get_operation(self, index):
        return MatrixOperation(int(self._h.get_attr("op_a" if index == 0 else "op_b")))

    def set_operation(self, index, op):
        self._h.set_attr("op_a" if index == 0 else "op_b", int(op))
        self._network._dirty = True

    op0 = property(lambda s: s.get_operation(0), lambda s, v: s.set_operation(0, v))
    op1 = property(lambda s: s.get_operation(1), lambda s, v: s.set_operation(1, v))


class IShuffleLayer(ILayer):
    type = LayerType.SHUFFLE
    first_transpose = _Attr("first_transpose", get=tuple, put=as_dims, default=None)
    second_transpose = _Attr("second_transpose", get=tuple, put=as_dims, default=None)
    zero_is_placeholder = _Attr("zero_is_placeholder", get=bool, put=int)

    @property
    def reshape_dims(self):
        return Dims(self._h.get_attr("reshape_dims")) if self._h.get_attr("has_reshape") else None

    @reshape_dims.setter
    def reshape_dims(self, dims):
        self._h.set_attr("reshape_dims", as_dims(dims))
        self._h.set_attr("has_reshape", 1)
        self._network._dirty = True


class IConcatenationLayer(ILayer):
    type = LayerType.CONCATENATION
    axis = _Attr("axis")


class ISliceLayer(ILayer):
    type = LayerType.SLICE
    start = _dims_attr("start")
    shape = _dims_attr("size")
    stride = _dims_attr("stride")
    mode = _enum_attr("mode", SampleMode)


class IGatherLayer(ILayer):
    type = LayerType.GATHER
    axis = _Attr("axis")
    mode = _enum_attr("mode", GatherMode)
    num_elementwise_dims = _Attr("num_elementwise_dims")


class IReduceLayer(ILayer):
    type = LayerType.REDUCE
    op = _enum_attr("op", ReduceOperation)
    axes = _Attr("axes", get=_mask, put=_axes)
    keep_dims = _Attr("keep_dims", get=bool, put=int)


class ISoftMaxLayer(ILayer):
    type = LayerType.SOFTMAX
    axes = _Attr("axis", get=lambda a: 1 << int(a), put=lambda m: _axes(m)[0] if _axes(m) else 0)


class ICastLayer(ILayer):
    type = LayerType.CAST
    to_type = _enum_attr("to", DataType)


class IIdentityLayer(ILayer):
    type = LayerType.IDENTITY


class IShapeLayer(ILayer):
    type = LayerType.SHAPE


class ISelectLayer(ILayer):
    type = LayerType.SELECT


class IConstantLayer(ILayer):
    type = LayerType.CONSTANT

    @property
    def shape(self):
        return Dims(self._h.get_output(0).shape)

    @property
    def weights(self):
        from .dims import Weights
        return Weights(self._h.get_attr("value"))

    @weights.setter
    def weights(self, w):
        a = as_array(w)
        self._h.set_attr_tensor("value", a.reshape(tuple(self.shape)), None)
        self._network._dirty = True


class IResizeLayer(ILayer):
    type = LayerType.RESIZE
    resize_mode = _enum_attr("mode", InterpolationMode)
    coordinate_transformation = _enum_attr("coordinate_transformation", ResizeCoordinateTransformation)
    nearest_rounding = _enum_attr("nearest_rounding", ResizeRoundMode)
    cubic_coeff = _Attr("cubic_coeff", put=float, default=-0.75)
    exclude_outside = _Attr("exclude_outside", get=bool, put=int, default=False)
    selector_for_single_pixel = _Attr("selector_for_single_pixel", get=lambda v: ResizeSelector(int(v)), put=int,
                                      default=ResizeSelector.FORMULA)

    @property
    def shape(self):
        v = self._h.get_attr("sizes")
        return Dims(v) if v is not None else None

    @shape.setter
    def shape(self, dims):
        self._h.set_attr("sizes", as_dims(dims))
        self._h.set_attr("scales", [])
        self._network._dirty = True

    @property
    def scales(self):
        v = self._h.get_attr("scales")
        return list(v) if v else None

    @scales.setter
    def scales(self, s):
        self._h.set_attr("scales", [float(x) for x in s])
        self._h.set_attr("sizes", [])
        self._network._dirty = True


class IPaddingLayer(ILayer):
    type = LayerType.PADDING

    def _pads(self):
        return list(self._h.get_attr("pads"))

    @property
    def pre_padding_nd(self):
        p = self._pads()
        r = len(p) // 2
        return Dims(p[r - self._k:r])

    @property
    def post_padding_nd(self):
        p = self._pads()
        return Dims(p[len(p) - self._k:])

    @pre_padding_nd.setter
    def pre_padding_nd(self, v):
        p = self._pads()
        r = len(p) // 2
        v = as_dims(v)
        p[r - len(v):r] = v
        self._h.set_attr("pads", p)
        self._network._dirty = True

    @post_padding_nd.setter
    def post_padding_nd(self, v):
        p = self._pads()
        v = as_dims(v)
        p[len(p) - len(v):] = v
        self._h.set_attr("pads", p)
        self._network._dirty = True

    _k = 2


class ITopKLayer(ILayer):
    type = LayerType.TOPK
    op = _enum_attr("op", TopKOperation)
    k = _Attr("k")
    axes = _Attr("axis", get=lambda a: 1 << int(a), put=lambda m: _axes(m)[0] if _axes(m) else 0)


class IScaleLayer(ILayer):
    type = LayerType.SCALE
    mode = _enum_attr("mode", ScaleMode)
    channel_axis = _Attr("channel_axis")
    shift = _WeightsAttr(1)
    scale = _WeightsAttr(2)
    power = _WeightsAttr(3)


class INormalizationLayer(ILayer):
    type = LayerType.NORMALIZATION
    epsilon = _Attr("epsilon", put=float)
    axes = _Attr("axes", get=_mask, put=_axes)
    num_groups = _Attr("num_groups")
    compute_precision = DataType.FLOAT


class IEinsumLayer(ILayer):
    type = LayerType.EINSUM
    equation = _Attr("equation", put=str)


class IFillLayer(ILayer):
    type = LayerType.FILL
    shape = _dims_attr("shape")
    operation = _enum_attr("op", FillOperation)
    alpha = _Attr("alpha", put=float)
    beta = _Attr("beta", get=lambda v: v[0] if isinstance(v, list) and len(v) == 1 else v,
                 put=lambda v: [float(x) for x in (v if isinstance(v, (list, tuple)) else [v])])

    def set_alpha(self, v):
        self.alpha = v

    def set_beta(self, v):
        self.beta = v


class IFullyConnectedLayer(IConvolutionLayer):
    type = LayerType.FULLY_CONNECTED
    num_output_channels = _Attr("num_output_maps")


_LAYER_CLASS = {
    "Convolution": IConvolutionLayer, "Deconvolution": IDeconvolutionLayer, "Pooling": IPoolingLayer,
    "Activation": IActivationLayer, "ElementWise": IElementWiseLayer, "Unary": IUnaryLayer,
    "MatrixMultiply": IMatrixMultiplyLayer, "Shuffle": IShuffleLayer, "Concatenation": IConcatenationLayer,
    "Slice": ISliceLayer, "Gather": IGatherLayer, "Reduce": IReduceLayer, "SoftMax": ISoftMaxLayer,
    "Cast": ICastLayer, "Identity": IIdentityLayer, "Shape": IShapeLayer, "Select": ISelectLayer,
    "Constant": IConstantLayer, "Resize": IResizeLayer, "Pad": IPaddingLayer, "TopK": ITopKLayer,
    "Scale": IScaleLayer, "Normalization": INormalizationLayer, "Einsum": IEinsumLayer, "Fill": IFillLayer,
}


def _kw(kwargs, *names, default=None):
    for n in names:
        if n in kwargs:
            return kwargs.pop(n)
    return default


class INetworkDefinition:
    def __init__(self, builder, flags=0):
        from .logger import bridge_of
        self._builder = builder
        self._c = _kiln.Network(bridge_of(builder.logger), int(flags))
        self._tensors = {}
        self._layers = {}
        self._dirty = False

    # -- handles ---------------------------------------------------------------------------------
    def _tensor(self, h):
        t = self._tensors.get(id(h))
        if t is None or t._h is not h:
            t = ITensor(self, h)
            self._tensors[id(h)] = t
        return t

    def _layer(self, h, cls=None):
        if h is None:
            return None
        key = (h.name, id(h))
        layer = self._layers.get(key)
        if layer is None:
            cls = cls or _LAYER_CLASS.get(h.op, ILayer)
            layer = cls(self, h)
            self._layers[key] = layer
        return layer

    def _refresh(self):
        if self._dirty:
            self._dirty = False
            self._c.infer_shapes()

    def _h(self, t):
        # Properties set since the last add may change input shapes: re-infer before the next layer.
        self._refresh()
        if t is None:
            raise TypeError("expected an ITensor, got None")
        if not isinstance(t, ITensor):
            raise TypeError(f"expected an ITensor, got {type(t).__name__}")
        return t._h

    # -- properties ------------------------------------------------------------------------------
    name = property(lambda s: s._c.name, lambda s, v: setattr(s._c, "name", str(v)))
    num_layers = property(lambda s: len(s._c.layers()))
    num_inputs = property(lambda s: len(s._c.inputs()))
    num_outputs = property(lambda s: len(s._c.outputs()))
    has_implicit_batch_dimension = property(lambda s: False)
    has_explicit_precision = property(lambda s: False)

    def get_flag(self, flag):
        return int(flag) == 0 or (int(flag) == 1 and self._c.strongly_typed)

    @property
    def flags(self):
        return 1 | (2 if self._c.strongly_typed else 0)

    def get_input(self, index):
        ins = self._c.inputs()
        return self._tensor(ins[index]) if 0 <= index < len(ins) else None

    def get_output(self, index):
        outs = self._c.outputs()
        return self._tensor(outs[index]) if 0 <= index < len(outs) else None

    def get_layer(self, index):
        layers = self._c.layers()
        return self._layer(layers[index]) if 0 <= index < len(layers) else None

    def __len__(self):
        return self.num_layers

    def __getitem__(self, index):
        if index < 0:
            index += self.num_layers
        if not 0 <= index < self.num_layers:
            raise IndexError(f"layer index {index} out of range")
        return self.get_layer(index)

    def __iter__(self):
        for i in range(self.num_layers):
            yield self.get_layer(i)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    # -- inputs and outputs ----------------------------------------------------------------------
    def add_input(self, name, dtype, shape):
        h = self._c.add_input(str(name), int(dtype), as_dims(shape))
        return None if h is None else self._tensor(h)

    def mark_output(self, tensor):
        self._c.mark_output(self._h(tensor))

    def unmark_output(self, tensor):
        self._c.unmark_output(self._h(tensor))

    # -- layers ----------------------------------------------------------------------------------
    def _add(self, h, cls=None):
        if h is None:
            return None
        self._dirty = True
        return self._layer(h, cls)

    def add_convolution_nd(self, input, num_output_maps, kernel_shape, kernel, bias=None):
        w = as_array(kernel)
        return self._add(self._c.add_convolution_nd(self._h(input), int(num_output_maps), as_dims(kernel_shape), w,
                                                    as_array(bias)))

    def add_convolution(self, input, num_output_maps, kernel_shape, kernel, bias=None):
        return self.add_convolution_nd(input, num_output_maps, kernel_shape, kernel, bias)

    def add_deconvolution_nd(self, input, num_output_maps, kernel_shape, kernel, bias=None):
        return self._add(self._c.add_deconvolution_nd(self._h(input), int(num_output_maps), as_dims(kernel_shape),
                                                      as_array(kernel), as_array(bias)))

    def add_deconvolution(self, input, num_output_maps, kernel_shape, kernel, bias=None):
        return self.add_deconvolution_nd(input, num_output_maps, kernel_shape, kernel, bias)

    def add_fully_connected(self, input, num_outputs, kernel, bias=None):
        return self._add(self._c.add_fully_connected(self._h(input), int(num_outputs), as_array(kernel),
                                                     as_array(bias)), IFullyConnectedLayer)

    def add_pooling_nd(self, input, type, window_size):
        return self._add(self._c.add_pooling_nd(self._h(input), int(type), as_dims(window_size)))

    def add_pooling(self, input, type, window_size):
        return self.add_pooling_nd(input, type, window_size)

    def add_activation(self, input, type):
        return self._add(self._c.add_activation(self._h(input), int(type)))

    def add_elementwise(self, input1, input2, op):
        return self._add(self._c.add_elementwise(self._h(input1), self._h(input2), int(op)))

    def add_unary(self, input, op):
        return self._add(self._c.add_unary(self._h(input), int(op)))

    def add_matrix_multiply(self, input0, op0, input1, op1):
        return self._add(self._c.add_matrix_multiply(self._h(input0), int(op0), self._h(input1), int(op1)))

    def add_shuffle(self, input):
        return self._add(self._c.add_shuffle(self._h(input)))

    def add_concatenation(self, inputs):
        return self._add(self._c.add_concatenation([self._h(t) for t in inputs]))

    def add_slice(self, input, start, shape, stride):
        return self._add(self._c.add_slice(self._h(input), as_dims(start), as_dims(shape), as_dims(stride)))

    def add_gather(self, input, indices, axis):
        return self._add(self._c.add_gather(self._h(input), self._h(indices), int(axis), 0))

    def add_gather_v2(self, input, indices, mode):
        return self._add(self._c.add_gather(self._h(input), self._h(indices), 0, int(mode)))

    def add_reduce(self, input, op, axes, keep_dims):
        return self._add(self._c.add_reduce(self._h(input), int(op), int(axes), bool(keep_dims)))

    def add_softmax(self, input):
        return self._add(self._c.add_softmax(self._h(input)))

    def add_cast(self, input, to_type):
        return self._add(self._c.add_cast(self._h(input), int(to_type)))

    def add_identity(self, input):
        return self._add(self._c.add_identity(self._h(input)))

    def add_shape(self, input):
        return self._add(self._c.add_shape(self._h(input)))

    def add_select(self, condition, then_input, else_input):
        return self._add(self._c.add_select(self._h(condition), self._h(then_input), self._h(else_input)))

    def add_resize(self, input):
        return self._add(self._c.add_resize(self._h(input)))

    def add_padding_nd(self, input, pre_padding, post_padding):
        return self._add(self._c.add_padding_nd(self._h(input), as_dims(pre_padding), as_dims(post_padding)))

    def add_padding(self, input, pre_padding, post_padding):
        return self.add_padding_nd(input, pre_padding, post_padding)

    def add_topk(self, input, op, k, axes):
        return self._add(self._c.add_topk(self._h(input), int(op), int(k), int(axes)))

    def add_scale(self, input, mode, shift=None, scale=None, power=None):
        return self._add(self._c.add_scale(self._h(input), int(mode), as_array(shift), as_array(scale),
                                           as_array(power), 1))

    def add_scale_nd(self, input, mode, shift=None, scale=None, power=None, channel_axis=1):
        return self._add(self._c.add_scale(self._h(input), int(mode), as_array(shift), as_array(scale),
                                           as_array(power), int(channel_axis)))

    def add_normalization(self, input, scale, bias, axesMask):
        return self._add(self._c.add_normalization(self._h(input), self._h(scale), self._h(bias), int(axesMask)))

    def add_einsum(self, inputs, equation):
        return self._add(self._c.add_einsum([self._h(t) for t in inputs], str(equation)))

    def add_fill(self, shape, op, output_type=DataType.FLOAT):
        return self._add(self._c.add_fill(as_dims(shape), int(op), int(output_type)))

    def add_constant(self, shape, weights):
        a = as_array(weights)
        if a is None:
            a = np.zeros((0,), np.float32)
        return self._add(self._c.add_constant(as_dims(shape), a, None))
