// Row-major strided-batched GEMM through cuBLASLt: C[b] = alpha * op(A[b]) * op(B[b]) (+ beta * C[b]) with an
// optional fused epilogue (bias over N, ReLU/GELU). Descriptors and the heuristic's algorithm are cached per
// shape in a LtGemm object, which a kernel keeps in its per-node state.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kiln/types.h"

namespace kiln::cuda {

struct Resources;

enum class Epilogue { kNone, kBias, kRelu, kBiasRelu, kGelu, kBiasGelu };

struct GemmShape {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;          // row-major leading dimensions
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // elements between batches (0: broadcast)
  int64_t batch = 1;
  DataType dtype = DataType::kFLOAT;          // A, B and C
  bool allow_tf32 = false;                    // float32 on tensor cores (10-bit mantissa products)
  Epilogue epilogue = Epilogue::kNone;
  bool operator==(const GemmShape&) const = default;
};

class LtGemm {
 public:
  ~LtGemm();
  // Enqueues the GEMM; bias (length n, dtype of C) when the epilogue has one.
  void run(Resources& res, const GemmShape& s, const void* a, const void* b, void* c, const void* bias = nullptr,
           float alpha = 1.f, float beta = 0.f);

 private:
  GemmShape shape_{};
  bool ready_ = false;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t la_ = nullptr, lb_ = nullptr, lc_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  size_t algo_workspace_ = 0;
  void release();
  void setup(Resources& res, const GemmShape& s);
};

}  // namespace kiln::cuda
