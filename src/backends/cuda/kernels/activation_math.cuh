// The Activation op's math on the GPU (ActivationType codes and alpha/beta defaults as the CPU kernel in
// src/backends/cpu/kernels/elementwise.cpp), shared by the Activation kernel (activation.cu) and the fused
// epilogue of Convolution / MatrixMultiply (epilogue.cu). Computes in float32.
#pragma once
#include <cmath>
#include <limits>

#include "backends/erfc_fit.h"
#include "ir/activation_params.h"
#include "ir/attrs.h"

namespace kiln::cuda::kern::act {

enum Act : int {
  kRelu = 0, kSigmoid = 1, kTanh = 2, kLeakyRelu = 3, kElu = 4, kSelu = 5, kSoftsign = 6, kSoftplus = 7,
  kClip = 8, kHardSigmoid = 9, kScaledTanh = 10, kThresholdedRelu = 11, kGeluErf = 12, kGeluTanh = 13,
  kHardSwish = 64, kSilu = 65, kMish = 66, kCelu = 67, kShrink = 68
};

inline bool known_activation(int t) { return (t >= kRelu && t <= kGeluTanh) || (t >= kHardSwish && t <= kShrink); }

using ir::activation_params;  // ONNX defaults for absent alpha/beta (ir/activation_params.h)

__device__ __forceinline__ float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }
// log(1 + e^z) without overflow for large z.
__device__ __forceinline__ float softplus(float z) { return z > 0.0f ? z + log1pf(expf(-z)) : log1pf(expf(z)); }

// erfc(z) for z >= 0 within ~1.2e-7 relative error, the tail included (backends/erfc_fit.h, the CPU kernels'
// fit): a reciprocal, an exponential and ten FMAs where erfcf spends ~45 instructions. GELU's pass after a GEMM
// ([M, 3072] per BERT / ViT layer) was bound by that count: 1.8 TB/s where a copy runs at 3.5.
__device__ __forceinline__ float erfc_nonneg(float z) {
  const float t = __frcp_rn(1.0f + 0.5f * z);
  return t * __expf(erfc_fit::exponent_poly<float>(t) - z * z);
}

// 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2): through erfc of |z| so that negative x keeps its
// relative accuracy (1 + erf would cancel); near 0, 2 - erfc(|z|) ~ 1 loses nothing.
__device__ __forceinline__ float gelu_erf(float x) {
  const float z = x * 0.70710678118654752f;
  const float c = erfc_nonneg(fabsf(z));
  return 0.5f * x * (z < 0.0f ? c : 2.0f - c);
}

__device__ __forceinline__ float activate(int type, float a, float b, float x) {
  switch (type) {
    case kRelu: return x < 0.0f ? 0.0f : x;  // NaN stays NaN
    case kSigmoid: return 1.0f / (1.0f + expf(-x));
    case kTanh: return tanhf(x);
    case kLeakyRelu: return x >= 0.0f ? x : a * x;
    case kElu: return x >= 0.0f ? x : a * expm1f(x);
    case kSelu: return b * (x > 0.0f ? x : a * expm1f(x));
    case kSoftsign: return x / (1.0f + fabsf(x));
    case kSoftplus: return a * softplus(b * x);
    case kClip: return x < a ? a : (x > b ? b : x);
    case kHardSigmoid: return clamp01(a * x + b);
    case kScaledTanh: return a * tanhf(b * x);
    case kThresholdedRelu: return x <= a ? 0.0f : x;
    case kGeluErf: return gelu_erf(x);
    case kGeluTanh: {
      const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
      return x / (1.0f + expf(-2.0f * u));  // == 0.5x(1 + tanh(u)), keeps relative accuracy
    }
    case kHardSwish: return x * clamp01(x * (1.0f / 6.0f) + 0.5f);
    case kSilu: return x / (1.0f + expf(-x));
    case kMish: return x * tanhf(softplus(x));
    case kCelu: return x > 0.0f ? x : a * expm1f(x / a);
    case kShrink: return x < -b ? x + a : (x > b ? x - a : (x == x ? 0.0f : x));
    default: return x;  // the host checked the type
  }
}

// A kernel's activation as a template argument: -1 none, a type code (the switch above folds away and the
// epilogue is a few instructions), or kAnyAct, read at run time (`type`, -1 for none). A fragment epilogue
// that inlines the whole switch per element, unrolled, grows the kernel past the instruction cache (the
// narrow convolution kernel's was ~36k instructions and ran at a quarter of its MMA rate), so kernels
// instantiate the common activations and keep kAnyAct for the rest.
constexpr int kAnyAct = -2;

template <int kAct>
__device__ __forceinline__ float activate_as(int type, float a, float b, float x) {
  if constexpr (kAct == kAnyAct) {
    return type >= 0 ? activate(type, a, b, x) : x;
  } else if constexpr (kAct >= 0) {
    return activate(kAct, a, b, x);
  } else {
    return x;
  }
}

}  // namespace kiln::cuda::kern::act
