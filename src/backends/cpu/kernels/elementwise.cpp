// CPU kernels for the pointwise ops: Identity, Activation, ElementWise, Unary, Select, Scale (Cast: cast.cpp).
//
// Dispatch on op and dtype happens once per call (switches over templates); the loops themselves are plain
// contiguous loops over one broadcast run, or vm:: vector loops for the transcendental float32 functions.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/activation.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "backends/cpu/kernels/vec_math.h"
#include "ir/activation_params.h"
#include "ir/host_tensor.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

#if KILN_HAVE_AVX2_PATH
#include <immintrin.h>
#endif

#pragma GCC diagnostic ignored "-Wpsabi"

namespace kiln::cpu {
namespace {

using Bool = uint8_t;  // bool tensors hold one byte per element, 0 or 1

// Calls f(T{}) for the C++ type of dt among the given numeric dtypes; fails otherwise.
template <class F>
void dispatch_numeric(const KernelContext& ctx, DataType dt, F&& f, bool small_ints = true) {
  switch (dt) {
    case DataType::kFLOAT: return f(float{});
    case DataType::kDOUBLE: return f(double{});
    case DataType::kINT32: return f(int32_t{});
    case DataType::kINT64: return f(int64_t{});
    case DataType::kINT8:
      if (small_ints) return f(int8_t{});
      break;
    case DataType::kUINT8:
      if (small_ints) return f(uint8_t{});
      break;
    case DataType::kINT16:
      if (small_ints) return f(int16_t{});
      break;
    case DataType::kUINT16:
      if (small_ints) return f(uint16_t{});
      break;
    case DataType::kUINT32: return f(uint32_t{});
    case DataType::kUINT64: return f(uint64_t{});
    default: break;
  }
  ctx.fail(std::string("the CPU kernel does not support ") + dtype_name(dt) + " inputs");
}

// Wrapping integer arithmetic (no signed-overflow UB); plain arithmetic for floats.
template <class T> inline T wadd(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) + static_cast<std::make_unsigned_t<T>>(b));
  else return a + b;
}
template <class T> inline T wsub(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) - static_cast<std::make_unsigned_t<T>>(b));
  else return a - b;
}
template <class T> inline T wmul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    using W = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, U>;  // avoid int promotion
    return static_cast<T>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b)));
  } else {
    return a * b;
  }
}

// ======================================= Identity =========================================================

void copy_parallel(ThreadPool* pool, void* dst, const void* src, size_t bytes) {
  if (dst == src || bytes == 0) return;
  constexpr int64_t kBlock = 1 << 18;
  const int64_t blocks = static_cast<int64_t>((bytes + kBlock - 1) / kBlock);
  parallel_range(pool, blocks, 4, [&](int64_t b, int64_t e) {
    const size_t lo = static_cast<size_t>(b) * kBlock, hi = std::min(bytes, static_cast<size_t>(e) * kBlock);
    std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, hi - lo);
  });
}

void identity_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  copy_parallel(ctx.pool, ctx.out[0].data, x.data, x.nbytes());
}

// ====================================== float32 vector maps ===============================================

template <class Op> KILN_TARGET_AVX512 void map_avx512(const Op& op, const float* x, float* y, int64_t n) {
  vm::map<vm::f16>(x, y, n, op);
}
template <class Op> KILN_TARGET_AVX2 void map_avx2(const Op& op, const float* x, float* y, int64_t n) {
  vm::map<vm::f8>(x, y, n, op);
}
template <class Op> void map_base(const Op& op, const float* x, float* y, int64_t n) {
  vm::map<vm::f4>(x, y, n, op);
}
// y = op(x) over n floats, in parallel, with the widest vectors the CPU has.
template <class Op> void map_f32(ThreadPool* pool, const Op& op, const float* x, float* y, int64_t n, int64_t cost = 4) {
  const vm::Isa isa = vm::isa();
  parallel_range(pool, n, grain_for(cost), [&](int64_t b, int64_t e) {
    if (isa == vm::Isa::kAvx512) map_avx512(op, x + b, y + b, e - b);
    else if (isa == vm::Isa::kAvx2) map_avx2(op, x + b, y + b, e - b);
    else map_base(op, x + b, y + b, e - b);
  });
}
// y = f(x) for any T with a scalar functor, in parallel.
template <class T, class U, class F> void map_scalar(ThreadPool* pool, const T* x, U* y, int64_t n, F f, int64_t cost = 1) {
  parallel_range(pool, n, grain_for(cost), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

// Clamp to [0, 1] keeping NaN.
template <class V> KILN_VM_INLINE V clamp01(const V& v) {
  return v < 0.0f ? vm::splat<V>(0.0f) : (v > 1.0f ? vm::splat<V>(1.0f) : v);
}

#define KILN_VOP(name, expr)                                               \
  struct name {                                                            \
    float alpha = 0, beta = 0;                                             \
    template <class V> KILN_VM_INLINE V operator()(const V& x) const { return expr; } \
  }

KILN_VOP(VRelu, x < 0.0f ? vm::splat<V>(0.0f) : x);  // NaN stays NaN
KILN_VOP(VSigmoid, vm::sigmoid<V>(x));
KILN_VOP(VTanh, vm::tanh<V>(x));
KILN_VOP(VLeakyRelu, x >= 0.0f ? x : x * alpha);
KILN_VOP(VSoftsign, x / (1.0f + vm::abs<V>(x)));
KILN_VOP(VClip, x < alpha ? vm::splat<V>(alpha) : (x > beta ? vm::splat<V>(beta) : x));
KILN_VOP(VHardSigmoid, clamp01<V>(x * alpha + beta));
KILN_VOP(VScaledTanh, alpha * vm::tanh<V>(x * beta));
KILN_VOP(VThresholdedRelu, x <= alpha ? vm::splat<V>(0.0f) : x);
KILN_VOP(VGeluErf, vm::gelu_erf<V>(x));
KILN_VOP(VGeluTanh, vm::gelu_tanh<V>(x));
KILN_VOP(VHardSwish, x * clamp01<V>(x * (1.0f / 6.0f) + 0.5f));
KILN_VOP(VSilu, x * vm::sigmoid<V>(x));
KILN_VOP(VExp, vm::exp<V>(x));
KILN_VOP(VErf, vm::erf<V>(x));
KILN_VOP(VAbs, vm::abs<V>(x));
KILN_VOP(VNeg, -x);
KILN_VOP(VRecip, 1.0f / x);
KILN_VOP(VSign, x > 0.0f ? vm::splat<V>(1.0f) : (x < 0.0f ? vm::splat<V>(-1.0f) : x));
#undef KILN_VOP

// ====================================== Activation ========================================================

enum Act : int64_t {
  kRelu = 0, kSigmoid = 1, kTanh = 2, kLeakyRelu = 3, kElu = 4, kSelu = 5, kSoftsign = 6, kSoftplus = 7,
  kClip = 8, kHardSigmoid = 9, kScaledTanh = 10, kThresholdedRelu = 11, kGeluErf = 12, kGeluTanh = 13,
  kHardSwish = 64, kSilu = 65, kMish = 66, kCelu = 67, kShrink = 68
};

using ir::activation_params;  // ONNX defaults for absent alpha/beta (ir/activation_params.h)

// Scalar formulas (double, and the float32 activations without a vector version).
template <class T, int64_t K> struct Act1 {
  T alpha, beta;
  T operator()(T x) const {
    if constexpr (K == kRelu) return x < T(0) ? T(0) : x;
    else if constexpr (K == kSigmoid) return T(1) / (T(1) + std::exp(-x));
    else if constexpr (K == kTanh) return std::tanh(x);
    else if constexpr (K == kLeakyRelu) return x >= T(0) ? x : alpha * x;
    else if constexpr (K == kElu) return x >= T(0) ? x : alpha * std::expm1(x);
    else if constexpr (K == kSelu) return beta * (x > T(0) ? x : alpha * std::expm1(x));
    else if constexpr (K == kSoftsign) return x / (T(1) + std::fabs(x));
    else if constexpr (K == kSoftplus) {
      T z = beta * x;  // log(1 + e^z), stable for large z
      return alpha * (z > T(0) ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)));
    } else if constexpr (K == kClip) return x < alpha ? alpha : (x > beta ? beta : x);
    else if constexpr (K == kHardSigmoid) {
      const T v = alpha * x + beta;
      return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
    }
    else if constexpr (K == kScaledTanh) return alpha * std::tanh(beta * x);
    else if constexpr (K == kThresholdedRelu) return x <= alpha ? T(0) : x;
    else if constexpr (K == kGeluErf) return T(0.5) * x * std::erfc(-x * T(0.70710678118654752440));
    else if constexpr (K == kGeluTanh) {
      T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
      return x / (T(1) + std::exp(T(-2) * u));
    } else if constexpr (K == kHardSwish) {
      const T v = x / T(6) + T(0.5);
      return x * (v < T(0) ? T(0) : (v > T(1) ? T(1) : v));
    }
    else if constexpr (K == kSilu) return x / (T(1) + std::exp(-x));
    else if constexpr (K == kMish) {
      T sp = x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
      return x * std::tanh(sp);
    } else if constexpr (K == kCelu) return x > T(0) ? x : alpha * std::expm1(x / alpha);
    else if constexpr (K == kShrink) return x < -beta ? x + alpha : (x > beta ? x - alpha : (x == x ? T(0) : x));
    else return x;
  }
};

template <class T>
void activation_scalar(KernelContext& ctx, int64_t type, T alpha, T beta, const T* x, T* y, int64_t n) {
  auto run = [&](auto op) { map_scalar(ctx.pool, x, y, n, op, 8); };
  switch (type) {
#define KILN_ACT_CASE(K) case K: return run(Act1<T, K>{alpha, beta});
    KILN_ACT_CASE(kRelu) KILN_ACT_CASE(kSigmoid) KILN_ACT_CASE(kTanh) KILN_ACT_CASE(kLeakyRelu)
    KILN_ACT_CASE(kElu) KILN_ACT_CASE(kSelu) KILN_ACT_CASE(kSoftsign) KILN_ACT_CASE(kSoftplus)
    KILN_ACT_CASE(kClip) KILN_ACT_CASE(kHardSigmoid) KILN_ACT_CASE(kScaledTanh) KILN_ACT_CASE(kThresholdedRelu)
    KILN_ACT_CASE(kGeluErf) KILN_ACT_CASE(kGeluTanh) KILN_ACT_CASE(kHardSwish) KILN_ACT_CASE(kSilu)
    KILN_ACT_CASE(kMish) KILN_ACT_CASE(kCelu) KILN_ACT_CASE(kShrink)
#undef KILN_ACT_CASE
    default: ctx.fail("unknown activation type " + std::to_string(type));
  }
}

void activation_f32(KernelContext& ctx, int64_t type, float a, float b, const float* x, float* y, int64_t n) {
  ThreadPool* p = ctx.pool;
  switch (type) {
    case kRelu: return map_f32(p, VRelu{a, b}, x, y, n, 1);
    case kSigmoid: return map_f32(p, VSigmoid{a, b}, x, y, n);
    case kTanh: return map_f32(p, VTanh{a, b}, x, y, n);
    case kLeakyRelu: return map_f32(p, VLeakyRelu{a, b}, x, y, n, 1);
    case kSoftsign: return map_f32(p, VSoftsign{a, b}, x, y, n, 1);
    case kClip: return map_f32(p, VClip{a, b}, x, y, n, 1);
    case kHardSigmoid: return map_f32(p, VHardSigmoid{a, b}, x, y, n, 1);
    case kScaledTanh: return map_f32(p, VScaledTanh{a, b}, x, y, n);
    case kThresholdedRelu: return map_f32(p, VThresholdedRelu{a, b}, x, y, n, 1);
    case kGeluErf: return map_f32(p, VGeluErf{a, b}, x, y, n, 8);
    case kGeluTanh: return map_f32(p, VGeluTanh{a, b}, x, y, n);
    case kHardSwish: return map_f32(p, VHardSwish{a, b}, x, y, n, 1);
    case kSilu: return map_f32(p, VSilu{a, b}, x, y, n);
    default: return activation_scalar<float>(ctx, type, a, b, x, y, n);
  }
}

template <class T>
void activation_int(KernelContext& ctx, int64_t type, double alpha, double beta, const T* x, T* y, int64_t n) {
  if (type == kRelu) return map_scalar(ctx.pool, x, y, n, [](T v) { return v > T(0) ? v : T(0); });
  // CLIP: bounds clamped into T's range first.
  auto bound = [](double v, bool up) {  // v rounded into T without overflow
    const double r = up ? std::ceil(v) : std::floor(v);
    if (!(r > static_cast<double>(std::numeric_limits<T>::lowest()))) return std::numeric_limits<T>::lowest();
    if (!(r < static_cast<double>(std::numeric_limits<T>::max()))) return std::numeric_limits<T>::max();
    return static_cast<T>(r);
  };
  const T lo = bound(alpha, true), hi = bound(beta, false);
  map_scalar(ctx.pool, x, y, n, [lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); });
}

void activation_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t type = ctx.attrs().i("type", -1);
  double alpha, beta;
  activation_params(ctx.attrs(), type, &alpha, &beta);
  const int64_t n = x.numel();
  switch (x.dtype) {
    case DataType::kFLOAT:
      return activation_f32(ctx, type, static_cast<float>(alpha), static_cast<float>(beta), x.as<float>(),
                            ctx.out[0].as<float>(), n);
    case DataType::kDOUBLE:
      return activation_scalar<double>(ctx, type, alpha, beta, x.as<double>(), ctx.out[0].as<double>(), n);
    case DataType::kINT8:
    case DataType::kUINT8:
    case DataType::kINT32:
    case DataType::kINT64:
      if (type != kRelu && type != kClip) break;
      return dispatch_numeric(ctx, x.dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_integral_v<T>) activation_int<T>(ctx, type, alpha, beta, x.as<T>(), ctx.out[0].as<T>(), n);
      });
    default: break;
  }
  ctx.fail(std::string("activation ") + std::to_string(type) + " on " + dtype_name(x.dtype) +
           " is not supported by the CPU kernel");
}

// ====================================== ElementWise =======================================================

enum Ew : int64_t {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kSub = 4, kDiv = 5, kPow = 6, kFloorDiv = 7, kAnd = 8, kOr = 9,
  kXor = 10, kEqual = 11, kGreater = 12, kLess = 13, kMod = 64, kGreaterEqual = 65, kLessEqual = 66,
  kShiftLeft = 67, kShiftRight = 68
};

template <class T> inline T int_div(T a, T b) {
  if (b == 0) return 0;  // no trap on bad input
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return wsub(T(0), a);
  return static_cast<T>(a / b);
}
template <class T> inline T int_mod(T a, T b) {  // C remainder (sign of a)
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return 0;
  return static_cast<T>(a % b);
}

struct OSum { template <class T> static T f(T a, T b) { return wadd(a, b); } };
struct OProd { template <class T> static T f(T a, T b) { return wmul(a, b); } };
// MAX/MIN propagate NaN from either side (as numpy's maximum/minimum).
struct OMax {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return (a > b || a != a) ? a : b;
    else return a > b ? a : b;
  }
};
struct OMin {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return (a < b || a != a) ? a : b;
    else return a < b ? a : b;
  }
};
struct OSub { template <class T> static T f(T a, T b) { return wsub(a, b); } };
struct ODiv {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return a / b;
    else return int_div(a, b);
  }
};
struct OFloorDiv {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      return std::floor(a / b);
    } else {
      T q = int_div(a, b);
      if constexpr (std::is_signed_v<T>)
        if (b != 0 && int_mod(a, b) != 0 && ((a < 0) != (b < 0))) q = static_cast<T>(q - 1);
      return q;
    }
  }
};
struct OPow {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      return std::pow(a, b);
    } else {
      if constexpr (std::is_signed_v<T>) {
        if (b < 0) return a == 1 ? T(1) : a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0);
      }
      T r = 1, base = a;
      for (auto e = b; e > 0; e >>= 1) {
        if (e & 1) r = wmul(r, base);
        base = wmul(base, base);
      }
      return r;
    }
  }
};
struct OModC {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return std::fmod(a, b);
    else return int_mod(a, b);
  }
};
struct OModPy {  // result takes the sign of the divisor
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      T r = std::fmod(a, b);
      if (r != T(0) && ((r < T(0)) != (b < T(0)))) r += b;
      return r;
    } else {
      T r = int_mod(a, b);
      if constexpr (std::is_signed_v<T>)
        if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    }
  }
};
template <class T> inline bool shift_ok(T b) {
  if constexpr (std::is_signed_v<T>)
    if (b < 0) return false;
  return static_cast<uint64_t>(b) < sizeof(T) * 8;
}
// Bit shifts of integers (ONNX BitShift): LEFT discards the bits shifted out (also past the sign bit); RIGHT
// is logical for unsigned and arithmetic (sign-extending) for signed types. A count outside [0, bits)
// gives what the sign fill alone gives: -1 for RIGHT of a negative value, 0 otherwise.
struct OShl {
  template <class T> static T f(T a, T b) {
    using U = std::make_unsigned_t<T>;
    if (!shift_ok(b)) return T(0);
    return static_cast<T>(static_cast<U>(static_cast<U>(a) << static_cast<unsigned>(b)));
  }
};
struct OShr {
  template <class T> static T f(T a, T b) {
    if constexpr (std::is_signed_v<T>) {
      if (!shift_ok(b)) return a < 0 ? T(-1) : T(0);
      return static_cast<T>(a >> static_cast<unsigned>(b));  // arithmetic (C++20)
    } else {
      if (!shift_ok(b)) return T(0);
      return static_cast<T>(a >> static_cast<unsigned>(b));
    }
  }
};
struct OAnd { template <class T> static Bool f(T a, T b) { return (a != 0) & (b != 0); } };
struct OOr { template <class T> static Bool f(T a, T b) { return (a != 0) | (b != 0); } };
struct OXor { template <class T> static Bool f(T a, T b) { return (a != 0) ^ (b != 0); } };
struct OEq { template <class T> static Bool f(T a, T b) { return a == b; } };
struct OGt { template <class T> static Bool f(T a, T b) { return a > b; } };
struct OLt { template <class T> static Bool f(T a, T b) { return a < b; } };
struct OGe { template <class T> static Bool f(T a, T b) { return a >= b; } };
struct OLe { template <class T> static Bool f(T a, T b) { return a <= b; } };

// One run: inner strides are 0 or 1, so three tight loops cover every case.
template <class Op, class T, class U>
inline void ew_run(const T* __restrict a, int64_t sa, const T* __restrict b, int64_t sb, U* __restrict o, int64_t n) {
  if (sa && sb) {
    for (int64_t i = 0; i < n; ++i) o[i] = Op::template f<T>(a[i], b[i]);
  } else if (sa) {
    const T bv = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = Op::template f<T>(a[i], bv);
  } else if (sb) {
    const T av = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = Op::template f<T>(av, b[i]);
  } else {
    const U v = Op::template f<T>(*a, *b);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  }
}

template <class Op, class T, class U>
void ew_apply(KernelContext& ctx, const BroadcastPlan& plan, int64_t cost = 1) {
  const T* a = ctx.in[0].as<T>();
  const T* b = ctx.in[1].as<T>();
  U* o = ctx.out[0].as<U>();
  const int64_t sa = plan.inner_stride[0], sb = plan.inner_stride[1];
  broadcast_parallel(ctx.pool, plan, grain_for(cost), [&](int64_t pos, const int64_t* off, int64_t len) {
    ew_run<Op, T, U>(a + off[0], sa, b + off[1], sb, o + pos, len);
  });
}

// Pow with a single exponent value that has a cheap form.
template <class T>
bool pow_fast(KernelContext& ctx) {
  const TensorRef& b = ctx.in[1];
  if (b.numel() != 1 || ctx.in[0].shape != ctx.out[0].shape) return false;
  const T e = *b.as<T>();
  const T* x = ctx.in[0].as<T>();
  T* y = ctx.out[0].as<T>();
  const int64_t n = ctx.out[0].numel();
  if (e == T(1)) map_scalar(ctx.pool, x, y, n, [](T v) { return v; });
  else if (e == T(2)) map_scalar(ctx.pool, x, y, n, [](T v) { return v * v; });
  else if (e == T(3)) map_scalar(ctx.pool, x, y, n, [](T v) { return v * v * v; });
  else if (e == T(0.5)) map_scalar(ctx.pool, x, y, n, [](T v) { return std::sqrt(v); });
  else if (e == T(-1)) map_scalar(ctx.pool, x, y, n, [](T v) { return T(1) / v; });
  else return false;
  return true;
}

template <class T>
void ew_typed(KernelContext& ctx, int64_t op, const BroadcastPlan& plan) {
  switch (op) {
    case kSum: return ew_apply<OSum, T, T>(ctx, plan);
    case kProd: return ew_apply<OProd, T, T>(ctx, plan);
    case kMax: return ew_apply<OMax, T, T>(ctx, plan);
    case kMin: return ew_apply<OMin, T, T>(ctx, plan);
    case kSub: return ew_apply<OSub, T, T>(ctx, plan);
    case kDiv: return ew_apply<ODiv, T, T>(ctx, plan, std::is_floating_point_v<T> ? 1 : 8);
    case kFloorDiv: return ew_apply<OFloorDiv, T, T>(ctx, plan, 8);
    case kPow:
      if constexpr (std::is_floating_point_v<T>)
        if (pow_fast<T>(ctx)) return;
      return ew_apply<OPow, T, T>(ctx, plan, 16);
    case kMod:
      if (ctx.attrs().i("fmod", 0)) return ew_apply<OModC, T, T>(ctx, plan, 16);
      return ew_apply<OModPy, T, T>(ctx, plan, 16);
    case kEqual: return ew_apply<OEq, T, Bool>(ctx, plan);
    case kGreater: return ew_apply<OGt, T, Bool>(ctx, plan);
    case kLess: return ew_apply<OLt, T, Bool>(ctx, plan);
    case kGreaterEqual: return ew_apply<OGe, T, Bool>(ctx, plan);
    case kLessEqual: return ew_apply<OLe, T, Bool>(ctx, plan);
    case kShiftLeft:
    case kShiftRight:
      if constexpr (std::is_integral_v<T>) {
        if (op == kShiftLeft) return ew_apply<OShl, T, T>(ctx, plan);
        return ew_apply<OShr, T, T>(ctx, plan);
      }
      [[fallthrough]];
    default: ctx.fail("elementwise op " + std::to_string(op) + " is not supported on " + dtype_name(ctx.in[0].dtype));
  }
}

void elementwise_kernel(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& b = ctx.input(1);
  const int64_t op = ctx.attrs().i("op", -1);
  if (a.dtype != b.dtype)
    ctx.fail(std::string("inputs must share a dtype, got ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  BroadcastPlan plan = make_broadcast_plan(ctx.out[0].shape, {&a.shape, &b.shape});
  if (a.dtype == DataType::kBOOL) {
    switch (op) {
      case kAnd: return ew_apply<OAnd, Bool, Bool>(ctx, plan);
      case kOr: return ew_apply<OOr, Bool, Bool>(ctx, plan);
      case kXor: return ew_apply<OXor, Bool, Bool>(ctx, plan);
      case kEqual: return ew_apply<OEq, Bool, Bool>(ctx, plan);
      default: ctx.fail("elementwise op " + std::to_string(op) + " is not defined on bool inputs");
    }
  }
  dispatch_numeric(ctx, a.dtype, [&](auto tag) { ew_typed<decltype(tag)>(ctx, op, plan); });
}

// ========================================= Unary ==========================================================

enum Un : int64_t {
  kExp = 0, kLog = 1, kSqrt = 2, kRecip = 3, kAbs = 4, kNeg = 5, kSin = 6, kCos = 7, kTan = 8, kSinh = 9,
  kCosh = 10, kAsin = 11, kAcos = 12, kAtan = 13, kAsinh = 14, kAcosh = 15, kAtanh = 16, kCeil = 17,
  kFloor = 18, kErf = 19, kNot = 20, kSign = 21, kRound = 22, kIsInf = 23, kIsNan = 24
};

template <class T>
void unary_float(KernelContext& ctx, int64_t op, const T* x, T* y, int64_t n) {
  auto run = [&](auto f, int64_t cost = 8) { map_scalar(ctx.pool, x, y, n, f, cost); };
  switch (op) {
    case kExp: return run([](T v) { return std::exp(v); });
    case kLog: return run([](T v) { return std::log(v); });
    case kSqrt: return run([](T v) { return std::sqrt(v); });
    case kRecip: return run([](T v) { return T(1) / v; }, 1);
    case kAbs: return run([](T v) { return std::fabs(v); }, 1);
    case kNeg: return run([](T v) { return -v; }, 1);
    case kSin: return run([](T v) { return std::sin(v); });
    case kCos: return run([](T v) { return std::cos(v); });
    case kTan: return run([](T v) { return std::tan(v); });
    case kSinh: return run([](T v) { return std::sinh(v); });
    case kCosh: return run([](T v) { return std::cosh(v); });
    case kAsin: return run([](T v) { return std::asin(v); });
    case kAcos: return run([](T v) { return std::acos(v); });
    case kAtan: return run([](T v) { return std::atan(v); });
    case kAsinh: return run([](T v) { return std::asinh(v); });
    case kAcosh: return run([](T v) { return std::acosh(v); });
    case kAtanh: return run([](T v) { return std::atanh(v); });
    case kCeil: return run([](T v) { return std::ceil(v); }, 1);
    case kFloor: return run([](T v) { return std::floor(v); }, 1);
    case kErf: return run([](T v) { return std::erf(v); });
    case kSign: return run([](T v) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v); }, 1);
    case kRound: return run([](T v) { return std::nearbyint(v); }, 1);  // default mode: half to even
    default: ctx.fail("unary op " + std::to_string(op) + " is not supported on " + dtype_name(ctx.in[0].dtype));
  }
}

template <class T>
void unary_classify(KernelContext& ctx, int64_t op, const T* x, Bool* y, int64_t n) {
  if (op == kIsInf) map_scalar(ctx.pool, x, y, n, [](T v) -> Bool { return std::isinf(v); });
  else map_scalar(ctx.pool, x, y, n, [](T v) -> Bool { return v != v; });
}

void unary_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t op = ctx.attrs().i("op", -1);
  const int64_t n = x.numel();
  void* out = ctx.out[0].data;
  if (op == kNot) {
    if (x.dtype != DataType::kBOOL) ctx.fail("NOT needs a bool input");
    return map_scalar(ctx.pool, x.as<Bool>(), static_cast<Bool*>(out), n, [](Bool v) -> Bool { return v == 0; });
  }
  if (op == kIsInf || op == kIsNan) {
    if (x.dtype == DataType::kFLOAT) return unary_classify(ctx, op, x.as<float>(), static_cast<Bool*>(out), n);
    if (x.dtype == DataType::kDOUBLE) return unary_classify(ctx, op, x.as<double>(), static_cast<Bool*>(out), n);
  } else if (x.dtype == DataType::kFLOAT) {
    const float* xf = x.as<float>();
    float* yf = static_cast<float*>(out);
    switch (op) {
      case kExp: return map_f32(ctx.pool, VExp{}, xf, yf, n);
      case kErf: return map_f32(ctx.pool, VErf{}, xf, yf, n, 8);
      case kAbs: return map_f32(ctx.pool, VAbs{}, xf, yf, n, 1);
      case kNeg: return map_f32(ctx.pool, VNeg{}, xf, yf, n, 1);
      case kRecip: return map_f32(ctx.pool, VRecip{}, xf, yf, n, 1);
      case kSign: return map_f32(ctx.pool, VSign{}, xf, yf, n, 1);
      default: return unary_float<float>(ctx, op, xf, yf, n);
    }
  } else if (x.dtype == DataType::kDOUBLE) {
    return unary_float<double>(ctx, op, x.as<double>(), static_cast<double*>(out), n);
  } else if (op == kAbs || op == kNeg || op == kSign) {
    bool done = false;
    auto ints = [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        const T* xi = x.as<T>();
        T* yi = static_cast<T*>(out);
        if (op == kAbs) map_scalar(ctx.pool, xi, yi, n, [](T v) { return v < 0 ? wsub(T(0), v) : v; });
        else if (op == kNeg) map_scalar(ctx.pool, xi, yi, n, [](T v) { return wsub(T(0), v); });
        else map_scalar(ctx.pool, xi, yi, n, [](T v) { return static_cast<T>((v > 0) - (v < 0)); });
        done = true;
      }
    };
    if (x.dtype == DataType::kINT8 || x.dtype == DataType::kINT16 || x.dtype == DataType::kINT32 ||
        x.dtype == DataType::kINT64) {
      dispatch_numeric(ctx, x.dtype, ints);
      if (done) return;
    }
  }
  ctx.fail("unary op " + std::to_string(op) + " on " + dtype_name(x.dtype) + " is not supported by the CPU kernel");
}

// ========================================= Select =========================================================

template <class T>
void select_typed(KernelContext& ctx, const BroadcastPlan& plan) {
  const Bool* c = ctx.in[0].as<Bool>();
  const T* a = ctx.in[1].as<T>();
  const T* b = ctx.in[2].as<T>();
  T* o = ctx.out[0].as<T>();
  const int64_t sc = plan.inner_stride[0], sa = plan.inner_stride[1], sb = plan.inner_stride[2];
  broadcast_parallel(ctx.pool, plan, kParallelGrainElems, [&](int64_t pos, const int64_t* off, int64_t len) {
    const Bool* cc = c + off[0];
    const T* aa = a + off[1];
    const T* bb = b + off[2];
    T* oo = o + pos;
    if (sc && sa && sb) {
      for (int64_t i = 0; i < len; ++i) oo[i] = cc[i] ? aa[i] : bb[i];
    } else if (sc && !sa && !sb) {
      const T av = *aa, bv = *bb;
      for (int64_t i = 0; i < len; ++i) oo[i] = cc[i] ? av : bv;
    } else if (!sc) {
      const T* src = *cc ? aa : bb;
      const int64_t s = *cc ? sa : sb;
      if (s) std::memcpy(oo, src, static_cast<size_t>(len) * sizeof(T));
      else for (int64_t i = 0; i < len; ++i) oo[i] = *src;
    } else {
      for (int64_t i = 0; i < len; ++i) oo[i] = cc[i] ? aa[i * sa] : bb[i * sb];
    }
  });
}

void select_kernel(KernelContext& ctx) {
  const TensorRef& c = ctx.input(0);
  const TensorRef& a = ctx.input(1);
  const TensorRef& b = ctx.input(2);
  if (a.dtype != b.dtype) ctx.fail("inputs 1 and 2 must share a dtype");
  BroadcastPlan plan = make_broadcast_plan(ctx.out[0].shape, {&c.shape, &a.shape, &b.shape});
  switch (dtype_size(a.dtype)) {  // pure data movement: dispatch on element size
    case 1: return select_typed<uint8_t>(ctx, plan);
    case 2: return select_typed<uint16_t>(ctx, plan);
    case 4: return select_typed<uint32_t>(ctx, plan);
    case 8: return select_typed<uint64_t>(ctx, plan);
    default: ctx.fail(std::string("unsupported dtype ") + dtype_name(a.dtype));
  }
}

// ========================================= Scale ==========================================================

// Coefficients of one Scale input converted to T (empty when absent).
template <class T>
std::vector<T> scale_coeffs(const KernelContext& ctx, size_t i) {
  std::vector<T> v;
  if (!ctx.has_input(i)) return v;
  const TensorRef& t = ctx.in[i];
  v.resize(static_cast<size_t>(t.numel()));
  for (int64_t k = 0; k < t.numel(); ++k) v[k] = static_cast<T>(t.get_f64(k));
  return v;
}

template <class T>
void scale_typed(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t mode = ctx.attrs().i("mode", 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.attrs().i("channel_axis", 1);
  if (axis < 0) axis += rank;
  int64_t outer = 1, c = 1, inner = 1;
  if (mode == 0) {
    inner = x.numel();
  } else {
    if (axis < 0 || axis >= rank) ctx.fail("channel_axis out of range");
    outer = prod_dims(x.shape, 0, axis);
    if (mode == 1) {
      c = x.shape[axis];
      inner = prod_dims(x.shape, axis + 1, x.shape.size());
    } else {
      c = prod_dims(x.shape, axis, x.shape.size());
    }
  }
  std::vector<T> shift = scale_coeffs<T>(ctx, 1), scale = scale_coeffs<T>(ctx, 2), power = scale_coeffs<T>(ctx, 3);
  for (auto* v : {&shift, &scale, &power})
    if (!v->empty() && static_cast<int64_t>(v->size()) != c)
      ctx.fail("coefficient count " + std::to_string(v->size()) + " does not match " + std::to_string(c));
  bool has_power = false;
  for (T p : power) has_power |= p != T(1);
  if (shift.empty()) shift.assign(c, T(0));
  if (scale.empty()) scale.assign(c, T(1));
  if (power.empty()) power.assign(c, T(1));
  const T* xs = x.as<T>();
  T* ys = ctx.out[0].as<T>();
  constexpr int64_t kBlk = 8192;
  if (inner == 1) {  // ELEMENTWISE (or CHANNEL on the last axis): rows of c coefficients, split in blocks
    const int64_t nb = (c + kBlk - 1) / kBlk;
    parallel_range(ctx.pool, outer * nb, grain_for(std::min(c, kBlk)), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / nb, k0 = (t % nb) * kBlk, k1 = std::min(c, k0 + kBlk);
        const T* xr = xs + o * c;
        T* yr = ys + o * c;
        const T* sc = scale.data();
        const T* sh = shift.data();
        for (int64_t k = k0; k < k1; ++k) yr[k] = xr[k] * sc[k] + sh[k];
        if (has_power)
          for (int64_t k = k0; k < k1; ++k) yr[k] = std::pow(yr[k], power[k]);
      }
    });
    return;
  }
  // UNIFORM / CHANNEL: rows of `inner` elements sharing one coefficient, split in blocks.
  const int64_t rows = outer * c;
  const int64_t nb = (inner + kBlk - 1) / kBlk;
  parallel_range(ctx.pool, rows * nb, grain_for(std::min(inner, kBlk)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t r = t / nb, i0 = (t % nb) * kBlk, i1 = std::min(inner, i0 + kBlk);
      const int64_t k = r % c;
      const T s = scale[k], sh = shift[k], p = power[k];
      const T* xr = xs + r * inner;
      T* yr = ys + r * inner;
      for (int64_t i = i0; i < i1; ++i) yr[i] = xr[i] * s + sh;
      if (p != T(1))
        for (int64_t i = i0; i < i1; ++i) yr[i] = std::pow(yr[i], p);
    }
  });
}

void scale_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (x.dtype == DataType::kFLOAT) return scale_typed<float>(ctx);
  if (x.dtype == DataType::kDOUBLE) return scale_typed<double>(ctx);
  ctx.fail(std::string("Scale on ") + dtype_name(x.dtype) + " is not supported by the CPU kernel");
}

}  // namespace

// The Activation math for the fused epilogues of Convolution / MatrixMultiply (backends/cpu/activation.h).
void fused_activation_params(const ir::Attrs& a, int64_t type, double* alpha, double* beta) {
  activation_params(a, type, alpha, beta, "act_alpha", "act_beta");
}
void apply_activation(KernelContext& ctx, int64_t type, double alpha, double beta, const float* x, float* y, int64_t n) {
  activation_f32(ctx, type, static_cast<float>(alpha), static_cast<float>(beta), x, y, n);
}
void apply_activation(KernelContext& ctx, int64_t type, double alpha, double beta, const double* x, double* y,
                      int64_t n) {
  activation_scalar<double>(ctx, type, alpha, beta, x, y, n);
}

KILN_REGISTER_CPU_KERNEL("Identity", &identity_kernel);
KILN_REGISTER_CPU_KERNEL("Activation", &activation_kernel);
KILN_REGISTER_CPU_KERNEL("ElementWise", &elementwise_kernel);
KILN_REGISTER_CPU_KERNEL("Unary", &unary_kernel);
KILN_REGISTER_CPU_KERNEL("Select", &select_kernel);
KILN_REGISTER_CPU_KERNEL("Scale", &scale_kernel);

}  // namespace kiln::cpu
