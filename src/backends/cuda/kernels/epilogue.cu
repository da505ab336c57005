#include "backends/cuda/kernels/epilogue.h"

#include <string>

#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda {

namespace {

using kern::bf16;
using kern::half;
using kern::from_f;
using kern::to_f;

template <class T, bool kBias, bool kResidual>
__global__ void k_bias_act(T* __restrict__ y, int64_t n, const T* __restrict__ bias, int64_t channels, int64_t inner,
                           const T* __restrict__ residual, int act, float alpha, float beta) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float v = to_f(y[i]);
    if constexpr (kBias) v += to_f(bias[(i / inner) % channels]);
    if constexpr (kResidual) v += to_f(residual[i]);
    if (act >= 0) v = kern::act::activate(act, alpha, beta, v);
    y[i] = from_f<T>(v);
  }
}

// The same epilogue, 16 bytes of y per thread and step, for the common case where whole vectors share
// their layout: y (and the residual) 16-byte aligned, n a whole number of vectors, and the bias either along
// the last dim (inner == 1) with a whole number of vectors per row, or constant over each vector
// (inner % kVec == 0). kAct is the activation when the launch knows it (the common ones: the switch folds
// away), or kAnyAct to read it at run time. The scalar kernel above ran BERT's and ViT's erf-GELU after
// their GEMMs at ~1 TB/s (a third of the GEMM's time); the arithmetic (y + bias + residual, then the
// activation, in float32) is the same, so results are bit for bit the scalar kernel's.
constexpr int kAnyAct = -2;

template <class T, int kAct>
__global__ void k_bias_act_vec(T* __restrict__ y, int64_t nvec, const T* __restrict__ bias, int64_t channels,
                               int64_t inner, const T* __restrict__ residual, int act, float alpha, float beta) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < nvec; v += stride) {
    const int64_t i0 = v * kVec;
    alignas(16) T t[kVec];
    *reinterpret_cast<uint4*>(t) = reinterpret_cast<const uint4*>(y)[v];
    alignas(16) T r[kVec];
    if (residual) *reinterpret_cast<uint4*>(r) = reinterpret_cast<const uint4*>(residual)[v];
    // Bias: kVec consecutive channels from c0 (inner == 1), or one channel for the whole vector.
    const int64_t c0 = inner == 1 ? i0 % channels : (i0 / inner) % channels;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      float x = to_f(t[e]);
      if (bias) x += to_f(bias[inner == 1 ? c0 + e : c0]);
      if (residual) x += to_f(r[e]);
      if constexpr (kAct == kAnyAct) {
        if (act >= 0) x = kern::act::activate(act, alpha, beta, x);
      } else if constexpr (kAct >= 0) {
        x = kern::act::activate(kAct, alpha, beta, x);
      }
      t[e] = from_f<T>(x);
    }
    reinterpret_cast<uint4*>(y)[v] = *reinterpret_cast<const uint4*>(t);
  }
}

template <class T, int kAct>
void launch_vec(cudaStream_t s, T* y, int64_t n, const BiasAct& p) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t nvec = n / kVec;
  k_bias_act_vec<T, kAct><<<kern::blocks_for(nvec), kern::kThreads, 0, s>>>(
      y, nvec, static_cast<const T*>(p.bias), p.channels, p.inner, static_cast<const T*>(p.residual), p.act, p.alpha,
      p.beta);
  KILN_CUDA_LAUNCH_CHECK();
}

// Whether k_bias_act_vec applies (see above).
bool vector_layout(const void* y, int64_t n, int elem_size, const BiasAct& p) {
  const int64_t vec = 16 / elem_size;
  auto aligned = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  if (n % vec != 0 || !aligned(y) || (p.residual && !aligned(p.residual))) return false;
  if (!p.bias) return true;
  return p.inner == 1 ? p.channels % vec == 0 : p.inner % vec == 0;
}

template <class T>
void launch_vec_any(cudaStream_t s, T* y, int64_t n, const BiasAct& p) {
  namespace A = kern::act;
  switch (p.act) {
    case -1: return launch_vec<T, -1>(s, y, n, p);
    case A::kRelu: return launch_vec<T, A::kRelu>(s, y, n, p);
    case A::kClip: return launch_vec<T, A::kClip>(s, y, n, p);
    case A::kGeluErf: return launch_vec<T, A::kGeluErf>(s, y, n, p);
    case A::kGeluTanh: return launch_vec<T, A::kGeluTanh>(s, y, n, p);
    default: return launch_vec<T, kAnyAct>(s, y, n, p);
  }
}

template <class T, bool kBias, bool kResidual>
void launch_typed(cudaStream_t s, T* y, int64_t n, const BiasAct& p) {
  k_bias_act<T, kBias, kResidual><<<kern::blocks_for(n), kern::kThreads, 0, s>>>(
      y, n, static_cast<const T*>(p.bias), p.channels, p.inner, static_cast<const T*>(p.residual), p.act, p.alpha,
      p.beta);
  KILN_CUDA_LAUNCH_CHECK();
}

}  // namespace

void read_fused_activation(const ir::Attrs& a, BiasAct* p) {
  p->act = static_cast<int>(a.i("activation", -1));
  double alpha = 0, beta = 0;
  if (p->act >= 0) kern::act::activation_params(a, p->act, &alpha, &beta, "act_alpha", "act_beta");
  p->alpha = static_cast<float>(alpha);
  p->beta = static_cast<float>(beta);
}

bool fused_activation_supported(int64_t type) {
  return type == -1 || kern::act::known_activation(static_cast<int>(type));
}

void launch_bias_act(cudaStream_t s, DataType dt, void* y, int64_t n, const BiasAct& p) {
  if (n <= 0 || (!p.bias && !p.residual && p.act < 0)) return;
  if (p.act >= 0 && !kern::act::known_activation(p.act))
    throw Error("fused epilogue: unknown activation type " + std::to_string(p.act));
  if (p.bias && (p.channels <= 0 || p.inner <= 0)) throw Error("fused epilogue: empty bias layout");
  const bool ok = kern::dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    T* yt = static_cast<T*>(y);
    if (vector_layout(y, n, sizeof(T), p)) return launch_vec_any<T>(s, yt, n, p);
    if (p.bias && p.residual) launch_typed<T, true, true>(s, yt, n, p);
    else if (p.bias) launch_typed<T, true, false>(s, yt, n, p);
    else if (p.residual) launch_typed<T, false, true>(s, yt, n, p);
    else launch_typed<T, false, false>(s, yt, n, p);
  });
  if (!ok) throw Error(std::string("fused epilogue: unsupported dtype ") + dtype_name(dt));
}

}  // namespace kiln::cuda
