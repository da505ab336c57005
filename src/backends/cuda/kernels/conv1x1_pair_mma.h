// Kiln's tensor-core kernel for a Conv1x1Pair (ir/ops/conv1x1_pair.h): two channels-last 1x1 convolutions
// back to back, y1 = act1(x w1^T + b1 + r1) and y2 = act2(y1 w2^T + b2), in one pass over the pixels.
//
// Why Kiln's own: in ResNet-50 at batch 128 the last 1x1 of a bottleneck block (64 -> 256 channels, with the
// residual) and the first 1x1 of the next block (256 -> 64) are both memory-bound (the H200 runs each at
// HBM bandwidth through cuBLASLt: 119 and 67 us in layer1). Apart, the second reads back the 256-channel y1
// the first just wrote (205 MB at batch 128, ~52 us). Here each warp keeps its 16 pixels' y1 on chip: it
// writes y1 once (the next block's residual) and multiplies it by w2 straight from its registers, so the pair
// moves x + r1 + y1 + y2 instead of that plus y1 again.
//
// Applies to: x [N, H, W, 64], w1 [256, 1, 1, 64], w2 [C2, 1, 1, 256] with C2 64 or 128 (ResNet's layer1
// pairs, and layer1's last into layer2's first), float16 or bfloat16 throughout, optional biases [256] and
// [C2], an optional residual of y1's shape, ReLU or no activation on either. The weights of both stay in
// shared memory for the block's life (up to 102 KiB), so wider pairs (layer2's 128 -> 512 -> 128) would need
// them streamed: not done. Needs sm_80 or newer (mma.sync, ldmatrix, cp.async) and 211 KiB of shared memory a
// block (the H100/H200 opt-in limit is 227 KiB).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

namespace kiln::cuda {

// Whether the kernel handles this Conv1x1Pair node with these input types and shapes (batch and spatial dims
// may be -1): the conditions above, read from the node's attributes and the weights' shapes. Else false with
// the reason in *why (when given).
bool conv1x1_pair_fits(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs, std::string* why);

// Whether the tensors' addresses suit the kernel's 16-byte loads and stores (4-byte for the biases): they may
// change from run to run.
bool conv1x1_pair_aligned(const KernelContext& ctx);

// Enqueues the pair on ctx.stream() (the node must fit and be aligned). Never synchronizes or allocates.
void enqueue_conv1x1_pair(KernelContext& ctx);

}  // namespace kiln::cuda
