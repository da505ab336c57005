// The CUDA Gather with a fused addend (ir/OPS.md, input 2; written by passes/fuse_gather_addend): rows gathered
// along axis 0 plus the addend, in one kernel instead of a Gather and an ElementWise SUM. It is what GPT-2
// starts with: its token embedding rows plus its position embedding (at batch 1 on the H200 the two kernels
// took 4.5 + 3.3 us). gather.cu's Gather kernel hands such nodes here after checking host-known indices.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cuda/kernel.h"

namespace kiln::cuda::kern {

// Whether the fused kernel takes this Gather node and its inputs (data, indices, addend; shapes may hold -1).
bool supports_gather_addend(const ir::Node& node, const std::vector<ir::TensorInfo>& in);

// Enqueues the gather of ctx's rows along `axis` (normalized; must be 0) plus the addend (input 2); fails
// naming the layer when the node is not one the kernel takes.
void gather_rows_with_addend(KernelContext& ctx, int64_t axis);

}  // namespace kiln::cuda::kern
