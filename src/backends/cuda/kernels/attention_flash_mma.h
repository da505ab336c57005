// FusedAttention's flash kernel on the tensor cores (float16/bfloat16, head size D = Dv = 64 or 128, sm_80+):
// FlashAttention-2 style, the scores, probabilities and output accumulator never leave registers. One block
// of 4 warps per (batch*head, 64 query rows), each warp owning 16 rows; key tiles of 64 double-buffered in
// shared memory with cp.async. attention_flash_mma.cu explains the fragment layouts.
//
// It competes with the GEMM path (attention_gemm_path.h) for the shapes both take: fused_attention.cu times
// the two on a node's first run for a shape and keeps the faster.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "backends/fused_attention_layout.h"
#include "kiln/types.h"

namespace kiln::cuda {
struct DeviceInfo;
}

namespace kiln::cuda::kern {

struct FlashAttentionArgs {
  DataType dtype = DataType::kHALF;  // q, k, v and the output
  AttentionLayout L;                 // offsets and strides as attention_layout() fills them, the output's too
  // The tensors' data pointers; the kernel adds L's offsets (a packed tensor's slot) itself.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* mask = nullptr;  // additive, float32/float16/bfloat16, read through L's m_* strides; nullptr: none
  DataType mask_dtype = DataType::kFLOAT;
  void* out = nullptr;
  float scale = 1.0f;
  bool causal = false;  // key j is hidden from query i when j > i + Sk - Sq
  // Lets the next kernel start as this one starts (programmatic_launch.h): only where the executor says that
  // one waits for this one before it reads anything (a split-K GEMM of Kiln's after the attention: it then
  // loads its weights while the attention runs).
  bool allow_next = false;
};

// "" when the kernel runs these arguments on the device, else why not (dtype, head sizes, architecture, shared
// memory, or rows of q / k / v / out not 16-byte aligned: the tiles are staged and stored with 16-byte copies,
// so every matrix start (data pointer, offset, batch and head strides) and row stride must keep that alignment;
// K^T alone is also staged element by element).
std::string flash_attention_unsupported(const FlashAttentionArgs& a, const DeviceInfo& device);

// Enqueues the kernel (the arguments must be supported). Never synchronizes; raises the kernel's shared memory
// limit on its first launch per device (a host call, made on a node's first, eager run).
void launch_flash_attention(const FlashAttentionArgs& a, const DeviceInfo& device, cudaStream_t stream);

}  // namespace kiln::cuda::kern
