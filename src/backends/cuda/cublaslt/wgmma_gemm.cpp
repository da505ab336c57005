#include "backends/cuda/cublaslt/wgmma_gemm.h"

#include <atomic>

#include "backends/cuda/kernels/epilogue.h"
#include "kiln/types.h"

namespace kiln::cuda {

namespace {
std::atomic<int64_t> g_chosen{0};
}  // namespace

const char* wgmma_gemm_refusal(const WgmmaGemmProblem& p, int major, int minor) {
  if (p.dtype != DataType::kHALF && p.dtype != DataType::kBF16) return "not float16 or bfloat16";
  if (!p.a_rows_packed) return "a is not [M, K] with rows K apart";
  if (!p.w_rows_of_k) return "the weights are not [N, K] with rows K apart";
  if (p.m < 1 || p.n < 1) return "no output";
  if (p.n % 8 != 0) return "N not a multiple of 8 (the epilogue stores 16 bytes)";
  if (p.k < kWgmmaChunk || p.k % kWgmmaChunk != 0) return "K not a multiple of 64";
  if (p.m > kWgmmaMaxRows) return "more than 512 rows: cuBLASLt's tiles fill the GPU";
  if (p.n >= (int64_t{1} << 31) || p.k >= (int64_t{1} << 31) || (p.n + 63) / 64 > 65535) return "too large";
  if (!fused_activation_supported(p.act)) return "activation";
  if (major != 9 || minor != 0) return "built for sm_90a (compute capability 9.0) only";
  return nullptr;
}

std::vector<WgmmaConfig> wgmma_configs(const WgmmaGemmProblem& p, WgmmaTile tile, int sms) {
  return wgmma_tile_configs(p.m, p.n, p.k, tile, 2 * int64_t{sms});
}

int64_t wgmma_gemm_chosen() { return g_chosen.load(); }
void count_wgmma_gemm_chosen() { ++g_chosen; }

}  // namespace kiln::cuda
