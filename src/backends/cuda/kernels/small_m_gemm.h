// Kiln's GEMM for products with a handful of rows and weights stored [N, K]: y[M, N] = act(a[M, K] w^T + bias +
// residual) with M <= kSmallMMaxRows. It is a classifier head at batch 1-8 (ResNet-50's fc: 1 x 2048 by
// 1000 x 2048, the weights as ONNX's Gemm with transB = 1 stores them).
//
// Why Kiln's own: such a product is a matrix-vector product that reads its weights once (4 MB for ResNet-50's
// fc). cuBLASLt's fastest for it on the H200 was a split-K GEMM on 64 blocks plus a second kernel to add the
// splits (4.9 + 3.0 us, each timed alone by ncu; fourteenth session). Here each warp takes one output column n:
// its lanes read w's row n in 16-byte pieces (the whole warp one 512-byte run a step, several steps in flight)
// and the matching pieces of a's M rows, accumulate M float32 sums, add them across the warp, and apply bias,
// residual and activation in the same launch: one kernel, and no workspace. The matrix multiply kernel times
// it against cuBLASLt's choice and keeps the faster (KILN_GEMM_SMALL_M).
//
// Applies to: float16 or bfloat16 throughout; a row-major [M, K] (rows K apart), w row-major [N, K] (rows K
// apart), K a multiple of 8, a and w 16-byte aligned; bias [N] and a residual of y's shape optional; any
// activation the epilogue knows. Any GPU (plain loads and float arithmetic).
#pragma once
#include <cstdint>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/gemm_rows.h"

namespace kiln::cuda {

constexpr int kSmallMMaxRows = 8;

// The product as the matrix multiply kernel sees it, and its operands' addresses (alignment).
struct SmallMProblem : GemmRows {
  uint64_t a_address = 0, w_address = 0;
};

// Why the kernel cannot compute `p` (a short phrase for the build log), or nullptr when it can.
const char* small_m_gemm_refusal(const SmallMProblem& p);

struct SmallMGemmArgs {
  const void* a = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;      // [n] or null
  const void* residual = nullptr;  // [m, n] or null
  void* y = nullptr;               // [m, n]
  int64_t m = 0, n = 0, k = 0;
  DataType dtype = DataType::kHALF;
  int act = -1;  // the fused activation (epilogue.h's read_fused_activation), -1 none
  float alpha = 0, beta = 0;
  bool programmatic = false;  // launched to start beside the kernel before it (programmatic_launch.h)
  bool allow_next = false;    // lets the next kernel start once its own wait is over (programmatic_launch.h)
};

// Enqueues the kernel on `stream` (the problem must be one small_m_gemm_refusal accepts). False, with the
// launch error's text in *why and no error left pending, when the launch fails.
bool launch_small_m_gemm(cudaStream_t stream, const SmallMGemmArgs& args, std::string* why);

// KILN_GEMM_SMALL_M (candidate_mode.h): one more timed candidate for eligible products, never, or forced.
inline CandidateMode small_m_gemm_mode() { return candidate_mode("KILN_GEMM_SMALL_M"); }

// How many matrix multiply nodes took the kernel (timed, forced or recorded), process-wide: for tests.
int64_t small_m_gemm_chosen();
void count_small_m_gemm_chosen();

}  // namespace kiln::cuda
