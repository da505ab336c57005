// Row-major strided-batched GEMM through cuBLASLt: D[b] = epilogue(alpha * op(A[b]) * op(B[b]) + beta * C[b])
// with an optional fused epilogue (bias over N, ReLU / tanh-GELU) and C optionally distinct from D (a residual).
// Descriptors and the algorithm are cached per shape in a LtGemm object, which a kernel keeps in its per-node
// state: the fastest of the heuristic's first candidates and their split-K variants (split_k_candidates.h),
// timed on the first (eager) call for the shape.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln::cuda {

struct Resources;
class TacticTies;

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
  // The smallest alignment (bytes, a power of two up to 256) of every matrix pointer and per-batch offset the
  // calls use: the heuristic then picks only algorithms that work with it (cuBLASLt assumes 256 otherwise).
  int64_t align = 256;
  bool operator==(const GemmShape&) const = default;
};

// The timing-cache text of a GEMM problem (every field that decides which algorithms apply).
std::string gemm_problem(const GemmShape& s);

// The largest power of two (up to 256) dividing every address / byte offset given.
int64_t common_alignment(std::initializer_list<uint64_t> values);

class LtGemm {
 public:
  ~LtGemm();
  // Enqueues D = epilogue(alpha * A B + beta * C): D is `c`; C is `c_in` (same layout as D; defaults to D).
  // bias (length n: our row-major N, dtype of D) when the epilogue has one; the same bias serves every batch.
  void run(Resources& res, const GemmShape& s, const void* a, const void* b, void* c, const void* bias = nullptr,
           float alpha = 1.f, float beta = 0.f, const void* c_in = nullptr);

 private:
  GemmShape shape_{};
  bool ready_ = false;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t la_ = nullptr, lb_ = nullptr, lc_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  size_t algo_workspace_ = 0;
  void release();
  const void* bias_ = nullptr;  // the bias pointer the descriptor holds
  static constexpr int kCandidates = 16;  // heuristic results timed when a shape is first seen (plus split-K variants)
  // The first call's operands, used to time the candidates; allowed false: take the heuristic's first.
  struct Timing {
    bool allowed = false;
    const void *a = nullptr, *b = nullptr;
    void* c = nullptr;
    const void* c_in = nullptr;
    float alpha = 1.f, beta = 0.f;
  };
  void setup(Resources& res, const GemmShape& s, const void* bias, const Timing& timing);
  // The index of the fastest candidate; its time in ms in *best_ms (-1 when none ran), every candidate's in
  // *times (-1 for one that did not run).
  int fastest(Resources& res, const cublasLtMatmulHeuristicResult_t* results, int found, const Timing& t,
              float* best_ms = nullptr, std::vector<float>* times = nullptr);
  std::string report_tie(TacticTies& ties, const std::string& key,
                         const std::vector<cublasLtMatmulHeuristicResult_t>& candidates, const std::vector<float>& times,
                         float best_ms);
  bool use_recorded(Resources& res, const std::string& key);
};

}  // namespace kiln::cuda
