// CUDA kernel for Unary (UnaryOperation codes in ir/OPS.md), matching src/backends/cpu/kernels/elementwise.cpp:
// every op on float32/float16/bfloat16 (computed in float32; ISINF/ISNAN give bool), ABS/NEG/SIGN on the
// signed integers int8/int32/int64 (wrapping, so ABS/NEG of the minimum stay the minimum), NOT on bool.
#include <cmath>

#include "backends/cuda/kernels/pointwise.cuh"

namespace kiln::cuda::kern {
namespace {

enum Un : int {
  kExp = 0, kLog = 1, kSqrt = 2, kRecip = 3, kAbs = 4, kNeg = 5, kSin = 6, kCos = 7, kTan = 8, kSinh = 9,
  kCosh = 10, kAsin = 11, kAcos = 12, kAtan = 13, kAsinh = 14, kAcosh = 15, kAtanh = 16, kCeil = 17,
  kFloor = 18, kErf = 19, kNot = 20, kSign = 21, kRound = 22, kIsInf = 23, kIsNan = 24
};

__device__ __forceinline__ float unary_f(int op, float v) {
  switch (op) {
    case kExp: return expf(v);
    case kLog: return logf(v);
    case kSqrt: return sqrtf(v);
    case kRecip: return 1.0f / v;
    case kAbs: return fabsf(v);
    case kNeg: return -v;
    case kSin: return sinf(v);
    case kCos: return cosf(v);
    case kTan: return tanf(v);
    case kSinh: return sinhf(v);
    case kCosh: return coshf(v);
    case kAsin: return asinf(v);
    case kAcos: return acosf(v);
    case kAtan: return atanf(v);
    case kAsinh: return asinhf(v);
    case kAcosh: return acoshf(v);
    case kAtanh: return atanhf(v);
    case kCeil: return ceilf(v);
    case kFloor: return floorf(v);
    case kErf: return erff(v);
    case kSign: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);  // keeps NaN and -0
    case kRound: return rintf(v);                                  // half to even
    default: return 0.0f;                                          // the host checked the op
  }
}

template <class T> struct FloatUnary {
  int op;
  __device__ __forceinline__ T operator()(T x) const { return from_f<T>(unary_f(op, to_f(x))); }
};
template <class T> struct Classify {
  bool inf;
  __device__ __forceinline__ uint8_t operator()(T x) const {
    const float v = to_f(x);
    return inf ? static_cast<uint8_t>(isinf(v)) : static_cast<uint8_t>(v != v);
  }
};
template <class T> struct IntUnary {
  int op;
  __device__ __forceinline__ T operator()(T v) const {
    switch (op) {
      case kAbs: return v < 0 ? wsub(T(0), v) : v;
      case kNeg: return wsub(T(0), v);
      default: return static_cast<T>((v > 0) - (v < 0));  // kSign
    }
  }
};
struct NotOp {
  __device__ __forceinline__ uint8_t operator()(uint8_t v) const { return v == 0; }
};

bool unary_ok(int op, DataType dt) {
  if (op == kNot) return dt == DataType::kBOOL;
  if (is_float_type(dt)) return op >= kExp && op <= kIsNan;
  if (dt == DataType::kINT8 || dt == DataType::kINT32 || dt == DataType::kINT64)
    return op == kAbs || op == kNeg || op == kSign;
  return false;
}

bool supports_unary(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && unary_ok(static_cast<int>(node.attrs.i("op", -1)), in[0].dtype);
}

void unary_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const int op = static_cast<int>(ctx.attrs().i("op", -1));
  if (!unary_ok(op, x.dtype))
    ctx.fail("unary op " + std::to_string(op) + " on " + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t n = x.numel();
  cudaStream_t s = ctx.stream();
  if (op == kNot) return launch_map1(s, x.as<uint8_t>(), y.as<uint8_t>(), n, NotOp{});
  if (is_float_type(x.dtype)) {
    dispatch_float(x.dtype, [&](auto tag) {
      using T = decltype(tag);
      if (op == kIsInf || op == kIsNan) launch_map1(s, x.as<T>(), y.as<uint8_t>(), n, Classify<T>{op == kIsInf});
      else launch_map1(s, x.as<T>(), y.as<T>(), n, FloatUnary<T>{op});
    });
    return;
  }
  switch (x.dtype) {
    case DataType::kINT8: return launch_map1(s, x.as<int8_t>(), y.as<int8_t>(), n, IntUnary<int8_t>{op});
    case DataType::kINT32: return launch_map1(s, x.as<int32_t>(), y.as<int32_t>(), n, IntUnary<int32_t>{op});
    default: return launch_map1(s, x.as<int64_t>(), y.as<int64_t>(), n, IntUnary<int64_t>{op});
  }
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Unary", &unary_kernel, &supports_unary);

}  // namespace kiln::cuda::kern
