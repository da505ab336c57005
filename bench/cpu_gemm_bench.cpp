// CPU compute-core throughput on this machine: the FMA peak of one core, the thread pool's round trip,
// SGEMM GFLOP/s for square, skinny (batch-1 inference) and batched shapes, and typical convolutions;
// each on one thread and on the default pool (KILN_NUM_THREADS sets its size; --quick: the first few).
//   g++ -std=c++20 -O3 -Isrc bench/cpu_gemm_bench.cpp src/backends/cpu/{gemm,thread_pool,conv}.cpp
//       -pthread -o /tmp/cpu_gemm_bench && /tmp/cpu_gemm_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "backends/cpu/conv.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/thread_pool.h"

using kiln::cpu::ThreadPool;

namespace {

struct Shape {
  bool ta, tb;
  int64_t M, N, K, batch;
};

double seconds_per_call(const Shape& s, ThreadPool* pool, const std::vector<float>& A,
                        const std::vector<float>& B, std::vector<float>& C) {
  const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
  auto call = [&] {
    kiln::cpu::sgemm_strided_batched(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, s.M * s.K, B.data(), ldb,
                                     s.K * s.N, 0.0f, C.data(), ldc, s.M * s.N, s.batch, pool);
  };
  call();  // warm up (scratch buffers, pool threads)
  const double flop = 2.0 * s.M * s.N * s.K * s.batch;
  const int reps = static_cast<int>(std::max(3.0, std::min(2000.0, 2e9 / flop)));
  double best = 1e30;
  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) call();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count() / reps);
  }
  return best;
}

#if defined(__x86_64__) && defined(__GNUC__)
// Single-core FMA throughput: 12 independent 8-wide FMA chains.
__attribute__((target("avx2,fma"))) double fma_peak_gflops() {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  const int64_t iters = 20000000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sink = 0.0f;
  for (int i = 0; i < 12; ++i) sink += _mm256_cvtss_f32(acc[i]);
  if (sink == 12345.0f) std::printf(" ");
  return 2.0 * 8 * 12 * static_cast<double>(iters) / s * 1e-9;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::vector<Shape> shapes = {
      {false, false, 64, 64, 64, 1},        {false, false, 128, 128, 128, 1},   {false, false, 256, 256, 256, 1},
      {false, false, 512, 512, 512, 1},     {false, false, 1024, 1024, 1024, 1}, {true, false, 512, 512, 512, 1},
      {false, true, 512, 512, 512, 1},      {true, true, 512, 512, 512, 1},     {false, false, 1, 1000, 2048, 1},
      {false, false, 4, 1000, 2048, 1},     {false, false, 16, 1000, 2048, 1},  {false, true, 1, 1000, 2048, 1},
      {false, true, 4, 1000, 2048, 1},      {false, true, 8, 1000, 2048, 1},    {false, true, 16, 1000, 2048, 1},
      {false, false, 64, 3136, 576, 1},     {false, false, 256, 196, 2304, 1},  {false, true, 128, 768, 768, 1},
      {false, true, 128, 128, 64, 12},      {false, false, 128, 64, 128, 12},   {false, false, 2000, 17, 300, 1},
  };
  if (quick) shapes.resize(5);
  ThreadPool& pool = kiln::cpu::default_thread_pool();
  std::printf("isa=%s threads=%d\n", kiln::cpu::detail::gemm_isa(), pool.num_threads());
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    std::printf("single-core AVX2 FMA peak: %.1f GFLOP/s\n", fma_peak_gflops());
#endif
  {
    // parallel_for round trip: 8 chunks of busy work on the pool vs the ideal (work / min(threads, 8)).
    auto spin_us = [](double us) {
      const auto t0 = std::chrono::steady_clock::now();
      while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e6 < us) {
      }
    };
    for (double us : {0.0, 8.0, 40.0, 200.0}) {
      const int reps = 2000;
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r)
        pool.parallel_for(8, 1, [&](int64_t b, int64_t e) { spin_us(us * static_cast<double>(e - b) / 8); });
      const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
      std::printf("parallel_for(8 chunks, %5.0f us of work): %7.2f us per call (ideal %.1f)\n", us, per * 1e6,
                  us / std::min(pool.num_threads(), 8));
    }
  }
  std::printf("%-6s %6s %6s %6s %5s | %10s %10s\n", "trans", "M", "N", "K", "batch", "1T GFLOP/s", "pool GFLOP/s");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Shape& s : shapes) {
    std::vector<float> A(s.M * s.K * s.batch), B(s.K * s.N * s.batch), C(s.M * s.N * s.batch);
    for (float& x : A) x = dist(rng);
    for (float& x : B) x = dist(rng);
    const double flop = 2.0 * s.M * s.N * s.K * s.batch;
    const double t1 = seconds_per_call(s, nullptr, A, B, C);
    const double tp = seconds_per_call(s, &pool, A, B, C);
    std::printf("%c%c     %6lld %6lld %6lld %5lld | %10.1f %10.1f\n", s.ta ? 'T' : 'N', s.tb ? 'T' : 'N',
                static_cast<long long>(s.M), static_cast<long long>(s.N), static_cast<long long>(s.K),
                static_cast<long long>(s.batch), flop / t1 * 1e-9, flop / tp * 1e-9);
  }
  if (quick) return 0;

  // Convolutions of typical vision models (batch 1), through conv2d_nchw.
  struct ConvShape {
    const char* name;
    int64_t C, H, K, R, stride, groups;
  };
  const ConvShape convs[] = {
      {"stem 7x7/2 3->64 224", 3, 224, 64, 7, 2, 1},     {"3x3 64->64 56", 64, 56, 64, 3, 1, 1},
      {"3x3 256->256 14", 256, 14, 256, 3, 1, 1},        {"1x1 256->64 56", 256, 56, 64, 1, 1, 1},
      {"1x1 1024->256 14", 1024, 14, 256, 1, 1, 1},      {"1x1/2 256->512 56", 256, 56, 512, 1, 2, 1},
      {"dw 3x3 32 112", 32, 112, 32, 3, 1, 32},         {"dw 3x3/2 144 56", 144, 56, 144, 3, 2, 144},
      {"dw 5x5 240 28", 240, 28, 240, 5, 1, 240},        {"dw 3x3 960 7", 960, 7, 960, 3, 1, 960},
      {"grouped 3x3 128->128 g32 56", 128, 56, 128, 3, 1, 32},
  };
  std::printf("\n%-30s | %8s %10s | %8s %10s\n", "conv (N=1)", "1T ms", "GFLOP/s", "pool ms", "GFLOP/s");
  for (const ConvShape& c : convs) {
    const int64_t pad = c.R / 2, P = (c.H + 2 * pad - c.R) / c.stride + 1;
    kiln::cpu::Conv2dParams p{1, c.C, c.H, c.H, c.K, c.R, c.R, c.stride, c.stride, pad, pad, pad, pad, 1, 1,
                              c.groups, P, P};
    std::vector<float> x(c.C * c.H * c.H), w(c.K * (c.C / c.groups) * c.R * c.R), b(c.K), y(c.K * P * P);
    for (float& v : x) v = dist(rng);
    for (float& v : w) v = dist(rng);
    for (float& v : b) v = dist(rng);
    const double flop = 2.0 * c.K * P * P * (c.C / c.groups) * c.R * c.R;
    auto time_it = [&](ThreadPool* pl) {
      kiln::cpu::conv2d_nchw(p, x.data(), w.data(), b.data(), y.data(), pl);
      const int reps = static_cast<int>(std::max(3.0, std::min(1000.0, 1e9 / flop)));
      double best = 1e30;
      for (int round = 0; round < 3; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) kiln::cpu::conv2d_nchw(p, x.data(), w.data(), b.data(), y.data(), pl);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps);
      }
      return best;
    };
    const double t1 = time_it(nullptr), tp = time_it(&pool);
    std::printf("%-30s | %8.3f %10.1f | %8.3f %10.1f\n", c.name, t1 * 1e3, flop / t1 * 1e-9, tp * 1e3,
                flop / tp * 1e-9);
  }
  return 0;
}
