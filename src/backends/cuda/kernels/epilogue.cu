#include "backends/cuda/kernels/epilogue.h"

#include <string>

#include "backends/cuda/device.h"
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
// the last dim (inner == 1, 16-byte aligned) with a whole number of vectors per row, or constant over each
// vector (inner % kVec == 0). The arithmetic (y + bias + residual, then the activation, in float32) is the
// scalar kernel's, so results are bit for bit the same.
//
// Cost: BERT's and ViT's erf-GELU ([M, 3072] float16, no bias or residual left after cuBLASLt) is bound by
// instruction issue, not memory: erfcf alone is ~45 instructions per element. So everything around it is
// cut to what the layout needs: the bias and the residual are compile-time choices (a run-time test still
// issues its predicated loads and adds), the 16-bit types convert two elements per instruction, and the
// bias channel is a cursor advanced by the grid-stride step with adds and compares (the 64-bit divisions
// run once per thread, not once per vector). kAct is the activation when the launch knows it (the common
// ones: the switch folds away), or kAnyAct to read it at run time (activation_math.cuh).
using kern::act::kAnyAct;

// The bias channel of a vector starting at flat element i0: c = (i0 / inner) % channels, and r = i0 % inner
// (the position inside the channel's run of `inner` elements). advance() moves both by `step` elements,
// written step = q * inner + step_r: r grows by step_r (carrying one channel when it passes inner), c by
// q % channels; each stays below its bound after at most one subtraction since both parts were below it.
struct BiasCursor {
  int64_t c = 0, r = 0, step_c = 0, step_r = 0;

  __device__ __forceinline__ BiasCursor(int64_t i0, int64_t step, int64_t inner, int64_t channels)
      : c((i0 / inner) % channels), r(i0 % inner), step_c((step / inner) % channels), step_r(step % inner) {}

  __device__ __forceinline__ void advance(int64_t inner, int64_t channels) {
    r += step_r;
    c += step_c;
    if (r >= inner) {
      r -= inner;
      ++c;
    }
    if (c >= channels) c -= channels;
  }
};

// 16 bytes of T as floats and back: two elements per conversion instruction for the 16-bit types, with the
// rounding of from_f (round to nearest even), so each element gets the bits of the scalar conversion.
template <class T> constexpr int kVecOf = 16 / static_cast<int>(sizeof(T));

template <class T> __device__ __forceinline__ void unpack16(const uint4& u, float (&f)[kVecOf<T>]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if constexpr (std::is_same_v<T, float>) {
      f[k] = __uint_as_float(w[k]);
    } else {
      using T2 = std::conditional_t<std::is_same_v<T, half>, __half2, __nv_bfloat162>;
      T2 p;
      memcpy(&p, &w[k], 4);
      float2 q;
      if constexpr (std::is_same_v<T, half>) q = __half22float2(p);
      else q = __bfloat1622float2(p);
      f[2 * k] = q.x;  // the lower address is the low half
      f[2 * k + 1] = q.y;
    }
  }
}

template <class T> __device__ __forceinline__ uint4 pack16(const float (&f)[kVecOf<T>]) {
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if constexpr (std::is_same_v<T, float>) {
      w[k] = __float_as_uint(f[k]);
    } else if constexpr (std::is_same_v<T, half>) {
      const __half2 p = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
      memcpy(&w[k], &p, 4);
    } else {
      const __nv_bfloat162 p = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
      memcpy(&w[k], &p, 4);
    }
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <class T, int kAct, bool kBias, bool kResidual>
__global__ void __launch_bounds__(kern::kThreads)
    k_bias_act_vec(T* __restrict__ y, int64_t nvec, const T* __restrict__ bias, int64_t channels, int64_t inner,
                   const T* __restrict__ residual, int act, float alpha, float beta) {
  constexpr int kVec = kVecOf<T>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= nvec) return;
  BiasCursor bc(0, 0, 1, 1);
  if constexpr (kBias) bc = BiasCursor(v * kVec, stride * kVec, inner, channels);
  uint4* yv = reinterpret_cast<uint4*>(y);
  for (; v < nvec; v += stride) {
    float x[kVec];
    unpack16<T>(yv[v], x);
    if constexpr (kBias) {
      float b[kVec];
      if (inner == 1) {  // kVec consecutive channels from c (a multiple of kVec, bias 16-byte aligned)
        unpack16<T>(*reinterpret_cast<const uint4*>(bias + bc.c), b);
      } else {  // one channel for the whole vector
        const float bc_value = kern::to_f(bias[bc.c]);
#pragma unroll
        for (int e = 0; e < kVec; ++e) b[e] = bc_value;
      }
#pragma unroll
      for (int e = 0; e < kVec; ++e) x[e] += b[e];
      bc.advance(inner, channels);
    }
    if constexpr (kResidual) {
      float r[kVec];
      unpack16<T>(reinterpret_cast<const uint4*>(residual)[v], r);
#pragma unroll
      for (int e = 0; e < kVec; ++e) x[e] += r[e];
    }
#pragma unroll
    for (int e = 0; e < kVec; ++e) x[e] = kern::act::activate_as<kAct>(act, alpha, beta, x[e]);
    yv[v] = pack16<T>(x);
  }
}

// Blocks that fill every SM once with `kernel` (its occupancy at kThreads threads per block).
int64_t resident_blocks(const void* kernel) {
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kern::kThreads, 0) != cudaSuccess) {
    (void)cudaGetLastError();  // a smaller grid still covers everything: not an error for the launch check
    per_sm = 1;
  }
  per_sm = std::max(per_sm, 1);
  return static_cast<int64_t>(per_sm) * current_device().sm_count;
}

// One grid that fills the GPU once (fewer blocks when there is less work): the grid-stride loop does the
// rest, so the bias cursor's divisions run once per thread.
template <class T, int kAct, bool kBias, bool kResidual>
void launch_vec(cudaStream_t s, T* y, int64_t n, const BiasAct& p) {
  const auto kernel = &k_bias_act_vec<T, kAct, kBias, kResidual>;
  static const int64_t resident = resident_blocks(reinterpret_cast<const void*>(kernel));  // per instantiation
  const int64_t nvec = n / kVecOf<T>;
  const int64_t blocks = std::min((nvec + kern::kThreads - 1) / kern::kThreads, resident);
  kernel<<<static_cast<unsigned>(std::max<int64_t>(blocks, 1)), kern::kThreads, 0, s>>>(
      y, nvec, static_cast<const T*>(p.bias), p.channels, p.inner, static_cast<const T*>(p.residual), p.act, p.alpha,
      p.beta);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class T, int kAct>
void launch_vec_layout(cudaStream_t s, T* y, int64_t n, const BiasAct& p) {
  if (p.bias && p.residual) launch_vec<T, kAct, true, true>(s, y, n, p);
  else if (p.bias) launch_vec<T, kAct, true, false>(s, y, n, p);
  else if (p.residual) launch_vec<T, kAct, false, true>(s, y, n, p);
  else launch_vec<T, kAct, false, false>(s, y, n, p);
}

// Whether k_bias_act_vec applies (see above).
bool vector_layout(const void* y, int64_t n, int elem_size, const BiasAct& p) {
  const int64_t vec = 16 / elem_size;
  auto aligned = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  if (n % vec != 0 || !aligned(y) || (p.residual && !aligned(p.residual))) return false;
  if (!p.bias) return true;
  return p.inner == 1 ? p.channels % vec == 0 && aligned(p.bias) : p.inner % vec == 0;
}

template <class T>
void launch_vec_any(cudaStream_t s, T* y, int64_t n, const BiasAct& p) {
  namespace A = kern::act;
  switch (p.act) {
    case -1: return launch_vec_layout<T, -1>(s, y, n, p);
    case A::kRelu: return launch_vec_layout<T, A::kRelu>(s, y, n, p);
    case A::kClip: return launch_vec_layout<T, A::kClip>(s, y, n, p);
    case A::kGeluErf: return launch_vec_layout<T, A::kGeluErf>(s, y, n, p);
    case A::kGeluTanh: return launch_vec_layout<T, A::kGeluTanh>(s, y, n, p);
    default: return launch_vec_layout<T, kAnyAct>(s, y, n, p);
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
