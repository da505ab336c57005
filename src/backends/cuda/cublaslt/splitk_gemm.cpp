#include "backends/cuda/cublaslt/splitk_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "backends/cuda/kernels/epilogue.h"
#include "backends/cuda/programmatic_launch.h"
#include "kiln/types.h"

namespace kiln::cuda {

namespace {

std::atomic<int64_t> g_chosen{0};

// The refusal for N on `tile`, as a literal (the refusals are phrases that outlive the call).
const char* n_not_a_multiple(SplitKTile tile) { return tile.n == 64 ? "N not a multiple of 64" : "N not a multiple of 32"; }

}  // namespace

const char* splitk_gemm_refusal(const SplitKGemmProblem& p, int sms, int major, SplitKTile tile) {
  if (p.dtype != DataType::kHALF && p.dtype != DataType::kBF16) return "not float16 or bfloat16";
  if (!p.a_rows_packed) return "a is not [M, K] with rows K apart";
  if (!p.w_rows_of_k) return "the weights are not [N, K] with rows K apart";
  if (p.m < 1 || p.n < 1) return "no output";
  if (p.k < kSplitKChunk || p.k % kSplitKChunk != 0) return "K not a multiple of 64";
  if (p.n % tile.n != 0) return n_not_a_multiple(tile);
  if (!fused_activation_supported(p.act)) return "activation";
  if (major < 9) return "thread block clusters need sm_90 or newer";
  const SplitKConvGeometry g = splitk_gemm_geometry(p, tile);
  if (!splitk_within_limits(g)) return "too large";
  if (g.tiles() > static_cast<int64_t>(std::max(sms, 1)) * splitk_blocks_per_sm(tile))
    return "its tiles fill the GPU at one split";
  return nullptr;
}

SplitKConvGeometry splitk_gemm_geometry(const SplitKGemmProblem& p, SplitKTile tile) {
  SplitKConvGeometry g;
  g.tile = tile;
  g.N = 1;
  g.H = 1;
  g.W = p.m;
  g.C = p.k;
  g.K = p.n;
  g.OH = 1;
  g.OW = p.m;
  g.kh = 1;
  g.kw = 1;
  g.act = p.act;
  g.alpha = p.alpha;
  g.beta = p.beta;
  g.programmatic = programmatic_launch_enabled();
  return g;
}

std::vector<SplitKTile> splitk_gemm_tiles() {
  constexpr const char* kVariable = "KILN_GEMM_SPLITK_TILE";
  const char* value = std::getenv(kVariable);
  std::vector<SplitKTile> out;
  for (SplitKTile t : kSplitKTiles)
    if (!value || !*value || t.name() == value) out.push_back(t);
  if (out.empty())
    throw Error(std::string(kVariable) + "=" + value + ": expected 64x32, 64x64 or 128x64 (the split-K kernel's " +
                "only tile the matrix multiply may take), or unset (every tile)");
  return out;
}

int64_t splitk_gemm_chosen() { return g_chosen.load(); }
void count_splitk_gemm_chosen() { ++g_chosen; }

}  // namespace kiln::cuda
