// What Kiln's own convolution paths (the cuBLASLt GEMM path, the narrow-input and split-K kernels) check alike
// on a node's epilogue inputs (ir/OPS.md: y = act(conv(x, w) + bias + residual)): the bias is [K] and the
// residual has y's shape, both in y's dtype. Each path checks the activation itself: which ones it can apply
// differs (cuBLASLt's epilogues know only ReLU).
#pragma once
#include <cstdint>

#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// nullptr when the node's bias (input 2) and residual (input 3), where present, fit an output of K channels
// in dtype dt; else what is wrong, as a path's refusal says it.
const char* conv_epilogue_inputs_refusal(const KernelContext& ctx, DataType dt, int64_t K);

}  // namespace kiln::cuda
