// The Conv1x1Pair kernel on tensor cores (conv1x1_pair_mma.h says what it takes and why).
//
// Work split: each warp of a block works alone on slabs of 16 pixels (grid-stride over the N*H*W pixels in
// 16s); the block shares only the two weight matrices and biases, copied to shared memory once. For one slab
// a warp
//  1. takes its x (16 pixels x 64 channels) as 4 A fragments (mma.m16n8k16, k = 16 channels each);
//  2. walks y1's 256 channels in 4 chunks of 64: 32 MMAs give the chunk's 16 x 64 accumulators (started at
//     the bias); the epilogue adds the residual, applies the activation and rounds to the 16-bit type; the
//     rounded values go (a) into the chunk's shared-memory slot, where its residual was, from where the warp
//     stores them to y1 in 16-byte pieces, and (b) straight into 4 A fragments of the second product: a
//     m16n8 accumulator pair is exactly an m16k16 A fragment (rows g and g + 8, columns 2t, 2t + 1 and
//     2t + 8, 2t + 9), so y1 never goes through memory to be multiplied. 4 x C2 / 8 MMAs add the chunk's part
//     of y2 = y1 w2^T (accumulators started at its bias);
//  3. stores y2 (activation) from its accumulators.
//
// Why this many warps and two chunk slots: the first version (8 warps, a slab's 4 chunks in flight) ran
// ResNet's layer1 pair at 2.83 TB/s, and Nsight Compute (H200, this session) found it latency-bound, not
// memory-bound: 2 warps a scheduler, 4.5 cycles a warp instruction, stalls on fixed-latency dependencies and
// shared-memory loads far ahead of those on global memory (1.57 + 0.97 against 0.20 cycles an instruction).
// So the copies now run two chunks ahead in two slots a warp, which leaves the shared memory for 16 warps
// (12 where w2 is twice as large), and the per-lane copy addresses are fixed once (they were a third of the
// instructions' integer work).
//
// Copies: the residual of the chunk two ahead (this slab's, or the next slab's first two) is copied into a
// slot as soon as that slot's y1 has left it, and the next slab's x rides with the copy made after the
// slab's first chunk. Each copy is one cp.async group, so before every chunk the wait is the same: all but
// the newest group (the one made after the previous chunk) have landed.
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
constexpr int kSlots = 2;          // chunk slots a warp (copies run two chunks ahead)
constexpr int kSlab = 16;          // pixels per warp step (one m16 tile)
// Warps a block (one block an SM): as many as the shared memory holds beside the weights, and registers
// allow (C2 128 keeps 64 more accumulators a lane).
template <int C2> constexpr int kWarps = C2 == 64 ? 16 : 12;

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
// warp two x slabs and kSlots residual / y1 chunks.
template <int C2> struct Smem {
  static constexpr int w1 = 0;
  static constexpr int w2 = w1 + kC1 * kXPitch;
  static constexpr int bias = w2 + C2 * kW2Pitch;
  static constexpr int warps = bias + (kC1 + C2) * 2 / 16;
  static constexpr int x_slab = kSlab * kXPitch;
  static constexpr int chunk = kSlab * kRPitch;
  static constexpr int per_warp = 2 * x_slab + kSlots * chunk;
  static constexpr int units = warps + kWarps<C2> * per_warp;
  static constexpr size_t bytes = static_cast<size_t>(units) * 16;
};

__device__ __forceinline__ float relu_if(bool on, float v) { return on ? kern::act::activate(kern::act::kRelu, 0, 0, v) : v; }

// A slab's 16 rows of 8 16-byte units (64 channels), as the warp's lanes move them: lane l takes unit l % 8 of
// rows l / 8 + 4 i, i = 0..3 (8 lanes a row: 128 contiguous bytes).
__device__ __forceinline__ int lane_row(int lane, int i) { return (lane >> 3) + 4 * i; }

// Starts the copies of a slab's 16 rows of 64 channels at `src` (row pitch `src_pitch` elements) into `dst`
// (pitch `dst_pitch` units); rows at or past `valid` are zero-filled.
template <class T>
__device__ __forceinline__ void warp_copy_slab(uint4* dst, int dst_pitch, const T* src, int src_pitch, int valid,
                                               int lane) {
  const int u = lane & 7;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = lane_row(lane, i);
    const bool inside = r < valid;
    kern::cp_async_16_or_zero(dst + r * dst_pitch + u, inside ? src + r * src_pitch + u * 8 : src, inside);
  }
}

template <class T, int C2>
__global__ void __launch_bounds__(32 * kWarps<C2>, 1) k_conv1x1_pair(PairArgs a) {
  using S = Smem<C2>;
  constexpr int kThreads = 32 * kWarps<C2>;
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
  uint4* const rs = xs + 2 * S::x_slab;                    // kSlots residual / y1 chunks
  const int64_t slabs = (a.pixels + kSlab - 1) / kSlab;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps<C2>;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps<C2> + warp;
  auto valid_rows = [&](int64_t s) { return static_cast<int>(std::min<int64_t>(kSlab, a.pixels - s * kSlab)); };
  // Copies (started, not committed: the caller commits a group): x of slab s into buffer xb; chunk j of slab
  // s's residual into slot j % kSlots. None past the last slab, nor of a residual the node has not.
  auto stage_x = [&](int64_t s, int xb) {
    if (s < slabs) warp_copy_slab(xs + xb * S::x_slab, kXPitch, x + s * kSlab * kC0, kC0, valid_rows(s), lane);
  };
  auto stage_residual = [&](int64_t s, int j) {
    if (r1 && s < slabs)
      warp_copy_slab(rs + (j % kSlots) * S::chunk, kRPitch, r1 + s * kSlab * kC1 + j * kChunk, kC1, valid_rows(s), lane);
  };
  stage_x(first, 0);
  stage_residual(first, 0);
  kern::cp_async_commit();
  stage_residual(first, 1);
  kern::cp_async_commit();
  kern::cp_async_wait<2>();  // the weights' group (older than the two above) ...
  __syncthreads();           // ... for every thread's part of it

  const uint32_t* sbias = reinterpret_cast<const uint32_t*>(&smem[S::bias]);
  // Fragment addressing (ldmatrix.x4): A, lane l gives row l % 16, channel half l / 16; B, lane l gives filter
  // 8 (l / 16) + l % 8 of a pair of n-tiles, channel half (l / 8) % 2. Accumulator element e of lane l is
  // row l / 4 + 8 (e / 2), column 2 (l % 4) + e % 2 of its n-tile.
  const int a_row = lane & 15, a_half = lane >> 4;
  const int b_row = ((lane >> 4) << 3) + (lane & 7), b_half = (lane >> 3) & 1;
  const int g = lane >> 2, t2 = 2 * (lane & 3);
  // A bias pair (channels c, c + 1 of the 16-bit type at sbias word c / 2) as floats.
  auto bias_pair = [&](int word) {
    T p[2];
    memcpy(p, &sbias[word], sizeof(p));
    return make_float2(kern::to_f(p[0]), kern::to_f(p[1]));
  };

  int xb = 0;
  for (int64_t slab = first; slab < slabs; slab += step, xb ^= 1) {
    const int64_t next = slab + step;
    const int64_t p0 = slab * kSlab;
    const int valid = valid_rows(slab);
    uint32_t xa[kC0 / 16][4];

    float acc2[NT2][4];
#pragma unroll
    for (int n = 0; n < NT2; ++n) {
      const float2 b = bias_pair(kC1 / 2 + (n * 8 + t2) / 2);
      acc2[n][0] = acc2[n][2] = b.x;
      acc2[n][1] = acc2[n][3] = b.y;
    }

#pragma unroll 1
    for (int j = 0; j < kChunks; ++j) {
      uint4* const rc = rs + (j % kSlots) * S::chunk;
      kern::cp_async_wait<1>();  // all but the copy made after the chunk before: this chunk's (and x's)
      __syncwarp();
      if (j == 0) {
#pragma unroll
        for (int k = 0; k < kC0 / 16; ++k)
          kern::ldsm_x4(xa[k], xs + xb * S::x_slab + a_row * kXPitch + 2 * k + a_half);
      }

      float acc1[kChunk / 8][4];
#pragma unroll
      for (int n = 0; n < kChunk / 8; ++n) {
        const float2 b = bias_pair((j * kChunk + n * 8 + t2) / 2);
        acc1[n][0] = acc1[n][2] = b.x;
        acc1[n][1] = acc1[n][3] = b.y;
      }
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
      for (int n = 0; n < kChunk / 8; ++n)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int word = (g + 8 * h) * kRPitch * 4 + (n * 8 + t2) / 2;  // 32-bit words: 4 a 16-byte unit
          float v0 = acc1[n][2 * h], v1 = acc1[n][2 * h + 1];
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
      __syncwarp();
      // y1's chunk from the slot to memory: lane l stores unit l % 8 of rows l / 8 + 4 i.
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = lane_row(lane, i), u = lane & 7;
        if (r < valid) *reinterpret_cast<uint4*>(y1 + (p0 + r) * kC1 + j * kChunk + u * 8) = rc[r * kRPitch + u];
      }
      __syncwarp();  // the slot is read: the chunk two ahead may land in it
      if (j + kSlots < kChunks) stage_residual(slab, j + kSlots);
      else stage_residual(next, j + kSlots - kChunks);
      if (j == 0) stage_x(next, xb ^ 1);  // that buffer was read into registers a slab ago
      kern::cp_async_commit();

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
    for (int n = 0; n < NT2; ++n)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = g + 8 * h;
        if (row >= valid) continue;
        const float v0 = relu_if(a.relu2, acc2[n][2 * h]), v1 = relu_if(a.relu2, acc2[n][2 * h + 1]);
        *reinterpret_cast<uint32_t*>(y2 + (p0 + row) * C2 + n * 8 + t2) = kern::pack2<T>(v0, v1);
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
  const int64_t blocks = std::min<int64_t>((slabs + kWarps<C2> - 1) / kWarps<C2>, sms);
  KILN_CUDA_CHECK(launch_maybe_programmatic(kernel, dim3(static_cast<unsigned>(blocks)), dim3(32 * kWarps<C2>),
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
