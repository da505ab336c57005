// The flash kernel of FusedAttention on tensor cores (see attention_flash_mma.h for what it takes).
//
// Work split: one block of 4 warps per (batch*head, tile of 64 query rows); warp w owns rows 16w..16w+15 for
// the whole key walk, so the softmax state of a row never leaves its warp. D = 128 keeps the same split: 64
// accumulator floats + 32 Q-fragment registers + 32 score floats per thread fit in the 255 registers, and
// 16 rows per warp keeps the per-row state in one quad (below). Per key tile of 64:
//   S = Q K^T       mma.sync m16n8k16 (f16/bf16 in, f32 accumulate): 8 n-tiles of 8 keys, D/16 k-steps
//   S = S * scale + mask, -inf where out of range or causally hidden
//   online softmax  running max m and sum l per row in registers; O and l rescaled by exp(m_old - m_new)
//   O += P V        P converted to f16/bf16 in registers and used directly as the A operand
// and finally O / l, staged through shared memory for 16-byte coalesced stores.
//
// Fragment layouts of mma.m16n8k16 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"),
// with g = lane / 4 (groupID) and t = lane % 4 (thread in group); each .b32 register holds two 16-bit elements,
// the lower column (or k) index in the low half:
//   A 16x16 (row): a[0] = (row g,   cols 2t, 2t+1)   a[1] = (row g+8, cols 2t, 2t+1)
//                  a[2] = (row g,   cols 2t+8, 2t+9) a[3] = (row g+8, cols 2t+8, 2t+9)
//   B 16x8  (col): b[0] = (k 2t, 2t+1;   col g)      b[1] = (k 2t+8, 2t+9; col g)
//   C 16x8  (f32): c[0], c[1] = (row g, cols 2t, 2t+1)   c[2], c[3] = (row g+8, cols 2t, 2t+1)
// So the scores of keys 16kk..16kk+15 (C n-tiles 2kk and 2kk+1) are, element for element, the A fragment of
// P for k-step kk of P V: a[0] = c(2kk)[0,1], a[1] = c(2kk)[2,3], a[2] = c(2kk+1)[0,1], a[3] = c(2kk+1)[2,3].
// No shuffle or shared memory is needed between the two products. A row's 64 scores of a tile are spread over
// the 4 lanes of one quad (same g, t = 0..3, 16 scores each): row max and sum reduce with shuffles over lane
// bits 0 and 1 (__shfl_xor 1 and 2). The sum is kept per lane and reduced once at the end: every lane of a
// quad rescales by the same factor, since the max is reduced over the quad each tile.
//
// ldmatrix.x4: lanes 8i..8i+7 give the row addresses of 8x8 matrix i; register i of lane l receives row l/4,
// elements 2(l%4), 2(l%4)+1 of matrix i (.trans: column l/4, rows 2(l%4), 2(l%4)+1). Hence
//   Q (A operand, [row][d] in shared memory): lane l addresses row l%16, column 8(l/16) -> a[0..3] above;
//   K (B operand, [key][d] = n-major): without .trans, matrix i at (n +8 if i >= 2, k +8 if i odd);
//   V ([key][dv]) and K^T ([d][key]) (B operand, k-major): .trans, same matrix placement;
// each x4 load gives b[0], b[1] of two adjacent n-tiles.
//
// Shared memory rows are padded by 8 elements (16 bytes): a row is then 144 or 272 bytes = 36 or 68 words, so
// the 8 row addresses of one ldmatrix phase start 4 banks apart and cover all 32 banks (no conflicts).
//
// Numerics: scores and softmax in float32, in natural units (s = scale * q.k + mask; exp(x) as exp2(x log2 e)
// after subtracting the max, so a mask of float32's lowest value never overflows before the subtraction);
// P is rounded to the input dtype for P V, as the GEMM path and the CPU-checked tolerances expect. A row whose
// scores are all -inf (fully masked, causally empty) keeps l = 0 and outputs 0, as the other paths do.
#include "backends/cuda/kernels/attention_flash_mma.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/dynamic_smem.h"
#include "backends/cuda/kernels/mma_sm80.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"

namespace kiln::cuda::kern {
namespace {

constexpr int kBQ = 64;  // query rows per block
constexpr int kBK = 64;  // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kPad = 8;  // elements of padding per staged row (see the bank note above)
constexpr float kLog2e = 1.4426950408889634f;

// Shared memory in 16-bit elements: Q, then two K buffers, then two V buffers.
template <int D, bool KT> struct FlashSmem {
  static constexpr int LD = D + kPad;     // Q, K and V rows of D elements
  static constexpr int LDT = kBK + kPad;  // K^T rows of kBK keys (k_transposed)
  static constexpr int kQ = kBQ * LD;
  static constexpr int kK = KT ? D * LDT : kBK * LD;  // one buffer
  static constexpr int kV = kBK * LD;
  static constexpr size_t bytes = sizeof(uint16_t) * (kQ + 2 * kK + 2 * kV);
};

struct FlashParams {
  const void* q;
  const void* k;
  const void* v;
  const void* mask;
  void* out;
  // Positions are int (the host checks Sq, Sk and the block count fit with room for a tile); offsets int64.
  int H, Sq, Sk;
  int nq;  // query tiles per (batch, head)
  int64_t q_sb, q_sh, k_sb, k_sh, v_sb, v_sh;
  int64_t q_ss, k_ss, v_ss;  // row strides (K^T: between its D rows of Sk keys)
  int64_t o_sb, o_sh, o_ss;
  int64_t m_sb, m_sh, m_si, m_sj;
  float scale;
  int mask_dtype;  // DataType of the mask, -1 without one
  int causal;
  int kt_vec;  // k_transposed: K^T rows take 16-byte copies (Sk % 8 == 0, every K^T row 16-byte aligned)
  int allow_next;  // FlashAttentionArgs::allow_next
};

// B fragments of k-step [k0, k0 + 16) for the two n-tiles [n0, n0 + 16), from a tile stored n-major (row n,
// k contiguous: K as [key][d]). r = {b0, b1} of n-tile n0, then {b0, b1} of n-tile n0 + 8.
__device__ __forceinline__ void ldsm_b_n_major(uint32_t (&r)[4], const uint16_t* tile, int ld, int k0, int n0, int lane) {
  // Lane l gives row l%8 of matrix l/8; matrices 1 and 3 are 8 further in k, matrices 2 and 3 8 further in n.
  ldsm_x4(r, tile + (n0 + ((lane >> 4) << 3) + (lane & 7)) * ld + k0 + (((lane >> 3) & 1) << 3));
}
// The same from a tile stored k-major (row k, n contiguous: V as [key][dv], K^T as [d][key]); .trans turns
// each 8x8 block so that lane l receives k 2(l%4), 2(l%4)+1 of column n = l/4, as B wants.
__device__ __forceinline__ void ldsm_b_k_major(uint32_t (&r)[4], const uint16_t* tile, int ld, int k0, int n0, int lane) {
  ldsm_x4_trans(r, tile + (k0 + (((lane >> 3) & 1) << 3) + (lane & 7)) * ld + n0 + ((lane >> 4) << 3));
}

// ---- Staging tiles in shared memory ----

// Rows [r0, r0 + ROWS) of a row-major [total, D] matrix, rows `ld` elements apart (D when dense, H * D for a
// tokens-major tensor), into rows of D + kPad elements, by 16-byte cp.async; rows past `total` are zero-filled
// (a key there gets probability 0, and 0 times stale data could be NaN). Consecutive threads copy consecutive
// 16-byte chunks of a row: a warp reads whole rows of 128 or 256 contiguous bytes.
template <int D, int ROWS>
__device__ __forceinline__ void stage_rows(uint16_t* dst, const uint16_t* src, int64_t ld, int r0, int total) {
  constexpr int kChunks = D / 8;
  static_assert((ROWS * kChunks) % kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < ROWS * kChunks / kThreads; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    const int r = idx / kChunks, c = (idx % kChunks) * 8;
    uint16_t* d = dst + r * (D + kPad) + c;
    if (r0 + r < total) cp_async_16(d, src + static_cast<int64_t>(r0 + r) * ld + c);
    else *reinterpret_cast<uint4*>(d) = make_uint4(0u, 0u, 0u, 0u);
  }
}

// Columns [k0, k0 + kBK) of the row-major [D, Sk] K^T, rows `ld` elements apart, into rows of kBK + kPad
// elements; keys past Sk are 0. 16-byte copies when `vec` (Sk % 8 == 0 and aligned rows: a chunk of 8 keys is
// wholly in or out of range), else 2-byte loads, consecutive threads on consecutive keys.
template <int D>
__device__ __forceinline__ void stage_kt(uint16_t* dst, const uint16_t* src, int64_t ld, int k0, int Sk, bool vec) {
  constexpr int LDT = kBK + kPad;
  if (vec) {
    constexpr int kChunks = kBK / 8;
#pragma unroll
    for (int i = 0; i < D * kChunks / kThreads; ++i) {
      const int idx = threadIdx.x + i * kThreads;
      const int d = idx / kChunks, c = (idx % kChunks) * 8;
      uint16_t* o = dst + d * LDT + c;
      if (k0 + c < Sk) cp_async_16(o, src + static_cast<int64_t>(d) * ld + k0 + c);
      else *reinterpret_cast<uint4*>(o) = make_uint4(0u, 0u, 0u, 0u);
    }
  } else {
#pragma unroll 8
    for (int i = 0; i < D * kBK / kThreads; ++i) {
      const int idx = threadIdx.x + i * kThreads;
      const int d = idx / kBK, j = idx % kBK;
      dst[d * LDT + j] = k0 + j < Sk ? src[static_cast<int64_t>(d) * ld + k0 + j] : uint16_t{0};
    }
  }
}

// ---- Scores ----

// s += mask for this lane's elements: row r of element e is e / 2 (rows g and g + 8), key j0 + 8n + e % 2.
// Rows past Sq and keys past Sk are not read (their scores are not used or become -inf).
template <class M>
__device__ __forceinline__ void add_mask(float (&s)[kBK / 8][4], const M* mask, const int64_t (&row_off)[2],
                                         const bool (&row_ok)[2], int64_t m_sj, int j0, int Sk) {
#pragma unroll
  for (int n = 0; n < kBK / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int j = j0 + 8 * n + (e & 1);
      if (row_ok[e >> 1] && j < Sk) s[n][e] += to_f(mask[row_off[e >> 1] + j * m_sj]);
    }
}

// Blocks per SM the registers must allow: D = 64 keeps 3 (about 160 registers; at 4 blocks, 128 registers,
// ptxas spills 36-60 bytes), D = 128 has 2 by its 85 KiB of shared memory anyway (ptxas uses up to 255).
template <class T, int D, bool KT>
__global__ void __launch_bounds__(kThreads, D == 64 ? 3 : 2) k_flash_attention(const FlashParams p) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  if (p.allow_next) allow_next_kernel_to_start();  // it waits for this one before it reads the output
  using S = FlashSmem<D, KT>;
  constexpr int LD = S::LD, LDT = S::LDT;
  constexpr int kNT = kBK / 8;  // score n-tiles per key tile
  constexpr int kOT = D / 8;    // output n-tiles
  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* Ks = Qs + S::kQ;
  uint16_t* Vs = Ks + 2 * S::kK;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, tq = lane & 3;
  const int bh = static_cast<int>(blockIdx.x) / p.nq;
  const int q0 = (static_cast<int>(blockIdx.x) - bh * p.nq) * kBQ;
  const int b = bh / p.H, h = bh - b * p.H;
  const uint16_t* q = static_cast<const uint16_t*>(p.q) + b * p.q_sb + h * p.q_sh;
  const uint16_t* k = static_cast<const uint16_t*>(p.k) + b * p.k_sb + h * p.k_sh;
  const uint16_t* v = static_cast<const uint16_t*>(p.v) + b * p.v_sb + h * p.v_sh;

  // Keys [0, k_end) can be visible to some row of the block (causal: j <= i + Sk - Sq).
  const int off = p.Sk - p.Sq;
  int k_end = p.Sk;
  if (p.causal) {
    const int last = (q0 + kBQ < p.Sq ? q0 + kBQ : p.Sq) + off;  // exclusive
    k_end = last < p.Sk ? last : p.Sk;
  }
  const int n_tiles = k_end > 0 ? (k_end + kBK - 1) / kBK : 0;

  auto stage_kv = [&](int tile, int buf) {
    const int k0 = tile * kBK;
    if constexpr (KT) stage_kt<D>(Ks + buf * S::kK, k, p.k_ss, k0, p.Sk, p.kt_vec != 0);
    else stage_rows<D, kBK>(Ks + buf * S::kK, k, p.k_ss, k0, p.Sk);
    stage_rows<D, kBK>(Vs + buf * S::kV, v, p.v_ss, k0, p.Sk);
  };

  stage_rows<D, kBQ>(Qs, q, p.q_ss, q0, p.Sq);
  if (n_tiles > 0) stage_kv(0, 0);
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();

  // This warp's 16 query rows as A fragments, for the whole key walk.
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(qf[kk], Qs + (warp * 16 + (lane & 15)) * LD + kk * 16 + ((lane >> 4) << 3));

  float o[kOT][4];
#pragma unroll
  for (int n = 0; n < kOT; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
  const int warp_row = q0 + warp * 16;
  const int row0 = warp_row + g;  // this lane's rows: row0 and row0 + 8
  const bool row_ok[2] = {row0 < p.Sq, row0 + 8 < p.Sq};
  int64_t mask_row[2] = {0, 0};
  if (p.mask_dtype >= 0) {
    const int64_t base = b * p.m_sb + h * p.m_sh;
    mask_row[0] = base + static_cast<int64_t>(row0) * p.m_si;
    mask_row[1] = base + static_cast<int64_t>(row0 + 8) * p.m_si;
  }

  for (int t = 0; t < n_tiles; ++t) {
    const int buf = t & 1;
    // The other buffer was last read in tile t - 1, which every warp finished before the barrier ending it.
    if (t + 1 < n_tiles) {
      stage_kv(t + 1, buf ^ 1);
      cp_async_commit();
    }
    const uint16_t* Kb = Ks + buf * S::kK;
    const uint16_t* Vb = Vs + buf * S::kV;
    const int k0 = t * kBK;

    // S = Q K^T: 16 rows x 64 keys per warp.
    float s[kNT][4];
#pragma unroll
    for (int n = 0; n < kNT; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
      for (int np = 0; np < kBK / 16; ++np) {
        uint32_t bf[4];
        if constexpr (KT) ldsm_b_k_major(bf, Kb, LDT, kk * 16, np * 16, lane);
        else ldsm_b_n_major(bf, Kb, LD, kk * 16, np * 16, lane);
        mma_16816<T>(s[2 * np], qf[kk], bf[0], bf[1]);
        mma_16816<T>(s[2 * np + 1], qf[kk], bf[2], bf[3]);
      }

    // Scale, mask, then -inf for keys out of range or causally hidden (only on tiles that can have any).
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] *= p.scale;
    const int j0 = k0 + 2 * tq;
    switch (p.mask_dtype) {
      case static_cast<int>(DataType::kFLOAT):
        add_mask(s, static_cast<const float*>(p.mask), mask_row, row_ok, p.m_sj, j0, p.Sk);
        break;
      case static_cast<int>(DataType::kHALF):
        add_mask(s, static_cast<const half*>(p.mask), mask_row, row_ok, p.m_sj, j0, p.Sk);
        break;
      case static_cast<int>(DataType::kBF16):
        add_mask(s, static_cast<const bf16*>(p.mask), mask_row, row_ok, p.m_sj, j0, p.Sk);
        break;
      default: break;
    }
    if (k0 + kBK > p.Sk || (p.causal && k0 + kBK - 1 > warp_row + off)) {
#pragma unroll
      for (int n = 0; n < kNT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = j0 + 8 * n + (e & 1), i = row0 + 8 * (e >> 1);
          if (j >= p.Sk || (p.causal && j > i + off)) s[n][e] = -INFINITY;
        }
    }

    // Online softmax per row: the quad's max, the rescale of what was accumulated under the old max, P.
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kNT; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * r], s[n][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(row_max[r], mx);
      const float mu = m_new == -INFINITY ? 0.0f : m_new;  // no visible key yet: exp(-inf - 0) = 0, no NaN
      alpha[r] = exp2f((row_max[r] - mu) * kLog2e);        // 0 while the old max is -inf
      row_max[r] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kNT; ++n)
#pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          s[n][e] = exp2f((s[n][e] - mu) * kLog2e);
          sum += s[n][e];
        }
      row_sum[r] = row_sum[r] * alpha[r] + sum;
    }
#pragma unroll
    for (int n = 0; n < kOT; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }

    // O += P V, P's A fragments straight from the score registers (see the top of the file).
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      const uint32_t a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bf[4];
        ldsm_b_k_major(bf, Vb, LD, kk * 16, np * 16, lane);
        mma_16816<T>(o[2 * np], a, bf[0], bf[1]);
        mma_16816<T>(o[2 * np + 1], a, bf[2], bf[3]);
      }
    }

    if (t + 1 < n_tiles) {  // tile t + 1 has landed for every thread; every warp is done with tile t
      cp_async_wait_all();
      __syncthreads();
    }
  }

  // O / l. The quad's partial sums were all rescaled alike, so they add up to the row's sum.
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_sum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    inv[r] = l > 0.0f ? 1.0f / l : 0.0f;
  }
  // Staged in this warp's own rows of the Q tile (only this warp ever read them; its Q copies completed
  // before the first barrier), then written with 16-byte stores: 16 rows of D contiguous elements.
  uint16_t* ow = Qs + warp * 16 * LD;
#pragma unroll
  for (int n = 0; n < kOT; ++n) {
    *reinterpret_cast<uint32_t*>(ow + g * LD + 8 * n + 2 * tq) = pack2<T>(o[n][0] * inv[0], o[n][1] * inv[0]);
    *reinterpret_cast<uint32_t*>(ow + (g + 8) * LD + 8 * n + 2 * tq) = pack2<T>(o[n][2] * inv[1], o[n][3] * inv[1]);
  }
  __syncwarp();
  uint16_t* out = static_cast<uint16_t*>(p.out) + b * p.o_sb + h * p.o_sh;
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int it = 0; it < 16 * kChunks / 32; ++it) {
    const int idx = lane + 32 * it;
    const int r = idx / kChunks, c = (idx % kChunks) * 8;
    const int i = warp_row + r;
    if (i < p.Sq) *reinterpret_cast<uint4*>(out + static_cast<int64_t>(i) * p.o_ss + c) = *reinterpret_cast<const uint4*>(ow + r * LD + c);
  }
#else
  __trap();  // the host never launches this below sm_80
#endif
}

// ---- Host side ----

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The element `off` 16-bit elements after `data` (a packed tensor's slot).
const void* at_offset(const void* data, int64_t off) { return static_cast<const uint16_t*>(data) + off; }

// Every row of a tensor's matrices starts 16 bytes aligned: the first one and every step between rows.
bool rows_aligned16(const void* data, int64_t off, int64_t sb, int64_t sh, int64_t ss) {
  constexpr int64_t kPer16 = 16 / sizeof(uint16_t);
  return aligned16(at_offset(data, off)) && sb % kPer16 == 0 && sh % kPer16 == 0 && ss % kPer16 == 0;
}

size_t smem_bytes(int64_t D, bool kt) {
  if (D == 64) return kt ? FlashSmem<64, true>::bytes : FlashSmem<64, false>::bytes;
  return kt ? FlashSmem<128, true>::bytes : FlashSmem<128, false>::bytes;
}

int64_t query_tiles(const AttentionLayout& L) { return (L.Sq + kBQ - 1) / kBQ; }

template <class T, int D, bool KT>
void launch(const FlashParams& p, int64_t blocks, int device, cudaStream_t stream) {
  static std::atomic<int> raised[kMaxSmemDevices];
  constexpr size_t smem = FlashSmem<D, KT>::bytes;
  allow_dynamic_smem(k_flash_attention<T, D, KT>, smem, device, raised);
  k_flash_attention<T, D, KT><<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(p);
  KILN_CUDA_LAUNCH_CHECK();
}

template <class T, int D>
void launch_kt(const FlashParams& p, int64_t blocks, bool kt, int device, cudaStream_t stream) {
  if (kt) launch<T, D, true>(p, blocks, device, stream);
  else launch<T, D, false>(p, blocks, device, stream);
}

}  // namespace

std::string flash_attention_unsupported(const FlashAttentionArgs& a, const DeviceInfo& device) {
  const AttentionLayout& L = a.L;
  if (a.dtype != DataType::kHALF && a.dtype != DataType::kBF16)
    return std::string("dtype ") + dtype_name(a.dtype) + " (the flash kernel takes float16 and bfloat16)";
  if (L.D != L.Dv || (L.D != 64 && L.D != 128))
    return "head sizes " + std::to_string(L.D) + "/" + std::to_string(L.Dv) + " (the flash kernel takes D = Dv = 64 or 128)";
  if (device.major < 8) return "compute capability " + device.arch() + " (mma.sync m16n8k16 needs sm_80 or newer)";
  const size_t smem = smem_bytes(L.D, L.k_transposed);
  if (static_cast<size_t>(device.max_shared_per_block_optin) < smem)
    return std::to_string(smem) + " bytes of shared memory per block, more than the device allows";
  if (a.mask && a.mask_dtype != DataType::kFLOAT && a.mask_dtype != DataType::kHALF && a.mask_dtype != DataType::kBF16)
    return std::string("mask dtype ") + dtype_name(a.mask_dtype);
  if (!rows_aligned16(a.q, L.q_off, L.q_sb, L.q_sh, L.q_ss) || !rows_aligned16(a.v, L.v_off, L.v_sb, L.v_sh, L.v_ss) ||
      !rows_aligned16(a.out, 0, L.o_sb, L.o_sh, L.o_ss) ||
      (!L.k_transposed && !rows_aligned16(a.k, L.k_off, L.k_sb, L.k_sh, L.k_ss)))
    return "rows of q, k, v or the output not 16-byte aligned (tiles are staged and stored with 16-byte copies)";
  constexpr int64_t kIntMax = 0x7fffffffLL;
  if (L.Sq > kIntMax - kBQ || L.Sk > kIntMax - kBK) return "sequences longer than the kernel's 32-bit positions";
  if (query_tiles(L) * L.B * L.H > kIntMax) return "more (batch, head, query tile) blocks than a grid holds";
  return "";
}

void launch_flash_attention(const FlashAttentionArgs& a, const DeviceInfo& device, cudaStream_t stream) {
  const AttentionLayout& L = a.L;
  FlashParams p{};
  p.q = at_offset(a.q, L.q_off);
  p.k = at_offset(a.k, L.k_off);
  p.v = at_offset(a.v, L.v_off);
  p.mask = a.mask;
  p.out = a.out;
  p.H = static_cast<int>(L.H);
  p.Sq = static_cast<int>(L.Sq);
  p.Sk = static_cast<int>(L.Sk);
  copy_attention_strides(L, &p);
  p.nq = static_cast<int>(query_tiles(L));
  p.scale = a.scale;
  p.mask_dtype = a.mask ? static_cast<int>(a.mask_dtype) : -1;
  p.causal = a.causal ? 1 : 0;
  p.kt_vec = L.k_transposed && L.Sk % 8 == 0 && rows_aligned16(a.k, L.k_off, L.k_sb, L.k_sh, L.k_ss) ? 1 : 0;
  p.allow_next = a.allow_next ? 1 : 0;
  const int64_t blocks = p.nq * L.B * L.H;
  if (blocks == 0) return;
  const bool kt = L.k_transposed;
  if (a.dtype == DataType::kHALF) {
    if (L.D == 64) launch_kt<half, 64>(p, blocks, kt, device.ordinal, stream);
    else launch_kt<half, 128>(p, blocks, kt, device.ordinal, stream);
  } else {
    if (L.D == 64) launch_kt<bf16, 64>(p, blocks, kt, device.ordinal, stream);
    else launch_kt<bf16, 128>(p, blocks, kt, device.ordinal, stream);
  }
}

}  // namespace kiln::cuda::kern
