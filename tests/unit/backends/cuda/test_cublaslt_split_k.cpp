// Split-K variants of cuBLASLt's candidates (backends/cuda/cublaslt/split_k_candidates.h) on a skinny float16
// GEMM like batch-1 inference's (M = 64 rows, K = 1024): every candidate, heuristic or split, must compute the
// product (checked against a float64 reference of the same float16 inputs), and every variant must be what
// the header promises: K split 2, 3, 4 or 8 ways, parts at least kMinKPerSplit deep, a float32 reduction in
// a workspace that fits.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cuda/cublaslt/split_k_candidates.h"
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/library_handles.h"

namespace kiln::cuda {
namespace {

using namespace cudatest;

TEST(CublasLtSplitK, EveryCandidateComputesTheProduct) {
  KILN_REQUIRE_CUDA_DEVICE();
  constexpr int64_t m = 64, n = 96, k = 1024;  // column-major D[m, n] = A[m, k] B[k, n]
  constexpr size_t kWorkspace = 32ull << 20;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> a(m * k), b(k * n);
  for (auto& v : a) v = float_to_half(u(rng));
  for (auto& v : b) v = float_to_half(u(rng));
  std::vector<double> ref(m * n, 0.0);
  double maxref = 0;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += double(half_to_float(a[p * m + i])) * half_to_float(b[j * k + p]);
      ref[j * m + i] = acc;
      maxref = std::max(maxref, std::fabs(acc));
    }

  cublasLtHandle_t lt = nullptr;
  ASSERT_EQ(cublasLtCreate(&lt), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  ASSERT_EQ(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, m, k, m), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, k, n, k), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16F, m, n, m), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulPreference_t pref = nullptr;
  ASSERT_EQ(cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
  size_t ws = kWorkspace;
  ASSERT_EQ(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
            CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulHeuristicResult_t results[16];
  int found = 0;
  ASSERT_EQ(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 16, results, &found), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulPreferenceDestroy(pref);
  ASSERT_GT(found, 0);
  const std::vector<cublasLtMatmulHeuristicResult_t> cands =
      with_split_k_variants(lt, op, la, lb, lc, results, found, k, kWorkspace);
  int heuristic = 0;
  for (int i = 0; i < found; ++i) heuristic += results[i].state == CUBLAS_STATUS_SUCCESS;
  ASSERT_GE(static_cast<int>(cands.size()), heuristic);
  std::cout << "[          ] " << heuristic << " heuristic candidates, " << cands.size() - heuristic
            << " split-K variants\n";

  DeviceBuffer da(a.size() * 2), db(b.size() * 2), dd(m * n * 2), dws(kWorkspace);
  ASSERT_EQ(cudaMemcpy(da.get(), a.data(), a.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(db.get(), b.data(), b.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  cudaStream_t s = test_stream();
  const float alpha = 1.f, beta = 0.f;
  for (size_t c = 0; c < cands.size(); ++c) {
    int32_t split = 1;
    uint32_t scheme = 0;
    size_t written = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&cands[c].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split), &written);
    cublasLtMatmulAlgoConfigGetAttribute(&cands[c].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme),
                                         &written);
    if (static_cast<int>(c) >= heuristic) {  // a variant
      EXPECT_TRUE(split == 2 || split == 3 || split == 4 || split == 8) << "candidate " << c << " split " << split;
      EXPECT_GE(k / split, kMinKPerSplit) << "candidate " << c;
      EXPECT_EQ(scheme, static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)) << "candidate " << c;
      EXPECT_LE(cands[c].workspaceSize, kWorkspace) << "candidate " << c;
    }
    ASSERT_EQ(cudaMemsetAsync(dd.get(), 0xFF, m * n * 2, s), cudaSuccess);  // NaN where nothing is written
    ASSERT_EQ(cublasLtMatmul(lt, op, &alpha, da.get(), la, db.get(), lb, &beta, dd.get(), lc, dd.get(), lc,
                             &cands[c].algo, dws.get(), kWorkspace, s),
              CUBLAS_STATUS_SUCCESS)
        << "candidate " << c << " split " << split;
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    std::vector<uint16_t> d(m * n);
    ASSERT_EQ(cudaMemcpy(d.data(), dd.get(), d.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    int bad = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      const double got = half_to_float(d[i]);
      if (!(std::fabs(got - ref[i]) <= 2e-3 * maxref) && bad++ < 3)
        ADD_FAILURE() << "candidate " << c << " (split " << split << ") element " << i << ": " << got << " vs " << ref[i];
    }
  }
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(lt);
}

}  // namespace
}  // namespace kiln::cuda
#endif
