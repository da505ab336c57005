// Vectorized float32 math for the CPU kernels: exp, sigmoid, tanh, erf, erfc and GELU written on GCC/Clang
// vector types, so loops over them run several lanes at a time whatever the optimizer's mood (libm calls
// and branchy selects keep a plain loop scalar). Accuracy: a few ulp for exp, sigmoid and tanh; erf/erfc
// about 2e-7 relative. Kernels for double use <cmath> instead.
//
// Every function is a template over the vector type V: f4 (SSE2, the baseline x86-64 build), f8 (AVX2) or
// f16 (AVX-512). A hot loop is written once as a template over V and instantiated per ISA: f16 inside a
// function marked KILN_TARGET_AVX512, f8 inside one marked KILN_TARGET_AVX2, f4 in a plain one; isa() picks
// at run time. The helpers are always_inline so they compile with the instruction set of the loop using them.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>


#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(KILN_NO_AVX2)
#define KILN_HAVE_AVX2_PATH 1
#define KILN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KILN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define KILN_HAVE_AVX2_PATH 0
#define KILN_TARGET_AVX2
#define KILN_TARGET_AVX512
#endif
#define KILN_VM_INLINE __attribute__((always_inline)) inline

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
// Inside the pragma: its template takes these vector types too.
#include "backends/erfc_fit.h"

namespace kiln::cpu::vm {

typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef float f16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
template <class V> struct IntOf;
template <> struct IntOf<f4> { using type = i4; };
template <> struct IntOf<f8> { using type = i8; };
template <> struct IntOf<f16> { using type = i16; };
template <class V> constexpr int lanes = static_cast<int>(sizeof(V) / sizeof(float));

enum class Isa { kBase, kAvx2, kAvx512 };

// The widest vector path this CPU runs (checked once). KILN_MAX_ISA=avx2|base caps it (tests, debugging).
inline Isa isa() {
#if KILN_HAVE_AVX2_PATH
  static const Isa v = [] {
    const char* cap = std::getenv("KILN_MAX_ISA");
    const std::string c = cap ? cap : "";
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
    if (avx512 && c != "avx2" && c != "base") return Isa::kAvx512;
    if (avx2 && c != "base") return Isa::kAvx2;
    return Isa::kBase;
  }();
  return v;
#else
  return Isa::kBase;
#endif
}
inline bool has_avx2() { return isa() != Isa::kBase; }

template <class V> KILN_VM_INLINE V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V> KILN_VM_INLINE void store(float* p, const V& v) { std::memcpy(p, &v, sizeof v); }
template <class V> KILN_VM_INLINE V splat(float x) { return V{} + x; }
template <class V> KILN_VM_INLINE V abs(const V& x) { return x < 0.0f ? -x : x; }
template <class V> KILN_VM_INLINE V max(const V& a, const V& b) { return a > b ? a : b; }
template <class V> KILN_VM_INLINE V min(const V& a, const V& b) { return a < b ? a : b; }
// Horizontal sum / max, as a log2-depth tree (short dependency chains).
template <class V> KILN_VM_INLINE float hsum(const V& v) {
  constexpr int L = lanes<V>;
  float a[L];
  std::memcpy(a, &v, sizeof a);
  for (int w = L / 2; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) a[i] += a[i + w];
  return a[0];
}
template <class V> KILN_VM_INLINE float hmax(const V& v) {
  constexpr int L = lanes<V>;
  float a[L];
  std::memcpy(a, &v, sizeof a);
  for (int w = L / 2; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) a[i] = a[i + w] > a[i] ? a[i + w] : a[i];
  return a[0];
}

// e^x. Inputs are clamped to [-104, 89] so the exponent arithmetic never overflows; results below the
// float range round to 0 and above it to +inf; NaN propagates.
template <class V> KILN_VM_INLINE V exp(const V& x) {
  V xc = x < -104.0f ? -104.0f : x;
  xc = xc > 89.0f ? 89.0f : xc;
  const V t = xc * 1.44269504088896341f;
  const V nf = (t + 12582912.0f) - 12582912.0f;  // round to nearest integer (|t| < 2^22)
  V r = xc - nf * 0.693359375f;                  // Cody-Waite: ln2 = 0.693359375 - 2.12194440e-4
  r = r + nf * 2.12194440e-4f;
  // Taylor polynomial of e^r on |r| <= 0.35 (truncation error < 6e-9 relative).
  V p = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  using I = typename IntOf<V>::type;
  const I n = __builtin_convertvector(nf, I);
  const I n1 = n >> 1, n2 = n - n1;  // 2^n as two factors keeps each in the normal range
  const V s1 = reinterpret_cast<V>((n1 + 127) << 23);
  const V s2 = reinterpret_cast<V>((n2 + 127) << 23);
  const V y = p * s1 * s2;
  return x == x ? y : x;
}

template <class V> KILN_VM_INLINE V sigmoid(const V& x) { return 1.0f / (1.0f + vm::exp<V>(-x)); }

// tanh: odd Taylor series for |x| < 0.5, 1 - 2/(e^{2|x|}+1) above.
template <class V> KILN_VM_INLINE V tanh(const V& x) {
  const V a = vm::abs<V>(x);
  const V x2 = x * x;
  V p = x2 * (-929569.0f / 638512875.0f) + 21844.0f / 6081075.0f;
  p = p * x2 - 1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const V small = x + x * x2 * p;
  const V big = 1.0f - 2.0f / (vm::exp<V>(2.0f * a) + 1.0f);
  const V sbig = x < 0.0f ? -big : big;
  const V y = a < 0.5f ? small : sbig;
  return x == x ? y : x;
}

// erfc(z) for z >= 0 with ~1.2e-7 relative error (the Chebyshev-fitted exponent form, backends/erfc_fit.h).
template <class V> KILN_VM_INLINE V erfc_pos(const V& z) {
  const V t = 1.0f / (1.0f + 0.5f * z);
  return t * vm::exp<V>(erfc_fit::exponent_poly<V>(t) - z * z);
}

// erf(x) / sqrt(pi)*2 series: x * P(x^2), accurate for |x| < 0.5.
template <class V> KILN_VM_INLINE V erf_series(const V& x) {
  const V x2 = x * x;
  V p = x2 * (-1.0f / (5040.0f * 15.0f)) + 1.0f / (720.0f * 13.0f);
  p = p * x2 - 1.0f / (120.0f * 11.0f);
  p = p * x2 + 1.0f / (24.0f * 9.0f);
  p = p * x2 - 1.0f / (6.0f * 7.0f);
  p = p * x2 + 1.0f / (2.0f * 5.0f);
  p = p * x2 - 1.0f / 3.0f;
  p = p * x2 + 1.0f;
  return 1.12837916709551257f * x * p;
}

// erf: Taylor series for |x| < 0.5 (relative accuracy near 0), 1 - erfc(|x|) above.
template <class V> KILN_VM_INLINE V erf(const V& x) {
  const V a = vm::abs<V>(x);
  const V big = 1.0f - erfc_pos<V>(a);
  const V sbig = x < 0.0f ? -big : big;
  const V y = a < 0.5f ? erf_series<V>(x) : sbig;
  return x == x ? y : x;
}

// 0.5 x (1 + erf(x / sqrt 2)), through erfc for x < 0 so the result keeps its relative accuracy.
template <class V> KILN_VM_INLINE V gelu_erf(const V& x) {
  const V z = x * 0.70710678118654752f;
  const V a = vm::abs<V>(z);
  const V c = erfc_pos<V>(a);
  const V big = z < 0.0f ? c : 2.0f - c;  // 1 + erf(z) = erfc(-z)
  const V one_plus = a < 0.5f ? 1.0f + erf_series<V>(z) : big;
  return 0.5f * x * one_plus;
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) == x * sigmoid(2u), which keeps relative accuracy.
template <class V> KILN_VM_INLINE V gelu_tanh(const V& x) {
  const V u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return x / (1.0f + vm::exp<V>(-2.0f * u));
}

// y[i] = f(x[i]) for n floats, lanes<V> at a time; the tail runs through a zero-padded block.
template <class V, class F>
KILN_VM_INLINE void map(const float* x, float* y, int64_t n, F f) {
  constexpr int L = lanes<V>;
  int64_t i = 0;
  for (; i + L <= n; i += L) store<V>(y + i, f(load<V>(x + i)));
  if (i < n) {
    float buf[L] = {};
    std::memcpy(buf, x + i, static_cast<size_t>(n - i) * sizeof(float));
    store<V>(buf, f(load<V>(buf)));
    std::memcpy(y + i, buf, static_cast<size_t>(n - i) * sizeof(float));
  }
}

// Scalar entry point for odd call sites.
inline float exp1(float x) { return vm::exp<f4>(splat<f4>(x))[0]; }

}  // namespace kiln::cpu::vm

#pragma GCC diagnostic pop
