// The softmax step of FusedAttention's GEMM path: for each row of one chunk of float32 scores (already
// scale * q k^T, written by cuBLASLt), adds the mask, applies the causal limit, takes a stable softmax in float32
// and writes the probabilities P in the output dtype over the scores, in place.
//
// In place: P row r starts at the same byte as S row r and is at most as long (sizeof(T) <= 4), so it never
// reaches another row; within a row every thread has read its scores (and the row's max and sum have been
// reduced across the threads of the row) before any thread writes. P therefore has the leading dimension
// ld_s * 4 / sizeof(T) elements and its slices are slice_floats * 4 / sizeof(T) elements apart.
// A row with no visible key (every score -inf) gets P = 0, so its output row is 0, as on the CPU.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kiln/types.h"

namespace kiln::cuda::kern {

struct AttentionSoftmaxArgs {
  float* scores = nullptr;  // the chunk's first score row (32-byte aligned rows)
  int64_t slices = 0;       // slices in the chunk
  int64_t first_slice = 0;  // flattened (batch*head) index of the chunk's first slice
  int64_t H = 1, Sq = 0, Sk = 0, ld_s = 0, slice_floats = 0;
  const void* mask = nullptr;  // additive, read at b*m_sb + h*m_sh + i*m_si + j*m_sj; nullptr: none
  DataType mask_dtype = DataType::kFLOAT;
  int64_t m_sb = 0, m_sh = 0, m_si = 0, m_sj = 0;
  bool causal = false;  // key j is hidden from query i when j > i + Sk - Sq
};

// Enqueues the kernel for probabilities of dtype `p_dtype` (float32, float16 or bfloat16); Sk must be at most
// kAttentionGemmMaxKeys (attention_gemm_plan.h).
void launch_attention_softmax(DataType p_dtype, const AttentionSoftmaxArgs& args, cudaStream_t stream);

}  // namespace kiln::cuda::kern
