// The batched products of FusedAttention's GEMM path through cuBLASLt, in cuBLASLt's own column-major terms.
// Why not LtGemm (cublaslt/lt_gemm.h): the scores product writes float32 from float16/bfloat16 operands
// (LtGemm has one dtype for A, B and C), it may use only the part of the workspace the scores leave free
// (LtGemm takes the whole context workspace), and one node meets two shapes per run (full chunks and the
// shorter last one), so descriptors and algorithms are cached per shape, not for the latest shape only.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kiln/types.h"

namespace kiln::cuda::kern {

// Per batch, column-major: C[m x n] = alpha * op(A) * B, op(A) = A (stored m x k) or A^T (stored k x m);
// B stored k x n. Leading dims and batch strides in elements of the matrix's own dtype.
struct LtBatchedShape {
  bool trans_a = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // 0: every batch uses the same matrix
  int64_t batch = 1;
  DataType ab_dtype = DataType::kFLOAT;  // A and B
  DataType c_dtype = DataType::kFLOAT;   // C
  bool tf32 = false;                     // float32 on TF32 tensor cores
  int64_t align = 256;                   // bytes every A, B and C pointer of every batch is aligned to
  size_t workspace_bytes = 0;            // scratch the algorithm may use
  bool operator==(const LtBatchedShape&) const = default;
};

class LtBatchedGemms {
 public:
  LtBatchedGemms();  // out of line, with the destructor: Entry is complete only in the .cpp
  ~LtBatchedGemms();
  LtBatchedGemms(const LtBatchedGemms&) = delete;
  LtBatchedGemms& operator=(const LtBatchedGemms&) = delete;

  // Whether cuBLASLt has an algorithm for the shape. The first call for a shape makes its descriptors and asks
  // the heuristic (host work only); later calls find the cached answer, a refusal included.
  bool prepare(cublasLtHandle_t lt, const LtBatchedShape& s);
  // Enqueues one product on `stream`; the shape must have been prepared with success. Never synchronizes.
  void run(cublasLtHandle_t lt, const LtBatchedShape& s, float alpha, const void* a, const void* b, void* c,
           void* workspace, cudaStream_t stream);

 private:
  struct Entry;
  Entry* find(const LtBatchedShape& s);  // moves a hit to the back (most recently used)
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace kiln::cuda::kern
