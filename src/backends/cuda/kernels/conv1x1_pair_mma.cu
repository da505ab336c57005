// The Conv1x1Pair kernel on tensor cores (conv1x1_pair_mma.h says what it takes and why).
//
// Work split: each of a block's 8 warps works alone on slabs of 16 pixels (grid-stride over the N*H*W pixels
// in 16s); the block shares only the two weight matrices and biases, copied to shared memory once. For one
// slab a warp
//  1. takes its x (16 pixels x 64 channels) as 4 A fragments (mma.m16n8k16, k = 16 channels each);
//  2. walks y1's 256 channels in 4 chunks of 64: 32 MMAs give the chunk's 16 x 64 accumulators; the epilogue
//     adds bias and residual, applies the activation and rounds to the 16-bit type; the rounded values go
//     (a) back into the residual's shared-memory slot, from where the warp stores them to y1 in 16-byte
//     pieces, and (b) straight into 4 A fragments of the second product: a m16n8 accumulator pair is exactly
//     an m16k16 A fragment (rows g and g + 8, columns 2t, 2t + 1 and 2t + 8, 2t + 9), so y1 never goes
//     through memory to be multiplied. 4 x C2 / 8 MMAs add the chunk's part of y2 = y1 w2^T;
//  3. stores y2 (bias, activation) from its accumulators.
// The residual of the next slab is copied (cp.async) into a chunk's slot as soon as that chunk's y1 has left
// it, and the next slab's x at the slab's start, so each warp keeps about a slab's worth of loads in flight
// while it computes; every wait below is "all but the newest kChunks groups", which is exactly the copy
// needed next (the order of commits makes it so; see the loop).
//
// Shared memory rows are padded by 16 bytes (an odd number of 16-byte units a row): an ldmatrix phase reads
// 8 rows of one 16-byte column, and the epilogue's 32-bit accesses hit 8 rows x 4 columns, both free of
// bank conflicts.
#include "backends/cuda/kernels/conv1x1_pair_mma.h"

#include <algorithm>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/mma_sm80.cuh"
#include "backends/cuda/programmatic_launch.h"
#include "kiln/types.h"

namespace kiln::cuda {

namespace {

using kern::bf16;
using kern::half;

constexpr int kC0 = 64;            // x's channels: 4 k-steps
constexpr int kC1 = 256;           // y1's channels
constexpr int kChunk = 64;         // y1 channels per step of the walk: 8 n-tiles, then 4 k-steps of the second
constexpr int kChunks = kC1 / kChunk;
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kSlab = 16;          // pixels per warp step (one m16 tile)

// Row pitches in 16-byte units (8 channels each), padded by one.
constexpr int kXPitch = kC0 / 8 + 1;      // x slab rows and w1 rows (64 channels)
constexpr int kRPitch = kChunk / 8 + 1;   // residual / y1 chunk rows
constexpr int kW2Pitch = kC1 / 8 + 1;     // w2 rows (256 channels)

struct PairArgs {
  const void* x;
  const void* w1;
  const void* b1;  // null: none
  const void* r1;  // null: none
  const void* w2;
  const void* b2;  // null: none
  void* y1;
  void* y2;
  int64_t pixels;  // N * H * W
  bool relu1, relu2;
};

// Shared memory, in 16-byte units: w1 [256 rows], w2 [C2 rows], the biases (256 + C2 16-bit values), then per
// warp two x slabs and kChunks residual / y1 chunks.
template <int C2> struct Smem {
  static constexpr int w1 = 0;
  static constexpr int w2 = w1 + kC1 * kXPitch;
  static constexpr int bias = w2 + C2 * kW2Pitch;
  static constexpr int warps = bias + (kC1 + C2) * 2 / 16;
  static constexpr int x_slab = kSlab * kXPitch;
  static constexpr int chunk = kSlab * kRPitch;
  static constexpr int per_warp = 2 * x_slab + kChunks * chunk;
  static constexpr int units = warps + kWarps * per_warp;
  static constexpr size_t bytes = static_cast<size_t>(units) * 16;
};

__device__ __forceinline__ float relu_if(bool on, float v) { return on ? kern::act::activate(kern::act::kRelu, 0, 0, v) : v; }

// Starts the copies of `rows` rows of 8 * `units_per_row` channels (16-byte units) from `src` (row pitch
// `src_pitch` elements) into `dst` (pitch `dst_pitch` units), by the warp's 32 lanes; rows at or past `valid`
// are zero-filled.
template <class T>
__device__ __forceinline__ void warp_copy_rows(uint4* dst, int dst_pitch, const T* src, int64_t src_pitch, int rows,
                                               int units_per_row, int valid, int lane) {
  for (int i = lane; i < rows * units_per_row; i += 32) {
    const int r = i / units_per_row, u = i - r * units_per_row;
    const bool inside = r < valid;
    const T* from = inside ? src + r * src_pitch + u * 8 : src;
    kern::cp_async_16_or_zero(dst + r * dst_pitch + u, from, inside);
  }
}

template <class T, int C2>
__global__ void __launch_bounds__(kThreads, 1) k_conv1x1_pair(PairArgs a) {
  using S = Smem<C2>;
  constexpr int NT2 = C2 / 8;  // the second product's n-tiles
  extern __shared__ __align__(16) uint4 smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const T* x = static_cast<const T*>(a.x);
  const T* r1 = static_cast<const T*>(a.r1);
  T* y1 = static_cast<T*>(a.y1);
  T* y2 = static_cast<T*>(a.y2);

  // The weights and biases, by the whole block: one group, waited for before the first slab.
  {
    const uint4* w1 = static_cast<const uint4*>(a.w1);
    for (int i = tid; i < kC1 * (kC0 / 8); i += kThreads)
      kern::cp_async_16(&smem[S::w1 + (i / (kC0 / 8)) * kXPitch + i % (kC0 / 8)], &w1[i]);
    const uint4* w2 = static_cast<const uint4*>(a.w2);
    for (int i = tid; i < C2 * (kC1 / 8); i += kThreads)
      kern::cp_async_16(&smem[S::w2 + (i / (kC1 / 8)) * kW2Pitch + i % (kC1 / 8)], &w2[i]);
    uint32_t* sb = reinterpret_cast<uint32_t*>(&smem[S::bias]);  // pairs: b1's 128, then b2's C2 / 2
    const uint32_t* b1 = static_cast<const uint32_t*>(a.b1);
    const uint32_t* b2 = static_cast<const uint32_t*>(a.b2);
    for (int i = tid; i < (kC1 + C2) / 2; i += kThreads) {
      if (i < kC1 / 2) {
        if (b1) kern::cp_async_4(&sb[i], &b1[i]);
        else sb[i] = 0;
      } else {
        if (b2) kern::cp_async_4(&sb[i], &b2[i - kC1 / 2]);
        else sb[i] = 0;
      }
    }
    kern::cp_async_commit();
  }

  uint4* const xs = smem + S::warps + warp * S::per_warp;  // two x slabs
  uint4* const rs = xs + 2 * S::x_slab;                    // kChunks residual / y1 chunks
  const int64_t slabs = (a.pixels + kSlab - 1) / kSlab;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  int64_t slab = static_cast<int64_t>(blockIdx.x) * kWarps + warp;

  // Copies of a slab's x (into x buffer `xb`) and of chunk j of its residual, each committed as one group
  // (empty where there is no such slab or no residual: the waits count groups).
  auto stage_x = [&](int64_t s, int xb) {
    if (s < slabs) {
      const int64_t p0 = s * kSlab;
      const int valid = static_cast<int>(std::min<int64_t>(kSlab, a.pixels - p0));
      warp_copy_rows(xs + xb * S::x_slab, kXPitch, x + p0 * kC0, kC0, kSlab, kC0 / 8, valid, lane);
    }
    kern::cp_async_commit();
  };
  auto stage_residual = [&](int64_t s, int j) {
    if (r1 && s < slabs) {
      const int64_t p0 = s * kSlab;
      const int valid = static_cast<int>(std::min<int64_t>(kSlab, a.pixels - p0));
      warp_copy_rows(rs + j * S::chunk, kRPitch, r1 + p0 * kC1 + j * kChunk, kC1, kSlab, kChunk / 8, valid, lane);
    }
    kern::cp_async_commit();
  };
  stage_x(slab, 0);
  for (int j = 0; j < kChunks; ++j) stage_residual(slab, j);
  kern::cp_async_wait<1 + kChunks>();  // the weights' group (older than the slab's 1 + kChunks) ...
  __syncthreads();                     // ... for every thread's part of it

  const uint32_t* sbias = reinterpret_cast<const uint32_t*>(&smem[S::bias]);
  // Fragment addressing (ldmatrix.x4): A, lane l gives row l % 16, channel half l / 16; B, lane l gives filter
  // 8 (l / 16) + l % 8 of a pair of n-tiles, channel half (l / 8) % 2. Accumulator element e of lane l is
  // row l / 4 + 8 (e / 2), column 2 (l % 4) + e % 2 of its n-tile.
  const int a_row = lane & 15, a_half = lane >> 4;
  const int b_row = ((lane >> 4) << 3) + (lane & 7), b_half = (lane >> 3) & 1;
  const int g = lane >> 2, t2 = 2 * (lane & 3);

  for (int xb = 0; slab < slabs; slab += step, xb ^= 1) {
    const int64_t next = slab + step;
    const int64_t p0 = slab * kSlab;
    const int valid = static_cast<int>(std::min<int64_t>(kSlab, a.pixels - p0));
    kern::cp_async_wait<kChunks>();  // this slab's x (newer: its kChunks residual groups)
    __syncwarp();
    uint32_t xa[kC0 / 16][4];
#pragma unroll
    for (int k = 0; k < kC0 / 16; ++k) kern::ldsm_x4(xa[k], xs + xb * S::x_slab + a_row * kXPitch + 2 * k + a_half);
    stage_x(next, xb ^ 1);  // that buffer was read into registers a slab ago

    float acc2[NT2][4];
#pragma unroll
    for (int n = 0; n < NT2; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc2[n][e] = 0.0f;

#pragma unroll 1
    for (int j = 0; j < kChunks; ++j) {
      uint4* const rc = rs + j * S::chunk;
      // Newer than chunk j's residual: chunks j + 1.. of this slab, the next x, chunks 0.. j - 1 of the next.
      kern::cp_async_wait<kChunks>();
      __syncwarp();

      float acc1[kChunk / 8][4];
#pragma unroll
      for (int n = 0; n < kChunk / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc1[n][e] = 0.0f;
#pragma unroll
      for (int k = 0; k < kC0 / 16; ++k)
#pragma unroll
        for (int q = 0; q < kChunk / 16; ++q) {
          uint32_t bf[4];
          kern::ldsm_x4(bf, smem + S::w1 + (j * kChunk + q * 16 + b_row) * kXPitch + 2 * k + b_half);
          kern::mma_16816<T>(acc1[2 * q], xa[k], bf[0], bf[1]);
          kern::mma_16816<T>(acc1[2 * q + 1], xa[k], bf[2], bf[3]);
        }

      // The first epilogue: y1's chunk, rounded, into the chunk's slot and into the A fragments of the second
      // product (mid[k]: k-step k of the chunk's 64 channels = n-tiles 2k and 2k + 1).
      uint32_t mid[kChunk / 16][4];
      uint32_t* const rc32 = reinterpret_cast<uint32_t*>(rc);
#pragma unroll
      for (int n = 0; n < kChunk / 8; ++n) {
        T bpair[2];
        memcpy(bpair, &sbias[(j * kChunk + n * 8 + t2) / 2], sizeof(bpair));
        const float bx = kern::to_f(bpair[0]), by = kern::to_f(bpair[1]);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = g + 8 * h;
          const int word = row * kRPitch * 4 + (n * 8 + t2) / 2;  // 32-bit words: 4 a 16-byte unit
          float v0 = acc1[n][2 * h] + bx, v1 = acc1[n][2 * h + 1] + by;
          if (r1) {
            T rpair[2];
            memcpy(rpair, &rc32[word], sizeof(rpair));
            v0 += kern::to_f(rpair[0]);
            v1 += kern::to_f(rpair[1]);
          }
          const uint32_t packed = kern::pack2<T>(relu_if(a.relu1, v0), relu_if(a.relu1, v1));
          rc32[word] = packed;
          mid[n / 2][(n % 2) * 2 + h] = packed;
        }
      }
      __syncwarp();
      // y1's chunk from the slot to memory: 16 rows x 8 units, 4 a lane, a row's 128 bytes by 8 lanes.
#pragma unroll
      for (int i = lane; i < kSlab * (kChunk / 8); i += 32) {
        const int r = i / (kChunk / 8), u = i % (kChunk / 8);
        if (r < valid)
          *reinterpret_cast<uint4*>(y1 + (p0 + r) * kC1 + j * kChunk + u * 8) = rc[r * kRPitch + u];
      }
      __syncwarp();            // the slot is read: the next slab's residual chunk may land in it
      stage_residual(next, j);

      // y2 += y1's chunk x w2's columns for it.
#pragma unroll
      for (int k = 0; k < kChunk / 16; ++k)
#pragma unroll
        for (int q = 0; q < NT2 / 2; ++q) {
          uint32_t bf[4];
          kern::ldsm_x4(bf, smem + S::w2 + (q * 16 + b_row) * kW2Pitch + (j * kChunk) / 8 + 2 * k + b_half);
          kern::mma_16816<T>(acc2[2 * q], mid[k], bf[0], bf[1]);
          kern::mma_16816<T>(acc2[2 * q + 1], mid[k], bf[2], bf[3]);
        }
    }

    // The second epilogue, from the accumulators: two channels (32 bits) a store.
#pragma unroll
    for (int n = 0; n < NT2; ++n) {
      T bpair[2];
      memcpy(bpair, &sbias[kC1 / 2 + (n * 8 + t2) / 2], sizeof(bpair));
      const float bx = kern::to_f(bpair[0]), by = kern::to_f(bpair[1]);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = g + 8 * h;
        if (row >= valid) continue;
        const float v0 = relu_if(a.relu2, acc2[n][2 * h] + bx), v1 = relu_if(a.relu2, acc2[n][2 * h + 1] + by);
        *reinterpret_cast<uint32_t*>(y2 + (p0 + row) * C2 + n * 8 + t2) = kern::pack2<T>(v0, v1);
      }
    }
  }
  kern::cp_async_wait_all();  // no copy outlives the block (the last ones are empty groups or unused slabs)
}

template <class T, int C2>
void launch(KernelContext& ctx, const PairArgs& a) {
  const auto kernel = k_conv1x1_pair<T, C2>;
  static const bool attributes_set = [&] {
    const bool ok = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(Smem<C2>::bytes)) == cudaSuccess;
    if (!ok) cudaGetLastError();
    return ok;
  }();
  if (!attributes_set)
    return ctx.fail("the 1x1 pair kernel could not get its " + std::to_string(Smem<C2>::bytes) +
                    " bytes of shared memory");
  const int sms = std::max(current_device().sm_count, 1);
  const int64_t slabs = (a.pixels + kSlab - 1) / kSlab;
  const int64_t blocks = std::min<int64_t>((slabs + kWarps - 1) / kWarps, sms);
  KILN_CUDA_CHECK(launch_maybe_programmatic(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads),
                                            Smem<C2>::bytes, ctx.stream(), false, a));
}

bool refuse(std::string* why, const std::string& reason) {
  if (why) *why = reason;
  return false;
}

bool is_half_type(DataType dt) { return dt == DataType::kHALF || dt == DataType::kBF16; }

// The activation attrs `type` (with its parameters) name none or ReLU.
bool relu_or_none(const ir::Attrs& a, const char* type) {
  const int64_t t = a.i(type, -1);
  return t == -1 || t == kern::act::kRelu;
}

}  // namespace

bool conv1x1_pair_fits(const ir::Node& n, const std::vector<ir::TensorInfo>& in, std::string* why) {
  if (in.size() != 6 || n.outputs.size() != 2) return refuse(why, "not 6 inputs and 2 outputs");
  const ir::TensorInfo &x = in[0], &w1 = in[1], &b1 = in[2], &r1 = in[3], &w2 = in[4], &b2 = in[5];
  if (!x.present || !w1.present || !w2.present) return refuse(why, "x, w1 or w2 absent");
  const DataType dt = x.dtype;
  if (!is_half_type(dt)) return refuse(why, "not float16 or bfloat16");
  for (const ir::TensorInfo* t : {&w1, &b1, &r1, &w2, &b2})
    if (t->present && t->dtype != dt) return refuse(why, "mixed dtypes");
  if (x.shape.size() != 4 || x.shape[3] != kC0) return refuse(why, "x not [N, H, W, 64]");
  if (w1.shape != Dims{kC1, 1, 1, kC0}) return refuse(why, "w1 not [256, 1, 1, 64]");
  if (w2.shape.size() != 4 || (w2.shape[0] != 64 && w2.shape[0] != 128) || w2.shape[1] != 1 || w2.shape[2] != 1 ||
      w2.shape[3] != kC1)
    return refuse(why, "w2 not [64 or 128, 1, 1, 256]");
  if (b1.present && b1.shape != Dims{kC1}) return refuse(why, "b1 not [256]");
  if (b2.present && b2.shape != Dims{w2.shape[0]}) return refuse(why, "b2 not [C2]");
  if (r1.present && (r1.shape.size() != 4 || r1.shape[3] != kC1)) return refuse(why, "residual not [N, H, W, 256]");
  if (!relu_or_none(n.attrs, "activation") || !relu_or_none(n.attrs, "activation2"))
    return refuse(why, "an activation other than ReLU");
  return true;
}

bool conv1x1_pair_aligned(const KernelContext& ctx) {
  for (size_t i : {0, 1, 3, 4})
    if (ctx.has_input(i) && !aligned_to(ctx.in[i].data, 16)) return false;
  for (size_t i : {2, 5})
    if (ctx.has_input(i) && !aligned_to(ctx.in[i].data, 4)) return false;
  return aligned_to(ctx.out[0].data, 16) && aligned_to(ctx.out[1].data, 16);
}

void enqueue_conv1x1_pair(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  PairArgs a;
  a.x = x.data;
  a.w1 = ctx.input(1).data;
  a.b1 = ctx.has_input(2) ? ctx.in[2].data : nullptr;
  a.r1 = ctx.has_input(3) ? ctx.in[3].data : nullptr;
  a.w2 = ctx.input(4).data;
  a.b2 = ctx.has_input(5) ? ctx.in[5].data : nullptr;
  a.y1 = ctx.out[0].data;
  a.y2 = ctx.out[1].data;
  a.pixels = x.shape[0] * x.shape[1] * x.shape[2];
  a.relu1 = ctx.attrs().i("activation", -1) == kern::act::kRelu;
  a.relu2 = ctx.attrs().i("activation2", -1) == kern::act::kRelu;
  if (a.pixels == 0) return;
  const bool c2_128 = ctx.input(4).shape[0] == 128;
  if (x.dtype == DataType::kHALF) c2_128 ? launch<half, 128>(ctx, a) : launch<half, 64>(ctx, a);
  else if (x.dtype == DataType::kBF16) c2_128 ? launch<bf16, 128>(ctx, a) : launch<bf16, 64>(ctx, a);
  else ctx.fail("the 1x1 pair kernel takes float16 or bfloat16");
}

}  // namespace kiln::cuda
