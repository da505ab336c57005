// A product as the MatrixMultiply kernel hands it to Kiln's own GEMM kernels (small-M, and the split-K
// convolution kernel as a GEMM): its operands' layout after numpy broadcasting. Each kernel's problem adds what
// else its conditions read.
#pragma once
#include <cstdint>

#include "kiln/types.h"

namespace kiln::cuda {

struct GemmRows {
  DataType dtype = DataType::kFLOAT;
  int64_t m = 0, n = 0, k = 0;  // m: every row of a (its batch folded in)
  bool a_rows_packed = false;   // a is [m, k] with rows k apart (not transposed, one batch or batches folded)
  bool w_rows_of_k = false;     // w is [n, k] with rows k apart (transposed B, no batch of its own)
};

}  // namespace kiln::cuda
