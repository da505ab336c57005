// CUDA kernel for FusedAttention: out = softmax(scale * q @ k^T + mask) @ v. Two paths:
//  - Library GEMMs (attention_gemm_path.h), taken whenever q, k and v have uniform strides over the
//    (batch*head) slices and a slice's scores fit in the workspace: cuBLASLt's batched products run near the
//    tensor cores' peak, which the kernel below does not (about 4 TFLOP/s on an H200), and for the short
//    sequences of encoders the scores' round trip through memory costs less than that gap.
//  - Otherwise the direct kernel in this file, flash-attention style (the scores never reach global memory):
//    one block per (batch*head, tile of query rows) walks the keys in tiles staged in shared memory, keeping a
//    running max and sum per row (online softmax) and rescaling its output accumulator when the max grows.
// Rows with no visible key give 0 on both paths. Accumulation is float32 throughout. The direct kernel has:
//  - Tensor-core path (float16/bfloat16, head size D = Dv = 64 or 128, sm_80+): 4 warps, 64 query rows (16 per
//    warp), key tiles of 64; Q fragments stay in registers, S = Q K^T and O += P V are WMMA 16x16x16 products;
//    the float32 scores, the probabilities (in T) and the float32 output accumulator live in shared memory,
//    each warp touching only its own 16 rows (so those steps need only __syncwarp).
//  - Generic path (float32, other head sizes up to 256): 8 warps, 4 query rows each, key tiles of 32 staged as
//    float; lane j scores key j of the tile, lanes own output columns lane + 32 t.
// The mask is read through strides over [B, H, Sq, Sk] (0 on broadcast dims); causal masks j > i + Sk - Sq
// and key tiles that are fully masked for the whole block are skipped.
#include <mma.h>

#include <atomic>
#include <cmath>
#include <cstdint>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/attention_gemm_path.h"
#include "backends/cuda/kernels/common.cuh"
#include "backends/fused_attention_layout.h"

namespace kiln::cuda::kern {
namespace {

struct AttnParams {
  const void* q;
  const void* k;
  const void* v;
  const void* mask;
  void* out;
  int64_t H, Sq, Sk, D, Dv;
  int64_t q_sb, q_sh, k_sb, k_sh, v_sb, v_sh;
  int64_t m_sb, m_sh, m_si, m_sj;
  int64_t nq;  // query tiles per (batch, head)
  float scale;
  int mask_dtype;
  int has_mask;
  int causal;
  int k_transposed;
  int vec;  // 16-byte vector loads of q, k (not transposed) and v are aligned
};

// The scaled, masked score of query i and key j (-inf when not visible or out of range).
__device__ __forceinline__ float masked_score(const AttnParams& p, float acc, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (i >= p.Sq || j >= p.Sk) return -INFINITY;
  if (p.causal && j > i + (p.Sk - p.Sq)) return -INFINITY;
  float s = acc * p.scale;
  if (p.has_mask) s += load_param(p.mask, p.mask_dtype, b * p.m_sb + h * p.m_sh + i * p.m_si + j * p.m_sj);
  return s;
}

// Keys [0, k_end) can be visible to the query rows [q0, q0 + rows) of this block.
__device__ __forceinline__ int64_t key_end(const AttnParams& p, int64_t q0, int64_t rows) {
  if (!p.causal) return p.Sk;
  const int64_t last = (q0 + rows < p.Sq ? q0 + rows : p.Sq) + (p.Sk - p.Sq);  // exclusive
  return last < p.Sk ? last : p.Sk;
}

// ------------------------------------------------------------------------------------------------------
// Tensor-core path.

constexpr int kWBQ = 64, kWBK = 64, kWThreads = 128;

template <int D> struct WmmaSmem {
  static constexpr int LDQ = D + 8;     // T elements (Q, K, V rows)
  static constexpr int LDS = kWBK + 4;  // float scores
  static constexpr int LDP = kWBK + 8;  // T probabilities
  static constexpr int LDO = D + 4;     // float output accumulator
  template <class T> static constexpr size_t bytes() {
    return (2 * sizeof(T) * kWBQ * LDQ) + sizeof(T) * kWBK * LDQ + sizeof(T) * kWBQ * LDP +
           sizeof(float) * kWBQ * LDS + sizeof(float) * kWBQ * LDO;
  }
};

// Rows [r0, r0 + nrows) of a row-major [total, C] matrix into dst (leading dim ld); rows past total are 0.
template <class T, int C>
__device__ __forceinline__ void load_rows(T* dst, int ld, const T* src, int64_t r0, int64_t total, int nrows, bool vec) {
  if (vec) {
    constexpr int CV = C / 8;
    for (int idx = threadIdx.x; idx < nrows * CV; idx += blockDim.x) {
      const int r = idx / CV, c = (idx % CV) * 8;
      uint4 val = make_uint4(0u, 0u, 0u, 0u);
      if (r0 + r < total) val = *reinterpret_cast<const uint4*>(src + (r0 + r) * C + c);
      *reinterpret_cast<uint4*>(dst + r * ld + c) = val;
    }
  } else {
    for (int idx = threadIdx.x; idx < nrows * C; idx += blockDim.x) {
      const int r = idx / C, c = idx % C;
      dst[r * ld + c] = r0 + r < total ? src[(r0 + r) * C + c] : from_f<T>(0.0f);
    }
  }
}

template <class T, int D>
__global__ void __launch_bounds__(kWThreads) k_attention_wmma(const AttnParams p) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using S = WmmaSmem<D>;
  constexpr int LDQ = S::LDQ, LDS = S::LDS, LDP = S::LDP, LDO = S::LDO;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* Ks = Qs + kWBQ * LDQ;
  T* Vs = Ks + kWBK * LDQ;
  T* Ps = Vs + kWBK * LDQ;
  float* Ss = reinterpret_cast<float*>(Ps + kWBQ * LDP);
  float* Os = Ss + kWBQ * LDS;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.x / p.nq;
  const int64_t q0 = (blockIdx.x % p.nq) * kWBQ;
  const int64_t b = bh / p.H, h = bh % p.H;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* k = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* v = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;

  load_rows<T, D>(Qs, LDQ, q, q0, p.Sq, kWBQ, p.vec != 0);
  for (int idx = threadIdx.x; idx < kWBQ * LDO; idx += kWThreads) Os[idx] = 0.0f;
  __syncthreads();

  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * LDQ + kk * 16, LDQ);

  float row_m[16], row_l[16];
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    row_m[r] = -INFINITY;
    row_l[r] = 0.0f;
  }
  float* my_s = Ss + warp * 16 * LDS;
  T* my_p = Ps + warp * 16 * LDP;
  float* my_o = Os + warp * 16 * LDO;

  const int64_t k_end = key_end(p, q0, kWBQ);
  for (int64_t k0 = 0; k0 < k_end; k0 += kWBK) {
    __syncthreads();  // the previous tile's K/V are no longer read
    if (p.k_transposed) {
      for (int idx = threadIdx.x; idx < kWBK * D; idx += kWThreads) {
        const int key = idx % kWBK, d = idx / kWBK;
        Ks[key * LDQ + d] = k0 + key < p.Sk ? k[d * p.Sk + k0 + key] : from_f<T>(0.0f);
      }
    } else {
      load_rows<T, D>(Ks, LDQ, k, k0, p.Sk, kWBK, p.vec != 0);
    }
    load_rows<T, D>(Vs, LDQ, v, k0, p.Sk, kWBK, p.vec != 0);
    __syncthreads();

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
#pragma unroll
    for (int n = 0; n < kWBK / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kb;
        wmma::load_matrix_sync(kb, Ks + n * 16 * LDQ + kk * 16, LDQ);
        wmma::mma_sync(acc, qf[kk], kb, acc);
      }
      wmma::store_matrix_sync(my_s + n * 16, acc, LDS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax, one row at a time across the warp (lane holds keys lane and lane + 32).
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      const int64_t i = q0 + warp * 16 + r;
      const float s0 = masked_score(p, my_s[r * LDS + lane], b, h, i, k0 + lane);
      const float s1 = masked_score(p, my_s[r * LDS + lane + 32], b, h, i, k0 + lane + 32);
      const float mt = warp_allreduce(fmaxf(s0, s1), MaxOp{});
      const float mn = fmaxf(row_m[r], mt);
      const float mu = mn == -INFINITY ? 0.0f : mn;
      const float alpha = expf(row_m[r] - mu);  // 0 when the old max is -inf
      const float p0 = expf(s0 - mu), p1 = expf(s1 - mu);
      row_l[r] = row_l[r] * alpha + warp_allreduce(p0 + p1, SumOp{});
      row_m[r] = mn;
      my_p[r * LDP + lane] = from_f<T>(p0);
      my_p[r * LDP + lane + 32] = from_f<T>(p1);
      for (int c = lane; c < D; c += 32) my_o[r * LDO + c] *= alpha;
    }
    __syncwarp();

    // O += P V.
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, my_o + n * 16, LDO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kWBK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vb;
        wmma::load_matrix_sync(pa, my_p + kk * 16, LDP);
        wmma::load_matrix_sync(vb, Vs + kk * 16 * LDQ + n * 16, LDQ);
        wmma::mma_sync(acc, pa, vb, acc);
      }
      wmma::store_matrix_sync(my_o + n * 16, acc, LDO, wmma::mem_row_major);
    }
    __syncwarp();
  }

  T* out = static_cast<T*>(p.out) + bh * p.Sq * D;
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    const int64_t i = q0 + warp * 16 + r;
    if (i >= p.Sq) continue;
    const float inv = row_l[r] > 0.0f ? 1.0f / row_l[r] : 0.0f;
    for (int c = lane; c < D; c += 32) out[i * D + c] = from_f<T>(my_o[r * LDO + c] * inv);
  }
#else
  __trap();  // the host never launches this below sm_80
#endif
}

// ------------------------------------------------------------------------------------------------------
// Generic path.

constexpr int kGRows = 4, kGWarps = 8, kGBQ = kGRows * kGWarps, kGBK = 32, kGThreads = kGWarps * 32;

inline size_t generic_smem_bytes(int64_t D, int64_t Dv) {
  return sizeof(float) * static_cast<size_t>(kGBQ * D + kGBK * (D | 1) + kGBK * Dv);
}

template <class T, int CH>
__global__ void __launch_bounds__(kGThreads) k_attention_generic(const AttnParams p) {
  extern __shared__ float gsm[];
  const int64_t D = p.D, Dv = p.Dv, KLD = p.D | 1;  // odd key stride: lane j reads row j conflict-free
  float* Qs = gsm;
  float* Ks = Qs + kGBQ * D;
  float* Vs = Ks + kGBK * KLD;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.x / p.nq;
  const int64_t q0 = (blockIdx.x % p.nq) * kGBQ;
  const int64_t b = bh / p.H, h = bh % p.H;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* k = static_cast<const T*>(p.k) + b * p.k_sb + h * p.k_sh;
  const T* v = static_cast<const T*>(p.v) + b * p.v_sb + h * p.v_sh;

  for (int64_t idx = threadIdx.x; idx < kGBQ * D; idx += kGThreads) {
    const int64_t r = idx / D, c = idx - r * D;
    Qs[idx] = q0 + r < p.Sq ? to_f(q[(q0 + r) * D + c]) : 0.0f;
  }
  float o[kGRows][CH], row_m[kGRows], row_l[kGRows];
#pragma unroll
  for (int rr = 0; rr < kGRows; ++rr) {
    row_m[rr] = -INFINITY;
    row_l[rr] = 0.0f;
#pragma unroll
    for (int t = 0; t < CH; ++t) o[rr][t] = 0.0f;
  }

  const int64_t k_end = key_end(p, q0, kGBQ);
  for (int64_t k0 = 0; k0 < k_end; k0 += kGBK) {
    __syncthreads();  // Q is stored (first tile); the previous tile's K/V are no longer read
    if (p.k_transposed) {
      for (int64_t idx = threadIdx.x; idx < kGBK * D; idx += kGThreads) {
        const int64_t key = idx % kGBK, d = idx / kGBK;
        Ks[key * KLD + d] = k0 + key < p.Sk ? to_f(k[d * p.Sk + k0 + key]) : 0.0f;
      }
    } else {
      for (int64_t idx = threadIdx.x; idx < kGBK * D; idx += kGThreads) {
        const int64_t key = idx / D, d = idx - key * D;
        Ks[key * KLD + d] = k0 + key < p.Sk ? to_f(k[(k0 + key) * D + d]) : 0.0f;
      }
    }
    for (int64_t idx = threadIdx.x; idx < kGBK * Dv; idx += kGThreads) {
      const int64_t key = idx / Dv, c = idx - key * Dv;
      Vs[idx] = k0 + key < p.Sk ? to_f(v[(k0 + key) * Dv + c]) : 0.0f;
    }
    __syncthreads();
    const int nk = static_cast<int>(p.Sk - k0 < kGBK ? p.Sk - k0 : kGBK);
#pragma unroll
    for (int rr = 0; rr < kGRows; ++rr) {
      const int r = warp * kGRows + rr;
      const int64_t i = q0 + r;
      if (i >= p.Sq) continue;  // warp-uniform
      float acc = 0.0f;
      const float* qr = Qs + r * D;
      const float* kr = Ks + lane * KLD;
      for (int64_t d = 0; d < D; ++d) acc = fmaf(qr[d], kr[d], acc);
      const float s = masked_score(p, acc, b, h, i, k0 + lane);
      const float mn = fmaxf(row_m[rr], warp_allreduce(s, MaxOp{}));
      const float mu = mn == -INFINITY ? 0.0f : mn;
      const float alpha = expf(row_m[rr] - mu);
      const float pj = expf(s - mu);
      row_l[rr] = row_l[rr] * alpha + warp_allreduce(pj, SumOp{});
      row_m[rr] = mn;
#pragma unroll
      for (int t = 0; t < CH; ++t) o[rr][t] *= alpha;
      for (int j = 0; j < nk; ++j) {
        const float pb = __shfl_sync(0xffffffffu, pj, j);
        const float* vr = Vs + j * Dv;
#pragma unroll
        for (int t = 0; t < CH; ++t) {
          const int64_t c = lane + 32 * t;
          if (c < Dv) o[rr][t] = fmaf(pb, vr[c], o[rr][t]);
        }
      }
    }
  }

  T* out = static_cast<T*>(p.out) + bh * p.Sq * Dv;
#pragma unroll
  for (int rr = 0; rr < kGRows; ++rr) {
    const int64_t i = q0 + warp * kGRows + rr;
    if (i >= p.Sq) continue;
    const float inv = row_l[rr] > 0.0f ? 1.0f / row_l[rr] : 0.0f;
#pragma unroll
    for (int t = 0; t < CH; ++t) {
      const int64_t c = lane + 32 * t;
      if (c < Dv) out[i * Dv + c] = from_f<T>(o[rr][t] * inv);
    }
  }
}

// ------------------------------------------------------------------------------------------------------
// Host side.

constexpr int64_t kMaxHead = 256;

bool supports_fused_attention(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.size() < 3) return false;
  const DataType dt = in[0].dtype;
  if (!is_float_type(dt) || in[1].dtype != dt || in[2].dtype != dt) return false;
  if (in.size() > 3 && in[3].present && !is_float_type(in[3].dtype)) return false;
  const size_t r = in[0].shape.size();
  if ((r != 3 && r != 4) || in[1].shape.size() != r || in[2].shape.size() != r) return false;
  // Head sizes unknown at build time (-1, dynamic shapes) are accepted: the kernel checks the concrete sizes.
  const int64_t d = in[0].shape[r - 1], dv = in[2].shape[r - 1];
  return d <= kMaxHead && dv <= kMaxHead;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Raises a kernel's dynamic shared memory limit to `bytes` on this device once (the first, eager run of a node
// does it, so later runs captured into CUDA graphs make no attribute calls). `set` is per kernel instantiation.
template <class K>
void allow_smem(K kernel, size_t bytes, int device, std::atomic<int>* set, int num_set) {
  if (bytes <= 48 * 1024) return;
  const int b = static_cast<int>(bytes);
  if (device >= 0 && device < num_set && set[device].load() >= b) return;
  KILN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, b));
  if (device >= 0 && device < num_set) {
    int cur = set[device].load();
    while (cur < b && !set[device].compare_exchange_weak(cur, b)) {
    }
  }
}
constexpr int kMaxDevices = 64;

template <class T, int D>
void launch_wmma(const AttnParams& p, int64_t blocks, int device, cudaStream_t s) {
  static std::atomic<int> set[kMaxDevices];
  const size_t smem = WmmaSmem<D>::template bytes<T>();
  allow_smem(k_attention_wmma<T, D>, smem, device, set, kMaxDevices);
  k_attention_wmma<T, D><<<static_cast<unsigned>(blocks), kWThreads, smem, s>>>(p);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class T, int CH>
void launch_generic(const AttnParams& p, int64_t blocks, int device, cudaStream_t s) {
  static std::atomic<int> set[kMaxDevices];
  const size_t smem = generic_smem_bytes(p.D, p.Dv);
  allow_smem(k_attention_generic<T, CH>, smem, device, set, kMaxDevices);
  k_attention_generic<T, CH><<<static_cast<unsigned>(blocks), kGThreads, smem, s>>>(p);
  KILN_CUDA_LAUNCH_CHECK();
}

void fused_attention_kernel(KernelContext& ctx) {
  const TensorRef& q = ctx.input(0);
  const TensorRef& k = ctx.input(1);
  const TensorRef& v = ctx.input(2);
  const bool has_mask = ctx.has_input(3);
  if (!is_float_type(q.dtype) || k.dtype != q.dtype || v.dtype != q.dtype)
    ctx.fail(std::string("q, k and v must share a float dtype, got ") + dtype_name(q.dtype) + ", " +
             dtype_name(k.dtype) + ", " + dtype_name(v.dtype));
  if (has_mask && !is_float_type(ctx.input(3).dtype))
    ctx.fail(std::string("the mask must be float32, float16 or bfloat16, got ") + dtype_name(ctx.input(3).dtype));
  AttentionLayout L;
  const std::string err = attention_layout(q.shape, k.shape, v.shape, has_mask ? &ctx.input(3).shape : nullptr,
                                           ctx.attrs().i("k_transposed", 0) != 0, &L);
  if (!err.empty()) ctx.fail(err);
  if (ctx.out[0].numel() == 0) return;
  if (run_attention_gemm(ctx, L)) return;
  if (L.D > kMaxHead || L.Dv > kMaxHead)
    ctx.fail("head sizes up to " + std::to_string(kMaxHead) + " are supported by the direct kernel, got " +
             std::to_string(L.D) + " and " + std::to_string(L.Dv) +
             " (the GEMM path, which takes any size, needs uniform (batch*head) strides and workspace for the scores)");

  AttnParams p{};
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.mask = has_mask ? ctx.input(3).data : nullptr;
  p.out = ctx.out[0].data;
  p.H = L.H;
  p.Sq = L.Sq;
  p.Sk = L.Sk;
  p.D = L.D;
  p.Dv = L.Dv;
  p.q_sb = L.q_sb;
  p.q_sh = L.q_sh;
  p.k_sb = L.k_sb;
  p.k_sh = L.k_sh;
  p.v_sb = L.v_sb;
  p.v_sh = L.v_sh;
  p.m_sb = L.m_sb;
  p.m_sh = L.m_sh;
  p.m_si = L.m_si;
  p.m_sj = L.m_sj;
  p.scale = static_cast<float>(ctx.attrs().f("scale", 1.0));
  p.mask_dtype = has_mask ? static_cast<int>(ctx.input(3).dtype) : 0;
  p.has_mask = has_mask ? 1 : 0;
  p.causal = ctx.attrs().i("causal", 0) != 0 ? 1 : 0;
  p.k_transposed = L.k_transposed ? 1 : 0;
  p.vec = aligned16(q.data) && aligned16(v.data) && (L.k_transposed || aligned16(k.data)) ? 1 : 0;

  const DeviceInfo& dev = ctx.res.device ? *ctx.res.device : current_device();
  const bool tensor_cores = q.dtype != DataType::kFLOAT && L.D == L.Dv && (L.D == 64 || L.D == 128) && dev.major >= 8 &&
                            static_cast<size_t>(dev.max_shared_per_block_optin) >= WmmaSmem<128>::bytes<half>();
  cudaStream_t s = ctx.stream();
  if (tensor_cores) {
    p.nq = (L.Sq + kWBQ - 1) / kWBQ;
    const int64_t blocks = p.nq * L.B * L.H;
    if (blocks > 0x7fffffffLL) ctx.fail("too many (batch, head, query tile) blocks");
    dispatch_float(q.dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, float>) {
        if (L.D == 64) launch_wmma<T, 64>(p, blocks, dev.ordinal, s);
        else launch_wmma<T, 128>(p, blocks, dev.ordinal, s);
      }
    });
    return;
  }
  if (static_cast<size_t>(dev.max_shared_per_block_optin) < generic_smem_bytes(L.D, L.Dv))
    ctx.fail("head sizes " + std::to_string(L.D) + "/" + std::to_string(L.Dv) + " need more shared memory than the device has");
  p.nq = (L.Sq + kGBQ - 1) / kGBQ;
  const int64_t blocks = p.nq * L.B * L.H;
  if (blocks > 0x7fffffffLL) ctx.fail("too many (batch, head, query tile) blocks");
  dispatch_float(q.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (L.Dv <= 32) launch_generic<T, 1>(p, blocks, dev.ordinal, s);
    else if (L.Dv <= 64) launch_generic<T, 2>(p, blocks, dev.ordinal, s);
    else if (L.Dv <= 128) launch_generic<T, 4>(p, blocks, dev.ordinal, s);
    else launch_generic<T, 8>(p, blocks, dev.ordinal, s);
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("FusedAttention", &fused_attention_kernel, &supports_fused_attention);

}  // namespace kiln::cuda::kern
