#include "backends/cuda/cublaslt/split_k_candidates.h"

namespace kiln::cuda {

namespace {

// Whether cuBLASLt can split this algorithm's K with a float32 reduction in the workspace.
bool can_split_k(const cublasLtMatmulAlgo_t& algo) {
  int32_t support = 0;
  uint32_t schemes = 0;
  size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &support, sizeof(support), &written) !=
          CUBLAS_STATUS_SUCCESS ||
      support == 0)
    return false;
  if (cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes),
                                        &written) != CUBLAS_STATUS_SUCCESS)
    return false;
  return (schemes & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE) != 0;
}

int32_t split_of(const cublasLtMatmulAlgo_t& algo) {
  int32_t split = 1;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split), &written) !=
      CUBLAS_STATUS_SUCCESS)
    return 1;
  return split;
}

}  // namespace

std::vector<cublasLtMatmulHeuristicResult_t> with_split_k_variants(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
                                                                   cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                                   cublasLtMatrixLayout_t c,
                                                                   const cublasLtMatmulHeuristicResult_t* results,
                                                                   int found, int64_t k, size_t workspace_bytes) {
  std::vector<cublasLtMatmulHeuristicResult_t> out;
  for (int i = 0; i < found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) out.push_back(results[i]);
  const size_t heuristic = out.size();
  int bases = 0;
  for (size_t i = 0; i < heuristic && bases < kSplitKBases; ++i) {
    const cublasLtMatmulAlgo_t& base = out[i].algo;
    if (split_of(base) != 1 || !can_split_k(base)) continue;
    ++bases;
    for (int32_t split : {2, 3, 4, 8}) {
      if (k / split < kMinKPerSplit) break;
      cublasLtMatmulAlgo_t algo = base;
      const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
      if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split)) !=
              CUBLAS_STATUS_SUCCESS ||
          cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme)) !=
              CUBLAS_STATUS_SUCCESS)
        continue;
      cublasLtMatmulHeuristicResult_t checked{};
      if (cublasLtMatmulAlgoCheck(lt, op, a, b, c, c, &algo, &checked) != CUBLAS_STATUS_SUCCESS ||
          checked.workspaceSize > workspace_bytes)
        continue;
      checked.algo = algo;
      checked.state = CUBLAS_STATUS_SUCCESS;
      out.push_back(checked);
    }
  }
  return out;
}

}  // namespace kiln::cuda
