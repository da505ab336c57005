// The split-K implicit-GEMM convolution on tensor cores (splitk_conv_mma.h says what it takes and why).
//
// Work split: the grid is (pixel tiles, channel tiles, S); the S blocks of one output tile (64 pixels x 32
// channels for the convolution; the GEMM view also takes 64 x 64 and 128 x 64: TileShape) form one cluster along
// z. Block s of the cluster takes chunks [s * chunks / S, (s + 1) * chunks / S)
// of the reduction, a chunk being 64 channels of one filter tap (r, s): its A tile is those channels of the
// input pixel each output pixel reads at that tap (zeros outside the image: the padding), its B tile the same
// 64 weights of the block's 32 filters. No im2col exists anywhere: each A row is one 128-byte run of x.
// Chunks stream through a 6-stage cp.async ring: the loads of five chunks are in flight while one is
// multiplied. At batch 1 a block has 9-18 chunks and about one block runs on each SM, so the kernel waits on
// latency, not on bandwidth or MMAs: what it needs is many loads in flight and short dependency chains
// between them.
//
// Why the loop looks as it does (H200, first version, thirteenth session): with 4 warps, 4 stages and the
// chunk's tap found by two integer divisions per chunk, a chunk took ~0.45 us a block whatever the split
// (layer4's 3x3 at S 1: 36 us for 72 chunks), one warp a scheduler walking a ~200-instruction dependent chain
// per chunk before its loads were issued. Now the tap advances by a step (no division), the pixels' offsets
// are computed once, 8 warps share the copies (3 a thread a chunk, not 6) and two warps a scheduler hide each
// other's latencies.
//
// The 8 warps each take 16 of the 64 x 32 tile's pixels x 16 of its channels: per k16 step one A fragment and
// one B load (two n-tiles) feed 2 mma.m16n8k16 (64 x 64: 1 and 2 feed 4; 128 x 64: 2 and 2 feed 8). Shared memory rows are 64 channels (8 chunks of 16 bytes), chunk c of
// row r stored at c ^ (r % 8), so the 8 rows an ldmatrix phase reads sit in 8 different bank groups.
//
// The reduction across the cluster: each block writes its float32 partial tile to its own shared memory;
// after a cluster barrier, block s adds rows [s * 64 / S, (s + 1) * 64 / S) of all S partials, rank 0 first
// (a fixed order: the sum does not depend on which block finished first), reading the others' shared memory
// directly (distributed shared memory), applies bias, residual and activation and stores 4 channels (8 bytes)
// a thread. A second cluster barrier keeps every block's shared memory alive until the others have read it.
//
// Fragment layouts (mma.m16n8k16, PTX ISA): A row-major 16 x 16 (rows = pixels, k = channels), B "col"
// (n-major: filter n's channels contiguous, as the weights [K, kh, kw, C] store them), C/D 16 x 8 float32:
// lane l holds rows l / 4 and l / 4 + 8, columns 2 (l % 4) and + 1.
#include "backends/cuda/kernels/splitk_conv_mma.h"

#include <cooperative_groups.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/conv_epilogue_inputs.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/epilogue.h"
#include "backends/cuda/kernels/fast_div.cuh"
#include "backends/cuda/kernels/mma_sm80.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"
#include "kiln/types.h"

namespace kiln::cuda {

namespace {

using kern::bf16;
using kern::half;

constexpr int kTK = kSplitKChunk;
constexpr int kWarps = 8;  // 4 pixel groups x 2 channel halves
constexpr int kThreads = 32 * kWarps;
constexpr int kRowChunks = kTK * 2 / 16;  // 16-byte chunks in a row of kTK channels: 8

// The sizes that follow from a tile of TM pixels x TN channels (kSplitKTiles). Each of the 8 warps takes TM / 4
// pixels x TN / 2 channels: kFragM 16-row A fragments x kFragN 16-column B loads (two n8 tiles each). The ring
// keeps 6 stages on tiles of up to 128 rows and columns together (12 and 16 KB a stage: 3 and 2 blocks an SM)
// and 4 on 128 x 64 (24 KB a stage: 2 blocks).
template <int TM, int TN> struct TileShape {
  static constexpr int kStages = TM + TN <= 128 ? 6 : 4;
  static constexpr int kStageChunks = (TM + TN) * kRowChunks;  // A rows, then B rows
  static constexpr int kARows = TM * kRowChunks / kThreads;     // A rows a thread copies a chunk: TM / 32
  static constexpr int kBRows = TN * kRowChunks / kThreads;     // B rows: TN / 32
  static constexpr int kRedStride = TN + 4;  // floats a partial-tile row takes (4 apart: fewer conflicts)
  static constexpr size_t kSharedBytes = static_cast<size_t>(kStages) * kStageChunks * 16;
  static constexpr int kBlocksPerSm = kSharedBytes * 3 <= 227 * 1024 ? 3 : kSharedBytes * 2 <= 227 * 1024 ? 2 : 1;
  static constexpr int kFragM = TM / 4 / 16, kFragN = TN / 2 / 16;
  static_assert(static_cast<size_t>(TM) * kRedStride * sizeof(float) <= kSharedBytes, "the partial tile reuses the ring");
  static_assert(TM % 64 == 0 && TN % 32 == 0, "the warp tiling and the copy split below (kARows >= 2)");
  static_assert(kARows * kThreads == TM * kRowChunks && kBRows * kThreads == TN * kRowChunks, "every row copied once");
  static_assert(kFragM * 16 * 4 == TM && kFragN * 16 * 2 == TN, "8 warps of 16 kFragM rows x 16 kFragN columns");
  static_assert(TM % kSplitKMaxSplits == 0, "each split of the cluster adds whole rows");
};
static_assert(TileShape<kSplitKTileM, kSplitKTileN>::kBlocksPerSm == kSplitKBlocksPerSm, "the header's count");

struct SkArgs {
  ConvTensors t;  // x, w, bias, residual, y
  int H, W, C, K, OH, OW, kw;
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int chunks_per_tap;  // C / kTK
  int chunks;          // kh * kw * chunks_per_tap
  int M;               // output pixels: N * OH * OW (below 2^31: the geometry's condition)
  // The prologue's divisors (OH * OW, OW, chunks_per_tap, kw), as multiply-shifts: eight 32-bit divisions
  // are ~200 instructions, which ptxas placed between the wait for the previous kernel and the first load of
  // x (SASS, sixteenth session).
  kern::FastDivU32 plane_div, ow_div, cpt_div, kw_div;
  int act;
  float alpha, beta;
  bool allow_next;  // the next kernel may start once this one's wait is over (programmatic_launch.h)
};

// The kernel's body and its device helpers exist for sm_90 only (clusters): the sm_80 pass compiles an empty
// kernel, which the convolution never launches there (its eligibility asks for sm_90).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// The 16-byte chunk index of chunk c of row r within a stage's A or B area (the swizzle at the top of the file).
__device__ __forceinline__ int swz(int r, int c) { return r * kRowChunks + (c ^ (r & 7)); }

// 4 consecutive values of T (8 bytes) as floats (unpack4 of their bits: a load whose use is far off keeps
// the bits, so nothing waits for it until then), and back.
template <class T> __device__ __forceinline__ float4 unpack4(const uint2& u) {
  T v[4];
  memcpy(v, &u, sizeof(u));
  return make_float4(kern::to_f(v[0]), kern::to_f(v[1]), kern::to_f(v[2]), kern::to_f(v[3]));
}
template <class T> __device__ __forceinline__ uint2 load4_bits(const T* p) { return *reinterpret_cast<const uint2*>(p); }
template <class T> __device__ __forceinline__ void store4(T* p, float4 f) {
  uint2 u;
  u.x = kern::pack2<T>(f.x, f.y);
  u.y = kern::pack2<T>(f.z, f.w);
  *reinterpret_cast<uint2*>(p) = u;
}

// v += d, element by element (the partials, the bias, the residual).
__device__ __forceinline__ void add4(float4& v, const float4& d) {
  v.x += d.x;
  v.y += d.y;
  v.z += d.z;
  v.w += d.w;
}

// One thread's copies of the next chunk: its A rows' sources (valid only where `inside`) and its B row's, and
// where the chunk is in the reduction (tap (r, s), first channel c0). Most steps stay within a tap (C / 64 - 1
// of every C / 64): then every source moves on by 64 channels and nothing else changes. Only a step to the next
// tap recomputes which rows fall inside the image and where. No division anywhere in the loop.
template <class T, int kARows> struct CopyCursor {
  const T* a_src[kARows];
  bool inside[kARows];
  const T* b_src;
  int r, s, c0;

  __device__ __forceinline__ void place(const SkArgs& a, const T* x, const int (&ih0)[kARows], const int (&iw0)[kARows],
                                        const int64_t (&a_off)[kARows]) {
    const int dy = r * a.dil_h, dx = s * a.dil_w;
    const int64_t tap_off = (static_cast<int64_t>(dy) * a.W + dx) * a.C + c0;
#pragma unroll
    for (int j = 0; j < kARows; ++j) {
      const int ih = ih0[j] + dy, iw = iw0[j] + dx;
      inside[j] = static_cast<unsigned>(ih) < static_cast<unsigned>(a.H) &&
                  static_cast<unsigned>(iw) < static_cast<unsigned>(a.W);
      a_src[j] = inside[j] ? x + a_off[j] + tap_off : x;  // x: a valid address for the zero-fill copy to name
    }
  }
  __device__ __forceinline__ void next(const SkArgs& a, const T* x, const int (&ih0)[kARows], const int (&iw0)[kARows],
                                       const int64_t (&a_off)[kARows]) {
    b_src += kTK;
    c0 += kTK;
    if (c0 < a.C) {
#pragma unroll
      for (int j = 0; j < kARows; ++j)
        if (inside[j]) a_src[j] += kTK;
      return;
    }
    c0 = 0;
    if (++s == a.kw) {
      s = 0;
      ++r;
    }
    place(a, x, ih0, iw0, a_off);
  }
};
#endif

template <class T, int kAct, int TM, int TN>
__global__ void __launch_bounds__(kThreads, TileShape<TM, TN>::kBlocksPerSm) k_splitk_conv(SkArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  using S = TileShape<TM, TN>;
  constexpr int kTM = TM, kTN = TN, kStages = S::kStages, kStageChunks = S::kStageChunks, kARows = S::kARows;
  constexpr int kBRows = S::kBRows, kRedStride = S::kRedStride, kFragM = S::kFragM, kFragN = S::kFragN;
  extern __shared__ __align__(16) uint4 smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int splits = static_cast<int>(gridDim.z), split = static_cast<int>(blockIdx.z);
  const int m0 = static_cast<int>(blockIdx.x) * kTM;
  const int n0 = static_cast<int>(blockIdx.y) * kTN;
  // 32-bit: chunks < 2^29 and splits <= 8; splits is a power of 2 (a shift, no division).
  const int log2_splits = __ffs(splits) - 1;
  const int begin = static_cast<int>((static_cast<unsigned>(split) * a.chunks) >> log2_splits);
  const int end = static_cast<int>((static_cast<unsigned>(split + 1) * a.chunks) >> log2_splits);
  const int nk = end - begin;

  // This thread's copies: chunk column cc of A rows row0 + 32 j (j < kARows) and of B rows row0 + 32 j
  // (j < kBRows; every B row of a thread moves on alike, so the cursor keeps the first's source). The A rows'
  // pixels are decoded once: the offset of their window's top-left corner (possibly outside the image) and
  // its row and column (a pixel past M gets a row no tap reaches, so every load of it is zeros).
  const int cc = tid & 7, row0 = tid >> 3;
  const T* x = static_cast<const T*>(a.t.x);
  int64_t a_off[kARows];
  int ih0[kARows], iw0[kARows];
  const int plane = a.OH * a.OW;  // < 2^31: M is
#pragma unroll
  for (int j = 0; j < kARows; ++j) {
    const int m = m0 + row0 + 32 * j;  // < M + TM < 2^31: the fast divisions are exact
    const bool valid = m < a.M;
    const int img = valid ? static_cast<int>(a.plane_div.div(m)) : 0;
    const int rem = m - img * plane;
    const int oh = static_cast<int>(a.ow_div.div(rem)), ow = rem - oh * a.OW;
    ih0[j] = valid ? oh * a.stride_h - a.pad_h : -(1 << 29);
    iw0[j] = ow * a.stride_w - a.pad_w;
    a_off[j] = (static_cast<int64_t>(img) * a.H * a.W + static_cast<int64_t>(ih0[j]) * a.W + iw0[j]) * a.C + cc * 8;
  }
  const int64_t kg = static_cast<int64_t>(a.chunks) * kTK;  // a filter's reduction length: kh * kw * C

  // The first chunk's place (the only divisions: once a block).
  CopyCursor<T, kARows> cur;
  {
    const int tap = static_cast<int>(a.cpt_div.div(begin));
    cur.c0 = (begin - tap * a.chunks_per_tap) * kTK;
    cur.r = static_cast<int>(a.kw_div.div(tap));
    cur.s = tap - cur.r * a.kw;
    cur.b_src = static_cast<const T*>(a.t.w) + (n0 + row0) * kg + static_cast<int64_t>(begin) * kTK + cc * 8;
    cur.place(a, x, ih0, iw0, a_off);
  }
  // Starts the copies of the cursor's chunk into ring stage `stage` (its A rows; its B row too unless already
  // started), and steps the cursor.
  // Row r + 32 j sits 32 j rows past row r in the swizzle (32 j % 8 = 0); B row row0 + 32 j's source is 32 j
  // filters past row0's.
  const int a_dst0 = swz(row0, cc), b_dst = kTM * kRowChunks + swz(row0, cc);
  const int64_t b_row_step = 32 * kg;
  auto load_chunk = [&](int stage, bool with_b) {
    uint4* st = smem + stage * kStageChunks;
#pragma unroll
    for (int j = 0; j < kARows; ++j)
      kern::cp_async_16_or_zero(&st[a_dst0 + 32 * j * kRowChunks], cur.a_src[j], cur.inside[j]);
    if (with_b) {
#pragma unroll
      for (int j = 0; j < kBRows; ++j) kern::cp_async_16(&st[b_dst + 32 * j * kRowChunks], cur.b_src + j * b_row_step);
    }
    cur.next(a, x, ih0, iw0, a_off);
  };

  float acc[kFragM][2 * kFragN][4];
#pragma unroll
  for (int f = 0; f < kFragM; ++f)
#pragma unroll
    for (int t = 0; t < 2 * kFragN; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[f][t][e] = 0.0f;

  // The first chunks' weights (B) before waiting for the kernel that writes x (launched programmatically, this
  // one may start while that one runs: programmatic_launch.h), then their A rows. The B copies join the first
  // commit group, so chunk 0's wait covers them all (and each later chunk's is no weaker).
  // The B copies also wait for the first A sources to be formed (never null: x or an address in it). The
  // condition is always true; it keeps ptxas from moving the ~100 instructions that form them past the wait
  // for the previous kernel, where they delayed the first load of x (SASS, sixteenth session: 142
  // instructions between the wait and that load with the fast divisions alone, 33 with this; 114 with the
  // divisions before).
  // (The 64 x 32 tile's two rows keep their first form: a fold over them reordered ptxas's predicates.)
  bool a_formed = cur.a_src[0] != nullptr && cur.a_src[1] != nullptr;
  if constexpr (kARows > 2) {
#pragma unroll
    for (int j = 2; j < kARows; ++j) a_formed = a_formed && cur.a_src[j] != nullptr;
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    if (s < nk && a_formed) {
#pragma unroll
      for (int j = 0; j < kBRows; ++j)
        kern::cp_async_16(&smem[s * kStageChunks + b_dst + 32 * j * kRowChunks], cur.b_src + j * b_row_step + s * kTK);
    }
  // The epilogue's first item's bias (a weight: before the wait too) and residual (after it) are loaded now,
  // their round trips to memory hidden behind the reduction's: loaded after it, they were one more round trip
  // on every block's path to its stores (the epilogue needs them right after the cluster barrier).
  const T* bias = static_cast<const T*>(a.t.bias);
  const T* residual = static_cast<const T*>(a.t.residual);
  const int rows = kTM / splits, first = split * rows;
  const bool has_first = tid < rows * (kTN / 4);
  const int first_m = m0 + first + tid / (kTN / 4), first_n = n0 + (tid % (kTN / 4)) * 4;
  uint2 first_bias = make_uint2(0, 0), first_residual = first_bias;  // zeros in either type
  if (has_first && bias) first_bias = load4_bits(bias + first_n);
  kern::wait_for_prior_kernels();
  if (has_first && residual && first_m < a.M)
    first_residual = load4_bits(residual + static_cast<int64_t>(first_m) * a.K + first_n);
  // The next kernel (one of Kiln's, launched programmatically: the executor says so) may now start and load
  // its own weights while this one computes; it waits for this one before it reads y.
  if (a.allow_next) kern::allow_next_kernel_to_start();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nk) load_chunk(s, false);
    kern::cp_async_commit();  // possibly empty: the waits below count groups
  }
  // This warp's pixels [pm, pm + TM / 4) and channels [pn, pn + TN / 2) of the tile. Fragment rows and chunk
  // columns (the ldmatrix.x4 lane roles): A fragment f's lane l gives pixel pm + 16 f + l % 16, channel half
  // l / 16 of each k16 step; B load g gives filter pn + 16 g + 8 (l / 16) + l % 8, half (l / 8) % 2.
  const int pm = (kTM / 4) * (warp & 3), pn = (kTN / 2) * (warp >> 2);
  const int a_row = pm + (lane & 15), a_half = lane >> 4;
  const int b_row = pn + ((lane >> 4) << 3) + (lane & 7), b_half = (lane >> 3) & 1;
  for (int i = 0; i < nk; ++i) {
    kern::cp_async_wait<kStages - 2>();  // this thread's copies of chunk i have landed ...
    __syncthreads();                     // ... and everyone's; and chunk i - 1's stage is free again
    if (i + kStages - 1 < nk) load_chunk((i + kStages - 1) % kStages, true);
    kern::cp_async_commit();
    const uint4* sa = smem + (i % kStages) * kStageChunks;
    const uint4* sb = sa + kTM * kRowChunks;
#pragma unroll
    for (int kk = 0; kk < kTK / 16; ++kk) {
      uint32_t af[kFragM][4];
#pragma unroll
      for (int f = 0; f < kFragM; ++f) kern::ldsm_x4(af[f], &sa[swz(a_row + 16 * f, 2 * kk + a_half)]);
#pragma unroll
      for (int g = 0; g < kFragN; ++g) {
        uint32_t bf[4];
        kern::ldsm_x4(bf, &sb[swz(b_row + 16 * g, 2 * kk + b_half)]);
#pragma unroll
        for (int f = 0; f < kFragM; ++f) {
          kern::mma_16816<T>(acc[f][2 * g], af[f], bf[0], bf[1]);
          kern::mma_16816<T>(acc[f][2 * g + 1], af[f], bf[2], bf[3]);
        }
      }
    }
  }
  kern::cp_async_wait_all();
  __syncthreads();  // the ring is free: the partial tile goes where it was

  float* red = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int f = 0; f < kFragM; ++f) {
    const int r = pm + 16 * f + (lane >> 2), c = pn + 2 * (lane & 3);
#pragma unroll
    for (int t = 0; t < 2 * kFragN; ++t) {
      *reinterpret_cast<float2*>(&red[r * kRedStride + 8 * t + c]) = make_float2(acc[f][t][0], acc[f][t][1]);
      *reinterpret_cast<float2*>(&red[(r + 8) * kRedStride + 8 * t + c]) = make_float2(acc[f][t][2], acc[f][t][3]);
    }
  }
  T* y = static_cast<T*>(a.t.y);
  cg::cluster_group cluster = cg::this_cluster();
  if (splits > 1) cluster.sync();  // every block's partial tile is written (release / acquire across the cluster)
  else __syncthreads();

  for (int idx = tid; idx < rows * (kTN / 4); idx += kThreads) {
    const int r = first + idx / (kTN / 4), c = (idx % (kTN / 4)) * 4;
    // Every partial's load is issued before the first is added (one distributed-shared-memory round trip, not
    // S in a row); then they are added in rank order.
    float4 p[kSplitKMaxSplits];
#pragma unroll
    for (int q = 0; q < kSplitKMaxSplits; ++q)
      if (q < splits)
        p[q] = *reinterpret_cast<const float4*>(&(splits > 1 ? cluster.map_shared_rank(red, q) : red)[r * kRedStride + c]);
    float4 v = p[0];
#pragma unroll
    for (int q = 1; q < kSplitKMaxSplits; ++q)
      if (q < splits) add4(v, p[q]);
    const int m = m0 + r;
    if (m >= a.M) continue;
    const int n = n0 + c;
    if (bias) add4(v, unpack4<T>(idx == tid ? first_bias : load4_bits(bias + n)));
    const int64_t off = static_cast<int64_t>(m) * a.K + n;
    if (residual) add4(v, unpack4<T>(idx == tid ? first_residual : load4_bits(residual + off)));
    v.x = kern::act::activate_as<kAct>(a.act, a.alpha, a.beta, v.x);
    v.y = kern::act::activate_as<kAct>(a.act, a.alpha, a.beta, v.y);
    v.z = kern::act::activate_as<kAct>(a.act, a.alpha, a.beta, v.z);
    v.w = kern::act::activate_as<kAct>(a.act, a.alpha, a.beta, v.w);
    store4(y + off, v);
  }
  // The others may still be reading this block's partial tile. A relaxed arrive: this barrier orders nothing
  // (each thread's reads of the others' tiles have returned: their values are stored above), where a full
  // cluster.sync's release made every thread wait for its stores to y to be performed (the layer4 3x3's Nsight
  // profile: a membar stall of ~1 cycle an instruction, thirteenth session).
  if (splits > 1) {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
  }
#endif
}

// Launches the kernel; false, with the reason in *why and no error left pending, when it cannot (its shared
// memory refused, or a cluster of `splits` blocks that this device cannot schedule).
template <class T, int kAct, int TM, int TN>
bool launch(cudaStream_t stream, const SkArgs& a, int64_t pixel_tiles, int splits, bool programmatic, std::string* why) {
  const auto kernel = k_splitk_conv<T, kAct, TM, TN>;
  constexpr size_t kSharedBytes = TileShape<TM, TN>::kSharedBytes;
  // The ring takes more than the 48 KiB a launch gets without asking, and kBlocksPerSm blocks need most of an
  // SM's shared memory: both asked once per instantiation.
  static const bool attributes_set = [&] {
    const bool ok = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kSharedBytes)) == cudaSuccess &&
                    cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                         cudaSharedmemCarveoutMaxShared) == cudaSuccess;
    if (!ok) cudaGetLastError();
    return ok;
  }();
  if (!attributes_set) {
    *why = "the split-K convolution kernel could not get its shared memory";
    return false;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(pixel_tiles), static_cast<unsigned>(a.K / TN), static_cast<unsigned>(splits));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSharedBytes;
  config.stream = stream;
  cudaLaunchAttribute attrs[2] = {};
  attrs[0].id = cudaLaunchAttributeClusterDimension;
  attrs[0].val.clusterDim.x = 1;
  attrs[0].val.clusterDim.y = 1;
  attrs[0].val.clusterDim.z = static_cast<unsigned>(splits);
  attrs[1] = programmatic_launch_attribute();
  config.attrs = attrs;
  config.numAttrs = programmatic ? 2 : 1;
  const cudaError_t err = cudaLaunchKernelEx(&config, kernel, a);
  if (err != cudaSuccess) {
    cudaGetLastError();
    *why = std::string("the split-K convolution kernel did not launch (") + std::to_string(splits) +
           " splits): " + cudaGetErrorString(err);
    return false;
  }
  return true;
}

// Calls f.template operator()<TM, TN>() with `tile`'s sizes and returns what it returns; `otherwise` for a tile
// the kernel is not built for (kSplitKTiles lists those it is).
template <class R, class F> R with_tile(SplitKTile tile, R otherwise, F&& f) {
  if (tile == SplitKTile{64, 32}) return f.template operator()<64, 32>();
  if (tile == SplitKTile{64, 64}) return f.template operator()<64, 64>();
  if (tile == SplitKTile{128, 64}) return f.template operator()<128, 64>();
  return otherwise;
}

// On the convolution's tile ResNet's ReLU and none get kernels of their own; the rest share one that reads the
// type at run time. The GEMM view's other tiles (transformers, whose activations are GELUs) have none and the
// shared one.
template <class T>
bool launch_for(cudaStream_t stream, const SkArgs& a, SplitKTile tile, int64_t pixel_tiles, int splits,
                bool programmatic, std::string* why) {
  namespace A = kern::act;
  if (tile == kSplitKConvTile) {
    switch (a.act) {
      case -1: return launch<T, -1, 64, 32>(stream, a, pixel_tiles, splits, programmatic, why);
      case A::kRelu: return launch<T, A::kRelu, 64, 32>(stream, a, pixel_tiles, splits, programmatic, why);
      default: return launch<T, A::kAnyAct, 64, 32>(stream, a, pixel_tiles, splits, programmatic, why);
    }
  }
  if (splitk_blocks_per_sm(tile) == 0) {
    *why = "the split-K convolution kernel has no " + tile.name() + " tile";
    return false;
  }
  return with_tile(tile, false, [&]<int TM, int TN>() {
    return a.act == -1 ? launch<T, -1, TM, TN>(stream, a, pixel_tiles, splits, programmatic, why)
                       : launch<T, A::kAnyAct, TM, TN>(stream, a, pixel_tiles, splits, programmatic, why);
  });
}

constexpr const char* kSplitsVariable = "KILN_CONV_SPLITK_SPLITS";

bool refuse(std::string* why, const std::string& reason) {
  if (why) *why = reason;
  return false;
}

}  // namespace

bool parse_splitk_splits(const char* value, int* out) {
  if (!value || !*value) *out = 0;
  else if (std::strcmp(value, "1") == 0) *out = 1;
  else if (std::strcmp(value, "2") == 0) *out = 2;
  else if (std::strcmp(value, "4") == 0) *out = 4;
  else if (std::strcmp(value, "8") == 0) *out = 8;
  else return false;
  return true;
}

int splitk_blocks_per_sm(SplitKTile tile) {
  // (A capture-default: nvcc warns of a captureless template lambda's conversion to a function pointer.)
  return with_tile(tile, 0, [&]<int TM, int TN>() { return TileShape<TM, TN>::kBlocksPerSm; });
}

bool splitk_within_limits(const SplitKConvGeometry& g) {
  constexpr int64_t kMax = int64_t{1} << 29;
  return g.H < kMax && g.W < kMax && g.C < kMax && int64_t{g.kh} * g.kw * g.C < kMax && g.K / g.tile.n < 65536 &&
         g.OH < kMax && g.OW < kMax && g.pixels() < (int64_t{1} << 31) - g.tile.m;
}

bool splitk_conv_geometry(const KernelContext& ctx, const SplitKWindow& window, SplitKConvGeometry* g,
                          std::string* why) {
  const ir::Node& n = ctx.node;
  if (const char* wrong = half_channels_last_conv_refusal(ctx)) return refuse(why, wrong);
  const TensorRef &x = ctx.in[0], &w = ctx.in[1], &y = ctx.out[0];
  const DataType dt = x.dtype;
  const int64_t C = x.shape[3], K = w.shape[0], kh = w.shape[1], kw = w.shape[2];
  if (C % kSplitKChunk != 0 || w.shape[3] != C) return refuse(why, "input channels not a multiple of 64");
  if (K % kSplitKTileN != 0 || y.shape[3] != K) return refuse(why, "output channels not a multiple of 32");
  const SplitKWindow& wd = window;
  if (wd.stride_h < 1 || wd.stride_w < 1 || wd.dil_h < 1 || wd.dil_w < 1 || wd.pad_h < 0 || wd.pad_w < 0)
    return refuse(why, "stride, dilation or padding out of range");
  // The output size the window implies: anything else (asymmetric padding) is not this kernel's.
  auto out_size = [](int64_t in, int64_t k, int pad, int stride, int dil) {
    return (in + 2 * pad - (dil * (k - 1) + 1)) / stride + 1;
  };
  if (y.shape[0] != x.shape[0] || y.shape[1] != out_size(x.shape[1], kh, wd.pad_h, wd.stride_h, wd.dil_h) ||
      y.shape[2] != out_size(x.shape[2], kw, wd.pad_w, wd.stride_w, wd.dil_w))
    return refuse(why, "output size not the one the padding, stride and dilation give");
  if (const char* wrong = conv_epilogue_inputs_refusal(ctx, dt, K)) return refuse(why, wrong);
  BiasAct act;  // the activation only (read here, once a shape, not at every launch)
  read_fused_activation(n.attrs, &act);
  if (!fused_activation_supported(act.act)) return refuse(why, "activation");
  if (kh >= (int64_t{1} << 29) || kw >= (int64_t{1} << 29)) return refuse(why, "too large");  // g's window is int
  SplitKConvGeometry out;
  out.N = x.shape[0];
  out.H = x.shape[1];
  out.W = x.shape[2];
  out.C = C;
  out.K = K;
  out.OH = y.shape[1];
  out.OW = y.shape[2];
  out.kh = static_cast<int>(kh);
  out.kw = static_cast<int>(kw);
  out.window = wd;
  out.act = act.act;
  out.alpha = act.alpha;
  out.beta = act.beta;
  out.programmatic = programmatic_launch_enabled();
  if (!splitk_within_limits(out)) return refuse(why, "too large");
  // The split count, last: only an otherwise eligible node reads the switch.
  const char* splits_value = std::getenv(kSplitsVariable);
  if (!parse_splitk_splits(splits_value, &out.fixed_splits))
    ctx.fail(std::string(kSplitsVariable) + "=" + splits_value +
             ": expected 1, 2, 4 or 8 (the blocks each output tile's reduction is split over), or unset");
  if (out.fixed_splits > out.chunks())
    return refuse(why, std::string(kSplitsVariable) + "=" + splits_value + " is more than the reduction's " +
                           std::to_string(out.chunks()) + " chunks of 64 channels");
  *g = out;
  return true;
}

std::vector<int> splitk_conv_candidates(const SplitKConvGeometry& g, int sms) {
  if (g.fixed_splits > 0) return {g.fixed_splits};
  std::vector<int> out = {1};
  const int64_t room = static_cast<int64_t>(std::max(sms, 1)) * splitk_blocks_per_sm(g.tile);
  for (int s = 2; s <= kSplitKMaxSplits; s *= 2) {
    if (g.tiles() * (s / 2) >= room || g.chunks() / s < 2) break;
    out.push_back(s);
  }
  return out;
}

bool splitk_conv_aligned(const KernelContext& ctx) { return conv_tensors_aligned(ctx, 8); }

bool try_launch_splitk(cudaStream_t stream, const ConvTensors& t, DataType dtype, bool allow_next,
                       const SplitKConvGeometry& g, int splits, std::string* why) {
  if (g.pixels() == 0 || g.K == 0) return true;
  if (splits < 1 || splits > kSplitKMaxSplits || (splits & (splits - 1)) != 0 || splits > g.chunks()) {
    *why = "the split-K convolution kernel cannot split " + std::to_string(g.chunks()) + " reduction chunks over " +
           std::to_string(splits) + " blocks";
    return false;
  }
  SkArgs a;
  a.t = t;
  a.H = static_cast<int>(g.H);
  a.W = static_cast<int>(g.W);
  a.C = static_cast<int>(g.C);
  a.K = static_cast<int>(g.K);
  a.OH = static_cast<int>(g.OH);
  a.OW = static_cast<int>(g.OW);
  a.kw = g.kw;
  a.stride_h = g.window.stride_h;
  a.stride_w = g.window.stride_w;
  a.pad_h = g.window.pad_h;
  a.pad_w = g.window.pad_w;
  a.dil_h = g.window.dil_h;
  a.dil_w = g.window.dil_w;
  a.chunks_per_tap = static_cast<int>(g.C / kSplitKChunk);
  a.chunks = static_cast<int>(g.chunks());
  a.M = static_cast<int>(g.pixels());
  a.plane_div = kern::FastDivU32(static_cast<uint32_t>(g.OH * g.OW));
  a.ow_div = kern::FastDivU32(static_cast<uint32_t>(g.OW));
  a.cpt_div = kern::FastDivU32(static_cast<uint32_t>(a.chunks_per_tap));
  a.kw_div = kern::FastDivU32(static_cast<uint32_t>(g.kw));
  a.act = g.act;
  a.alpha = g.alpha;
  a.beta = g.beta;
  a.allow_next = allow_next;
  if (g.K % g.tile.n != 0) {
    *why = "the split-K convolution kernel's " + g.tile.name() + " tile does not divide " + std::to_string(g.K) +
           " output channels";
    return false;
  }
  const int64_t pixel_tiles = (g.pixels() + g.tile.m - 1) / g.tile.m;
  if (dtype == DataType::kHALF) return launch_for<half>(stream, a, g.tile, pixel_tiles, splits, g.programmatic, why);
  if (dtype == DataType::kBF16) return launch_for<bf16>(stream, a, g.tile, pixel_tiles, splits, g.programmatic, why);
  *why = "the split-K convolution kernel takes float16 or bfloat16";
  return false;
}

bool try_enqueue_splitk_conv(KernelContext& ctx, const SplitKConvGeometry& g, int splits, std::string* why) {
  return try_launch_splitk(ctx.stream(), conv_tensors(ctx), ctx.in[0].dtype, ctx.res.next_kernel_may_start, g, splits,
                           why);
}

void enqueue_splitk_conv(KernelContext& ctx, const SplitKConvGeometry& g, int splits) {
  std::string why;
  if (!try_enqueue_splitk_conv(ctx, g, splits, &why)) ctx.fail(why);
}

}  // namespace kiln::cuda
