// Kiln's split-K convolution kernel (kernels/splitk_conv_mma.h) as a candidate of the MatrixMultiply kernel,
// for products of a few hundred rows against weights stored [N, K]: y[m, n] = act(a[m, k] w[n, k]^T + bias[n] +
// residual[m, n]) is the 1x1 convolution of an image of 1 x m pixels of k channels by n filters of k weights.
//
// Why: a transformer at batch 1 multiplies 128-197 token rows by its weights (GPT-2's c_fc: 128 x 768 by
// 768 x 3072, 4.7 MB of weights). cuBLASLt's kernels tile such a product into a few dozen output tiles, each
// walking the whole reduction: the H200's per-layer profile read the weights at 170-340 GB/s (GPT-2's and
// ViT-B/16's GEMMs, sixteenth session), a fifteenth of what HBM gives. The split-K kernel makes 64 x 32 tiles,
// splits each tile's reduction over up to 8 blocks of a cluster (added through distributed shared memory, in a
// fixed order) and fills the GPU; launched programmatically it also loads its first weights while the kernel
// before it still runs. ResNet-50's 1x1 and 3x3 layers at batch 1 took it in 27 of 53 convolutions.
//
// The tiles: the convolution's 64 x 32 tile reads a's rows once per 32 output columns, 18.9 MB from L2 for c_fc's
// 4.7 MB of weights, and lost c_fc to cuBLASLt (9.1 against 5.6 us, seventeenth session). So the GEMM view times
// the kernel's wider tiles too (kSplitKTiles: 64 columns read a's rows half as often, 128 rows read a 128-token
// product's weights once), each at its split counts.
//
// Applies to: float16 or bfloat16 throughout; a row-major [m, k] (its batch folded into the rows), w [n, k]
// (rows k apart: passes/transpose_gemm_weights stores constant weights so), k a multiple of 64, n of 32; any
// fused bias, residual and activation; sm_90 (clusters); and only products whose tiles do not fill the GPU at
// one split (at most kSplitKBlocksPerSm blocks an SM): larger ones are cuBLASLt's (its 128-row tiles read the
// weights fewer times), and timing the kernel on them would only lengthen builds. The MatrixMultiply kernel
// times each split count splitk_conv_candidates gives against cuBLASLt's choice (KILN_GEMM_SPLITK).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/conv_epilogue_inputs.h"
#include "backends/cuda/kernels/gemm_rows.h"
#include "backends/cuda/kernels/splitk_conv_mma.h"

namespace kiln::cuda {

// The product as the matrix multiply kernel sees it, and its fused activation.
struct SplitKGemmProblem : GemmRows {
  int act = -1;  // the fused activation (epilogue.h's read_fused_activation), -1 none
  float alpha = 0, beta = 0;
};

// Why the kernel cannot compute `p` on a device of `sms` SMs and compute capability major `major` (a short
// phrase for the build log), or nullptr when it can. Addresses are checked apart, at each run
// (conv_tensors_aligned with an 8-byte bias, a as x). On `tile` (one of kSplitKTiles): N a multiple of its
// columns, and its tiles not filling the GPU at one split (splitk_blocks_per_sm of them an SM).
const char* splitk_gemm_refusal(const SplitKGemmProblem& p, int sms, int major, SplitKTile tile = kSplitKConvTile);

// The kernel's geometry for an accepted problem on `tile`: the 1x1 convolution of one image of 1 x m pixels.
SplitKConvGeometry splitk_gemm_geometry(const SplitKGemmProblem& p, SplitKTile tile = kSplitKConvTile);

// The tiles the matrix multiply kernel may time, in kSplitKTiles' order: KILN_GEMM_SPLITK_TILE unset or "" every
// tile, one tile's name ("64x32", "64x64", "128x64") that one only (A/B runs, tests); any other value throws
// kiln::Error naming the switch and its values. Read when a node chooses its kernel.
std::vector<SplitKTile> splitk_gemm_tiles();

// KILN_GEMM_SPLITK (candidate_mode.h): one more timed candidate for eligible products, never, or forced (on the
// first tile of splitk_gemm_tiles that applies, the most splits splitk_conv_candidates gives, nothing timed or
// recorded: tests).
inline CandidateMode splitk_gemm_mode() { return candidate_mode("KILN_GEMM_SPLITK"); }

// How many matrix multiply nodes took the kernel (timed, forced or recorded), process-wide: for tests.
int64_t splitk_gemm_chosen();
void count_splitk_gemm_chosen();

}  // namespace kiln::cuda
