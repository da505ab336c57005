// What Kiln's own convolution paths (the cuBLASLt GEMM path, the narrow-input and split-K kernels) share on a
// node's tensors (ir/OPS.md: y = act(conv(x, w) + bias + residual)): the check that the bias is [K] and the
// residual has y's shape, both in y's dtype; and, for the two kernels, the node kind they both take, their
// tensors' addresses and whether those are aligned for the kernels' vector loads. Each path checks the
// activation itself: which ones it can apply differs (cuBLASLt's epilogues know only ReLU).
#pragma once
#include <cstdint>

#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// nullptr when the node's bias (input 2) and residual (input 3), where present, fit an output of K channels
// in dtype dt; else what is wrong, as a path's refusal says it.
const char* conv_epilogue_inputs_refusal(const KernelContext& ctx, DataType dt, int64_t K);

// nullptr when the node is what both of Kiln's convolution kernels take before their own conditions: a
// channels-last, ungrouped Convolution with x and w and one output, x, w and y all float16 or all bfloat16, all
// 4-D; else what is wrong, as their refusals say it.
const char* half_channels_last_conv_refusal(const KernelContext& ctx);

// A convolution's tensors as Kiln's own kernels take them (the first member of their arguments): bias and
// residual null where the node has none.
struct ConvTensors {
  const void* x;
  const void* w;
  const void* bias;
  const void* residual;
  void* y;
};
ConvTensors conv_tensors(const KernelContext& ctx);

// Whether x, w, y and the residual are 16-byte aligned and the bias `bias_bytes`-byte aligned (the widths of
// the kernel's loads and stores).
bool conv_tensors_aligned(const KernelContext& ctx, int bias_bytes);
bool conv_tensors_aligned(const ConvTensors& t, int bias_bytes);

}  // namespace kiln::cuda
