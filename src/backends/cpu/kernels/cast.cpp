// CPU kernel for Cast: every pair of Kiln dtypes.
//
// Each dtype has an Elem<D> that reads an element as int64 (integers) or double (floats) and writes one
// from either; cast_range<S, D> is instantiated for every pair, so the per-element work is one read and
// one conversion with no dtype switch inside the loop. Rules (ONNX Cast): float -> integer truncates
// toward zero, integer -> narrower integer keeps the low bits (sign-extended for signed types), -> bool is
// x != 0, float8/float4 follow minifloat.h (attribute `saturate`), E8M0 follows `round_mode`.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range
#include "backends/cpu/kernels/convert.h"
#include "backends/cpu/kernels/vec_math.h"   // KILN_HAVE_AVX2_PATH
#include "ir/dtype_traits.h"
#include "ir/host_tensor.h"
#include "ir/minifloat.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

#if KILN_HAVE_AVX2_PATH
#include <immintrin.h>
#define KILN_TARGET_F16C __attribute__((target("avx2,f16c")))
#endif

namespace kiln::cpu {
namespace {

struct CastOpts {
  bool saturate = true;                // float8 targets: clamp out-of-range values to +-max
  E8M0Round round = E8M0Round::kUp;    // E8M0 targets
};

// float -> integer truncates toward zero; NaN gives 0; values beyond int64 saturate there, then narrower
// types keep the low bits (as numpy's astype does for in-range values).
inline int64_t f_to_i64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

template <DataType D> struct Elem;

template <class FT> struct NativeFloat {
  using T = FT;
  static constexpr bool kFloat = true;
  static double get(T v) { return v; }
  static T from_f(double v, const CastOpts&) { return static_cast<T>(v); }
  static T from_i(int64_t v, const CastOpts&) { return static_cast<T>(v); }
};
template <> struct Elem<DataType::kFLOAT> : NativeFloat<float> {};
template <> struct Elem<DataType::kDOUBLE> : NativeFloat<double> {};

template <> struct Elem<DataType::kHALF> {
  using T = uint16_t;
  static constexpr bool kFloat = true;
  static double get(T v) { return half_to_float(v); }
  static T from_f(double v, const CastOpts&) { return float_to_half(static_cast<float>(v)); }
  static T from_i(int64_t v, const CastOpts&) { return float_to_half(static_cast<float>(v)); }
};
template <> struct Elem<DataType::kBF16> {
  using T = uint16_t;
  static constexpr bool kFloat = true;
  static double get(T v) { return bf16_to_float(v); }
  static T from_f(double v, const CastOpts&) { return float_to_bf16(static_cast<float>(v)); }
  static T from_i(int64_t v, const CastOpts&) { return float_to_bf16(static_cast<float>(v)); }
};

// float8 / float4 codes; decoding goes through a table built once per format.
template <DataType D> struct MiniElem {
  using T = uint8_t;
  static constexpr bool kFloat = true;
  static double get(T v) {
    static const auto table = [] {
      std::array<float, 256> t{};
      for (int c = 0; c < 256; ++c) t[c] = D == DataType::kFP4 && c > 15 ? 0.0f : minifloat_to_float(D, static_cast<uint8_t>(c));
      return t;
    }();
    return table[v];
  }
  static T from_f(double v, const CastOpts& o) { return float_to_minifloat(D, v, o.saturate); }
  static T from_i(int64_t v, const CastOpts& o) { return float_to_minifloat(D, static_cast<double>(v), o.saturate); }
};
template <> struct Elem<DataType::kFP8> : MiniElem<DataType::kFP8> {};
template <> struct Elem<DataType::kFP8E5M2> : MiniElem<DataType::kFP8E5M2> {};
template <> struct Elem<DataType::kFP8E4M3FNUZ> : MiniElem<DataType::kFP8E4M3FNUZ> {};
template <> struct Elem<DataType::kFP8E5M2FNUZ> : MiniElem<DataType::kFP8E5M2FNUZ> {};
template <> struct Elem<DataType::kFP4> : MiniElem<DataType::kFP4> {};

template <> struct Elem<DataType::kE8M0> {
  using T = uint8_t;
  static constexpr bool kFloat = true;
  static double get(T v) { return e8m0_to_float(v); }
  // ONNX's reference converts to float32 first, then picks the exponent.
  static T from_f(double v, const CastOpts& o) { return float_to_e8m0(static_cast<float>(v), o.saturate, o.round); }
  static T from_i(int64_t v, const CastOpts& o) { return from_f(static_cast<double>(v), o); }
};

// Integers: D's value bits, wrapped (wrap_to_int handles the sub-byte widths).
template <DataType D, class IT> struct IntElem {
  using T = IT;
  static constexpr bool kFloat = false;
  static int64_t get(T v) { return static_cast<int64_t>(v); }
  static T from_i(int64_t v, const CastOpts&) {
    if constexpr (sizeof(T) * 8 == static_cast<size_t>(dtype_int_bits(D)) || D == DataType::kINT64)
      return static_cast<T>(static_cast<uint64_t>(v));
    else
      return static_cast<T>(wrap_to_int(D, v));
  }
  static T from_f(double v, const CastOpts& o) { return from_i(f_to_i64(v), o); }
};
template <> struct Elem<DataType::kINT8> : IntElem<DataType::kINT8, int8_t> {};
template <> struct Elem<DataType::kUINT8> : IntElem<DataType::kUINT8, uint8_t> {};
template <> struct Elem<DataType::kINT16> : IntElem<DataType::kINT16, int16_t> {};
template <> struct Elem<DataType::kUINT16> : IntElem<DataType::kUINT16, uint16_t> {};
template <> struct Elem<DataType::kINT32> : IntElem<DataType::kINT32, int32_t> {};
template <> struct Elem<DataType::kUINT32> : IntElem<DataType::kUINT32, uint32_t> {};
template <> struct Elem<DataType::kINT64> : IntElem<DataType::kINT64, int64_t> {};
template <> struct Elem<DataType::kINT4> : IntElem<DataType::kINT4, int8_t> {};
template <> struct Elem<DataType::kUINT4> : IntElem<DataType::kUINT4, uint8_t> {};
template <> struct Elem<DataType::kINT2> : IntElem<DataType::kINT2, int8_t> {};
template <> struct Elem<DataType::kUINT2> : IntElem<DataType::kUINT2, uint8_t> {};
template <> struct Elem<DataType::kUINT64> : IntElem<DataType::kUINT64, uint64_t> {
  // Values in [2^63, 2^64) do not fit int64 but do fit uint64.
  static T from_f(double v, const CastOpts& o) {
    if (v >= 9.2233720368547758e18 && v < 1.8446744073709552e19) return static_cast<T>(v);
    return from_i(f_to_i64(v), o);
  }
};
template <> struct Elem<DataType::kBOOL> {
  using T = uint8_t;
  static constexpr bool kFloat = false;
  static int64_t get(T v) { return v != 0; }
  static T from_f(double v, const CastOpts&) { return v != 0.0; }
  static T from_i(int64_t v, const CastOpts&) { return v != 0; }
};

using CastFn = void (*)(const void*, void*, int64_t, int64_t, const CastOpts&);

template <DataType S, DataType D>
void cast_range(const void* in, void* out, int64_t b, int64_t e, const CastOpts& o) {
  using ST = typename Elem<S>::T;
  using DT = typename Elem<D>::T;
  const ST* x = static_cast<const ST*>(in);
  DT* y = static_cast<DT*>(out);
  for (int64_t i = b; i < e; ++i) {
    if constexpr (Elem<S>::kFloat) y[i] = Elem<D>::from_f(Elem<S>::get(x[i]), o);
    else if constexpr (S == DataType::kUINT64 && Elem<D>::kFloat) y[i] = Elem<D>::from_f(static_cast<double>(x[i]), o);
    else y[i] = Elem<D>::from_i(Elem<S>::get(x[i]), o);
  }
}

// Every dtype, for the two-level dispatch below.
#define KILN_CAST_DTYPES(X)                                                                                  \
  X(kFLOAT) X(kDOUBLE) X(kHALF) X(kBF16) X(kINT8) X(kUINT8) X(kINT16) X(kUINT16) X(kINT32) X(kUINT32)     \
  X(kINT64) X(kUINT64) X(kBOOL) X(kINT4) X(kUINT4) X(kINT2) X(kUINT2) X(kFP8) X(kFP8E5M2) X(kFP8E4M3FNUZ) \
  X(kFP8E5M2FNUZ) X(kFP4) X(kE8M0)

template <DataType S>
CastFn cast_fn_to(DataType d) {
#define KILN_CAST_CASE(D) case DataType::D: return &cast_range<S, DataType::D>;
  switch (d) {
    KILN_CAST_DTYPES(KILN_CAST_CASE)
    default: return nullptr;
  }
#undef KILN_CAST_CASE
}

CastFn cast_fn(DataType s, DataType d) {
#define KILN_CAST_CASE(S) case DataType::S: return cast_fn_to<DataType::S>(d);
  switch (s) {
    KILN_CAST_DTYPES(KILN_CAST_CASE)
    default: return nullptr;
  }
#undef KILN_CAST_CASE
}

#if KILN_HAVE_AVX2_PATH
// float32 <-> float16 with the F16C instructions (round to nearest even, as float_to_half).
KILN_TARGET_F16C void f32_to_f16_f16c(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = float_to_half(x[i]);
}
KILN_TARGET_F16C void f16_to_f32_f16c(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = half_to_float(x[i]);
}
bool has_f16c() {
  static const bool v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return v;
}
#endif

void copy_parallel(ThreadPool* pool, void* dst, const void* src, size_t bytes) {
  if (dst == src || bytes == 0) return;
  constexpr int64_t kBlock = 1 << 18;
  const int64_t blocks = static_cast<int64_t>((bytes + kBlock - 1) / kBlock);
  parallel_range(pool, blocks, 4, [&](int64_t b, int64_t e) {
    const size_t lo = static_cast<size_t>(b) * kBlock, hi = std::min(bytes, static_cast<size_t>(e) * kBlock);
    std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, hi - lo);
  });
}

// n elements of `in` (dtype `from`) converted to `to` into `out`; false when the pair has no conversion.
bool cast_elements(ThreadPool* pool, const void* in, DataType from, void* out, DataType to, int64_t n,
                   const CastOpts& opts) {
#if KILN_HAVE_AVX2_PATH
  if (has_f16c() && from == DataType::kFLOAT && to == DataType::kHALF) {
    const float* x = static_cast<const float*>(in);
    uint16_t* y = static_cast<uint16_t*>(out);
    parallel_range(pool, n, kParallelGrainElems, [&](int64_t b, int64_t e) { f32_to_f16_f16c(x + b, y + b, e - b); });
    return true;
  }
  if (has_f16c() && from == DataType::kHALF && to == DataType::kFLOAT) {
    const uint16_t* x = static_cast<const uint16_t*>(in);
    float* y = static_cast<float*>(out);
    parallel_range(pool, n, kParallelGrainElems, [&](int64_t b, int64_t e) { f16_to_f32_f16c(x + b, y + b, e - b); });
    return true;
  }
#endif
  CastFn fn = cast_fn(from, to);
  if (!fn) return false;
  parallel_range(pool, n, kParallelGrainElems, [&](int64_t b, int64_t e) { fn(in, out, b, e, opts); });
  return true;
}

void cast_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  if (x.dtype == y.dtype) return copy_parallel(ctx.pool, y.data, x.data, x.nbytes());
  CastOpts opts;
  opts.saturate = ctx.attrs().i("saturate", 1) != 0;
  opts.round = static_cast<E8M0Round>(ctx.attrs().i("round_mode", 0));
  if (!cast_elements(ctx.pool, x.data, x.dtype, y.data, y.dtype, x.numel(), opts))
    ctx.fail(std::string("cannot cast ") + dtype_name(x.dtype) + " to " + dtype_name(y.dtype) + " on the CPU");
}

}  // namespace

bool convert_elements(ThreadPool* pool, const void* in, DataType from, void* out, DataType to, int64_t n) {
  return cast_elements(pool, in, from, out, to, n, CastOpts{});
}

KILN_REGISTER_CPU_KERNEL("Cast", &cast_kernel);

}  // namespace kiln::cpu
