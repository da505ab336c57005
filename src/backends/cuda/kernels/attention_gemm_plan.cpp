#include "backends/cuda/kernels/attention_gemm_plan.h"

#include <algorithm>
#include <limits>

namespace kiln::cuda::kern {

namespace {

constexpr int64_t kRowAlignFloats = 8;     // 32 bytes
constexpr int64_t kSliceAlignFloats = 64;  // 256 bytes
constexpr size_t kAlign = 256;
// cuBLASLt's share of the workspace: strided-batched products of this size rarely ask for any (no split-K),
// so a little is enough and the rest holds scores.
constexpr size_t kLtWorkspaceMax = 4ull << 20;

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

AttentionGemmPlan refuse(AttentionGemmPlan p, std::string why) {
  p.use = false;
  p.why_not = std::move(why);
  return p;
}

}  // namespace

int64_t uniform_slice_stride(int64_t sb, int64_t sh, int64_t B, int64_t H) {
  if (H == 1) return B == 1 ? 0 : sb;
  if (B > 1 && sb != H * sh) return -1;
  return sh;
}

AttentionGemmPlan plan_attention_gemm(const AttentionLayout& L, size_t workspace_bytes, size_t chunk_target_bytes) {
  AttentionGemmPlan p;
  p.slices = L.B * L.H;
  if (p.slices <= 0 || L.Sq <= 0 || L.Sk <= 0 || L.D <= 0 || L.Dv <= 0)
    return refuse(p, "an empty dimension (the direct kernel writes the zeros)");
  if (L.Sk > kAttentionGemmMaxKeys)
    return refuse(p, std::to_string(L.Sk) + " keys: the softmax kernel holds at most " +
                         std::to_string(kAttentionGemmMaxKeys));
  p.q_stride = uniform_slice_stride(L.q_sb, L.q_sh, L.B, L.H);
  p.k_stride = uniform_slice_stride(L.k_sb, L.k_sh, L.B, L.H);
  p.v_stride = uniform_slice_stride(L.v_sb, L.v_sh, L.B, L.H);
  if (p.q_stride < 0 || p.k_stride < 0 || p.v_stride < 0)
    return refuse(p, "q, k or v has no uniform stride over the (batch*head) slices");

  p.ld_s = round_up(L.Sk, kRowAlignFloats);
  const size_t lt_want = std::min(kLtWorkspaceMax, workspace_bytes / 4);
  if (workspace_bytes < lt_want + kAlign) return refuse(p, "no workspace");
  p.lt_offset = (workspace_bytes - lt_want) / kAlign * kAlign;
  p.lt_bytes = workspace_bytes - p.lt_offset;
  // One slice's scores must fit before the product Sq * ld_s is formed (it could overflow for absurd sizes).
  const size_t row_bytes = static_cast<size_t>(p.ld_s) * sizeof(float);
  if (static_cast<size_t>(L.Sq) > p.lt_offset / row_bytes)
    return refuse(p, "one slice's scores do not fit in the workspace");
  p.slice_floats = round_up(L.Sq * p.ld_s, kSliceAlignFloats);
  const size_t slice_bytes = static_cast<size_t>(p.slice_floats) * sizeof(float);
  const int64_t fit = static_cast<int64_t>(p.lt_offset / slice_bytes);
  if (fit < 1) return refuse(p, "one slice's scores do not fit in the workspace");
  const int64_t target = std::max<int64_t>(1, static_cast<int64_t>(chunk_target_bytes / slice_bytes));
  const int64_t most = std::min({fit, target, static_cast<int64_t>(std::numeric_limits<int32_t>::max())});
  // Equal chunks (the last one shorter by less than one per chunk): every chunk keeps the GPU equally busy.
  p.chunks = (p.slices + most - 1) / most;
  p.per_chunk = (p.slices + p.chunks - 1) / p.chunks;
  p.chunks = (p.slices + p.per_chunk - 1) / p.per_chunk;
  p.use = true;
  return p;
}

}  // namespace kiln::cuda::kern
