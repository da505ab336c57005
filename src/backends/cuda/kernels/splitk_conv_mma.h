// Kiln's split-K implicit-GEMM convolution on tensor cores, for convolutions with few output pixels and a deep
// reduction: ResNet-50's 3x3 and strided convolutions at batch 1, with the node's whole epilogue:
// y = act(conv(x, w) + bias + residual).
//
// Why Kiln's own: at batch 1, ResNet-50's layer4 3x3 convolution has 49 output pixels, 512 output channels and
// a 4608-deep reduction (kh * kw * C). A GEMM tiling of its 49 x 512 output makes a handful of blocks, each
// walking the whole reduction alone: cuDNN's best engine takes 12.3 us on the H200 (twelfth session's build
// log), ~9x the time its 4.7 MB of weights take to read. Splitting the reduction over S blocks of one thread
// block cluster (sm_90) fills the GPU; the S partial tiles are added through distributed shared memory, in a
// fixed order (results do not depend on which block finishes first), with no workspace and no second kernel.
// The convolution kernel times each worthwhile S against cuDNN's choice and keeps the fastest.
//
// Applies to: forward, channels_last, groups 1, 2-D, any window, stride, dilation and (symmetric) padding; x
// [N, H, W, C] with C a multiple of 64, w [K, kh, kw, C] with K a multiple of 32, y [N, OH, OW, K]; float16 or
// bfloat16 throughout, an optional bias [K], an optional residual of y's shape, and an activation the epilogue
// knows. Needs sm_90 (thread block clusters).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/conv_epilogue_inputs.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// The GEMM view: M = N * OH * OW output pixels, K output channels, a reduction of kh * kw * C taken in chunks of
// kSplitKChunk channels of one filter tap (hence C a multiple of it); a block computes a tile of pixels x
// channels over its share of the chunks. The convolution's tile is kSplitKTileM x kSplitKTileN.
constexpr int kSplitKTileM = 64;
constexpr int kSplitKTileN = 32;
constexpr int kSplitKChunk = 64;
constexpr int kSplitKMaxSplits = 8;  // the portable cluster size
constexpr int kSplitKBlocksPerSm = 3;  // 8-warp blocks of the 64 x 32 tile with a 72 KB ring (splitk_conv_mma.cu)

// A block's output tile: m pixels (rows) x n channels (columns). The convolution takes the 64 x 32 tile. The GEMM
// view (cublaslt/splitk_gemm.h) also times 64 x 64 and 128 x 64: 64 columns read the rows half as often as 32 do,
// and a 128-row tile holds all of a 128-token product's rows, so the weights are read once (GPT-2's c_fc: 28.3 MB
// read from L2 on the 64 x 32 tile, 18.9 on 64 x 64, 14.1 on 128 x 64). Their rings are larger: fewer blocks fit
// an SM (splitk_blocks_per_sm), and a 128-row tile makes half the blocks of a 64-row one. The H200 took each of
// the three for some of GPT-2's and BERT's products at batch 1; 64 x 128 and 128 x 128 were built and timed too
// (eighteenth session) and lost every product they were timed on, so they are not built.
struct SplitKTile {
  int m = kSplitKTileM, n = kSplitKTileN;
  bool operator==(const SplitKTile& o) const { return m == o.m && n == o.n; }
  std::string name() const { return std::to_string(m) + "x" + std::to_string(n); }
};
constexpr SplitKTile kSplitKConvTile{kSplitKTileM, kSplitKTileN};
// Every tile the kernel is built for, the convolution's first.
constexpr SplitKTile kSplitKTiles[] = {{64, 32}, {64, 64}, {128, 64}};
// How many blocks of `tile` fit an SM (their rings' shared memory): 3, 2, 2 in kSplitKTiles' order; 0 for a tile
// the kernel is not built for.
int splitk_blocks_per_sm(SplitKTile tile);

// The window as the convolution kernel computed it for cuDNN (symmetric padding).
struct SplitKWindow {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
};

struct SplitKConvGeometry {
  int64_t N = 0, H = 0, W = 0, C = 0, K = 0, OH = 0, OW = 0;
  int kh = 0, kw = 0;
  SplitKWindow window;
  int act = -1;  // the fused activation (epilogue.h's read_fused_activation): type, -1 none, and its parameters
  float alpha = 0, beta = 0;
  // KILN_CONV_SPLITK_SPLITS when set: the only split count considered (1, 2, 4 or 8); 0 when unset.
  int fixed_splits = 0;
  // Launched to start beside the kernel before it, loading its first weights meanwhile (programmatic_launch.h;
  // KILN_PDL=0: not).
  bool programmatic = false;
  SplitKTile tile;  // a block's output tile (one of kSplitKTiles; K a multiple of its n)

  int64_t pixels() const { return N * OH * OW; }
  int64_t chunks() const { return static_cast<int64_t>(kh) * kw * (C / kSplitKChunk); }
  // Output tiles: pixel tiles x channel tiles (each split of a tile is one more block).
  int64_t tiles() const { return (pixels() + tile.m - 1) / tile.m * (K / tile.n); }
};

// KILN_CONV_SPLITK (candidate_mode.h): the kernel is one more timed candidate for eligible convolutions (each
// split count splitk_conv_candidates gives), never, or forced: taken whenever eligible with the most splits
// splitk_conv_candidates gives, nothing timed or recorded (tests).
using SplitKConvMode = CandidateMode;
inline SplitKConvMode splitk_conv_mode() { return candidate_mode("KILN_CONV_SPLITK"); }

// `value` (nullptr: unset) as KILN_CONV_SPLITK_SPLITS in *out: unset or "" 0; "1", "2", "4" or "8" that count;
// false for any other value.
bool parse_splitk_splits(const char* value, int* out);

// Whether g stays within the kernel's int arithmetic and grid: rows, columns, channels, the reduction and the
// output pixels (with a tile's slack) are int in the kernel, and the channel tiles a grid dimension. A geometry
// past them is refused as "too large" (the convolution's and the GEMM view's).
bool splitk_within_limits(const SplitKConvGeometry& g);

// Whether the kernel can run this node for its current shapes and dtypes (see the top of the file), filling in
// *g (its fixed_splits from KILN_CONV_SPLITK_SPLITS: a bad value fails the node, naming it; a count above the
// reduction's chunks refuses the node); false with the reason in *why. The addresses are checked apart
// (splitk_conv_aligned): they may change per run. The device is the caller's to check (sm_90).
bool splitk_conv_geometry(const KernelContext& ctx, const SplitKWindow& window, SplitKConvGeometry* g,
                          std::string* why);

// The split counts worth timing on a device of `sms` SMs, fewest first: g.fixed_splits alone when set; else
// 1, then each of 2, 4, 8 while the blocks of the count before it do not fill the device (at
// splitk_blocks_per_sm(g.tile) an SM) and every split keeps at least 2 chunks of the reduction.
std::vector<int> splitk_conv_candidates(const SplitKConvGeometry& g, int sms);

// Whether x, w, y and the residual are 16-byte aligned and the bias 8-byte aligned, as the kernel's loads and
// stores need.
bool splitk_conv_aligned(const KernelContext& ctx);

// Enqueues the convolution and its epilogue on ctx.stream() over `splits` blocks per output tile (one of
// splitk_conv_candidates); false, with the reason in *why and nothing enqueued, when it cannot launch (a
// cluster of that many blocks this device cannot schedule, say): timing takes that as the candidate losing.
// Never synchronizes or allocates.
bool try_enqueue_splitk_conv(KernelContext& ctx, const SplitKConvGeometry& g, int splits, std::string* why);
// The same, failing the node (naming why) when it cannot launch: the run of a path already chosen.
void enqueue_splitk_conv(KernelContext& ctx, const SplitKConvGeometry& g, int splits);

// What try_enqueue_splitk_conv does, for tensors given apart from a node (the GEMM view of the kernel:
// cublaslt/splitk_gemm.h): dtype is every tensor's; allow_next lets the next kernel start once this one's wait
// is over (programmatic_launch.h).
bool try_launch_splitk(cudaStream_t stream, const ConvTensors& t, DataType dtype, bool allow_next,
                       const SplitKConvGeometry& g, int splits, std::string* why);

}  // namespace kiln::cuda
