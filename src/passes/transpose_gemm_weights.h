// Half-precision GEMM weights stored [N, K] (op_b TRANSPOSE) instead of [K, N] (op_b NONE).
//
// Why: Kiln's split-K tensor-core kernel (backends/cuda/kernels/splitk_conv_mma.h) runs a GEMM y = a w^T as a 1x1
// convolution, so it needs w as convolution filters are stored: [N, K], each output column's K weights
// contiguous. ONNX's Gemm with transB = 0 and MatMul with an initializer store them [K, N]. cuBLASLt reads either
// layout (op_b TRANSPOSE), so transposing the constant once at build time costs nothing at run time and keeps
// one copy of the weights (no second, [N, K] copy for the kernel: the plan stays within 1.05x of the weights'
// bytes). Float16/bfloat16 only: that kernel takes nothing else, and float32 GEMMs stay as they were.
//
// A node is rewritten when it is a MatrixMultiply with op_a NONE or TRANSPOSE and op_b NONE whose input 1 is a
// 2-D float16/bfloat16 constant [K, N] of input 0's dtype, read by nothing else and no graph output. Input 1
// becomes a new Constant "<old constant's name>/nk" holding the transpose [N, K], op_b becomes TRANSPOSE, and
// the old Constant (now unread) is removed here. Fused inputs (bias, residual) and activation attributes stay
// as they are. A second run finds nothing (op_b is TRANSPOSE now).
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class TransposeGemmWeights : public Pass {
 public:
  std::string name() const override { return "transpose-gemm-weights"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
