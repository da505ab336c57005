// A product as the MatrixMultiply kernel hands it to Kiln's own GEMM kernels (small-M, and the split-K
// convolution kernel as a GEMM): its operands' layout after numpy broadcasting. Each kernel's problem adds what
// else its conditions read.
#pragma once
#include <cstdint>

#include "kiln/types.h"

namespace kiln::cuda {

// What Kiln's GEMM kernels launch with (the small-M kernel): y[m, n] = act(a[m, k] w[n, k]^T + bias[n] +
// residual[m, n]), every tensor of `dtype`, and how the launch meets the kernels around it.
struct GemmKernelArgs {
  const void* a = nullptr;         // [m, k], rows k apart
  const void* w = nullptr;         // [n, k], rows k apart
  const void* bias = nullptr;      // [n] or null
  const void* residual = nullptr;  // [m, n] or null
  void* y = nullptr;               // [m, n]
  int64_t m = 0, n = 0, k = 0;
  DataType dtype = DataType::kHALF;
  int act = -1;  // the fused activation (epilogue.h's read_fused_activation), -1 none
  float alpha = 0, beta = 0;
  bool programmatic = false;  // launched to start beside the kernel before it (programmatic_launch.h)
  bool allow_next = false;    // lets the next kernel start once its own wait is over (programmatic_launch.h)
};

struct GemmRows {
  DataType dtype = DataType::kFLOAT;
  int64_t m = 0, n = 0, k = 0;  // m: every row of a (its batch folded in)
  bool a_rows_packed = false;   // a is [m, k] with rows k apart (not transposed, one batch or batches folded)
  bool w_rows_of_k = false;     // w is [n, k] with rows k apart (transposed B, no batch of its own)
};

}  // namespace kiln::cuda
