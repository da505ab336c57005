#include "backends/cuda/nvrtc/pointwise_codegen.h"

#include "backends/cuda/nvrtc/source_writer.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

// GCC 12 reports std::string concatenations of literals as overlapping memcpy (a known false positive).
#pragma GCC diagnostic ignored "-Wrestrict"

namespace kiln::cuda {

namespace {

using namespace ir::pw;

// Device helpers every generated kernel starts with. Float formulas mirror the hand-written kernels
// (kernels/activation.cu, elementwise.cu, unary.cu) so fused and unfused graphs compute alike.
const char* kPrelude = R"KILN(
typedef signed char i8;
typedef unsigned char u8;
typedef long long i64;
typedef unsigned long long u64;
#define KD static __device__ __forceinline__

KD float kiln_h2f(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
KD unsigned short kiln_f2h(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
KD float kiln_b2f(unsigned short b) { return __uint_as_float(((unsigned)b) << 16); }
KD unsigned short kiln_f2b(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}
KD float kiln_rh(float f) { return kiln_h2f(kiln_f2h(f)); }
KD float kiln_rb(float f) { return kiln_b2f(kiln_f2b(f)); }
KD i64 kiln_f2i(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2233720368547758e18) return 0x7fffffffffffffffLL;
  if (v <= -9.2233720368547758e18) return -0x7fffffffffffffffLL - 1;
  return (i64)v;
}

#define KILN_FLOAT_OPS(F, S)                                                                        \
  KD F k_max(F a, F b) { return (a > b || a != a) ? a : b; }                                        \
  KD F k_min(F a, F b) { return (a < b || a != a) ? a : b; }                                        \
  KD F k_modpy(F a, F b) {                                                                          \
    F r = fmod##S(a, b);                                                                            \
    if (r != (F)0 && ((r < (F)0) != (b < (F)0))) r += b;                                            \
    return r;                                                                                       \
  }                                                                                                 \
  KD F k_sign(F v) { return v > (F)0 ? (F)1 : (v < (F)0 ? (F)-1 : v); }                             \
  KD F k_clamp01(F v) { return v < (F)0 ? (F)0 : (v > (F)1 ? (F)1 : v); }                           \
  KD F k_softplus(F z) { return z > (F)0 ? z + log1p##S(exp##S(-z)) : log1p##S(exp##S(z)); }       \
  KD F k_act0(F x, F a, F b) { return x < (F)0 ? (F)0 : x; }                                        \
  KD F k_act1(F x, F a, F b) { return (F)1 / ((F)1 + exp##S(-x)); }                                 \
  KD F k_act2(F x, F a, F b) { return tanh##S(x); }                                                 \
  KD F k_act3(F x, F a, F b) { return x >= (F)0 ? x : a * x; }                                      \
  KD F k_act4(F x, F a, F b) { return x >= (F)0 ? x : a * expm1##S(x); }                            \
  KD F k_act5(F x, F a, F b) { return b * (x > (F)0 ? x : a * expm1##S(x)); }                       \
  KD F k_act6(F x, F a, F b) { return x / ((F)1 + fabs##S(x)); }                                    \
  KD F k_act7(F x, F a, F b) { return a * k_softplus(b * x); }                                      \
  KD F k_act8(F x, F a, F b) { return x < a ? a : (x > b ? b : x); }                                \
  KD F k_act9(F x, F a, F b) { return k_clamp01(a * x + b); }                                       \
  KD F k_act10(F x, F a, F b) { return a * tanh##S(b * x); }                                        \
  KD F k_act11(F x, F a, F b) { return x <= a ? (F)0 : x; }                                         \
  KD F k_act12(F x, F a, F b) { return (F)0.5 * x * erfc##S(-x * (F)0.70710678118654752); }         \
  KD F k_act13(F x, F a, F b) {                                                                     \
    const F u = (F)0.7978845608028654 * (x + (F)0.044715 * x * x * x);                              \
    return x / ((F)1 + exp##S((F)-2 * u));                                                          \
  }                                                                                                 \
  KD F k_act64(F x, F a, F b) { return x * k_clamp01(x * ((F)1 / (F)6) + (F)0.5); }                 \
  KD F k_act65(F x, F a, F b) { return x / ((F)1 + exp##S(-x)); }                                   \
  KD F k_act66(F x, F a, F b) { return x * tanh##S(k_softplus(x)); }                                \
  KD F k_act67(F x, F a, F b) { return x > (F)0 ? x : a * expm1##S(x / a); }                        \
  KD F k_act68(F x, F a, F b) { return x < -b ? x + a : (x > b ? x - a : (x == x ? (F)0 : x)); }

KILN_FLOAT_OPS(float, f)
KILN_FLOAT_OPS(double, )

template <class T> struct kiln_int;
template <> struct kiln_int<i8> { typedef u8 U; static const bool sgn = true; static const int bits = 8; };
template <> struct kiln_int<u8> { typedef u8 U; static const bool sgn = false; static const int bits = 8; };
template <> struct kiln_int<int> { typedef unsigned U; static const bool sgn = true; static const int bits = 32; };
template <> struct kiln_int<i64> { typedef u64 U; static const bool sgn = true; static const int bits = 64; };

template <class T> KD T i_add(T a, T b) { typedef typename kiln_int<T>::U U; return (T)(U)((U)a + (U)b); }
template <class T> KD T i_sub(T a, T b) { typedef typename kiln_int<T>::U U; return (T)(U)((U)a - (U)b); }
template <class T> KD T i_mul(T a, T b) { typedef typename kiln_int<T>::U U; return (T)(U)((U)a * (U)b); }
template <class T> KD T i_div(T a, T b) {
  if (b == 0) return 0;
  if (kiln_int<T>::sgn && b == (T)-1) return i_sub((T)0, a);
  return (T)(a / b);
}
template <class T> KD T i_mod(T a, T b) {
  if (b == 0) return 0;
  if (kiln_int<T>::sgn && b == (T)-1) return 0;
  return (T)(a % b);
}
template <class T> KD T i_floordiv(T a, T b) {
  T q = i_div(a, b);
  if (kiln_int<T>::sgn && b != 0 && i_mod(a, b) != 0 && ((a < (T)0) != (b < (T)0))) q = (T)(q - 1);
  return q;
}
template <class T> KD T i_modpy(T a, T b) {
  T r = i_mod(a, b);
  if (kiln_int<T>::sgn && r != 0 && ((r < (T)0) != (b < (T)0))) r = (T)(r + b);
  return r;
}
template <class T> KD T i_pow(T a, T b) {
  if (kiln_int<T>::sgn && b < (T)0) return a == (T)1 ? (T)1 : a == (T)-1 ? ((b & 1) ? (T)-1 : (T)1) : (T)0;
  T r = 1, base = a;
  for (T e = b; e > (T)0; e = (T)(e >> 1)) {
    if (e & 1) r = i_mul(r, base);
    base = i_mul(base, base);
  }
  return r;
}
template <class T> KD bool i_shift_ok(T b) {
  if (kiln_int<T>::sgn && b < (T)0) return false;
  return (u64)b < (u64)kiln_int<T>::bits;
}
template <class T> KD T i_shl(T a, T b) {
  typedef typename kiln_int<T>::U U;
  if (!i_shift_ok(b)) return 0;
  return (T)(U)((U)a << (unsigned)b);
}
template <class T> KD T i_shr(T a, T b) {
  if (!i_shift_ok(b)) return (kiln_int<T>::sgn && a < (T)0) ? (T)-1 : (T)0;
  return (T)(a >> (unsigned)b);
}
)KILN";

bool low_float(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

const char* storage_type(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "float";
    case DataType::kHALF: case DataType::kBF16: return "unsigned short";
    case DataType::kDOUBLE: return "double";
    case DataType::kINT8: return "i8";
    case DataType::kUINT8: case DataType::kBOOL: return "u8";
    case DataType::kINT32: return "int";
    case DataType::kINT64: return "i64";
    default: throw Error(std::string("FusedPointwise: no CUDA type for ") + dtype_name(t));
  }
}
// A name for the vector struct of a storage type.
const char* storage_tag(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "f32";
    case DataType::kHALF: case DataType::kBF16: return "u16";
    case DataType::kDOUBLE: return "f64";
    case DataType::kINT8: return "i8";
    case DataType::kUINT8: case DataType::kBOOL: return "u8";
    case DataType::kINT32: return "i32";
    default: return "i64";
  }
}
const char* compute_type(DataType t) {
  if (low_float(t)) return "float";
  if (t == DataType::kBOOL) return "bool";
  return storage_type(t);
}

std::string load_expr(DataType t, const std::string& x) {
  switch (t) {
    case DataType::kHALF: return "kiln_h2f(" + x + ")";
    case DataType::kBF16: return "kiln_b2f(" + x + ")";
    case DataType::kBOOL: return "(" + x + " != 0)";
    default: return x;
  }
}
std::string store_expr(DataType t, const std::string& v) {
  switch (t) {
    case DataType::kHALF: return "kiln_f2h(" + v + ")";
    case DataType::kBF16: return "kiln_f2b(" + v + ")";
    case DataType::kBOOL: return "(u8)(" + v + " ? 1 : 0)";
    default: return v;
  }
}

std::string hex_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// A literal of compute type float (float32/16/bf16 values) or double, exact.
std::string float_lit(double v, bool dbl) {
  if (dbl) {
    if (std::isnan(v)) return "__longlong_as_double(0x7ff8000000000000LL)";
    if (std::isinf(v)) return v > 0 ? "__longlong_as_double(0x7ff0000000000000LL)" : "__longlong_as_double((i64)0xfff0000000000000ULL)";
    return std::string("(").append(hex_double(v)).append(")");
  }
  const float f = static_cast<float>(v);
  if (std::isnan(f)) return "__int_as_float(0x7fc00000)";
  if (std::isinf(f)) return f > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float((int)0xff800000u)";
  return std::string("(").append(hex_double(static_cast<double>(f))).append("f)");
}

std::string int_lit(DataType t, int64_t v) {
  if (t == DataType::kBOOL) return v ? "true" : "false";
  if (t == DataType::kINT64) {
    if (v == INT64_MIN) return "(-0x7fffffffffffffffLL - 1)";
    return "(" + std::to_string(v) + "LL)";
  }
  if (t == DataType::kINT32 && v == INT32_MIN) return "(-2147483647 - 1)";
  return "((" + std::string(compute_type(t)) + ")" + std::to_string(v) + ")";
}

std::string r(int64_t i) { return std::string("r").append(std::to_string(i)); }

class Generator {
 public:
  explicit Generator(const Program& p) : p_(p) {}

  std::string instr(size_t i) {
    const Instr& in = p_.code[i];
    const DataType dt = in.dtype;
    std::string e;
    switch (in.op) {
      case kInput: e = load_expr(dt, "x" + std::to_string(in.a)); break;
      case kConst:
        e = ir::pw::is_float_type(dt) ? float_lit(p_.imm[in.a], dt == DataType::kDOUBLE) : int_lit(dt, in.a);
        break;
      case kElementWise: e = elementwise(in); break;
      case kUnary: e = unary(in); break;
      case kActivation: e = activation(in); break;
      case kCast: e = cast(in); break;
      case kSelect: e = "(" + r(in.a) + " ? " + r(in.b) + " : " + r(in.c) + ")"; break;
      default: throw Error("FusedPointwise: unknown opcode " + std::to_string(in.op));
    }
    return "  const " + std::string(compute_type(dt)) + " " + r(static_cast<int64_t>(i)) + " = " + e + ";\n";
  }

 private:
  const Program& p_;

  DataType dtype_of(int64_t reg) const { return p_.code[static_cast<size_t>(reg)].dtype; }

  std::string elementwise(const Instr& in) const {
    const DataType t = dtype_of(in.a);
    const std::string a = r(in.a), b = r(in.b);
    switch (in.sub) {
      case kEqual: return "(" + a + " == " + b + ")";
      case kGreater: return "(" + a + " > " + b + ")";
      case kLess: return "(" + a + " < " + b + ")";
      case kGreaterEqual: return "(" + a + " >= " + b + ")";
      case kLessEqual: return "(" + a + " <= " + b + ")";
      case kAnd: return "(" + a + " && " + b + ")";
      case kOr: return "(" + a + " || " + b + ")";
      case kXor: return "(" + a + " != " + b + ")";
      default: break;
    }
    if (ir::pw::is_float_type(t)) {
      const std::string s = t == DataType::kDOUBLE ? "" : "f";
      const std::string ct = compute_type(t);
      switch (in.sub) {
        case kSum: return "(" + a + " + " + b + ")";
        case kProd: return "(" + a + " * " + b + ")";
        case kSub: return "(" + a + " - " + b + ")";
        case kDiv: return "(" + a + " / " + b + ")";
        case kMax: return "k_max(" + a + ", " + b + ")";
        case kMin: return "k_min(" + a + ", " + b + ")";
        case kFloorDiv: return "floor" + s + "(" + a + " / " + b + ")";
        case kMod: return in.c == 1 ? "fmod" + s + "(" + a + ", " + b + ")" : "k_modpy(" + a + ", " + b + ")";
        case kPow: {
          // A constant exponent with a cheap exact form (the CPU interpreter does the same).
          if (p_.code[static_cast<size_t>(in.b)].op == kConst) {
            const double e = p_.const_value(in.b);
            if (e == 2.0) return "(" + a + " * " + a + ")";
            if (e == 3.0) return "(" + a + " * " + a + " * " + a + ")";
            if (e == 0.5) return "sqrt" + s + "(" + a + ")";
            if (e == 1.0) return a;
            if (e == -1.0) return "((" + ct + ")1 / " + a + ")";
          }
          return "pow" + s + "(" + a + ", " + b + ")";
        }
        default: break;
      }
    } else {
      switch (in.sub) {
        case kSum: return "i_add(" + a + ", " + b + ")";
        case kProd: return "i_mul(" + a + ", " + b + ")";
        case kSub: return "i_sub(" + a + ", " + b + ")";
        case kDiv: return "i_div(" + a + ", " + b + ")";
        case kMax: return "(" + a + " > " + b + " ? " + a + " : " + b + ")";
        case kMin: return "(" + a + " < " + b + " ? " + a + " : " + b + ")";
        case kFloorDiv: return "i_floordiv(" + a + ", " + b + ")";
        case kMod: return in.c == 1 ? "i_mod(" + a + ", " + b + ")" : "i_modpy(" + a + ", " + b + ")";
        case kPow: return "i_pow(" + a + ", " + b + ")";
        case kShiftLeft: return "i_shl(" + a + ", " + b + ")";
        case kShiftRight: return "i_shr(" + a + ", " + b + ")";
        default: break;
      }
    }
    throw Error("FusedPointwise: elementwise op " + std::to_string(in.sub) + " on " + dtype_name(t));
  }

  std::string unary(const Instr& in) const {
    const DataType t = dtype_of(in.a);
    const std::string a = r(in.a);
    if (in.sub == kNot) return "(!" + a + ")";
    if (!ir::pw::is_float_type(t)) {
      const std::string ct = compute_type(t);
      switch (in.sub) {
        case kAbs: return "(" + a + " < (" + ct + ")0 ? i_sub((" + ct + ")0, " + a + ") : " + a + ")";
        case kNeg: return "i_sub((" + ct + ")0, " + a + ")";
        case kSign: return "(" + ct + ")((" + a + " > (" + ct + ")0) - (" + a + " < (" + ct + ")0))";
        default: throw Error("FusedPointwise: unary op " + std::to_string(in.sub) + " on " + dtype_name(t));
      }
    }
    const std::string s = t == DataType::kDOUBLE ? "" : "f";
    const std::string ct = compute_type(t);
    static const std::map<int64_t, const char*> kFn = {
        {kExp, "exp"},     {kLog, "log"},     {kSqrt, "sqrt"},   {kAbs, "fabs"},   {kSin, "sin"},
        {kCos, "cos"},     {kTan, "tan"},     {kSinh, "sinh"},   {kCosh, "cosh"},  {kAsin, "asin"},
        {kAcos, "acos"},   {kAtan, "atan"},   {kAsinh, "asinh"}, {kAcosh, "acosh"}, {kAtanh, "atanh"},
        {kCeil, "ceil"},   {kFloor, "floor"}, {kErf, "erf"},     {kRound, "rint"}};
    auto it = kFn.find(in.sub);
    if (it != kFn.end()) return std::string(it->second) + s + "(" + a + ")";
    switch (in.sub) {
      case kRecip: return "((" + ct + ")1 / " + a + ")";
      case kNeg: return "(-" + a + ")";
      case kSign: return "k_sign(" + a + ")";
      case kIsInf: return "(bool)isinf(" + a + ")";
      case kIsNan: return "(" + a + " != " + a + ")";
      default: throw Error("FusedPointwise: unary op " + std::to_string(in.sub));
    }
  }

  std::string activation(const Instr& in) const {
    const DataType t = in.dtype;
    const std::string a = r(in.a);
    const double alpha = p_.imm[in.b], beta = p_.imm[in.b + 1];
    if (ir::pw::is_float_type(t)) {
      const bool dbl = t == DataType::kDOUBLE;
      return "k_act" + std::to_string(in.sub) + "(" + a + ", " + float_lit(alpha, dbl) + ", " + float_lit(beta, dbl) + ")";
    }
    int64_t lo, hi;
    int_range(t, &lo, &hi);
    const std::string l = int_lit(t, in.sub == kRelu ? 0 : int_clip_bound(alpha, true, lo, hi));
    const std::string h = int_lit(t, in.sub == kRelu ? hi : int_clip_bound(beta, false, lo, hi));
    return "(" + a + " < " + l + " ? " + l + " : (" + a + " > " + h + " ? " + h + " : " + a + "))";
  }

  std::string cast(const Instr& in) const {
    const DataType from = dtype_of(in.a), to = in.dtype;
    const std::string a = r(in.a);
    if (from == to) return a;
    const bool from_float = ir::pw::is_float_type(from);
    if (to == DataType::kBOOL) return "(" + a + " != 0)";
    if (from == DataType::kBOOL) {
      if (ir::pw::is_float_type(to)) return "(" + a + " ? (" + std::string(compute_type(to)) + ")1 : (" + compute_type(to) + ")0)";
      return "(" + std::string(compute_type(to)) + ")(" + a + " ? 1 : 0)";
    }
    switch (to) {
      case DataType::kFLOAT: return low_float(from) ? a : "(float)" + a;
      case DataType::kHALF: return "kiln_rh((float)" + a + ")";
      case DataType::kBF16: return "kiln_rb((float)" + a + ")";
      case DataType::kDOUBLE: return "(double)" + a;
      default: break;
    }
    // To an integer: keep the low bits (float sources truncate toward zero first, NaN -> 0).
    const std::string ct = compute_type(to);
    if (from_float) return "(" + ct + ")(u64)kiln_f2i((double)" + a + ")";
    return "(" + ct + ")(u64)(i64)" + a;
  }
};

}  // namespace

int PointwiseSpec::num_strided() const {
  int n = 0;
  for (InputKind k : kinds) n += k == InputKind::kStrided;
  return n;
}

int PointwiseSpec::vec_alignment(DataType dt) {
  const int bytes = 4 * static_cast<int>(dtype_size(dt));
  return bytes < 16 ? bytes : 16;
}

void plan_layout(PointwiseSpec& spec, const std::vector<Dims>& in_shapes, const Dims& out, std::vector<int64_t>* geo) {
  const int64_t n = volume(out);
  spec.kinds.clear();
  std::vector<Dims> strides;  // of the strided inputs, full output rank, 0 on broadcast dims
  for (size_t i = 0; i < in_shapes.size(); ++i) {
    const Dims& s = in_shapes[i];
    if (s.size() > out.size()) throw Error("input " + std::to_string(i) + " has a higher rank than the output");
    Dims st(out.size(), 0);
    int64_t acc = 1;
    for (size_t k = 0; k < s.size(); ++k) {
      const size_t di = s.size() - 1 - k, dout = out.size() - 1 - k;
      if (s[di] != out[dout] && s[di] != 1)
        throw Error("input " + std::to_string(i) + " of shape " + dims_str(s) + " does not broadcast to " + dims_str(out));
      st[dout] = (s[di] == 1 && out[dout] != 1) ? 0 : acc;
      acc *= s[di];
    }
    // Every dim is the output's or 1, so the same element count means the same layout.
    const int64_t m = volume(s);
    if (m == 1) {
      spec.kinds.push_back(InputKind::kScalar);
    } else if (m == n) {
      spec.kinds.push_back(InputKind::kFlat);
    } else {
      spec.kinds.push_back(InputKind::kStrided);
      strides.push_back(std::move(st));
    }
  }
  Dims cd;
  std::vector<Dims> cs(strides.size());
  for (size_t d = 0; d < out.size() && !strides.empty(); ++d) {
    if (out[d] == 1) continue;
    bool merge = !cd.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k) merge = cs[k].back() == strides[k][d] * out[d];
    if (merge) {
      cd.back() *= out[d];
      for (size_t k = 0; k < strides.size(); ++k) cs[k].back() = strides[k][d];
    } else {
      cd.push_back(out[d]);
      for (size_t k = 0; k < strides.size(); ++k) cs[k].push_back(strides[k][d]);
    }
  }
  spec.rank = static_cast<int>(cd.size());
  geo->clear();
  if (!strides.empty()) {
    *geo = cd;
    for (const Dims& s : cs) geo->insert(geo->end(), s.begin(), s.end());
  }
  // int32 indices while i + the grid's stride (at most ~2^28 threads) cannot overflow.
  spec.index32 = n < (int64_t{1} << 30);
  for (const Dims& s : in_shapes) spec.index32 = spec.index32 && volume(s) < (int64_t{1} << 31);
}

std::string pointwise_source(const PointwiseSpec& spec, const std::string& entry) {
  const Program& p = spec.program;
  validate(p, spec.input_dtypes);
  const size_t ni = spec.input_dtypes.size();
  if (spec.kinds.size() != ni) throw Error("FusedPointwise: one input kind per input expected");
  const DataType out_dt = p.out_dtype();
  const int strided = spec.num_strided();
  if (strided && spec.rank < 1) throw Error("FusedPointwise: strided inputs need a rank >= 1");
  const bool vec_path = strided == 0;

  SourceWriter s;
  s << "// Generated by Kiln for a FusedPointwise node.\n" << kPrelude << "\n";

  // The program over one element's input values.
  s << "KD " << storage_type(out_dt) << " kiln_compute(";
  for (size_t k = 0; k < ni; ++k) s << (k ? ", " : "") << "const " << storage_type(spec.input_dtypes[k]) << " x" << k;
  s << ") {\n";
  Generator gen(p);
  for (size_t i = 0; i < p.code.size(); ++i) s << gen.instr(i);
  s << "  return " << store_expr(out_dt, r(static_cast<int64_t>(p.code.size()) - 1)) << ";\n}\n\n";

  // Vector bundles for the vectorized path.
  if (vec_path) {
    std::set<std::string> done;
    std::vector<DataType> types(spec.input_dtypes);
    types.push_back(out_dt);
    for (size_t k = 0; k < types.size(); ++k) {
      if (k < ni && spec.kinds[k] != InputKind::kFlat) continue;
      const std::string tag = storage_tag(types[k]);
      if (!done.insert(tag).second) continue;
      s << "struct alignas(" << PointwiseSpec::vec_alignment(types[k]) << ") KilnV4_" << tag << " { "
        << storage_type(types[k]) << " v[4]; };\n";
    }
  }
  if (strided) s << "struct KilnGeo { i64 v[" << spec.geo_size() << "]; };\n";

  s << "\nextern \"C\" __global__ void __launch_bounds__(256) " << entry << "(";
  for (size_t k = 0; k < ni; ++k)
    s << "const " << storage_type(spec.input_dtypes[k]) << "* __restrict__ in" << k << ", ";
  s << storage_type(out_dt) << "* __restrict__ out, i64 n, int vec";
  if (strided) s << ", const KilnGeo geo";
  s << ") {\n";
  s << "  typedef " << (spec.index32 ? "int" : "i64") << " idx_t;\n";
  s << "  const idx_t total = (idx_t)n;\n";
  s << "  const idx_t stride = (idx_t)gridDim.x * (idx_t)blockDim.x;\n";
  s << "  const idx_t t0 = (idx_t)blockIdx.x * (idx_t)blockDim.x + (idx_t)threadIdx.x;\n";
  for (size_t k = 0; k < ni; ++k)
    if (spec.kinds[k] == InputKind::kScalar)
      s << "  const " << storage_type(spec.input_dtypes[k]) << " s" << k << " = in" << k << "[0];\n";
  s << "  idx_t start = 0;\n";
  if (vec_path) {
    const std::string otag = storage_tag(out_dt);
    s << "  if (vec) {\n";
    s << "    const idx_t nv = total / 4;\n";
    s << "    for (idx_t v = t0; v < nv; v += stride) {\n";
    for (size_t k = 0; k < ni; ++k)
      if (spec.kinds[k] == InputKind::kFlat) {
        const std::string tag = storage_tag(spec.input_dtypes[k]);
        s << "      const KilnV4_" << tag << " a" << k << " = reinterpret_cast<const KilnV4_" << tag << "*>(in" << k
          << ")[v];\n";
      }
    s << "      KilnV4_" << otag << " o;\n";
    s << "#pragma unroll\n";
    s << "      for (int k = 0; k < 4; ++k) o.v[k] = kiln_compute(";
    for (size_t k = 0; k < ni; ++k)
      s << (k ? ", " : "") << (spec.kinds[k] == InputKind::kFlat ? "a" : "s") << k << (spec.kinds[k] == InputKind::kFlat ? ".v[k]" : "");
    s << ");\n";
    s << "      reinterpret_cast<KilnV4_" << otag << "*>(out)[v] = o;\n";
    s << "    }\n";
    s << "    start = nv * 4;\n";
    s << "  }\n";
  }
  s << "  for (idx_t i = start + t0; i < total; i += stride) {\n";
  if (strided) {
    const int R = spec.rank;
    std::vector<size_t> sidx;
    for (size_t k = 0; k < ni; ++k)
      if (spec.kinds[k] == InputKind::kStrided) sidx.push_back(k);
    s << "    idx_t rem = i;\n";
    for (size_t j = 0; j < sidx.size(); ++j) s << "    idx_t o" << sidx[j] << " = 0;\n";
    for (int d = R - 1; d >= 1; --d) {
      s << "    {\n      const idx_t dim = (idx_t)geo.v[" << d << "];\n";
      s << "      const idx_t q = rem / dim;\n      const idx_t c = rem - q * dim;\n      rem = q;\n";
      for (size_t j = 0; j < sidx.size(); ++j)
        s << "      o" << sidx[j] << " += c * (idx_t)geo.v[" << R + static_cast<int>(j) * R + d << "];\n";
      s << "    }\n";
    }
    for (size_t j = 0; j < sidx.size(); ++j)
      s << "    o" << sidx[j] << " += rem * (idx_t)geo.v[" << R + static_cast<int>(j) * R << "];\n";
  }
  s << "    out[i] = kiln_compute(";
  for (size_t k = 0; k < ni; ++k) {
    s << (k ? ", " : "");
    switch (spec.kinds[k]) {
      case InputKind::kFlat: s << "in" << k << "[i]"; break;
      case InputKind::kScalar: s << "s" << k; break;
      case InputKind::kStrided: s << "in" << k << "[o" << k << "]"; break;
    }
  }
  s << ");\n  }\n}\n";
  return s.str();
}

}  // namespace kiln::cuda
