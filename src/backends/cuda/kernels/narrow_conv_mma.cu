// The narrow-input convolution on tensor cores (narrow_conv_mma.h says what it takes and why).
//
// Work split: a block keeps one block of KT output channels' filters in shared memory for its whole life and
// walks output tiles of 8 rows x 16 columns of one image (grid-stride over N x row tiles x column tiles).
// A tile's input window, (8 + kh - 1) x (16 + kw - 1) pixels of 16 channels (zeros past the image's edge), is
// copied by cp.async while the block computes the tile before it (two window buffers), so the global load's
// latency overlaps the MMAs instead of stalling the block once per tile. Per filter tap (i, j) and output row,
// the 16 pixels' 16 channels at row + i, columns j.. j + 15 are one A fragment (16 x 16, ldmatrix.x4); the
// tap's filters are B fragments (16 x 8 each, one n-tile of 8 channels), two n-tiles per ldmatrix.x4.
//
// The 4 warps split the tile one of two ways (KILN_CONV_NARROW_TILE, narrow_conv_mma.h): rows2, each warp 2
// output rows x all KT channels (KT / 8 n-tiles); rows4, each warp 4 rows x KT / 2 channels
// (2 row halves x 2 channel halves). Walking a column of taps downwards, a warp of R rows keeps R A
// fragments: row m's fragment of tap i is row m + 1's of tap i - 1, so the column's first tap loads R and
// every later tap one (the others shift down). A tap is then 1 A and (the warp's channels) / 16 B loads for
// R x (the warp's channels) / 8 MMAs. Why rows4: rows2 was bound by shared-memory loads, not MMAs (H200,
// ResNet's stem: L1/shared pipe 66%, tensor pipe 37%); for its 4x4 taps and KT 64 a column costs a warp 5 A
// + 16 B loads for 64 MMAs in rows2, 7 A + 8 B in rows4 (29% fewer), and each B load feeds 8 MMAs, not 4.
// Measured, rows4 wins there (0.200 ms against 0.218) and loses on MobileNet's 2x2 and 1x1 windows at KT 32,
// where it saves no loads: the default (auto, narrow_conv_tile_for) takes it only where it saves a quarter.
// Both keep 64 float32 accumulators per lane (R x n-tiles x 4). They go through the epilogue (bias,
// residual, activation) straight from the fragments: lane l holds pixels l / 4 and l / 4 + 8 of each of the
// warp's rows, channels 2 (l % 4) and + 1 of each of its n-tiles.
//
// Fragment layouts of mma.m16n8k16 (PTX ISA): A row-major 16 x 16 (rows = pixels, k = channels), B "col"
// (n-major: filter n's 16 channels contiguous, as the channels-last weights [K, kh, kw, 16] store them),
// C/D 16 x 8 float32. ldmatrix.x4: lanes 8i..8i+7 give the row addresses of 8x8 matrix i.
//
// Shared memory holds each pixel's (and each filter tap's) 16 channels as two 16-byte chunks, in two planes:
// chunk h of every row, then the other. An ldmatrix phase reads one chunk of 8 consecutive rows: 128
// contiguous bytes, free of bank conflicts, and a lane's fragment address is its plane and row plus a constant
// per tap. (An earlier layout interleaved the chunks with an XOR swizzle: also conflict-free, but each address
// then cost its own swizzle arithmetic.)
#include "backends/cuda/kernels/narrow_conv_mma.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/conv_epilogue_inputs.h"
#include "backends/cuda/device.h"
#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/epilogue.h"
#include "backends/cuda/kernels/mma_sm80.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"
#include "kiln/types.h"

namespace kiln::cuda {

namespace {

using kern::bf16;
using kern::half;

constexpr int kC = 16;                 // input channels: one MMA k-step
constexpr int kTH = 8, kTW = 16;       // output tile: 8 rows of 16 pixels (one m16 tile per row)
constexpr int kWarps = 4;              // 2 or 4 rows of the tile each (kRows; the top of the file)
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxTaps = 16;           // kh * kw: ResNet's 4x4 after space-to-depth
constexpr int kMaxKT = 64;             // output channels per block
constexpr int kBlocksPerSm = 4;
// The largest input window over kh * kw <= 16 (kh up to 16 with kw 1): (8 + 15) x 16 pixels.
constexpr int kMaxWindowPixels = (kTH + kMaxTaps - 1) * kTW;

struct NcArgs {
  ConvTensors t;  // x, w, bias, residual, y
  int H, W, K, OH, OW, kh, kw;
  int rows_in, cols_in;  // the input window of one tile: (kTH + kh - 1) x (kTW + kw - 1) pixels
  int tiles_h, tiles_w;
  int64_t tiles;  // N * tiles_h * tiles_w
  int act;
  float alpha, beta;
  bool allow_next;  // the next kernel may start once this one's wait is over (programmatic_launch.h)
};

// The 16-byte chunk index of chunk h (0 or 1: channels 0-7 or 8-15) of row r (a pixel or a filter tap's
// channel row) in an area of `rows` rows: two planes, each chunk h of every row contiguous.
__device__ __forceinline__ int chunk(int r, int h, int rows) { return h * rows + r; }

// The origin of output tile `tile`: its image and its first output row and column.
struct TileOrigin {
  int64_t img;
  int oh0, ow0;
};

__device__ __forceinline__ TileOrigin tile_origin(const NcArgs& a, int64_t tile) {
  const int tw = static_cast<int>(tile % a.tiles_w);
  const int64_t rest = tile / a.tiles_w;
  return {rest / a.tiles_h, static_cast<int>(rest % a.tiles_h) * kTH, tw * kTW};
}

// Starts the copies of the input window of the tile at `o`, rows_in x cols_in pixels (constants where the
// window is), into buf (cp.async; zeros past the image's edge). The caller commits them as one group.
template <class T>
__device__ __forceinline__ void stage_window(const NcArgs& a, const TileOrigin& o, uint4* buf, int tid, int rows_in,
                                             int cols_in) {
  const uint4* xi = reinterpret_cast<const uint4*>(static_cast<const T*>(a.t.x) + o.img * a.H * a.W * kC);
  const int pixels = rows_in * cols_in;
  for (int i = tid; i < pixels * 2; i += kThreads) {
    const int h = i & 1, p = i >> 1, r = p / cols_in, c = p - r * cols_in;
    const int ih = o.oh0 + r, iw = o.ow0 + c;
    const bool inside = ih < a.H && iw < a.W;
    const uint4* src = inside ? xi + (static_cast<int64_t>(ih) * a.W + iw) * 2 + h : xi;
    kern::cp_async_16_or_zero(&buf[chunk(p, h, pixels)], src, inside);
  }
}

// Dynamic shared memory: the filters ([tap][n] rows of 16 channels), then two input windows (the tile being
// computed and the next one, in flight), then the block's KT bias values.
size_t shared_bytes(int KT, int taps, int window_pixels) {
  return (static_cast<size_t>(KT) * taps + 2 * static_cast<size_t>(window_pixels)) * 2 * sizeof(uint4) +
         static_cast<size_t>(KT) * sizeof(uint16_t);  // then the block's bias values (16-bit types)
}

// kRows: output rows per warp (2: rows2, 4: rows4; the top of the file). kAct: the epilogue's activation
// (activation_math.cuh's activate_as; the launch instantiates the common ones). kKh, kKw: the window when
// known at compile time (ResNet's 4x4 stem), else 0 (read from a). Known, the tap loops unroll completely:
// every fragment address is a per-lane base plus a constant, and the A fragments' shift down a column is
// register renaming instead of moves (Nsight, twelfth session: 7.5k warp instructions a tile for 1k MMAs;
// "stall wait", fixed-latency dependencies, first among the stall reasons).
template <class T, int KT, int kRows, int kAct, int kKh, int kKw>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm) k_narrow_conv(NcArgs a) {
  constexpr int kRowGroups = kTH / kRows;           // warps down the tile's rows ...
  constexpr int kChanGroups = kWarps / kRowGroups;  // ... and across its KT channels
  static_assert(kTH % kRows == 0 && kRowGroups * kChanGroups == kWarps, "the warps must tile the block");
  constexpr int KW = KT / kChanGroups;  // a warp's channels
  constexpr int NT = KW / 8;            // its n-tiles
  static_assert(NT % 2 == 0, "B fragments are loaded two n-tiles at a time");
  extern __shared__ __align__(16) uint4 smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int kh = kKh ? kKh : a.kh, kw = kKw ? kKw : a.kw;
  const int taps = kh * kw;
  const int n0 = static_cast<int>(blockIdx.y) * KT;  // this block's output channels: [n0, n0 + KT)
  const int cols_in = kKw ? kTW + kKw - 1 : a.cols_in;
  const int rows_in = kKh ? kTH + kKh - 1 : a.rows_in;
  const int pixels = rows_in * cols_in;        // a window's rows of 16 channels (one plane)
  const int filter_rows = KT * taps;           // the filters' rows (one plane)
  const int window = pixels * 2;               // 16-byte chunks per window buffer
  uint4* const sw = smem;
  uint4* const sx0 = smem + KT * taps * 2;

  // The filters' copies start first (in memory order [n][tap][chunk]: coalesced), before waiting for the
  // kernel that writes x (launched programmatically, this one may start while that one runs:
  // programmatic_launch.h); then the first tile's window. Both in one group.
  // The first tile's origin (its 64-bit divisions) is found before the wait too: the filter copies are made
  // to wait for it (origin_formed is always true), which keeps ptxas from moving that arithmetic past the wait,
  // where it delayed the first load of x (SASS, sixteenth session, ResNet's stem instantiation: 146
  // instructions between the wait and that load before, 68 with this).
  const TileOrigin first_origin = tile_origin(a, blockIdx.x);
  const bool origin_formed = first_origin.img >= 0;
  const uint4* w = static_cast<const uint4*>(a.t.w) + static_cast<int64_t>(n0) * taps * 2;
  for (int i = tid; i < KT * taps * 2 && origin_formed; i += kThreads) {
    const int h = i & 1, nt = i >> 1, n = nt / taps, t = nt - n * taps;
    kern::cp_async_16(&sw[chunk(t * KT + n, h, KT * taps)], &w[i]);
  }
  // The block's KT bias values go to shared memory with the filters, before the wait (a weight): read from
  // memory in the epilogue, they were one more round trip after the tile's MMAs, before its stores. Not into
  // registers here: held through the MMAs, they made ptxas spill the generic-window variants.
  const T* bias = static_cast<const T*>(a.t.bias);
  uint32_t* const sbias = reinterpret_cast<uint32_t*>(sx0 + 2 * window);  // KT / 2 pairs
  if (bias && tid < KT / 2) kern::cp_async_4(&sbias[tid], bias + n0 + 2 * tid);
  kern::wait_for_prior_kernels();
  if (a.allow_next) kern::allow_next_kernel_to_start();  // it too waits for this one before it reads y
  int64_t tile = blockIdx.x;
  stage_window<T>(a, first_origin, sx0, tid, rows_in, cols_in);  // the grid has at most one block per tile
  kern::cp_async_commit();

  const T* residual = static_cast<const T*>(a.t.residual);
  T* y = static_cast<T*>(a.t.y);
  // A: lane l gives pixel l % 16 of the row, channel half l / 16 (matrices: pixels 0-7 / 8-15 x k 0-7,
  // then the same for k 8-15). B, pair q of the warp's n-tiles: lane l gives the block's filter
  // nw + 16 q + 8 (l / 16) + l % 8, channel half (l / 8) % 2 (matrices: b0, b1 of n-tile 2q, then b0, b1 of
  // n-tile 2q + 1).
  const int a_col = lane & 15, a_half = lane >> 4;
  const int b_row = ((lane >> 4) << 3) + (lane & 7), b_half = (lane >> 3) & 1;
  __builtin_assume(warp >= 0 && warp < kWarps);  // so rows2's warp % 4 and warp / 4 fold to warp and 0
  const int row0 = (warp % kRowGroups) * kRows;  // this warp's output rows in the tile: row0.. row0 + kRows - 1
  const int nw = (warp / kRowGroups) * KW;       // its channels in the block's: [nw, nw + KW)
  for (int buf = 0; tile < a.tiles; tile += gridDim.x, buf ^= 1) {
    const uint4* sx = sx0 + buf * window;
    const int64_t next = tile + gridDim.x;
    if (next < a.tiles) stage_window<T>(a, tile_origin(a, next), sx0 + (buf ^ 1) * window, tid, rows_in, cols_in);
    kern::cp_async_commit();  // possibly empty: the wait below counts groups
    kern::cp_async_wait<1>();  // this thread's copies of this tile's window have landed ...
    __syncthreads();           // ... and everyone's (the first time: the filters' too)

    float acc[kRows][NT][4];
#pragma unroll
    for (int m = 0; m < kRows; ++m)
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[m][t][e] = 0.0f;

    // Down a column of taps (i, j), i = 0.. kh - 1, row m of the warp reads window row row0 + m + i: row m's
    // fragment of tap i is row m + 1's of tap i - 1, so each tap loads one A fragment, the last row's. Each
    // lane's fragment rows are its base (a_base, b_base) plus constants.
    const uint4* a_base = sx + chunk(row0 * cols_in + a_col, a_half, pixels);
    const uint4* b_base = sw + chunk(nw + b_row, b_half, filter_rows);
#pragma unroll
    for (int j = 0; j < kw; ++j) {
      uint32_t af[kRows][4];
#pragma unroll
      for (int m = 0; m < kRows - 1; ++m) kern::ldsm_x4(af[m], a_base + m * cols_in + j);
#pragma unroll
      for (int i = 0; i < kh; ++i) {
        kern::ldsm_x4(af[kRows - 1], a_base + (kRows - 1 + i) * cols_in + j);
        const int t = i * kw + j;
#pragma unroll
        for (int q = 0; q < NT / 2; ++q) {
          uint32_t bf[4];
          kern::ldsm_x4(bf, b_base + t * KT + q * 16);
#pragma unroll
          for (int m = 0; m < kRows; ++m) {
            kern::mma_16816<T>(acc[m][2 * q], af[m], bf[0], bf[1]);
            kern::mma_16816<T>(acc[m][2 * q + 1], af[m], bf[2], bf[3]);
          }
        }
#pragma unroll
        for (int m = 0; m < kRows - 1; ++m)
#pragma unroll
          for (int e = 0; e < 4; ++e) af[m][e] = af[m + 1][e];
      }
    }
    __syncthreads();  // every warp is done with this window: the next iteration's copies may overwrite it

    // The epilogue, from the fragments: two channels (one 32-bit store) at a time. The bias pairs are the
    // same for every pixel of the tile.
    float2 bv[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int c = nw + t * 8 + 2 * (lane & 3);  // within the block's channels
      T pair[2];
      memcpy(pair, &sbias[c / 2], sizeof(pair));
      bv[t] = bias ? make_float2(kern::to_f(pair[0]), kern::to_f(pair[1])) : make_float2(0.0f, 0.0f);
    }
    const TileOrigin o = tile_origin(a, tile);
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      const int oh = o.oh0 + row0 + m;
      if (oh >= a.OH) continue;
#pragma unroll
      for (int half_row = 0; half_row < 2; ++half_row) {
        const int ow = o.ow0 + (lane >> 2) + 8 * half_row;
        if (ow >= a.OW) continue;
        const int64_t pixel = (o.img * a.OH + oh) * a.OW + ow;
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          const int c = n0 + nw + t * 8 + 2 * (lane & 3);
          float v0 = acc[m][t][2 * half_row] + bv[t].x, v1 = acc[m][t][2 * half_row + 1] + bv[t].y;
          if (residual) {
            v0 += kern::to_f(residual[pixel * a.K + c]);
            v1 += kern::to_f(residual[pixel * a.K + c + 1]);
          }
          v0 = kern::act::activate_as<kAct>(a.act, a.alpha, a.beta, v0);
          v1 = kern::act::activate_as<kAct>(a.act, a.alpha, a.beta, v1);
          *reinterpret_cast<uint32_t*>(y + pixel * a.K + c) = kern::pack2<T>(v0, v1);
        }
      }
    }
  }
}

template <class T, int KT, int kRows, int kAct, int kKh = 0, int kKw = 0>
void launch(KernelContext& ctx, const NcArgs& a, bool programmatic) {
  const auto kernel = k_narrow_conv<T, KT, kRows, kAct, kKh, kKw>;
  // The largest window (kh * kw <= 16) takes more than the 48 KiB a launch gets without asking, and
  // kBlocksPerSm blocks need the largest carveout: both asked once per instantiation.
  static const bool attributes_set = [&] {
    const bool ok =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(shared_bytes(KT, kMaxTaps, kMaxWindowPixels))) == cudaSuccess &&
        cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared) == cudaSuccess;
    if (!ok) cudaGetLastError();
    return ok;
  }();
  if (!attributes_set) return ctx.fail("the narrow-input convolution kernel could not get its shared memory");
  const int sms = std::max(current_device().sm_count, 1);
  const int64_t blocks = std::min<int64_t>(a.tiles, static_cast<int64_t>(sms) * kBlocksPerSm);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(a.K / KT));
  KILN_CUDA_CHECK(launch_maybe_programmatic(kernel, grid, dim3(kThreads),
                                            shared_bytes(KT, a.kh * a.kw, a.rows_in * a.cols_in), ctx.stream(),
                                            programmatic, a));
}

template <class T, int KT, int kAct>
void launch_tiled(KernelContext& ctx, const NcArgs& a, NarrowConvTile tile, bool programmatic) {
  if (tile == NarrowConvTile::kRows2) return launch<T, KT, 2, kAct>(ctx, a, programmatic);
  if (a.kh == 4 && a.kw == 4) return launch<T, KT, 4, kAct, 4, 4>(ctx, a, programmatic);  // ResNet's stem, unrolled
  launch<T, KT, 4, kAct>(ctx, a, programmatic);
}

template <class T, int kAct>
void launch_width(KernelContext& ctx, const NcArgs& a, bool wide, NarrowConvTile tile, bool programmatic) {
  wide ? launch_tiled<T, kMaxKT, kAct>(ctx, a, tile, programmatic)
       : launch_tiled<T, kMaxKT / 2, kAct>(ctx, a, tile, programmatic);
}

// The stems' activations (ReLU: ResNet; Clip: MobileNet's ReLU6) and none get kernels of their own; the rest
// share one that reads the type at run time.
template <class T>
void launch_for(KernelContext& ctx, const NcArgs& a, bool wide, NarrowConvTile tile, bool programmatic) {
  namespace A = kern::act;
  switch (a.act) {
    case -1: return launch_width<T, -1>(ctx, a, wide, tile, programmatic);
    case A::kRelu: return launch_width<T, A::kRelu>(ctx, a, wide, tile, programmatic);
    case A::kClip: return launch_width<T, A::kClip>(ctx, a, wide, tile, programmatic);
    default: return launch_width<T, A::kAnyAct>(ctx, a, wide, tile, programmatic);
  }
}

constexpr const char* kTileVariable = "KILN_CONV_NARROW_TILE";

std::string tile_error(const char* value) {
  return std::string(kTileVariable) + "=" + value +
         ": expected auto (the default: rows4 for 64-channel blocks with 3 or more rows of taps, else rows2), rows4 "
         "(each warp 4 output rows x half the block's channels) or rows2 (2 rows x all of them)";
}

bool refuse(std::string* why, const std::string& reason) {
  if (why) *why = reason;
  return false;
}

}  // namespace

bool parse_narrow_conv_tile(const char* value, NarrowConvTile* out) {
  if (!value || !*value || std::strcmp(value, "auto") == 0) *out = NarrowConvTile::kAuto;
  else if (std::strcmp(value, "rows4") == 0) *out = NarrowConvTile::kRows4;
  else if (std::strcmp(value, "rows2") == 0) *out = NarrowConvTile::kRows2;
  else return false;
  return true;
}

// Shared-memory fragment loads per column of kh taps and warp: rows2 1 + kh A and kh * KT / 16 B; rows4
// 3 + kh A and kh * KT / 32 B. At KT 64 that is 1 + 5 kh against 3 + 3 kh (kh 4: 21 against 15; kh 3: 16
// against 12); at KT 32, 1 + 3 kh against 3 + 2 kh (kh 2: 7 against 7). Measured on the H200 (twelfth
// session): ResNet's 4x4 stem, KT 64, rows4 0.200 ms against 0.218; MobileNet's 2x2 stem, KT 32, rows4
// 0.096 against 0.085, and its 1x1 16->96 expand 0.230 against 0.222. So rows4 only where it saves a quarter
// of the loads or more.
NarrowConvTile narrow_conv_tile_for(int KT, int kh) {
  return KT == kMaxKT && kh >= 3 ? NarrowConvTile::kRows4 : NarrowConvTile::kRows2;
}

bool narrow_conv_geometry(const KernelContext& ctx, bool unit_window, NarrowConvGeometry* g, std::string* why) {
  const ir::Node& n = ctx.node;
  if (const char* wrong = half_channels_last_conv_refusal(ctx)) return refuse(why, wrong);
  if (!unit_window) return refuse(why, "not stride 1, dilation 1, unpadded");
  const TensorRef &x = ctx.in[0], &w = ctx.in[1], &y = ctx.out[0];
  const DataType dt = x.dtype;
  if (x.shape[3] != kC || w.shape[3] != kC) return refuse(why, "input channels not 16");
  const int64_t K = w.shape[0], kh = w.shape[1], kw = w.shape[2];
  if (K % 32 != 0 || y.shape[3] != K) return refuse(why, "output channels not a multiple of 32");
  if (kh < 1 || kw < 1 || kh * kw > kMaxTaps) return refuse(why, "more than 16 filter taps");
  if (y.shape[0] != x.shape[0] || y.shape[1] != x.shape[1] - kh + 1 || y.shape[2] != x.shape[2] - kw + 1)
    return refuse(why, "output size not the unpadded stride-1 one");
  if (const char* wrong = conv_epilogue_inputs_refusal(ctx, dt, K)) return refuse(why, wrong);
  BiasAct act;  // the activation only (read here, once a shape, not at every launch)
  read_fused_activation(n.attrs, &act);
  if (!fused_activation_supported(act.act)) return refuse(why, "activation");
  // Rows and columns are int in the kernel; a tile count per image fits too.
  constexpr int64_t kMax = int64_t{1} << 30;
  if (x.shape[1] >= kMax || x.shape[2] >= kMax || K >= kMax) return refuse(why, "too large");
  g->N = x.shape[0];
  g->H = x.shape[1];
  g->W = x.shape[2];
  g->K = K;
  g->OH = y.shape[1];
  g->OW = y.shape[2];
  g->kh = static_cast<int>(kh);
  g->kw = static_cast<int>(kw);
  g->act = act.act;
  g->alpha = act.alpha;
  g->beta = act.beta;
  g->programmatic = programmatic_launch_enabled();
  // The tiling, last: only an otherwise eligible node reads the switch.
  const char* tile_value = std::getenv(kTileVariable);
  if (!parse_narrow_conv_tile(tile_value, &g->tile)) ctx.fail(tile_error(tile_value));
  if (g->tile == NarrowConvTile::kAuto) g->tile = narrow_conv_tile_for(K % kMaxKT == 0 ? kMaxKT : kMaxKT / 2, g->kh);
  return true;
}

bool narrow_conv_aligned(const KernelContext& ctx) { return conv_tensors_aligned(ctx, 4); }

void enqueue_narrow_conv(KernelContext& ctx, const NarrowConvGeometry& g) {
  if (g.N == 0 || g.OH == 0 || g.OW == 0 || g.K == 0) return;
  NcArgs a;
  a.t = conv_tensors(ctx);
  a.H = static_cast<int>(g.H);
  a.W = static_cast<int>(g.W);
  a.K = static_cast<int>(g.K);
  a.OH = static_cast<int>(g.OH);
  a.OW = static_cast<int>(g.OW);
  a.kh = g.kh;
  a.kw = g.kw;
  a.rows_in = kTH + g.kh - 1;
  a.cols_in = kTW + g.kw - 1;
  a.tiles_h = static_cast<int>((g.OH + kTH - 1) / kTH);
  a.tiles_w = static_cast<int>((g.OW + kTW - 1) / kTW);
  a.tiles = g.N * a.tiles_h * a.tiles_w;
  a.act = g.act;
  a.alpha = g.alpha;
  a.beta = g.beta;
  a.allow_next = ctx.res.next_kernel_may_start;
  const bool wide = g.K % kMaxKT == 0;
  if (ctx.in[0].dtype == DataType::kHALF) launch_for<half>(ctx, a, wide, g.tile, g.programmatic);
  else if (ctx.in[0].dtype == DataType::kBF16) launch_for<bf16>(ctx, a, wide, g.tile, g.programmatic);
  else ctx.fail("the narrow-input convolution kernel takes float16 or bfloat16");
}

}  // namespace kiln::cuda
