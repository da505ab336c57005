// CUDA kernels for ElementWise (binary arithmetic, comparisons, logic, bit shifts; numpy broadcasting) and
// Select (ONNX Where). Semantics follow the CPU kernels in src/backends/cpu/kernels/elementwise.cpp:
// integer arithmetic wraps, integer division truncates like C and gives 0 for a zero divisor, MAX/MIN
// propagate NaN, MOD follows `fmod` (C) or the divisor's sign (Python).
//
// Dtypes: float32/float16/bfloat16 (computed in float32), int8/uint8/int32/int64, bool for AND/OR/XOR/EQUAL.
// float64 runs on the CPU backend (the `supports` predicate says no).
#include <cmath>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/pointwise.cuh"

namespace kiln::cuda::kern {
namespace {

enum Ew : int {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kSub = 4, kDiv = 5, kPow = 6, kFloorDiv = 7, kAnd = 8, kOr = 9,
  kXor = 10, kEqual = 11, kGreater = 12, kLess = 13, kMod = 64, kGreaterEqual = 65, kLessEqual = 66,
  kShiftLeft = 67, kShiftRight = 68
};

bool is_compare(int op) {
  return op == kEqual || op == kGreater || op == kLess || op == kGreaterEqual || op == kLessEqual;
}
bool is_logic(int op) { return op == kAnd || op == kOr || op == kXor; }
bool is_arith(int op) {
  return (op >= kSum && op <= kFloorDiv) || op == kMod;
}
bool is_shift(int op) { return op == kShiftLeft || op == kShiftRight; }

// ---------------------------------------------------------------------------------------------------------
// float arithmetic (float16/bfloat16 inputs are converted first).
__device__ __forceinline__ float arith_f(int op, bool c_fmod, float a, float b) {
  switch (op) {
    case kSum: return a + b;
    case kProd: return a * b;
    case kMax: return (a > b || a != a) ? a : b;
    case kMin: return (a < b || a != a) ? a : b;
    case kSub: return a - b;
    case kDiv: return a / b;
    case kPow: return powf(a, b);
    case kFloorDiv: return floorf(a / b);
    case kMod: {
      float r = fmodf(a, b);
      if (!c_fmod && r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
      return r;
    }
    default: return 0.0f;  // the host checked the op
  }
}

// Integer arithmetic.
template <class T> __device__ __forceinline__ T int_div(T a, T b) {
  if (b == 0) return 0;  // no trap on bad input
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return wsub(T(0), a);
  return static_cast<T>(a / b);
}
template <class T> __device__ __forceinline__ T int_mod(T a, T b) {  // C remainder (sign of a)
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return 0;
  return static_cast<T>(a % b);
}
template <class T> __device__ __forceinline__ T int_pow(T a, T b) {
  if constexpr (std::is_signed_v<T>) {
    if (b < 0) return a == 1 ? T(1) : a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0);
  }
  T r = 1, base = a;
  for (T e = b; e > 0; e >>= 1) {
    if (e & 1) r = wmul(r, base);
    base = wmul(base, base);
  }
  return r;
}
template <class T> __device__ __forceinline__ bool shift_ok(T b) {
  if constexpr (std::is_signed_v<T>)
    if (b < 0) return false;
  return static_cast<uint64_t>(b) < sizeof(T) * 8;
}
template <class T> __device__ __forceinline__ T arith_i(int op, bool c_fmod, T a, T b) {
  using U = std::make_unsigned_t<T>;
  switch (op) {
    case kSum: return wadd(a, b);
    case kProd: return wmul(a, b);
    case kMax: return a > b ? a : b;
    case kMin: return a < b ? a : b;
    case kSub: return wsub(a, b);
    case kDiv: return int_div(a, b);
    case kPow: return int_pow(a, b);
    case kFloorDiv: {
      T q = int_div(a, b);
      if constexpr (std::is_signed_v<T>)
        if (b != 0 && int_mod(a, b) != 0 && ((a < 0) != (b < 0))) q = static_cast<T>(q - 1);
      return q;
    }
    case kMod: {
      T r = int_mod(a, b);
      if constexpr (std::is_signed_v<T>)
        if (!c_fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    }
    case kShiftLeft:
      if (!shift_ok(b)) return T(0);
      return static_cast<T>(static_cast<U>(static_cast<U>(a) << static_cast<unsigned>(b)));
    case kShiftRight:
      if (!shift_ok(b)) {
        if constexpr (std::is_signed_v<T>) return a < 0 ? T(-1) : T(0);
        else return T(0);
      }
      return static_cast<T>(a >> static_cast<unsigned>(b));  // arithmetic for signed types
    default: return T(0);
  }
}

template <class T> struct ArithOp {
  int op;
  bool c_fmod;
  __device__ __forceinline__ T operator()(T a, T b) const {
    if constexpr (kFloatLike<T>) return from_f<T>(arith_f(op, c_fmod, to_f(a), to_f(b)));
    else return arith_i<T>(op, c_fmod, a, b);
  }
};

template <class T> struct CompareOp {
  int op;
  __device__ __forceinline__ uint8_t operator()(T x, T y) const {
    const Compute<T> a = load_c(x), b = load_c(y);
    switch (op) {
      case kEqual: return a == b;
      case kGreater: return a > b;
      case kLess: return a < b;
      case kGreaterEqual: return a >= b;
      default: return a <= b;  // kLessEqual
    }
  }
};

struct LogicOp {  // bool inputs (bytes 0/1)
  int op;
  __device__ __forceinline__ uint8_t operator()(uint8_t a, uint8_t b) const {
    const bool x = a != 0, y = b != 0;
    switch (op) {
      case kAnd: return x && y;
      case kOr: return x || y;
      case kXor: return x != y;
      default: return a == b;  // kEqual
    }
  }
};

// ---------------------------------------------------------------------------------------------------------
// Broadcast along leading dims: one operand ("full") has y's shape, the other ("part") has a suffix of it
// (its shape without leading 1s is y's last dims), so y[i] = f(full[i], part[i % period]) with period =
// part's element count (ViT's position embedding [1, 197, 768] added to [B, 197, 768], a bias over the last
// dims, a scalar). The general path walks a broadcast map, a 64-bit division and a scalar load per element;
// here each thread keeps its part index as a cursor that the grid-stride step moves with an add and a
// compare, over 16-byte vectors when the period is a whole number of vectors and every pointer is aligned
// (a vector then never straddles the period's end). kFullFirst: full is f's first operand.

template <int V, bool kFullFirst, class T, class U, class F>
__global__ void k_map2_period(const T* __restrict__ full, const T* __restrict__ part, U* __restrict__ y,
                              int64_t nvec, int64_t period_vec, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= nvec) return;
  int64_t p = i % period_vec;  // part's vector for y's vector i; stays below period_vec
  const int64_t step = stride % period_vec;
  const Vec<T, V>* fv = reinterpret_cast<const Vec<T, V>*>(full);
  const Vec<T, V>* pv = reinterpret_cast<const Vec<T, V>*>(part);
  Vec<U, V>* yv = reinterpret_cast<Vec<U, V>*>(y);
  for (; i < nvec; i += stride) {
    const Vec<T, V> a = fv[i], b = pv[p];
    Vec<U, V> r;
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = kFullFirst ? f(a.v[k], b.v[k]) : f(b.v[k], a.v[k]);
    yv[i] = r;
    p += step;
    if (p >= period_vec) p -= period_vec;
  }
}

// The element count of `part` when its shape without leading 1s equals the last dims of `ys`, else 0.
int64_t suffix_period(const Dims& part, const Dims& ys) {
  size_t lead = 0;
  while (lead < part.size() && part[lead] == 1) ++lead;
  const size_t k = part.size() - lead;
  if (k > ys.size()) return 0;
  for (size_t d = 0; d < k; ++d)
    if (part[lead + d] != ys[ys.size() - k + d]) return 0;
  return volume(part);
}

// Blocks for k_map2_period: at most one full set of resident blocks (2048 threads per SM), so the 64-bit
// divisions that start each thread's cursor are paid once per thread and the loop does the rest.
unsigned period_grid(const KernelContext& ctx, int64_t nvec) {
  const DeviceInfo& dev = ctx.res.device ? *ctx.res.device : current_device();
  const int64_t resident = static_cast<int64_t>(dev.sm_count) * (2048 / kThreads);
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((nvec + kThreads - 1) / kThreads, resident)));
}

template <bool kFullFirst, class T, class U, class F>
void launch_map2_period(const KernelContext& ctx, const T* full, const T* part, U* y, int64_t n, int64_t period, F f) {
  cudaStream_t s = ctx.stream();
  constexpr int kV = static_cast<int>(16 / sizeof(T)) > 1 ? static_cast<int>(16 / sizeof(T)) : 1;
  if (kV > 1 && period % kV == 0 && map_width<T, U>({full, part}, y) == kV) {
    k_map2_period<kV, kFullFirst, T, U, F><<<period_grid(ctx, n / kV), kThreads, 0, s>>>(full, part, y, n / kV,
                                                                                          period / kV, f);
  } else {
    k_map2_period<1, kFullFirst, T, U, F><<<period_grid(ctx, n), kThreads, 0, s>>>(full, part, y, n, period, f);
  }
  KILN_CUDA_LAUNCH_CHECK();
}

// y = f(a, b): the period path above when one operand is full and the other a suffix, else launch_map2.
template <class T, class U, class F>
void map2(const KernelContext& ctx, const TensorRef& a, const TensorRef& b, const TensorRef& y, F f) {
  const int64_t n = y.numel();
  const bool a_full = a.shape == y.shape, b_full = b.shape == y.shape;
  if (n > 0 && a_full != b_full) {
    const int64_t period = a_full ? suffix_period(b.shape, y.shape) : suffix_period(a.shape, y.shape);
    if (period > 0 && n % period == 0) {
      if (a_full) launch_map2_period<true>(ctx, a.as<T>(), b.as<T>(), y.as<U>(), n, period, f);
      else launch_map2_period<false>(ctx, b.as<T>(), a.as<T>(), y.as<U>(), n, period, f);
      return;
    }
  }
  launch_map2(ctx, a.as<T>(), a.shape, b.as<T>(), b.shape, y.as<U>(), y.shape, f);
}

bool elementwise_ok(int op, DataType dt) {
  if (dt == DataType::kBOOL) return is_logic(op) || op == kEqual;
  if (is_float_type(dt)) return is_arith(op) || is_compare(op);
  if (dt == DataType::kINT8 || dt == DataType::kUINT8 || dt == DataType::kINT32 || dt == DataType::kINT64)
    return is_arith(op) || is_compare(op) || is_shift(op);
  return false;
}

bool supports_elementwise(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.size() != 2 || in[0].dtype != in[1].dtype) return false;
  return elementwise_ok(static_cast<int>(node.attrs.i("op", -1)), in[0].dtype);
}

void elementwise_kernel(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& b = ctx.input(1);
  TensorRef& y = ctx.out[0];
  const int op = static_cast<int>(ctx.attrs().i("op", -1));
  if (a.dtype != b.dtype)
    ctx.fail(std::string("inputs must share a dtype, got ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  if (!elementwise_ok(op, a.dtype))
    ctx.fail("elementwise op " + std::to_string(op) + " on " + dtype_name(a.dtype) + " is not supported by the CUDA kernel");
  const bool c_fmod = ctx.attrs().i("fmod", 0) != 0;
  if (a.dtype == DataType::kBOOL) {
    map2<uint8_t, uint8_t>(ctx, a, b, y, LogicOp{op});
    return;
  }
  dispatch_numeric(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (is_compare(op)) {
      if (y.dtype != DataType::kBOOL) ctx.fail("comparison output must be bool");
      map2<T, uint8_t>(ctx, a, b, y, CompareOp<T>{op});
    } else {
      map2<T, T>(ctx, a, b, y, ArithOp<T>{op, c_fmod});
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Select: y = cond ? a : b, all three broadcast onto y. Pure data movement: dispatch on element size.

template <class T>
__global__ void k_select(const uint8_t* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                         T* __restrict__ y, int64_t n, Walk<3> w) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[3];
    w.offsets(i, off);
    y[i] = c[off[0]] ? a[off[1]] : b[off[2]];
  }
}

bool supports_select(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return in.size() == 3 && in[0].dtype == DataType::kBOOL && in[1].dtype == in[2].dtype &&
         dtype_size(in[1].dtype) <= 8;
}

void select_kernel(KernelContext& ctx) {
  const TensorRef& c = ctx.input(0);
  const TensorRef& a = ctx.input(1);
  const TensorRef& b = ctx.input(2);
  TensorRef& y = ctx.out[0];
  if (c.dtype != DataType::kBOOL) ctx.fail(std::string("input 0 must be bool, got ") + dtype_name(c.dtype));
  if (a.dtype != b.dtype) ctx.fail("inputs 1 and 2 must share a dtype");
  const int64_t n = y.numel();
  if (n <= 0) return;
  Walk<3> w = broadcast_walk<3>(ctx, y.shape, {&c.shape, &a.shape, &b.shape});
  const bool ok = dispatch_size(dtype_size(a.dtype), [&](auto tag) {
    using T = decltype(tag);
    k_select<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(c.as<uint8_t>(), a.as<T>(), b.as<T>(), y.as<T>(), n, w);
    KILN_CUDA_LAUNCH_CHECK();
  });
  if (!ok) ctx.fail(std::string("unsupported dtype ") + dtype_name(a.dtype));
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("ElementWise", &elementwise_kernel, &supports_elementwise);
KILN_REGISTER_CUDA_KERNEL("Select", &select_kernel, &supports_select);

}  // namespace kiln::cuda::kern
