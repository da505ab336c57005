// FusedAttention as library GEMMs, for the short sequences of encoders (BERT, ViT) where the flash-style
// kernel in fused_attention.cu is far from the tensor cores' speed. Per chunk of (batch*head) slices:
//   S = scale * Q K^T       cuBLASLt strided-batched, float32 out (fp16/bf16 operands accumulate in float32)
//   P = softmax(S + mask)   attention_softmax.cu, float32 math, P in the input dtype written over S
//   O = P V                 cuBLASLt strided-batched, float32 accumulation, output dtype
// S lives in the context workspace (attention_gemm_plan.h says how it is split). Expected cost for BERT-base
// (batch 64, 12 heads, 128 tokens, fp16): two products of ~1.6 GFLOP each at 200+ TFLOP/s plus ~150 MB of
// score traffic at ~3 TB/s (less when a chunk's scores stay in L2): ~0.05 ms instead of ~0.7 ms.
#pragma once
#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/attention_lt_gemm.h"
#include "backends/fused_attention_layout.h"

namespace kiln::cuda {
struct DeviceInfo;
}

namespace kiln::cuda::kern {

// Scores per chunk the path aims for: half the L2 (so a chunk's scores are still cached when the softmax and
// the second product read them), at least 4 MiB.
size_t attention_chunk_target_bytes(const DeviceInfo& device);

// The path's per-node state: the two products' descriptors and algorithms, per shape. The caller keeps it (in
// FusedAttention's node state, fused_attention.cu: a node has one state slot, shared with the path choice).
struct AttentionGemmState {
  LtBatchedGemms scores, output;
};

// Enqueues the node's attention on ctx.stream() through the GEMM path and returns true, or returns false with
// nothing enqueued when the path does not apply (no cuBLASLt handle or workspace, q, k, v or the output
// without a uniform stride over the (batch*head) slices, as tokens-major tensors with B > 1 and H > 1, scores
// that do not fit, more keys than the softmax holds, or cuBLASLt has no algorithm). Row strides (tokens-major
// or packed rows) become the products' leading dims.
// Never synchronizes or allocates; cuBLASLt's heuristic runs only for shapes `st` has not met before.
bool run_attention_gemm(KernelContext& ctx, const AttentionLayout& L, AttentionGemmState& st);

}  // namespace kiln::cuda::kern
