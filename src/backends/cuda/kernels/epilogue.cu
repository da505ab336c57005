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
    if (p.bias && p.residual) launch_typed<T, true, true>(s, yt, n, p);
    else if (p.bias) launch_typed<T, true, false>(s, yt, n, p);
    else if (p.residual) launch_typed<T, false, true>(s, yt, n, p);
    else launch_typed<T, false, false>(s, yt, n, p);
  });
  if (!ok) throw Error(std::string("fused epilogue: unsupported dtype ") + dtype_name(dt));
}

}  // namespace kiln::cuda
