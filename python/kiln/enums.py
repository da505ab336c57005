"""TensorRT-compatible enums. Integer values follow TensorRT's so scripts that compare ints keep working."""
import enum

import numpy as np


class _IntEnum(enum.IntEnum):
    def __repr__(self):
        return f"{type(self).__name__}.{self.name}"

    __str__ = __repr__


class DataType(_IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6  # float8 E4M3FN
    BF16 = 7
    INT64 = 8
    INT4 = 9
    FP4 = 10  # float4 E2M1
    E8M0 = 11  # float8 E8M0 (a power-of-two scale)
    # Kiln's own (ONNX models use them)
    DOUBLE = 64
    UINT16 = 65
    UINT32 = 66
    UINT64 = 67
    INT16 = 68
    FP8E5M2 = 69
    FP8E4M3FNUZ = 70
    FP8E5M2FNUZ = 71
    UINT4 = 72
    INT2 = 73
    UINT2 = 74

    @property
    def itemsize(self):
        """Bytes per element as TensorRT counts them (0.5 for 4-bit types; Kiln's buffers hold one per byte)."""
        return _ITEMSIZE[int(self)]


_ITEMSIZE = {0: 4, 1: 2, 2: 1, 3: 4, 4: 1, 5: 1, 6: 1, 7: 2, 8: 8, 9: 0.5, 10: 0.5, 11: 1, 64: 8, 65: 2, 66: 4,
             67: 8, 68: 2, 69: 1, 70: 1, 71: 1, 72: 0.5, 73: 0.25, 74: 0.25}

float32 = DataType.FLOAT
float16 = DataType.HALF
bfloat16 = DataType.BF16
int8 = DataType.INT8
int32 = DataType.INT32
int64 = DataType.INT64
bool = DataType.BOOL  # noqa: A001 - TensorRT exposes this name
uint8 = DataType.UINT8
fp8 = DataType.FP8
int4 = DataType.INT4
fp4 = DataType.FP4
e8m0 = DataType.E8M0

_NP = {
    DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8, DataType.INT32: np.int32,
    DataType.BOOL: np.bool_, DataType.UINT8: np.uint8, DataType.INT64: np.int64, DataType.DOUBLE: np.float64,
    DataType.INT16: np.int16, DataType.UINT16: np.uint16, DataType.UINT32: np.uint32, DataType.UINT64: np.uint64,
}

# Types numpy has no dtype for: the numpy dtype of the bytes Kiln keeps for them (one element per byte for
# the sub-byte types; signed 4/2-bit integers sign-extended), and the ml_dtypes name of the type itself.
_STORAGE = {
    DataType.BF16: (np.uint16, "bfloat16"),
    DataType.FP8: (np.uint8, "float8_e4m3fn"),
    DataType.FP8E5M2: (np.uint8, "float8_e5m2"),
    DataType.FP8E4M3FNUZ: (np.uint8, "float8_e4m3fnuz"),
    DataType.FP8E5M2FNUZ: (np.uint8, "float8_e5m2fnuz"),
    DataType.FP4: (np.uint8, "float4_e2m1fn"),
    DataType.E8M0: (np.uint8, "float8_e8m0fnu"),
    DataType.INT4: (np.int8, "int4"),
    DataType.UINT4: (np.uint8, "uint4"),
    DataType.INT2: (np.int8, "int2"),
    DataType.UINT2: (np.uint8, "uint2"),
}


def nptype(dtype):
    """The numpy type of a DataType; TypeError where numpy has none (BF16, FP8, FP4, E8M0, INT4, ...)."""
    dtype = DataType(int(dtype))
    if dtype not in _NP:
        raise TypeError(f"{dtype} has no numpy equivalent")
    return _NP[dtype]


def storage_nptype(dtype):
    """The numpy type of the bytes a Kiln buffer of `dtype` holds: nptype() where numpy has the type, else
    uint16 for BF16, uint8 for the float8/float4/E8M0 codes and UINT4/UINT2, int8 for INT4/INT2 (one element
    per byte, sign-extended)."""
    dtype = DataType(int(dtype))
    if dtype in _NP:
        return _NP[dtype]
    return _STORAGE[dtype][0]


def ml_dtypes_name(dtype):
    """The ml_dtypes type name of a DataType numpy lacks ("float8_e4m3fn", "int4", ...); None otherwise."""
    entry = _STORAGE.get(DataType(int(dtype)))
    return entry[1] if entry else None


def from_numpy_dtype(dt):
    dt = np.dtype(dt)
    for k, v in _NP.items():
        if np.dtype(v) == dt:
            return k
    raise TypeError(f"numpy dtype {dt} has no Kiln DataType")


def from_ml_dtypes_name(name):
    """The DataType of an ml_dtypes type name ("float8_e4m3fn", "int4", ...); None for other names."""
    for k, (_, n) in _STORAGE.items():
        if n == name:
            return k
    return None


class TensorIOMode(_IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class TensorLocation(_IntEnum):
    DEVICE = 0
    HOST = 1


class NetworkDefinitionCreationFlag(_IntEnum):
    EXPLICIT_BATCH = 0
    EXPLICIT_PRECISION = 1 + 64  # removed in TensorRT 10; accepted and ignored
    STRONGLY_TYPED = 1


class MemoryPoolType(_IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3
    TACTIC_DRAM = 4
    TACTIC_SHARED_MEMORY = 5


class BuilderFlag(_IntEnum):
    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 5
    DISABLE_TIMING_CACHE = 6
    TF32 = 7
    SPARSE_WEIGHTS = 8
    SAFETY_SCOPE = 9
    OBEY_PRECISION_CONSTRAINTS = 10
    PREFER_PRECISION_CONSTRAINTS = 11
    DIRECT_IO = 12
    REJECT_EMPTY_ALGORITHMS = 13
    VERSION_COMPATIBLE = 14
    EXCLUDE_LEAN_RUNTIME = 15
    FP8 = 16
    ERROR_ON_TIMING_CACHE_MISS = 17
    BF16 = 18


class DeviceType(_IntEnum):
    GPU = 0
    DLA = 1
    CPU = 64  # Kiln's own


class ProfilingVerbosity(_IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class ActivationType(_IntEnum):
    RELU = 0
    SIGMOID = 1
    TANH = 2
    LEAKY_RELU = 3
    ELU = 4
    SELU = 5
    SOFTSIGN = 6
    SOFTPLUS = 7
    CLIP = 8
    HARD_SIGMOID = 9
    SCALED_TANH = 10
    THRESHOLDED_RELU = 11
    GELU_ERF = 12
    GELU_TANH = 13


class PoolingType(_IntEnum):
    MAX = 0
    AVERAGE = 1
    MAX_AVERAGE_BLEND = 2


class ElementWiseOperation(_IntEnum):
    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    SUB = 4
    DIV = 5
    POW = 6
    FLOOR_DIV = 7
    AND = 8
    OR = 9
    XOR = 10
    EQUAL = 11
    GREATER = 12
    LESS = 13


class UnaryOperation(_IntEnum):
    EXP = 0
    LOG = 1
    SQRT = 2
    RECIP = 3
    ABS = 4
    NEG = 5
    SIN = 6
    COS = 7
    TAN = 8
    SINH = 9
    COSH = 10
    ASIN = 11
    ACOS = 12
    ATAN = 13
    ASINH = 14
    ACOSH = 15
    ATANH = 16
    CEIL = 17
    FLOOR = 18
    ERF = 19
    NOT = 20
    SIGN = 21
    ROUND = 22
    ISINF = 23
    ISNAN = 24


class ReduceOperation(_IntEnum):
    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    AVG = 4


class MatrixOperation(_IntEnum):
    NONE = 0
    TRANSPOSE = 1
    VECTOR = 2


class ScaleMode(_IntEnum):
    UNIFORM = 0
    CHANNEL = 1
    ELEMENTWISE = 2


class PaddingMode(_IntEnum):
    EXPLICIT_ROUND_DOWN = 0
    EXPLICIT_ROUND_UP = 1
    SAME_UPPER = 2
    SAME_LOWER = 3


class TopKOperation(_IntEnum):
    MAX = 0
    MIN = 1


class InterpolationMode(_IntEnum):
    NEAREST = 0
    LINEAR = 1
    CUBIC = 2


ResizeMode = InterpolationMode


class ResizeCoordinateTransformation(_IntEnum):
    ALIGN_CORNERS = 0
    ASYMMETRIC = 1
    HALF_PIXEL = 2


class ResizeSelector(_IntEnum):
    FORMULA = 0
    UPPER = 1


class ResizeRoundMode(_IntEnum):
    HALF_UP = 0
    HALF_DOWN = 1
    FLOOR = 2
    CEIL = 3


class SampleMode(_IntEnum):
    STRICT_BOUNDS = 0
    WRAP = 1
    CLAMP = 2
    FILL = 3
    REFLECT = 4


SliceMode = SampleMode


class GatherMode(_IntEnum):
    DEFAULT = 0
    ELEMENT = 1
    ND = 2


class FillOperation(_IntEnum):
    LINSPACE = 0
    RANDOM_UNIFORM = 1
    RANDOM_NORMAL = 2


class LayerType(_IntEnum):
    CONVOLUTION = 0
    FULLY_CONNECTED = 1
    ACTIVATION = 2
    POOLING = 3
    LRN = 4
    SCALE = 5
    SOFTMAX = 6
    DECONVOLUTION = 7
    CONCATENATION = 8
    ELEMENTWISE = 9
    PLUGIN = 10
    UNARY = 11
    PADDING = 12
    SHUFFLE = 13
    REDUCE = 14
    TOPK = 15
    GATHER = 16
    MATRIX_MULTIPLY = 17
    RAGGED_SOFTMAX = 18
    CONSTANT = 19
    IDENTITY = 20
    PLUGIN_V2 = 21
    SLICE = 22
    SHAPE = 23
    PARAMETRIC_RELU = 24
    RESIZE = 25
    TRIP_LIMIT = 26
    RECURRENCE = 27
    ITERATOR = 28
    LOOP_OUTPUT = 29
    SELECT = 30
    FILL = 31
    QUANTIZE = 32
    DEQUANTIZE = 33
    CONDITION = 34
    CONDITIONAL_INPUT = 35
    CONDITIONAL_OUTPUT = 36
    SCATTER = 37
    EINSUM = 38
    ASSERTION = 39
    ONE_HOT = 40
    NON_ZERO = 41
    GRID_SAMPLE = 42
    NMS = 43
    REVERSE_SEQUENCE = 44
    NORMALIZATION = 45
    CAST = 46
    # Kiln ops with no TensorRT layer of their own
    KILN_OP = 100


class ErrorCode(_IntEnum):
    SUCCESS = 0
    INTERNAL_ERROR = 1
    MEM_ALLOC_FAILED = 2
    MODEL_DESERIALIZE_FAILED = 3
    INVALID_VALUE = 4
    INVALID_GRAPH = 5
    INVALID_NODE = 6
    UNSUPPORTED_GRAPH = 7
    UNSUPPORTED_NODE = 8
    UNSUPPORTED_NODE_ATTR = 9
    UNSUPPORTED_NODE_INPUT = 10
    UNSUPPORTED_NODE_DATATYPE = 11
    UNSUPPORTED_NODE_DYNAMIC = 12
    UNSUPPORTED_NODE_SHAPE = 13
    REFIT_FAILED = 14
