// The wgmma + TMA GEMM kernel (wgmma_gemm_kernel.h says what it computes and how). PTX references: the
// mbarrier, cp.async.bulk.tensor, wgmma and griddepcontrol sections of the PTX ISA (8.x, sm_90a); the shared
// memory descriptor's fields are wgmma's "matrix descriptor" (start address, leading and stride byte offsets,
// swizzle mode).
#include "backends/cuda/sm90a/wgmma_gemm_kernel.h"

#include <cooperative_groups.h>
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>


#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/sm90a/wgmma_ops.cuh"

namespace kiln::cuda {

// The device helpers (outside the unnamed namespace: the host pass, which compiles no kernel body, would warn
// that functions of internal linkage go unused). The MMA for the element type first.
namespace wgmma {
template <class T> struct Mma;
template <> struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&d)[32], uint64_t a, uint64_t b) { mma_m64n64k16_f16(d, a, b); }
  static __device__ __forceinline__ void run(float (&d)[64], uint64_t a, uint64_t b) { mma_m64n128k16_f16(d, a, b); }
};
template <> struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&d)[32], uint64_t a, uint64_t b) { mma_m64n64k16_bf16(d, a, b); }
  static __device__ __forceinline__ void run(float (&d)[64], uint64_t a, uint64_t b) { mma_m64n128k16_bf16(d, a, b); }
};

constexpr int kThreads = 128;               // one warpgroup
constexpr int kRowBytes = kWgmmaChunk * 2;  // a stage's row of 16-bit elements: one 128-byte swizzle row

__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// The fused activation as one out-of-line copy: the epilogue calls it at 32 places (inlined, each a switch over
// every activation, the kernel's code grew past what the instruction cache holds).
__device__ __noinline__ float activate_once(int act, float alpha, float beta, float x) {
  return kern::act::activate(act, alpha, beta, x);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count));
}

// Arrives on `bar` and tells it `bytes` more will land on it (the stage's TMA loads).
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}

// Waits until the phase of `bar` with this parity has completed. kCluster: with acquire at cluster scope, seeing
// what the cluster's blocks released when they arrived (the empty barriers: the peers' wgmmas have read the
// stage that the next multicast overwrites).
template <bool kCluster = false> __device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  const uint32_t addr = smem_u32(bar);
  uint32_t done = 0;
  do {
    if constexpr (kCluster)
      asm volatile(
          "{ .reg .pred p; mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
          : "=r"(done)
          : "r"(addr), "r"(parity)
          : "memory");
    else
      asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                   : "=r"(done)
                   : "r"(addr), "r"(parity)
                   : "memory");
  } while (!done);
}

// Arrives on the barrier at `bar`'s offset in the shared memory of the cluster's block `rank`.
__device__ __forceinline__ void mbar_arrive_remote(uint64_t* bar, uint32_t rank) {
  asm volatile(
      "{\n"
      ".reg .b32 remote;\n"
      "mapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [remote];\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(rank)
      : "memory");
}

// A box of `map` at (c0 along k, c1 along the rows) into shared memory; its bytes complete on `bar`.
__device__ __forceinline__ void tma_load(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::"r"(
          smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1)
      : "memory");
}

// tma_load into the same offset of every block of `mask` (cluster ranks), each block's barrier at `bar`'s offset.
__device__ __forceinline__ void tma_load_multicast(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1,
                                                   uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%3, %4}], [%2], %5;" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "h"(mask)
      : "memory");
}

// A K-major operand in 128-byte-swizzled shared memory (what TMA's CU_TENSOR_MAP_SWIZZLE_128B writes): the start
// address, a leading byte offset of 1 (unused by swizzled K-major layouts), a stride of 1024 bytes between 8-row
// groups (one swizzle atom), layout type 1 (128-byte swizzle) in bits 62-63. Tiles are 1024-byte aligned, so
// the base offset is 0. A step of 16 elements along K is +32 bytes: +2 in the address field.
__device__ __forceinline__ uint64_t smem_desc(const void* p) {
  const uint64_t addr = smem_u32(p);
  return ((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

}  // namespace wgmma

namespace {

namespace cg = cooperative_groups;
using namespace wgmma;

// A block's shared memory: a ring of `stages` stages (a's tile, then w's), which the float32 partial tile reuses
// once the loads are consumed, then two mbarriers a stage (full: its bytes landed; empty: every block that
// multicasts into it has read it). The stage count is chosen at launch (at most
// MAX_STAGES, the ring's size for the launch attribute): a block that runs few chunks gets a short ring, so
// that more blocks share an SM (a split tile runs K / 64 / splits chunks).
template <int BM, int BN, int MAX_STAGES> struct Layout {
  static constexpr int kATile = BM * kRowBytes;
  static constexpr int kWTile = BN * kRowBytes;
  static constexpr int kStage = kATile + kWTile;
  static constexpr int kRedStride = BN + 4;  // floats a row of the partial tile (4 apart: fewer bank conflicts)
  static constexpr size_t kRed = size_t(BM) * kRedStride * sizeof(float);
  static constexpr size_t data(int stages) { return size_t(stages) * kStage > kRed ? size_t(stages) * kStage : kRed; }
  static constexpr size_t bytes(int stages) { return data(stages) + 1024 /* alignment */ + 2 * stages * sizeof(uint64_t); }
  static_assert(kATile % 1024 == 0 && kStage % 1024 == 0, "swizzle atoms stay 1024-byte aligned");
  static_assert(bytes(MAX_STAGES) <= 227 * 1024, "shared memory");
};

// The ring's stages for a block that runs `chunks` chunks: no more than it loads, and at least 2 (the main loop
// refills a stage one chunk late, once the wgmma that read it has completed).
template <int MAX_STAGES> int ring_stages(int chunks) { return chunks < 2 ? 2 : chunks < MAX_STAGES ? chunks : MAX_STAGES; }

struct Epilogue {
  const void* bias;
  const void* residual;
  void* y;
  int act;
  float alpha, beta;
};

template <class T, int BM, int BN, int MAX_STAGES>
__global__ void __launch_bounds__(kThreads) k_wgmma_gemm(const __grid_constant__ CUtensorMap map_a,
                                                         const __grid_constant__ CUtensorMap map_w, Epilogue ep, int M,
                                                         int N, int K, int stages, bool programmatic,
                                                         bool allow_next) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = Layout<BM, BN, MAX_STAGES>;
  constexpr int MT = BM / 64;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + L::data(stages));
  uint64_t* empty = full + stages;
  const int tid = threadIdx.x;
  const int n0 = blockIdx.x * BN, m0 = blockIdx.y * BM;
  const int S = gridDim.z, split = blockIdx.z;
  const int chunks = K / kWgmmaChunk;
  const int c_begin = split * chunks / S, nk = (split + 1) * chunks / S - c_begin;
  // The cluster is C x 1 x S blocks: C neighbouring tiles of a row (multicast: they share a's loads, each block
  // loading BM / C of its rows into all C) times the S splits of each. Cluster ranks run x first: this block's
  // group of C is ranks C * split .. C * split + C - 1.
  cg::cluster_group cluster = cg::this_cluster();
  const int C = int(cluster.dim_blocks().x), cx = int(blockIdx.x) % C;
  const uint32_t group0 = uint32_t(C * split);
  const uint16_t group_mask = uint16_t(((1u << C) - 1) << group0);

  if (tid == 0) {
    for (int s = 0; s < stages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], uint32_t(C));
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  if (C > 1)
    cluster.sync();  // the peers' barriers exist before anything multicasts to them or arrives on them
  else
    __syncthreads();

  // The blocks of a row of tiles all read the same chunks of a. Walking K in the same order they would ask L2
  // for the same lines at the same moment, so each group of C tiles starts at a chunk of its own and wraps
  // around (the sum's order is then fixed per tile: the output stays deterministic).
  const int rot = int(blockIdx.x / C) % nk;
  auto chunk_k = [&](int i) { return (c_begin + (i + rot < nk ? i + rot : i + rot - nk)) * kWgmmaChunk; };
  auto load_w = [&](int i) {
    tma_load(smem + (i % stages) * L::kStage + L::kATile, &map_w, &full[i % stages], chunk_k(i), n0);
  };
  auto load_a = [&](int i) {
    uint8_t* a = smem + (i % stages) * L::kStage;
    if (C == 1) {
      tma_load(a, &map_a, &full[i % stages], chunk_k(i), m0);
    } else {  // this block's BM / C rows (whole 1024-byte swizzle atoms) into every block of the group
      const int rows = BM / C;
      tma_load_multicast(a + cx * rows * kRowBytes, &map_a, &full[i % stages], chunk_k(i), m0 + cx * rows, group_mask);
    }
  };
  const int first = nk < stages ? nk : stages;
  // The weights do not depend on the kernel before: launched programmatically, the first stages' weights load
  // while it finishes, and a's (its output) after the wait. Every write (the output) also follows the wait.
  if (tid == 0)
    for (int i = 0; i < first; ++i) {
      mbar_expect_tx(&full[i], L::kStage);
      load_w(i);
    }
  if (programmatic) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    if (allow_next) asm volatile("griddepcontrol.launch_dependents;");
  }
  if (tid == 0)
    for (int i = 0; i < first; ++i) load_a(i);

  float acc[MT][BN / 2];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < BN / 2; ++j) acc[m][j] = 0.f;

  // One chunk's wgmmas stay in flight while the next chunk's are issued: after issuing chunk i the warpgroup
  // waits only for chunk i - 1, whose stage thread 0 then refills (chunk i - 1 + stages). Waiting for chunk i
  // itself, every chunk paid the whole wgmma latency and the barrier with no tensor work beside them.
  for (int i = 0; i < nk; ++i) {
    const int s = i % stages;
    mbar_wait(&full[s], (i / stages) & 1);
    const uint8_t* a = smem + s * L::kStage;
    const uint8_t* w = a + L::kATile;
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < kWgmmaChunk / 16; ++kk)
#pragma unroll
      for (int m = 0; m < MT; ++m)
        wgmma::Mma<T>::run(acc[m], smem_desc(a + m * 64 * kRowBytes) + 2 * kk, smem_desc(w) + 2 * kk);
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
    __syncthreads();  // every thread's wgmma of chunk i - 1 has read its stage: it may be refilled
    const int done = i - 1, next = done + stages;
    if (tid == 0 && done >= 0 && next < nk) {
      const int ds = done % stages;
      if (C > 1) {  // the group's multicasts refill every block's stage: all C must have read it first
        for (int q = 0; q < C; ++q) mbar_arrive_remote(&empty[ds], group0 + uint32_t(q));
        mbar_wait<true>(&empty[ds], uint32_t((next / stages - 1) & 1));
      }
      mbar_expect_tx(&full[ds], L::kStage);
      load_w(next);
      load_a(next);
    }
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  __syncthreads();  // every chunk's wgmma is complete: the ring may hold the partial tile

  // The float32 partial tile into this block's shared memory (every load was consumed: the ring is free). The
  // accumulator fragment: warp w of the warpgroup holds rows w * 16 + lane / 4 (+ 8), columns 8 c + 2 (lane % 4)
  // (+ 1) of each 8-column group c.
  float* red = reinterpret_cast<float*>(smem);
  const int warp = tid / 32, lane = tid % 32;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int cn = 0; cn < BN / 8; ++cn) {
      const int row = m * 64 + warp * 16 + lane / 4, col = cn * 8 + (lane % 4) * 2;
      red[row * L::kRedStride + col] = acc[m][cn * 4 + 0];
      red[row * L::kRedStride + col + 1] = acc[m][cn * 4 + 1];
      red[(row + 8) * L::kRedStride + col] = acc[m][cn * 4 + 2];
      red[(row + 8) * L::kRedStride + col + 1] = acc[m][cn * 4 + 3];
    }
  cluster.sync();
  // Rows [split * BM / S, (split + 1) * BM / S) of the tile: every rank's partial, rank 0's first, then bias,
  // residual and activation, as the split-K kernel's epilogue (ir/OPS.md: act(a @ w + bias + residual)). Thread t
  // takes the 8 columns of group t % G and every RS-th row from t / G: 16-byte loads and stores (N is a multiple
  // of 8, so a group is whole or wholly past N), the bias read once. Rows go kRowsAtOnce at a time, each group's
  // loads issued before its stores so that their latencies overlap (one element at a time, each load waiting
  // behind the store before, cost ~10 us a tile). The code stays small on purpose: a block runs its epilogue once,
  // so every instruction of it is fetched cold, and an epilogue unrolled over a whole tile with the activation
  // inlined at every element (80k instructions) kept the warps waiting on instruction fetch for most of the
  // kernel's time (Nsight Compute: "no instruction" 37 of 45 cycles a issued instruction, bench/NOTES.md).
  constexpr int G = BN / 8, RS = kThreads / G, kRowsAtOnce = 4;
  const T* __restrict__ bias = static_cast<const T*>(ep.bias);
  const T* __restrict__ residual = static_cast<const T*>(ep.residual);
  T* __restrict__ y = static_cast<T*>(ep.y);
  const int r0 = split * BM / S, r1 = (split + 1) * BM / S;
  const int col = (tid % G) * 8, gn = n0 + col;
  float b[8] = {};
  if (bias && gn < N)
#pragma unroll
    for (int q = 0; q < 8; ++q) b[q] = to_float(bias[gn + q]);
  auto live = [&](int row) { return gn < N && row < r1 && m0 + row < M; };
#pragma unroll 1
  for (int first_row = r0 + tid / G; first_row < r1; first_row += RS * kRowsAtOnce) {
    uint4 res[kRowsAtOnce];
    float v[kRowsAtOnce][8] = {};
#pragma unroll
    for (int u = 0; u < kRowsAtOnce; ++u) {
      const int row = first_row + u * RS;
      res[u] = make_uint4(0, 0, 0, 0);
      if (residual && live(row)) res[u] = *reinterpret_cast<const uint4*>(residual + size_t(m0 + row) * N + gn);
    }
#pragma unroll 1
    for (int r = 0; r < S; ++r) {
      const float* part = cluster.map_shared_rank(red, cx + C * r);  // split r's block of this tile
#pragma unroll
      for (int u = 0; u < kRowsAtOnce; ++u) {
        const int row = first_row + u * RS;
        if (row >= r1) continue;
        const float4* p = reinterpret_cast<const float4*>(part + row * L::kRedStride + col);
        const float4 lo = p[0], hi = p[1];
        v[u][0] += lo.x, v[u][1] += lo.y, v[u][2] += lo.z, v[u][3] += lo.w;
        v[u][4] += hi.x, v[u][5] += hi.y, v[u][6] += hi.z, v[u][7] += hi.w;
      }
    }
#pragma unroll
    for (int u = 0; u < kRowsAtOnce; ++u) {
      const int row = first_row + u * RS;
      if (!live(row)) continue;
      const T* rv = reinterpret_cast<const T*>(&res[u]);
      alignas(16) T out[8];
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        float x = v[u][q] + b[q];
        if (residual) x += to_float(rv[q]);
        if (ep.act >= 0) x = activate_once(ep.act, ep.alpha, ep.beta, x);
        out[q] = from_float<T>(x);
      }
      *reinterpret_cast<uint4*>(y + size_t(m0 + row) * N + gn) = *reinterpret_cast<const uint4*>(out);
    }
  }
  cluster.sync();  // the others' partials stay until every rank has read them
#endif
}

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// The driver's cuTensorMapEncodeTiled through the runtime (no link against libcuda), or null.
EncodeTiled encode_tiled() {
  static EncodeTiled fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return static_cast<EncodeTiled>(nullptr);
    }
    return reinterpret_cast<EncodeTiled>(p);
  }();
  return fn;
}

// [rows, k] 16-bit elements, rows k apart, as boxes of box_rows x 64 with the 128-byte swizzle; rows past the
// end read as zeros (a last partial row tile).
bool tile_map(CUtensorMap* map, const void* base, DataType dt, int64_t rows, int64_t k, int box_rows, std::string* why) {
  EncodeTiled encode = encode_tiled();
  if (!encode) {
    *why = "the driver has no cuTensorMapEncodeTiled";
    return false;
  }
  const cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(k) * 2};
  const cuuint32_t box[2] = {cuuint32_t(kWgmmaChunk), cuuint32_t(box_rows)};
  const cuuint32_t elem[2] = {1, 1};
  const CUtensorMapDataType t = dt == DataType::kBF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult r = encode(map, t, 2, const_cast<void*>(base), dims, strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    *why = "cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")";
    return false;
  }
  return true;
}

template <class T, int BM, int BN, int MAX_STAGES>
cudaError_t launch_t(cudaStream_t stream, const CUtensorMap& ma, const CUtensorMap& mw, const Epilogue& ep,
                     const GemmKernelArgs& args, int splits, int multicast) {
  using L = Layout<BM, BN, MAX_STAGES>;
  auto* kernel = k_wgmma_gemm<T, BM, BN, MAX_STAGES>;
  static cudaError_t attributes = [kernel] {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::bytes(MAX_STAGES)));
    if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    return e;
  }();
  if (attributes != cudaSuccess) return attributes;
  cudaLaunchConfig_t cfg = {};
  // Columns of tiles rounded up to whole multicast groups: a block past N still loads its share of a for the
  // others (its w box reads as zeros) and stores nothing.
  const int64_t columns = (args.n + BN - 1) / BN;
  cfg.gridDim = dim3(unsigned((columns + multicast - 1) / multicast * multicast), unsigned((args.m + BM - 1) / BM),
                     unsigned(splits));
  cfg.blockDim = dim3(kThreads);
  // The most chunks a block runs (the split ranges differ by one at most).
  const int stages = ring_stages<MAX_STAGES>(int((args.k / kWgmmaChunk + splits - 1) / splits));
  cfg.dynamicSmemBytes = L::bytes(stages);
  cfg.stream = stream;
  cudaLaunchAttribute at[2] = {};
  at[0].id = cudaLaunchAttributeClusterDimension;
  at[0].val.clusterDim.x = unsigned(multicast);
  at[0].val.clusterDim.y = 1;
  at[0].val.clusterDim.z = unsigned(splits);
  at[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = at;
  cfg.numAttrs = args.programmatic ? 2 : 1;
  return cudaLaunchKernelEx(&cfg, kernel, ma, mw, ep, int(args.m), int(args.n), int(args.k), stages,
                            args.programmatic, args.allow_next);
}

template <class T>
cudaError_t launch_tile(cudaStream_t stream, const CUtensorMap& ma, const CUtensorMap& mw, const Epilogue& ep,
                        const GemmKernelArgs& args, WgmmaTile tile, int splits, int multicast) {
  // The most stages (16-32 KB each): 128 KB of ring for a block that runs many chunks.
  if (tile == WgmmaTile{64, 64}) return launch_t<T, 64, 64, 8>(stream, ma, mw, ep, args, splits, multicast);
  if (tile == WgmmaTile{64, 128}) return launch_t<T, 64, 128, 6>(stream, ma, mw, ep, args, splits, multicast);
  if (tile == WgmmaTile{128, 64}) return launch_t<T, 128, 64, 6>(stream, ma, mw, ep, args, splits, multicast);
  if (tile == WgmmaTile{128, 128}) return launch_t<T, 128, 128, 4>(stream, ma, mw, ep, args, splits, multicast);
  return cudaErrorInvalidValue;
}

}  // namespace

bool launch_wgmma_gemm(cudaStream_t stream, const GemmKernelArgs& args, WgmmaTile tile, WgmmaConfig config,
                       std::string* why) {
  const int splits = config.splits, multicast = config.multicast;
  if (args.dtype != DataType::kHALF && args.dtype != DataType::kBF16) {
    *why = "not float16 or bfloat16";
    return false;
  }
  if (splits < 1 || splits > kWgmmaMaxSplits || (splits & (splits - 1)) || args.k % kWgmmaChunk ||
      args.k / kWgmmaChunk < splits) {
    *why = "split count " + std::to_string(splits) + " does not fit K " + std::to_string(args.k);
    return false;
  }
  if (const char* refused = wgmma_multicast_refusal(tile, splits, multicast)) {
    *why = refused;
    return false;
  }
  CUtensorMap ma, mw;
  if (!tile_map(&ma, args.a, args.dtype, args.m, args.k, tile.m / multicast, why) ||
      !tile_map(&mw, args.w, args.dtype, args.n, args.k, tile.n, why))
    return false;
  const Epilogue ep{args.bias, args.residual, args.y, args.act, args.alpha, args.beta};
  const cudaError_t e = args.dtype == DataType::kBF16
                            ? launch_tile<__nv_bfloat16>(stream, ma, mw, ep, args, tile, splits, multicast)
                            : launch_tile<__half>(stream, ma, mw, ep, args, tile, splits, multicast);
  if (e != cudaSuccess) {
    cudaGetLastError();  // a refused launch leaves its (non-sticky) error behind
    *why = std::string("wgmma GEMM launch: ") + cudaGetErrorString(e);
    return false;
  }
  return true;
}

}  // namespace kiln::cuda
