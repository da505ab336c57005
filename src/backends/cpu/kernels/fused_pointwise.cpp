// CPU kernel for FusedPointwise: an interpreter of the node's program (ir/pointwise_program.h), the reference
// the CUDA backend's generated kernels and the fuse-pointwise pass are tested against.
//
// The output is walked in blocks of kBlock elements; each instruction runs over a whole block into its
// register array (so the dispatch on opcode and dtype happens once per block, not per element). Inputs are
// read through numpy-broadcast strides. Semantics follow the unfused CPU kernels (elementwise.cpp, cast.cpp):
// wrapping integer arithmetic, C-truncating integer division with 0 for a zero divisor, NaN-propagating
// MAX/MIN, float -> integer casts truncating (NaN -> 0, saturating at the int64 range, then the low bits).
// float16/bfloat16 values are held in float32 and rounded only by casts and the final store.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "ir/host_tensor.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL
#include "ir/pointwise_program.h"

namespace kiln::cpu {
namespace {

using namespace ir::pw;

constexpr int64_t kBlock = 256;

// Calls f(C{}) with the type a value of dtype dt is computed in.
template <class F> void dispatch_ctype(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kFLOAT: case DataType::kHALF: case DataType::kBF16: return f(float{});
    case DataType::kDOUBLE: return f(double{});
    case DataType::kINT8: return f(int8_t{});
    case DataType::kUINT8: return f(uint8_t{});
    case DataType::kINT32: return f(int32_t{});
    case DataType::kINT64: return f(int64_t{});
    case DataType::kBOOL: return f(bool{});
    default: throw Error(std::string("FusedPointwise: unsupported dtype ") + dtype_name(dt));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Scalar semantics.

template <class T> inline T wadd(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <class T> inline T wsub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
template <class T> inline T wmul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  using W = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, U>;
  return static_cast<T>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b)));
}
template <class T> inline T int_div(T a, T b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return wsub(T(0), a);
  return static_cast<T>(a / b);
}
template <class T> inline T int_mod(T a, T b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return 0;
  return static_cast<T>(a % b);
}
template <class T> inline bool shift_ok(T b) {
  if constexpr (std::is_signed_v<T>)
    if (b < 0) return false;
  return static_cast<uint64_t>(b) < sizeof(T) * 8;
}

template <class T> T ew_arith(int64_t op, bool c_fmod, T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case kSum: return a + b;
      case kProd: return a * b;
      case kMax: return (a > b || a != a) ? a : b;
      case kMin: return (a < b || a != a) ? a : b;
      case kSub: return a - b;
      case kDiv: return a / b;
      case kPow: return std::pow(a, b);
      case kFloorDiv: return std::floor(a / b);
      case kMod: {
        T r = std::fmod(a, b);
        if (!c_fmod && r != T(0) && ((r < T(0)) != (b < T(0)))) r += b;
        return r;
      }
      default: return T(0);
    }
  } else {
    using U = std::make_unsigned_t<T>;
    switch (op) {
      case kSum: return wadd(a, b);
      case kProd: return wmul(a, b);
      case kMax: return a > b ? a : b;
      case kMin: return a < b ? a : b;
      case kSub: return wsub(a, b);
      case kDiv: return int_div(a, b);
      case kPow: {
        if constexpr (std::is_signed_v<T>)
          if (b < 0) return a == 1 ? T(1) : a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0);
        T r = 1, base = a;
        for (T e = b; e > 0; e >>= 1) {
          if (e & 1) r = wmul(r, base);
          base = wmul(base, base);
        }
        return r;
      }
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
        return static_cast<T>(a >> static_cast<unsigned>(b));
      default: return T(0);
    }
  }
}

template <class T> bool ew_compare(int64_t op, T a, T b) {
  switch (op) {
    case kEqual: return a == b;
    case kGreater: return a > b;
    case kLess: return a < b;
    case kGreaterEqual: return a >= b;
    default: return a <= b;
  }
}

template <class F> F un_float(int64_t op, F v) {
  switch (op) {
    case kExp: return std::exp(v);
    case kLog: return std::log(v);
    case kSqrt: return std::sqrt(v);
    case kRecip: return F(1) / v;
    case kAbs: return std::fabs(v);
    case kNeg: return -v;
    case kSin: return std::sin(v);
    case kCos: return std::cos(v);
    case kTan: return std::tan(v);
    case kSinh: return std::sinh(v);
    case kCosh: return std::cosh(v);
    case kAsin: return std::asin(v);
    case kAcos: return std::acos(v);
    case kAtan: return std::atan(v);
    case kAsinh: return std::asinh(v);
    case kAcosh: return std::acosh(v);
    case kAtanh: return std::atanh(v);
    case kCeil: return std::ceil(v);
    case kFloor: return std::floor(v);
    case kErf: return std::erf(v);
    case kSign: return v > F(0) ? F(1) : (v < F(0) ? F(-1) : v);
    case kRound: return std::nearbyint(v);
    default: return v;
  }
}

template <class T> T un_int(int64_t op, T v) {
  if constexpr (std::is_signed_v<T>) {
    switch (op) {
      case kAbs: return v < 0 ? wsub(T(0), v) : v;
      case kNeg: return wsub(T(0), v);
      default: return static_cast<T>((v > 0) - (v < 0));
    }
  } else {
    return v;  // validate() admits signed integers only
  }
}

template <class F> F softplus(F z) { return z > F(0) ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }
template <class F> F clamp01(F v) { return v < F(0) ? F(0) : (v > F(1) ? F(1) : v); }

template <class F> F act_float(int64_t type, F a, F b, F x) {
  switch (type) {
    case kRelu: return x < F(0) ? F(0) : x;
    case kSigmoid: return F(1) / (F(1) + std::exp(-x));
    case kTanh: return std::tanh(x);
    case kLeakyRelu: return x >= F(0) ? x : a * x;
    case kElu: return x >= F(0) ? x : a * std::expm1(x);
    case kSelu: return b * (x > F(0) ? x : a * std::expm1(x));
    case kSoftsign: return x / (F(1) + std::fabs(x));
    case kSoftplus: return a * softplus(b * x);
    case kClip: return x < a ? a : (x > b ? b : x);
    case kHardSigmoid: return clamp01(a * x + b);
    case kScaledTanh: return a * std::tanh(b * x);
    case kThresholdedRelu: return x <= a ? F(0) : x;
    case kGeluErf: return F(0.5) * x * std::erfc(-x * F(0.70710678118654752440));
    case kGeluTanh: {
      const F u = F(0.79788456080286535588) * (x + F(0.044715) * x * x * x);
      return x / (F(1) + std::exp(F(-2) * u));
    }
    case kHardSwish: return x * clamp01(x * (F(1) / F(6)) + F(0.5));  // as the CUDA kernels
    case kSilu: return x / (F(1) + std::exp(-x));
    case kMish: return x * std::tanh(softplus(x));
    case kCelu: return x > F(0) ? x : a * std::expm1(x / a);
    case kShrink: return x < -b ? x + a : (x > b ? x - a : (x == x ? F(0) : x));
    default: return x;
  }
}

inline int64_t f_to_i64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

inline float round_to(DataType dt, float v) {
  if (dt == DataType::kHALF) return half_to_float(float_to_half(v));
  if (dt == DataType::kBF16) return bf16_to_float(float_to_bf16(v));
  return v;
}

// Cast of one computed value of type S (dtype `from`) to dtype `to`, as computed type D.
template <class D, class S> D cast_value(S v, DataType to) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_same_v<D, float>) {
    float f;
    if constexpr (std::is_same_v<S, bool>) f = v ? 1.0f : 0.0f;
    else f = static_cast<float>(v);
    return round_to(to, f);
  } else if constexpr (std::is_same_v<D, double>) {
    if constexpr (std::is_same_v<S, bool>) return v ? 1.0 : 0.0;
    else return static_cast<double>(v);
  } else {  // integers keep the low bits
    if constexpr (std::is_same_v<S, bool>) return static_cast<D>(v ? 1 : 0);
    else if constexpr (std::is_floating_point_v<S>) return static_cast<D>(static_cast<uint64_t>(f_to_i64(static_cast<double>(v))));
    else return static_cast<D>(static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
}

// ---------------------------------------------------------------------------------------------------------

struct Interpreter {
  const Program& p;
  std::vector<const void*> in_data;
  std::vector<DataType> in_dtype;
  std::vector<Dims> in_strides;  // full output rank, 0 on broadcast dims
  Dims out_dims;
  void* out_data;
  DataType out_dtype;

  template <class T> static T* reg(unsigned char* regs, int64_t r) { return reinterpret_cast<T*>(regs + r * kBlock * 8); }

  void offsets(int64_t begin, int64_t len, std::vector<int64_t>& offs) const {
    const size_t ni = in_data.size();
    const int r = static_cast<int>(out_dims.size());
    std::vector<int64_t> idx(r, 0), base(ni, 0);
    int64_t rem = begin;
    for (int d = r - 1; d >= 0; --d) {
      idx[d] = out_dims[d] ? rem % out_dims[d] : 0;
      rem = out_dims[d] ? rem / out_dims[d] : 0;
      for (size_t k = 0; k < ni; ++k) base[k] += idx[d] * in_strides[k][d];
    }
    for (int64_t j = 0; j < len; ++j) {
      for (size_t k = 0; k < ni; ++k) offs[k * kBlock + j] = base[k];
      for (int d = r - 1; d >= 0; --d) {
        ++idx[d];
        for (size_t k = 0; k < ni; ++k) base[k] += in_strides[k][d];
        if (idx[d] < out_dims[d] || d == 0) break;
        for (size_t k = 0; k < ni; ++k) base[k] -= idx[d] * in_strides[k][d];
        idx[d] = 0;
      }
    }
  }

  void load(int64_t k, const int64_t* off, int64_t len, unsigned char* regs, int64_t r) const {
    const void* src = in_data[k];
    switch (in_dtype[k]) {
      case DataType::kHALF: {
        float* o = reg<float>(regs, r);
        for (int64_t j = 0; j < len; ++j) o[j] = half_to_float(static_cast<const uint16_t*>(src)[off[j]]);
        return;
      }
      case DataType::kBF16: {
        float* o = reg<float>(regs, r);
        for (int64_t j = 0; j < len; ++j) o[j] = bf16_to_float(static_cast<const uint16_t*>(src)[off[j]]);
        return;
      }
      case DataType::kBOOL: {
        bool* o = reg<bool>(regs, r);
        for (int64_t j = 0; j < len; ++j) o[j] = static_cast<const uint8_t*>(src)[off[j]] != 0;
        return;
      }
      default:
        dispatch_ctype(in_dtype[k], [&](auto tag) {
          using T = decltype(tag);
          T* o = reg<T>(regs, r);
          for (int64_t j = 0; j < len; ++j) o[j] = static_cast<const T*>(src)[off[j]];
        });
    }
  }

  void store(int64_t begin, int64_t len, unsigned char* regs, int64_t r) const {
    switch (out_dtype) {
      case DataType::kHALF: {
        const float* v = reg<float>(regs, r);
        uint16_t* o = static_cast<uint16_t*>(out_data) + begin;
        for (int64_t j = 0; j < len; ++j) o[j] = float_to_half(v[j]);
        return;
      }
      case DataType::kBF16: {
        const float* v = reg<float>(regs, r);
        uint16_t* o = static_cast<uint16_t*>(out_data) + begin;
        for (int64_t j = 0; j < len; ++j) o[j] = float_to_bf16(v[j]);
        return;
      }
      case DataType::kBOOL: {
        const bool* v = reg<bool>(regs, r);
        uint8_t* o = static_cast<uint8_t*>(out_data) + begin;
        for (int64_t j = 0; j < len; ++j) o[j] = v[j] ? 1 : 0;
        return;
      }
      default:
        dispatch_ctype(out_dtype, [&](auto tag) {
          using T = decltype(tag);
          const T* v = reg<T>(regs, r);
          std::memcpy(static_cast<T*>(out_data) + begin, v, static_cast<size_t>(len) * sizeof(T));
        });
    }
  }

  void exec(const Instr& in, int64_t r, int64_t len, const std::vector<int64_t>& offs, unsigned char* regs) const {
    switch (in.op) {
      case kInput: return load(in.a, offs.data() + in.a * kBlock, len, regs, r);
      case kConst:
        return dispatch_ctype(in.dtype, [&](auto tag) {
          using T = decltype(tag);
          T v;
          if constexpr (std::is_floating_point_v<T>) v = static_cast<T>(p.imm[in.a]);
          else if constexpr (std::is_same_v<T, bool>) v = in.a != 0;
          else v = static_cast<T>(in.a);
          T* o = reg<T>(regs, r);
          for (int64_t j = 0; j < len; ++j) o[j] = v;
        });
      case kElementWise: {
        const DataType dt = p.code[in.a].dtype;
        if (dt == DataType::kBOOL) {
          const bool* a = reg<bool>(regs, in.a);
          const bool* b = reg<bool>(regs, in.b);
          bool* o = reg<bool>(regs, r);
          for (int64_t j = 0; j < len; ++j) {
            switch (in.sub) {
              case kAnd: o[j] = a[j] && b[j]; break;
              case kOr: o[j] = a[j] || b[j]; break;
              case kXor: o[j] = a[j] != b[j]; break;
              default: o[j] = a[j] == b[j]; break;  // kEqual
            }
          }
          return;
        }
        return dispatch_ctype(dt, [&](auto tag) {
          using T = decltype(tag);
          if constexpr (!std::is_same_v<T, bool>) {
            const T* a = reg<T>(regs, in.a);
            const T* b = reg<T>(regs, in.b);
            if (ew_is_compare(in.sub)) {
              bool* o = reg<bool>(regs, r);
              for (int64_t j = 0; j < len; ++j) o[j] = ew_compare<T>(in.sub, a[j], b[j]);
              return;
            }
            T* o = reg<T>(regs, r);
            if constexpr (std::is_floating_point_v<T>) {
              // A constant exponent with a cheap exact form (as the CUDA code generator).
              if (in.sub == kPow && p.code[in.b].op == kConst) {
                const double e = p.const_value(in.b);
                if (e == 2.0) { for (int64_t j = 0; j < len; ++j) o[j] = a[j] * a[j]; return; }
                if (e == 3.0) { for (int64_t j = 0; j < len; ++j) o[j] = a[j] * a[j] * a[j]; return; }
                if (e == 0.5) { for (int64_t j = 0; j < len; ++j) o[j] = std::sqrt(a[j]); return; }
                if (e == 1.0) { for (int64_t j = 0; j < len; ++j) o[j] = a[j]; return; }
                if (e == -1.0) { for (int64_t j = 0; j < len; ++j) o[j] = T(1) / a[j]; return; }
              }
            }
            const bool c_fmod = in.c == 1;
            for (int64_t j = 0; j < len; ++j) o[j] = ew_arith<T>(in.sub, c_fmod, a[j], b[j]);
          }
        });
      }
      case kUnary: {
        const DataType dt = p.code[in.a].dtype;
        if (in.sub == kNot) {
          const bool* a = reg<bool>(regs, in.a);
          bool* o = reg<bool>(regs, r);
          for (int64_t j = 0; j < len; ++j) o[j] = !a[j];
          return;
        }
        return dispatch_ctype(dt, [&](auto tag) {
          using T = decltype(tag);
          const T* a = reg<T>(regs, in.a);
          if constexpr (std::is_floating_point_v<T>) {
            if (in.sub == kIsInf || in.sub == kIsNan) {
              bool* o = reg<bool>(regs, r);
              for (int64_t j = 0; j < len; ++j) o[j] = in.sub == kIsInf ? std::isinf(a[j]) : a[j] != a[j];
              return;
            }
            T* o = reg<T>(regs, r);
            for (int64_t j = 0; j < len; ++j) o[j] = un_float<T>(in.sub, a[j]);
          } else if constexpr (!std::is_same_v<T, bool>) {
            T* o = reg<T>(regs, r);
            for (int64_t j = 0; j < len; ++j) o[j] = un_int<T>(in.sub, a[j]);
          }
        });
      }
      case kActivation:
        return dispatch_ctype(in.dtype, [&](auto tag) {
          using T = decltype(tag);
          const T* a = reg<T>(regs, in.a);
          T* o = reg<T>(regs, r);
          const double alpha = p.imm[in.b], beta = p.imm[in.b + 1];
          if constexpr (std::is_floating_point_v<T>) {
            const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
            for (int64_t j = 0; j < len; ++j) o[j] = act_float<T>(in.sub, al, be, a[j]);
          } else if constexpr (!std::is_same_v<T, bool>) {
            int64_t lo, hi;
            int_range(in.dtype, &lo, &hi);
            const T l = static_cast<T>(in.sub == kRelu ? 0 : int_clip_bound(alpha, true, lo, hi));
            const T h = static_cast<T>(in.sub == kRelu ? hi : int_clip_bound(beta, false, lo, hi));
            for (int64_t j = 0; j < len; ++j) o[j] = a[j] < l ? l : (a[j] > h ? h : a[j]);
          }
        });
      case kCast: {
        const DataType from = p.code[in.a].dtype;
        dispatch_ctype(from, [&](auto stag) {
          using S = decltype(stag);
          const S* a = reg<S>(regs, in.a);
          dispatch_ctype(in.dtype, [&](auto dtag) {
            using D = decltype(dtag);
            D* o = reg<D>(regs, r);
            if (from == in.dtype) {
              if constexpr (std::is_same_v<S, D>) std::memcpy(o, a, static_cast<size_t>(len) * sizeof(D));
              return;
            }
            for (int64_t j = 0; j < len; ++j) o[j] = cast_value<D, S>(a[j], in.dtype);
          });
        });
        return;
      }
      case kSelect:
        return dispatch_ctype(in.dtype, [&](auto tag) {
          using T = decltype(tag);
          const bool* c = reg<bool>(regs, in.a);
          const T* a = reg<T>(regs, in.b);
          const T* b = reg<T>(regs, in.c);
          T* o = reg<T>(regs, r);
          for (int64_t j = 0; j < len; ++j) o[j] = c[j] ? a[j] : b[j];
        });
      default: throw Error("FusedPointwise: unknown opcode " + std::to_string(in.op));
    }
  }
};

void fused_pointwise_kernel(KernelContext& ctx) {
  Program p;
  std::vector<DataType> dts;
  for (size_t i = 0; i < ctx.in.size(); ++i) dts.push_back(ctx.input(i).dtype);
  try {
    p = Program::from_attrs(ctx.attrs());
    validate(p, dts);
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  TensorRef& y = ctx.out[0];
  if (y.dtype != p.out_dtype()) ctx.fail(std::string("output dtype ") + dtype_name(y.dtype) + " differs from the program's");
  Interpreter it{p, {}, dts, {}, y.shape, y.data, y.dtype};
  for (size_t i = 0; i < ctx.in.size(); ++i) {
    const TensorRef& t = ctx.in[i];
    if (t.shape.size() > y.shape.size()) ctx.fail("input " + std::to_string(i) + " has a higher rank than the output");
    Dims s(y.shape.size(), 0);
    int64_t acc = 1;
    for (size_t k = 0; k < t.shape.size(); ++k) {
      const size_t di = t.shape.size() - 1 - k, dout = y.shape.size() - 1 - k;
      if (t.shape[di] != y.shape[dout] && t.shape[di] != 1)
        ctx.fail("input " + std::to_string(i) + " of shape " + dims_str(t.shape) + " does not broadcast to " + dims_str(y.shape));
      s[dout] = (t.shape[di] == 1 && y.shape[dout] != 1) ? 0 : acc;
      acc *= t.shape[di];
    }
    it.in_data.push_back(t.data);
    it.in_strides.push_back(std::move(s));
  }
  const int64_t n = y.numel();
  if (n <= 0) return;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int64_t nregs = static_cast<int64_t>(p.code.size());
  const int64_t cost = kBlock * std::max<int64_t>(1, nregs);
  parallel_range(ctx.pool, blocks, grain_for(cost), [&](int64_t b, int64_t e) {
    std::vector<unsigned char> regs(static_cast<size_t>(nregs * kBlock * 8));
    std::vector<int64_t> offs(std::max<size_t>(1, it.in_data.size()) * kBlock);
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t begin = blk * kBlock, len = std::min(kBlock, n - begin);
      if (!it.in_data.empty()) it.offsets(begin, len, offs);
      for (int64_t r = 0; r < nregs; ++r) it.exec(p.code[r], r, len, offs, regs.data());
      it.store(begin, len, regs.data(), nregs - 1);
    }
  });
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("FusedPointwise", &fused_pointwise_kernel);

}  // namespace kiln::cpu
