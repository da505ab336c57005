#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

constexpr float kSentinel = 12345.0f;

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.1f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = (rng() & 1) ? d(rng) : -d(rng);  // never zero
  return v;
}

struct Case {
  bool ta = false, tb = false;
  int64_t M = 1, N = 1, K = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // leading dim = width + pad
  int64_t batch = 1;
  bool broadcast_a = false;  // stride_a = 0
};

std::string describe(const Case& c) {
  return std::string(c.ta ? "T" : "N") + (c.tb ? "T" : "N") + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " batch=" + std::to_string(c.batch) +
         " pads=" + std::to_string(c.pad_a) + "," + std::to_string(c.pad_b) + "," + std::to_string(c.pad_c);
}

// Runs the case through sgemm (batch 1) or sgemm_strided_batched and compares with a double reference.
void check(const Case& c, ThreadPool* pool, uint32_t seed = 7) {
  SCOPED_TRACE(describe(c));
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad_a, ldb = b_cols + c.pad_b, ldc = c.N + c.pad_c;
  const int64_t stride_a = c.broadcast_a ? 0 : a_rows * lda + 5, stride_b = b_rows * ldb + 3,
                stride_c = c.M * ldc + 11;
  const auto A = random_vec(static_cast<size_t>(stride_a * (c.batch - 1) + a_rows * lda), seed);
  const auto B = random_vec(static_cast<size_t>(stride_b * (c.batch - 1) + b_rows * ldb), seed + 1);
  auto C0 = random_vec(static_cast<size_t>(stride_c * (c.batch - 1) + c.M * ldc), seed + 2);
  auto C = C0;
  // Outside the logical C, sentinels (must survive); inside with beta == 0, NaN (must not be read).
  for (size_t i = 0; i < C.size(); ++i) C[i] = kSentinel;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        const size_t at = static_cast<size_t>(b * stride_c + i * ldc + j);
        C[at] = c.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : C0[at];
      }
  if (c.batch == 1 && !c.broadcast_a) {
    sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc, pool);
  } else {
    sgemm_strided_batched(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, stride_a, B.data(), ldb, stride_b,
                          c.beta, C.data(), ldc, stride_c, c.batch, pool);
  }
  int bad = 0;
  for (int64_t b = 0; b < c.batch; ++b) {
    const float* a = A.data() + b * stride_a;
    const float* bb = B.data() + b * stride_b;
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double ref = 0.0, mag = 0.0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = c.ta ? a[k * lda + i] : a[i * lda + k];
          const double y = c.tb ? bb[j * ldb + k] : bb[k * ldb + j];
          ref += x * y;
          mag += std::fabs(x * y);
        }
        const size_t at = static_cast<size_t>(b * stride_c + i * ldc + j);
        ref *= c.alpha;
        mag *= std::fabs(c.alpha);
        double tol = 1e-5 * mag / std::sqrt(static_cast<double>(std::max<int64_t>(c.K, 1)));
        if (c.beta != 0.0f) {
          ref += static_cast<double>(c.beta) * C0[at];
          tol += 1e-6 * std::fabs(static_cast<double>(c.beta) * C0[at]);
        }
        tol += 1e-30;
        const float got = C[at];
        if (!std::isfinite(got) || std::fabs(got - ref) > tol) {
          if (++bad <= 5)
            ADD_FAILURE() << "b=" << b << " i=" << i << " j=" << j << " got " << got << " want " << ref
                          << " tol " << tol;
        }
      }
  }
  // Nothing outside the logical matrices was written.
  int64_t touched = 0;
  for (size_t i = 0; i < C.size(); ++i) {
    const int64_t b = static_cast<int64_t>(i) / stride_c, r = static_cast<int64_t>(i) % stride_c;
    const bool inside = b < c.batch && r < c.M * ldc && r % ldc < c.N;
    if (!inside && C[i] != kSentinel) ++touched;
  }
  EXPECT_EQ(touched, 0) << "elements outside C written";
  EXPECT_EQ(bad, 0);
}

class GemmTest : public ::testing::TestWithParam<bool> {  // param: force the portable kernels
 protected:
  void SetUp() override { detail::gemm_force_generic(GetParam()); }
  void TearDown() override { detail::gemm_force_generic(false); }
};

TEST_P(GemmTest, OddSizesAllTransposes) {
  ThreadPool pool(3);
  const int64_t sizes[] = {1, 3, 17, 63, 129};
  for (int t = 0; t < 4; ++t)
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : sizes) {
          Case c;
          c.ta = t & 1;
          c.tb = t & 2;
          c.M = M, c.N = N, c.K = K;
          check(c, (M + N + K) % 2 ? &pool : nullptr);
        }
}

TEST_P(GemmTest, LeadingDimsAlphaBeta) {
  ThreadPool pool(2);
  const float alphas[] = {1.0f, -0.75f, 2.5f};
  const float betas[] = {0.0f, 1.0f, 0.5f, -1.25f};
  int i = 0;
  for (int t = 0; t < 4; ++t)
    for (float alpha : alphas)
      for (float beta : betas) {
        Case c;
        c.ta = t & 1;
        c.tb = t & 2;
        c.M = 37 + i % 5, c.N = 45 + 2 * (i % 3), c.K = 29 + i % 7;
        c.alpha = alpha, c.beta = beta;
        c.pad_a = 3, c.pad_b = 7, c.pad_c = 5 + i % 2;
        check(c, &pool, 100 + i++);
      }
}

TEST_P(GemmTest, CrossesBlockSizes) {
  ThreadPool pool(2);
  // K above the KC panel depth, M above the MC block, N above the NC panel, with beta != 0 so the
  // K-blocked accumulation into C is checked.
  for (int t = 0; t < 4; ++t) {
    Case c;
    c.ta = t & 1;
    c.tb = t & 2;
    c.M = 31, c.N = 3089, c.K = 300, c.beta = 0.5f, c.pad_c = 1;
    check(c, &pool, 200 + t);
    c.M = 300, c.N = 40, c.K = 530, c.beta = 0.0f, c.pad_a = 2;
    check(c, t % 2 ? &pool : nullptr, 300 + t);
  }
}

TEST_P(GemmTest, SkinnyBatchOneShapes) {
  ThreadPool pool(2);
  for (int64_t M : {1, 2, 3, 5, 8, 9, 16, 24, 25})
    for (int t = 0; t < 4; ++t) {
      Case c;
      c.ta = t & 1;
      c.tb = t & 2;
      c.M = M, c.N = 1000, c.K = M == 1 || M == 16 ? 2048 : 260;
      c.beta = M % 2 ? 0.0f : 1.0f;
      check(c, &pool, 400 + static_cast<uint32_t>(M));
      // Width not a multiple of the micro-kernel's, K not a multiple of 8.
      c.N = 33, c.K = 203, c.pad_b = 1;
      check(c, &pool, 500 + static_cast<uint32_t>(M));
    }
  // Tall and thin: few columns.
  for (int t = 0; t < 4; ++t) {
    Case c;
    c.ta = t & 1;
    c.tb = t & 2;
    c.M = 2000, c.N = 3, c.K = 70;
    check(c, &pool, 600 + t);
  }
}

TEST_P(GemmTest, Batched) {
  ThreadPool pool(3);
  for (int t = 0; t < 4; ++t)
    for (int64_t batch : {1, 2, 5, 12}) {
      Case c;
      c.ta = t & 1;
      c.tb = t & 2;
      c.M = 33, c.N = 20, c.K = 19, c.batch = batch, c.beta = batch % 2 ? 0.0f : 0.25f, c.alpha = 1.5f;
      c.pad_a = 1, c.pad_c = 2;
      check(c, &pool, 700 + static_cast<uint32_t>(batch));
      c.broadcast_a = true;  // shared weights
      c.M = 7, c.N = 130, c.K = 64;
      check(c, batch % 2 ? nullptr : &pool, 800 + static_cast<uint32_t>(batch));
    }
}

TEST_P(GemmTest, DegenerateSizes) {
  ThreadPool pool(2);
  // K == 0: C = beta * C.
  std::vector<float> C = {1.0f, 2.0f, 3.0f, 4.0f};
  float dummy = 0.0f;
  sgemm(false, false, 2, 2, 0, 1.0f, &dummy, 1, &dummy, 2, 0.5f, C.data(), 2, &pool);
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
  C.assign(4, std::numeric_limits<float>::quiet_NaN());
  sgemm(false, false, 2, 2, 0, 1.0f, &dummy, 1, &dummy, 2, 0.0f, C.data(), 2, &pool);
  EXPECT_EQ(C, (std::vector<float>(4, 0.0f)));
  // M == 0 / N == 0 / batch == 0: nothing happens.
  C.assign(4, 7.0f);
  sgemm(false, false, 0, 2, 3, 1.0f, &dummy, 3, &dummy, 2, 0.0f, C.data(), 2, &pool);
  sgemm(false, false, 2, 0, 3, 1.0f, &dummy, 3, &dummy, 0, 0.0f, C.data(), 2, &pool);
  sgemm_strided_batched(false, false, 2, 2, 1, 1.0f, &dummy, 1, 0, &dummy, 2, 0, 0.0f, C.data(), 2, 4, 0, &pool);
  EXPECT_EQ(C, (std::vector<float>(4, 7.0f)));
}

TEST_P(GemmTest, ManyThreadCounts) {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadPool pool(threads);
    Case c;
    c.M = 97, c.N = 211, c.K = 300, c.beta = -0.5f;
    check(c, &pool, 900 + static_cast<uint32_t>(threads));
    c.tb = true, c.M = 5, c.N = 1031, c.K = 77;
    check(c, &pool, 950 + static_cast<uint32_t>(threads));
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, GemmTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Generic" : "Native"; });

TEST(Gemm, Batched2Strides) {
  // 3 images x 2 groups of 1x1 convolution: A (weights) depends only on the group.
  const int64_t G = 2, Kg = 5, Cg = 4, HW = 37, N = 3;
  const auto W = random_vec(static_cast<size_t>(G * Kg * Cg), 1);
  const auto X = random_vec(static_cast<size_t>(N * G * Cg * HW), 2);
  std::vector<float> Y(static_cast<size_t>(N * G * Kg * HW), std::numeric_limits<float>::quiet_NaN());
  detail::GemmBatch2 b;
  b.outer = N, b.inner = G;
  b.outer_stride_a = 0, b.inner_stride_a = Kg * Cg;
  b.outer_stride_b = G * Cg * HW, b.inner_stride_b = Cg * HW;
  b.outer_stride_c = G * Kg * HW, b.inner_stride_c = Kg * HW;
  ThreadPool pool(2);
  detail::sgemm_batched2(false, false, Kg, HW, Cg, 1.0f, W.data(), Cg, X.data(), HW, 0.0f, Y.data(), HW, b, &pool);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t p = 0; p < HW; ++p) {
          double ref = 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            ref += static_cast<double>(W[static_cast<size_t>((g * Kg + k) * Cg + c)]) *
                   X[static_cast<size_t>(((n * G + g) * Cg + c) * HW + p)];
          const float got = Y[static_cast<size_t>(((n * G + g) * Kg + k) * HW + p)];
          ASSERT_TRUE(std::isfinite(got));
          ASSERT_NEAR(got, ref, 1e-5 * 4);
        }
}

TEST(Gemm, ConcurrentCallersShareOnePool) {
  // Several execution contexts on their own threads run GEMMs on the same pool at once.
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      const int64_t M = 40 + t, N = 70, K = 90;
      const auto A = random_vec(static_cast<size_t>(M * K), 10 + t), B = random_vec(static_cast<size_t>(K * N), 20 + t);
      std::vector<float> C(static_cast<size_t>(M * N));
      for (int rep = 0; rep < 20; ++rep) {
        sgemm(false, t % 2 == 1, M, N, K, 1.0f, A.data(), K, B.data(), t % 2 == 1 ? K : N, 0.0f, C.data(), N, &pool);
        for (int64_t i = 0; i < M; i += 7)
          for (int64_t j = 0; j < N; j += 5) {
            double ref = 0.0;
            for (int64_t k = 0; k < K; ++k)
              ref += static_cast<double>(A[static_cast<size_t>(i * K + k)]) *
                     (t % 2 == 1 ? B[static_cast<size_t>(j * K + k)] : B[static_cast<size_t>(k * N + j)]);
            if (!(std::fabs(C[static_cast<size_t>(i * N + j)] - ref) < 1e-4)) failures[static_cast<size_t>(t)]++;
          }
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(Gemm, ReportsIsa) {
  const std::string isa = detail::gemm_isa();
  EXPECT_TRUE(isa == "avx2" || isa == "generic") << isa;
}

}  // namespace
}  // namespace kiln::cpu
