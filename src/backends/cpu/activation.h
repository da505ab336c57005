// The Activation op's math (kernels/elementwise.cpp), shared with the fused epilogues of Convolution and
// MatrixMultiply (y = act(op + bias + residual)) so both compute exactly what an Activation layer would.
#pragma once
#include <cstdint>

#include "backends/cpu/kernel.h"

namespace kiln::cpu {

// A fused epilogue's alpha/beta: attributes `act_alpha` / `act_beta`, with the Activation op's defaults.
void fused_activation_params(const ir::Attrs& a, int64_t type, double* alpha, double* beta);
// y = act(x) over n elements (x == y allowed), in parallel on ctx.pool; fails naming ctx's layer for an
// unknown type.
void apply_activation(KernelContext& ctx, int64_t type, double alpha, double beta, const float* x, float* y, int64_t n);
void apply_activation(KernelContext& ctx, int64_t type, double alpha, double beta, const double* x, double* y,
                      int64_t n);

}  // namespace kiln::cpu
