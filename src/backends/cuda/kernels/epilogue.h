// The fused epilogue of Convolution and MatrixMultiply (ir/OPS.md) as one small CUDA kernel, for what the
// libraries cannot fuse themselves (cuDNN fuses only ReLU, cuBLASLt only ReLU and tanh-GELU):
// y = act(y + bias + residual) in place, computed in float32 and stored in y's dtype.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ir/attrs.h"
#include "kiln/types.h"

namespace kiln::cuda {

struct BiasAct {
  const void* bias = nullptr;      // y's dtype; y[i] gets bias[(i / inner) % channels]
  int64_t channels = 1, inner = 1; // NCHW channel bias: channels = K, inner = spatial size; last-dim bias: N, 1
  const void* residual = nullptr;  // y's dtype and shape
  int act = -1;                    // ActivationType, -1 = none
  float alpha = 0, beta = 0;
};

// The node's fused activation (`activation`, `act_alpha`, `act_beta` with the Activation op's defaults).
void read_fused_activation(const ir::Attrs& a, BiasAct* p);
// An activation type the kernel knows (or -1).
bool fused_activation_supported(int64_t type);
// Enqueues y = act(y + bias + residual) over n elements of y (float32, float16 or bfloat16); nothing when
// there is nothing to apply. Throws kiln::Error for another dtype.
void launch_bias_act(cudaStream_t s, DataType dt, void* y, int64_t n, const BiasAct& p);

}  // namespace kiln::cuda
