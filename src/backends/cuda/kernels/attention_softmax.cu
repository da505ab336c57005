// The masked softmax of FusedAttention's GEMM path (contract: attention_softmax.h). One row of scores is held
// in registers by TPR threads (a warp for up to 512 keys, a block of 256 above): each thread reads G float4
// groups of 4 consecutive keys, so the row is read once from memory and P written once. Memory-bound: one
// float32 read and one T write per score (plus the mask, usually a broadcast row that stays in cache).
#include <cmath>

#include "backends/cuda/kernels/attention_gemm_plan.h"
#include "backends/cuda/kernels/attention_softmax.h"
#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {
namespace {

constexpr int kBlock = 256;

// Four probabilities to p[0..3] as one vector store (16 bytes for float, 8 for float16/bfloat16); p is aligned
// to that size. Spelled out per type: nvcc split a plain float4 (or aligned struct) store over the scores just
// read into four scalar stores.
__device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
  __stwb(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
}
__device__ __forceinline__ uint32_t pack2(half lo, half hi) {
  return static_cast<uint32_t>(__half_as_ushort(lo)) | (static_cast<uint32_t>(__half_as_ushort(hi)) << 16);
}
__device__ __forceinline__ uint32_t pack2(bf16 lo, bf16 hi) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(lo)) | (static_cast<uint32_t>(__bfloat16_as_ushort(hi)) << 16);
}
template <class T> __device__ __forceinline__ void store4(T* p, const float (&v)[4]) {
  const uint2 w = make_uint2(pack2(from_f<T>(v[0]), from_f<T>(v[1])), pack2(from_f<T>(v[2]), from_f<T>(v[3])));
  *reinterpret_cast<uint2*>(p) = w;
}

template <class T, int G, int TPR>
__global__ void __launch_bounds__(kBlock) k_attention_softmax(const AttentionSoftmaxArgs a, int mask_dtype) {
  static_assert(TPR == 32 || TPR == kBlock, "a warp or the whole block per row");
  constexpr int kRowsPerBlock = kBlock / TPR;
  __shared__ float red[kBlock / 32];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / TPR;
  const int t = static_cast<int>(threadIdx.x % TPR);
  // Whole warps leave (TPR 32), or the whole block (TPR 256: one row per block), so no barrier misses a thread.
  if (row >= a.slices * a.Sq) return;
  const int64_t local = row / a.Sq, i = row - local * a.Sq;
  const int64_t bh = a.first_slice + local, b = bh / a.H, h = bh - b * a.H;
  float* s = a.scores + local * a.slice_floats + i * a.ld_s;
  int64_t visible = a.Sk;  // keys [0, visible) can be seen
  if (a.causal) visible = max(int64_t{0}, min(a.Sk, i + a.Sk - a.Sq + 1));
  const int64_t mrow = b * a.m_sb + h * a.m_sh + i * a.m_si;

  float v[G][4];
  float mx = -INFINITY;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int64_t c = 4 * static_cast<int64_t>(t + g * TPR);
    // c < Sk keeps the float4 inside the row: ld_s is a multiple of 8 >= Sk, and c is a multiple of 4.
    float4 x = make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
    if (c < a.Sk) x = *reinterpret_cast<const float4*>(s + c);
    const float xs[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t j = c + e;
      float val = -INFINITY;
      if (j < visible) {
        val = xs[e];
        if (a.mask) val += load_param(a.mask, mask_dtype, mrow + j * a.m_sj);
      }
      v[g][e] = val;
      mx = fmaxf(mx, val);
    }
  }
  if constexpr (TPR == 32) mx = warp_allreduce(mx, MaxOp{});
  else mx = row_allreduce(mx, MaxOp{}, TPR, red);
  // A row with no visible key: every exp is of -inf, the sum 0 and P 0.
  const float mu = mx == -INFINITY ? 0.0f : mx;
  float sum = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      v[g][e] = expf(v[g][e] - mu);
      sum += v[g][e];
    }
  if constexpr (TPR == 32) sum = warp_allreduce(sum, SumOp{});
  else sum = row_allreduce(sum, SumOp{}, TPR, red);
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;

  // Every thread of the row has read its scores (the reductions needed them); P may now overwrite them. The
  // barrier also keeps the compiler from moving a score load below a P store (they have different types).
  if constexpr (TPR == 32) __syncwarp();
  else __syncthreads();
  T* p = reinterpret_cast<T*>(s);
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int64_t c = 4 * static_cast<int64_t>(t + g * TPR);
    if (c >= a.Sk) continue;
    float w[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) w[e] = c + e < a.Sk ? v[g][e] * inv : 0.0f;
    store4(p + c, w);  // 4 * sizeof(T) bytes at a multiple of that from a 32-byte aligned row: aligned
  }
}

template <class T, int G, int TPR>
void launch(const AttentionSoftmaxArgs& a, cudaStream_t stream) {
  constexpr int kRowsPerBlock = kBlock / TPR;
  const int64_t rows = a.slices * a.Sq;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > 0x7fffffffLL) throw Error("FusedAttention softmax: too many score rows (" + std::to_string(rows) + ")");
  k_attention_softmax<T, G, TPR><<<static_cast<unsigned>(blocks), kBlock, 0, stream>>>(a, static_cast<int>(a.mask_dtype));
  KILN_CUDA_LAUNCH_CHECK();
}

}  // namespace

void launch_attention_softmax(DataType p_dtype, const AttentionSoftmaxArgs& a, cudaStream_t stream) {
  if (a.Sk < 1 || a.Sk > kAttentionGemmMaxKeys || a.ld_s % 8 != 0 || a.ld_s < a.Sk)
    throw Error("FusedAttention softmax: unsupported row of " + std::to_string(a.Sk) + " keys (leading dim " +
                std::to_string(a.ld_s) + ")");
  if (a.slices * a.Sq == 0) return;
  const bool ok = dispatch_float(p_dtype, [&](auto tag) {
    using T = decltype(tag);
    if (a.Sk <= 128) launch<T, 1, 32>(a, stream);
    else if (a.Sk <= 256) launch<T, 2, 32>(a, stream);
    else if (a.Sk <= 512) launch<T, 4, 32>(a, stream);
    else if (a.Sk <= 1024) launch<T, 1, kBlock>(a, stream);
    else if (a.Sk <= 2048) launch<T, 2, kBlock>(a, stream);
    else if (a.Sk <= 4096) launch<T, 4, kBlock>(a, stream);
    else launch<T, 8, kBlock>(a, stream);
  });
  if (!ok) throw Error(std::string("FusedAttention softmax: unsupported dtype ") + dtype_name(p_dtype));
}

}  // namespace kiln::cuda::kern
