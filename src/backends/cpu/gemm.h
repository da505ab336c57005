// Single-precision GEMM for the CPU backend: cache-blocked (GotoBLAS-style packing with KC/MC/NC
// blocking), a register-blocked 6x16 micro-kernel (AVX2/FMA when the CPU has it, chosen at run time;
// portable C++ otherwise), multithreaded over M/N blocks and over the batch.
#pragma once
#include <cstdint>

#include "backends/cpu/thread_pool.h"

namespace kiln::cpu {

// C[m,n] = alpha * sum_k op(A)[m,k] * op(B)[k,n] + beta * C[m,n]; row-major with leading dims.
// op(A) is A (M x K, lda >= K) or, with trans_a, the transpose of A stored K x M (lda >= M); likewise B.
// beta == 0 means C is not read (may hold NaN garbage). pool == nullptr runs on the calling thread.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool);

// Batched strided variant used by MatMul: for b in [0,batch): C_b = alpha op(A_b) op(B_b) (+ beta C_b),
// X_b = X + b * stride_x. A stride of 0 broadcasts that operand over the batch.
void sgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                           int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                           int64_t batch, ThreadPool* pool);

namespace detail {

// Two-level strided batch (e.g. images x groups in convolution): for o < outer, i < inner, operand X of
// problem (o, i) is X + o * outer_stride_x + i * inner_stride_x.
struct GemmBatch2 {
  int64_t outer = 1, inner = 1;
  int64_t outer_stride_a = 0, inner_stride_a = 0;
  int64_t outer_stride_b = 0, inner_stride_b = 0;
  int64_t outer_stride_c = 0, inner_stride_c = 0;
};
void sgemm_batched2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                    const GemmBatch2& batch, ThreadPool* pool);

// Which micro-kernels run: "avx2" or "generic". force_generic(true) selects the portable kernels (tests).
const char* gemm_isa();
void gemm_force_generic(bool on);

}  // namespace detail

}  // namespace kiln::cpu
