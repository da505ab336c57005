// Split-K variants of cuBLASLt's heuristic candidates, for the tactic timing of a GEMM shape (lt_gemm.cpp).
// Why: inference GEMMs are often skinny (batch 1: M = 128-197 token rows) or have few output tiles (an
// N = 768 projection), so the heuristic's kernels fill only part of the H200's 132 SMs; splitting K over
// more blocks fills them. The heuristic ranks by a model and rarely offers such variants itself, so the
// first few candidates that support split-K are tried again with K split 2, 3, 4 and 8 ways, each part
// at least kMinKPerSplit deep. Partial sums are reduced in the compute type (float32) in the workspace: the
// in-place and output-type schemes would round partial sums to float16. Each variant must pass
// cublasLtMatmulAlgoCheck with a workspace that fits; timing then keeps it only where it is faster.
// KILN_GEMM_SPLIT_K=0 leaves the variants out (lt_gemm.cpp), to measure what they give.
#pragma once
#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::cuda {

constexpr int kSplitKBases = 4;         // heuristic candidates that get split-K variants
constexpr int64_t kMinKPerSplit = 128;  // shallower parts cost more in reduction than they gain

// The heuristic's successful results followed by the split-K variants of the first kSplitKBases of them.
// a/b/c: the descriptors the results were found for (cuBLASLt's own A, B, and C = D).
std::vector<cublasLtMatmulHeuristicResult_t> with_split_k_variants(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
                                                                   cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                                   cublasLtMatrixLayout_t c,
                                                                   const cublasLtMatmulHeuristicResult_t* results,
                                                                   int found, int64_t k, size_t workspace_bytes);

}  // namespace kiln::cuda
