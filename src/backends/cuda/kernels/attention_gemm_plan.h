// Whether FusedAttention can run as library GEMMs (attention_gemm_path.cpp) and how the scores are split into
// chunks that fit the context's workspace. Pure host arithmetic over the attention layout, so it is tested
// without a GPU and the GPU tests can tell which path a case takes.
//
// The scores S of one (batch*head) slice are float32 rows of ld_s floats (Sk rounded up so every row starts
// 32-byte aligned, which the softmax kernel's float4 loads need), slices slice_floats apart (rounded up to
// 256 bytes, the alignment cuBLASLt likes best). The probabilities P are written over S in place (a P row
// never reaches past its S row, see attention_softmax.h), so one chunk needs slice_floats * 4 bytes per slice.
// The workspace is split: scores first, cuBLASLt's own scratch at the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/fused_attention_layout.h"

namespace kiln::cuda::kern {

// The softmax kernel keeps a whole row of scores in registers: up to this many keys.
constexpr int64_t kAttentionGemmMaxKeys = 8192;

struct AttentionGemmPlan {
  bool use = false;
  std::string why_not;  // when !use: the condition that failed
  int64_t slices = 0;   // B * H
  // Elements between the q / k / v matrices of consecutive (batch*head) slices; 0 when all slices share one.
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  int64_t ld_s = 0;          // floats between score rows
  int64_t slice_floats = 0;  // floats between score slices
  int64_t per_chunk = 0;     // slices per chunk; the last chunk holds the rest
  int64_t chunks = 0;
  size_t lt_offset = 0;         // where cuBLASLt's scratch starts in the workspace (bytes, 256-aligned)
  size_t lt_bytes = 0;          // and its size
  int64_t chunk_slices(int64_t c) const { return c + 1 < chunks ? per_chunk : slices - c * per_chunk; }
};

// The element stride between consecutive flattened (batch*head) slices of a tensor whose slice (b, h) starts
// at b * sb + h * sh, or -1 when there is none (e.g. a batch broadcast over distinct heads).
int64_t uniform_slice_stride(int64_t sb, int64_t sh, int64_t B, int64_t H);

// The plan for a layout, a workspace of workspace_bytes and chunks of about chunk_target_bytes of scores (the
// caller picks that from the L2 size: a chunk whose scores stay in L2 is read back by the softmax and the
// second GEMM without a trip to DRAM).
AttentionGemmPlan plan_attention_gemm(const AttentionLayout& L, size_t workspace_bytes, size_t chunk_target_bytes);

}  // namespace kiln::cuda::kern
