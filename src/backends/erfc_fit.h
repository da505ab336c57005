// erfc(z) for z >= 0 as t * exp(P(t) - z^2), t = 1 / (1 + z / 2), with P a degree-9 Chebyshev-fitted
// polynomial: under 1.2e-7 relative error over the whole range, the tail included, for one reciprocal, one
// exponential and ten FMAs. The CPU's vectorized math (backends/cpu/kernels/vec_math.h, V a SIMD vector) and
// the CUDA activations (backends/cuda/kernels/activation_math.cuh, V float) evaluate the same fit.
#pragma once

// Always inlined: the CPU callers are compiled for AVX2 / AVX-512 by target attributes, and an inlined callee
// takes its caller's instruction set (an outlined one would not, and could not pass their vector types).
#if defined(__CUDACC__)
#define KILN_ERFC_FIT_QUALIFIERS __host__ __device__ __forceinline__
#else
#define KILN_ERFC_FIT_QUALIFIERS __attribute__((always_inline)) inline
#endif

namespace kiln::erfc_fit {

// P(t), by Horner's rule from the highest power.
template <class V>
KILN_ERFC_FIT_QUALIFIERS V exponent_poly(const V& t) {
  V p = t * 0.17087277f - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return p;
}

}  // namespace kiln::erfc_fit
