// Kiln's wgmma + TMA GEMM kernel (sm90a/wgmma_gemm_kernel.h) as a candidate of the MatrixMultiply kernel, for
// products of a few hundred rows against weights stored [N, K]: y[m, n] = act(a[m, k] w[n, k]^T + bias[n] +
// residual[m, n]).
//
// Why: at batch 1 a transformer's GEMMs (128-197 token rows) take cuBLASLt 5.0-8.0 us, ~4 us of it fixed, and
// Kiln's split-K kernel (mma.sync fed by cp.async) loses the wide ones to it (GPT-2's c_attn 7.4 against 5.2 us,
// c_fc 9.2 against 5.7): its blocks wait on chains of loads (bench/NOTES.md, eighteenth session). Hopper's own
// path (TMA loads on mbarriers feeding warpgroup MMAs) keeps many more bytes in flight a block, and the kernel
// keeps the split-K kernel's cluster reduction and programmatic prologue (its first weights load while the
// kernel before finishes), which cuBLASLt's kernels cannot have.
//
// Status: OFF unless KILN_GEMM_WGMMA=1 (timed) or =force. Right on the H200 in every configuration it had
// (twenty-second session), and still 1.1-1.2 us slower than cuBLASLt cold on GPT-2's c_attn and c_fc, even
// launched programmatically (bench/NOTES.md says what made it slow and what is left to measure: the K walk
// rotated per tile column, and a's loads multicast across a cluster). Kept only if those bring it ~1 us under
// cuBLASLt there; bench/wgmma_proto/ measures it alone.
//
// Applies to: float16 or bfloat16 throughout; a row-major [m, k] (its batch folded into the rows), w [n, k] (rows
// k apart); n a multiple of 8 (16-byte output rows); k a multiple of 64; m at most 512 (larger products are
// cuBLASLt's, whose tiles fill the GPU); any fused bias, residual and activation; compute capability 9.0 (the kernel is built for sm_90a only). The
// addresses are checked at each run as the split-K kernel's are (conv_tensors_aligned: a, w, y and the residual
// 16-byte aligned, TMA's condition for a and w).
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/kernels/gemm_rows.h"
#include "backends/cuda/sm90a/wgmma_gemm_kernel.h"

namespace kiln::cuda {

struct WgmmaGemmProblem : GemmRows {
  int act = -1;  // the fused activation, -1 none
};

// The most rows the kernel is timed for.
constexpr int64_t kWgmmaMaxRows = 512;

// Why the kernel cannot compute `p` on a device of compute capability major.minor (a short phrase for the log),
// or nullptr when it can.
const char* wgmma_gemm_refusal(const WgmmaGemmProblem& p, int major, int minor);

// The configurations worth timing on `tile` for an accepted problem on `sms` SMs: wgmma_tile_configs with the
// blocks within two an SM.
std::vector<WgmmaConfig> wgmma_configs(const WgmmaGemmProblem& p, WgmmaTile tile, int sms);

// KILN_GEMM_WGMMA: unset or "0" never (off by default until measured on a GPU), "1" a timed candidate, "force"
// taken wherever it applies (its first tile in its last configuration: the most splits, the widest multicast;
// nothing timed or recorded: tests). Any other value throws kiln::Error naming the switch.
inline CandidateMode wgmma_gemm_mode() { return candidate_mode("KILN_GEMM_WGMMA", CandidateMode::kOff); }

// How many matrix multiply nodes took the kernel (timed, forced or recorded), process-wide: for tests.
int64_t wgmma_gemm_chosen();
void count_wgmma_gemm_chosen();

}  // namespace kiln::cuda
