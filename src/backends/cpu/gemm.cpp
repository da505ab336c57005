// SGEMM: GotoBLAS-style blocking.
//
//   for each task (batch item, block of rows, block of columns)        <- threads
//     for jc in columns, step NC          B panel KC x NC  (L3)
//       for pc in K, step KC              pack B panel: [NC/16 micro-panels][KC][16]
//         for ic in rows, step MC         pack A block: [MC/6 micro-panels][KC][6]  (L2)
//           for jr in NC, step 16         one B micro-panel (L1)
//             for ir in MC, step 6        micro-kernel: 6x16 block of C in 12 AVX registers
//
// Two shortcuts for skinny problems (batch-1 inference): with few rows and B not transposed, the
// micro-kernel reads B rows in place (no B packing; B is streamed once); with few rows and B transposed
// (a Linear layer's weight), a dot-product kernel works on B's rows directly.
// Tasks are sized by a small cost model (compute + packing + dispatch) over the available threads.
#include "backends/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define KILN_GEMM_X86 1
#include <immintrin.h>
#define KILN_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace kiln::cpu {
namespace {

constexpr int kMR = 6;         // micro-kernel rows
constexpr int kNR = 16;        // micro-kernel columns (two 8-float vectors)
constexpr int64_t kKC = 256;   // depth of a packed panel: A and B micro-panels (6+16)*256*4 B = 22 KiB in L1
constexpr int64_t kMC = 144;   // rows of a packed A block: 144*256*4 B = 144 KiB in L2
constexpr int64_t kNC = 3072;  // columns of a packed B panel: 3 MiB in L3
constexpr int64_t kUnpackedMaxM = 24;  // B not transposed, at most this many rows: B read in place
constexpr int64_t kDotMaxM = 8;        // B transposed, at most this many rows: dot-product kernel

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Per-thread 64-byte aligned scratch that only grows.
class Scratch {
 public:
  ~Scratch() { release(); }
  float* get(int64_t n) {
    if (n > cap_) {
      release();
      const int64_t cap = std::max<int64_t>(n, 1024);
      p_ = static_cast<float*>(::operator new(static_cast<size_t>(cap) * sizeof(float), std::align_val_t(64)));
      cap_ = cap;
    }
    return p_;
  }

 private:
  void release() {
    if (p_) ::operator delete(p_, std::align_val_t(64));
    p_ = nullptr;
    cap_ = 0;
  }
  float* p_ = nullptr;
  int64_t cap_ = 0;
};

thread_local Scratch t_pack_a, t_pack_b, t_trans_a;

// ---------------------------------------------------------------------------------------------------
// Micro-kernels.
// ukr<MR_, NV>: C[0:MR_, 0:nr] = alpha * Ap(MR_ x kc) * Bp(kc x 8*NV) + beta * C, where Ap is a packed
// A micro-panel (row k at a + 6k) and Bp a B micro-panel whose row k is at b + k*b_rs (16 when packed,
// ldb when read in place). nr <= 8*NV columns are written.
using UkrFn = void (*)(int64_t kc, const float* a, const float* b, int64_t b_rs, float* c, int64_t ldc,
                       float alpha, float beta, int nr);
// dot<MI, NJ>: C[i, j] = alpha * dot(A row i, B row j) + beta * C[i, j], rows of length K.
using DotFn = void (*)(int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                       int64_t ldc, float alpha, float beta);

inline void store_tile(const float* acc, int acc_ld, int mr, int nr, float* c, int64_t ldc, float alpha,
                       float beta) {
  for (int i = 0; i < mr; ++i) {
    float* cr = c + i * ldc;
    const float* ar = acc + i * acc_ld;
    if (beta == 0.0f) {
      for (int j = 0; j < nr; ++j) cr[j] = alpha * ar[j];
    } else {
      for (int j = 0; j < nr; ++j) cr[j] = alpha * ar[j] + beta * cr[j];
    }
  }
}

// Portable kernels: GNU vectors of 4 floats (SSE2 on any x86-64, NEON elsewhere). 16 registers hold a
// 6x8 block, so a 6x16 micro-tile is computed as two 8-column halves.
typedef float v4f __attribute__((vector_size(16)));
inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

#define KILN_GENERIC_ROW(i)                    \
  if constexpr (MR_ > i) {                     \
    const v4f ai = v4f{} + ap[i];              \
    c##i##0 += ai * b0;                        \
    c##i##1 += ai * b1;                        \
  }

template <int MR_, int NV>
void ukr_generic(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t b_rs,
                 float* __restrict c, int64_t ldc, float alpha, float beta, int nr) {
  alignas(16) float tmp[MR_][8 * NV];
  for (int h = 0; h < NV; ++h) {
    v4f c00{}, c01{}, c10{}, c11{}, c20{}, c21{}, c30{}, c31{}, c40{}, c41{}, c50{}, c51{};
    const float* ap = a;
    const float* bp = b + 8 * h;
    for (int64_t k = 0; k < kc; ++k) {
      const v4f b0 = load4(bp), b1 = load4(bp + 4);
      KILN_GENERIC_ROW(0)
      KILN_GENERIC_ROW(1)
      KILN_GENERIC_ROW(2)
      KILN_GENERIC_ROW(3)
      KILN_GENERIC_ROW(4)
      KILN_GENERIC_ROW(5)
      ap += kMR;
      bp += b_rs;
    }
    const v4f out[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < MR_; ++i) std::memcpy(&tmp[i][8 * h], &out[i][0], 2 * sizeof(v4f));
  }
  store_tile(&tmp[0][0], 8 * NV, MR_, nr, c, ldc, alpha, beta);
}

template <int MI, int NJ>
void dot_generic(int64_t K, const float* __restrict a, int64_t lda, const float* __restrict b, int64_t ldb,
                 float* __restrict c, int64_t ldc, float alpha, float beta) {
  v4f acc[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) acc[i][j] = v4f{};
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    v4f bv[NJ];
    for (int j = 0; j < NJ; ++j) bv[j] = load4(b + j * ldb + k);
    for (int i = 0; i < MI; ++i) {
      const v4f av = load4(a + i * lda + k);
      for (int j = 0; j < NJ; ++j) acc[i][j] += av * bv[j];
    }
  }
  float s[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) {
      const v4f v = acc[i][j];
      float t = (v[0] + v[2]) + (v[1] + v[3]);
      for (int64_t kk = k; kk < K; ++kk) t += a[i * lda + kk] * b[j * ldb + kk];
      s[i][j] = t;
    }
  store_tile(&s[0][0], NJ, MI, NJ, c, ldc, alpha, beta);
}

#ifdef KILN_GEMM_X86
// The accumulators are named variables (not an array) so that they stay in registers.
#define KILN_UKR_ROW(i)                                                     \
  if constexpr (MR_ > i) {                                                  \
    const __m256 ai = _mm256_broadcast_ss(a + i);                           \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                             \
    if constexpr (NV == 2) c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);      \
  }

template <int MR_, int NV>
KILN_AVX2 void ukr_avx2(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t b_rs,
                        float* __restrict c, int64_t ldc, float alpha, float beta, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
         c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int i = 0; i < MR_; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    __m256 b1 = b0;
    if constexpr (NV == 2) b1 = _mm256_loadu_ps(b + 8);
    KILN_UKR_ROW(0)
    KILN_UKR_ROW(1)
    KILN_UKR_ROW(2)
    KILN_UKR_ROW(3)
    KILN_UKR_ROW(4)
    KILN_UKR_ROW(5)
    a += kMR;
    b += b_rs;
  }
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  const __m256 va = _mm256_set1_ps(alpha);
  if (nr == 8 * NV) {
    if (beta == 0.0f) {
      for (int i = 0; i < MR_; ++i)
        for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + i * ldc + 8 * v, _mm256_mul_ps(va, acc[i][v]));
    } else if (beta == 1.0f) {
      for (int i = 0; i < MR_; ++i)
        for (int v = 0; v < NV; ++v) {
          float* p = c + i * ldc + 8 * v;
          _mm256_storeu_ps(p, _mm256_fmadd_ps(va, acc[i][v], _mm256_loadu_ps(p)));
        }
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
      for (int i = 0; i < MR_; ++i)
        for (int v = 0; v < NV; ++v) {
          float* p = c + i * ldc + 8 * v;
          _mm256_storeu_ps(p, _mm256_fmadd_ps(va, acc[i][v], _mm256_mul_ps(vb, _mm256_loadu_ps(p))));
        }
    }
  } else {
    alignas(32) float tmp[MR_][8 * NV];
    for (int i = 0; i < MR_; ++i)
      for (int v = 0; v < NV; ++v) _mm256_store_ps(&tmp[i][8 * v], acc[i][v]);
    store_tile(&tmp[0][0], 8 * NV, MR_, nr, c, ldc, alpha, beta);
  }
}

KILN_AVX2 inline float hsum_avx(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int MI, int NJ>
KILN_AVX2 void dot_avx2(int64_t K, const float* __restrict a, int64_t lda, const float* __restrict b,
                        int64_t ldb, float* __restrict c, int64_t ldc, float alpha, float beta) {
  __m256 acc[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 bv[NJ];
    for (int j = 0; j < NJ; ++j) bv[j] = _mm256_loadu_ps(b + j * ldb + k);
    for (int i = 0; i < MI; ++i) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + k);
      for (int j = 0; j < NJ; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  float s[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) {
      float t = hsum_avx(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk) t += a[i * lda + kk] * b[j * ldb + kk];
      s[i][j] = t;
    }
  store_tile(&s[0][0], NJ, MI, NJ, c, ldc, alpha, beta);
}
#endif  // KILN_GEMM_X86

struct Kernels {
  const char* name;
  bool avx2;
  UkrFn ukr[kMR][2];  // [rows-1][vectors-1]
  DotFn dot[2][4];    // [rows-1][cols-1]
};

#define KILN_KERNEL_TABLE(name, avx2, ukr, dot)                                                     \
  Kernels {                                                                                         \
    name, avx2,                                                                                     \
        {{&ukr<1, 1>, &ukr<1, 2>}, {&ukr<2, 1>, &ukr<2, 2>}, {&ukr<3, 1>, &ukr<3, 2>},              \
         {&ukr<4, 1>, &ukr<4, 2>}, {&ukr<5, 1>, &ukr<5, 2>}, {&ukr<6, 1>, &ukr<6, 2>}},             \
        {{&dot<1, 1>, &dot<1, 2>, &dot<1, 3>, &dot<1, 4>}, {&dot<2, 1>, &dot<2, 2>, &dot<2, 3>, &dot<2, 4>}} \
  }

const Kernels kGenericKernels = KILN_KERNEL_TABLE("generic", false, ukr_generic, dot_generic);

#ifdef KILN_GEMM_X86
const Kernels kAvx2Kernels = KILN_KERNEL_TABLE("avx2", true, ukr_avx2, dot_avx2);

bool cpu_has_avx2_fma() {
  static const bool has = [] {
    if (const char* isa = std::getenv("KILN_CPU_ISA"); isa && std::strcmp(isa, "generic") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}
#endif

std::atomic<bool> g_force_generic{false};

const Kernels& kernels() {
#ifdef KILN_GEMM_X86
  if (!g_force_generic.load(std::memory_order_relaxed) && cpu_has_avx2_fma()) return kAvx2Kernels;
#endif
  return kGenericKernels;
}

// ---------------------------------------------------------------------------------------------------
// Packing.

#ifdef KILN_GEMM_X86
// In-register 8x8 transpose: r[i][j] -> r[j][i].
KILN_AVX2 inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Transposing pack of one full A micro-panel: dst[k][i] = src[i * lda + k] for i < 6, k < kc. Each
// 8-float store also writes 2 floats past its 6 (overwritten by the next one; the buffer has slack).
KILN_AVX2 void pack_a_panel_avx2(const float* src, int64_t lda, int64_t kc, float* dst) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8];
    for (int i = 0; i < kMR; ++i) r[i] = _mm256_loadu_ps(src + i * lda + k);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8x8(r);
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * kMR, r[j]);
  }
  for (; k < kc; ++k)
    for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = src[i * lda + k];
}

// Transposing pack of one full B micro-panel: dst[k][j] = src[j * ldb + k] for j < 16, k < kc.
KILN_AVX2 void pack_b_panel_trans_avx2(const float* src, int64_t ldb, int64_t kc, float* dst) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + (h * 8 + j) * ldb + k);
      transpose8x8(r);
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * kNR + h * 8, r[j]);
    }
  }
  for (; k < kc; ++k)
    for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = src[j * ldb + k];
}
#endif

// op(A)[i0:i0+mc, p0:p0+kc] -> micro-panels of 6 rows, each [kc][6], short panels zero-filled.
// The buffer needs 8 floats of slack past mc * kc (see pack_a_panel_avx2).
void pack_a(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* Ap,
            bool avx2) {
  (void)avx2;
  for (int64_t ir = 0; ir < mc; ir += kMR) {
    const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - ir));
    float* __restrict dst = Ap + ir * kc;
    if (!ta) {
      const float* src = A + (i0 + ir) * lda + p0;
#ifdef KILN_GEMM_X86
      if (avx2 && mr == kMR) {
        pack_a_panel_avx2(src, lda, kc, dst);
        continue;
      }
#endif
      if (mr == kMR) {
        const float *r0 = src, *r1 = src + lda, *r2 = src + 2 * lda, *r3 = src + 3 * lda, *r4 = src + 4 * lda,
                    *r5 = src + 5 * lda;
        for (int64_t k = 0; k < kc; ++k) {
          float* d = dst + k * kMR;
          d[0] = r0[k], d[1] = r1[k], d[2] = r2[k], d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
        }
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = i < mr ? src[i * lda + k] : 0.0f;
      }
    } else {
      const float* src = A + p0 * lda + i0 + ir;
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = i < mr ? src[k * lda + i] : 0.0f;
    }
  }
}

// op(B)[p0:p0+kc, j0:j0+nc] -> micro-panels of 16 columns, each [kc][16], short panels zero-filled.
void pack_b(bool tb, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* Bp,
            bool avx2) {
  (void)avx2;
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kNR, nc - jr));
    float* __restrict dst = Bp + jr * kc;
    if (!tb) {
      const float* src = B + p0 * ldb + j0 + jr;
      if (nr == kNR) {
        for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * kNR, src + k * ldb, kNR * sizeof(float));
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = j < nr ? src[k * ldb + j] : 0.0f;
      }
    } else {
      // op(B)[k][j] = B[j][k]: transpose 16 rows of B, 8 k at a time so that reads stay sequential.
      const float* src = B + (j0 + jr) * ldb + p0;
#ifdef KILN_GEMM_X86
      if (avx2 && nr == kNR) {
        pack_b_panel_trans_avx2(src, ldb, kc, dst);
        continue;
      }
#endif
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8)
        for (int j = 0; j < kNR; ++j)
          for (int kk = 0; kk < 8; ++kk) dst[(k + kk) * kNR + j] = j < nr ? src[j * ldb + k + kk] : 0.0f;
      for (; k < kc; ++k)
        for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = j < nr ? src[j * ldb + k] : 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Problem description and work splitting.

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  detail::GemmBatch2 batch;

  int64_t count() const { return batch.outer * batch.inner; }
  void operands(int64_t b, const float*& a, const float*& bb, float*& c) const {
    const int64_t o = b / batch.inner, i = b % batch.inner;
    a = A + o * batch.outer_stride_a + i * batch.inner_stride_a;
    bb = B + o * batch.outer_stride_b + i * batch.inner_stride_b;
    c = C + o * batch.outer_stride_c + i * batch.inner_stride_c;
  }
};

enum class Mode { kPacked, kUnpackedB, kDot };

Mode choose_mode(const Problem& p) {
  if (p.tb) return p.M <= kDotMaxM ? Mode::kDot : Mode::kPacked;
  return p.M <= kUnpackedMaxM ? Mode::kUnpackedB : Mode::kPacked;
}

struct Split {
  int64_t m_parts = 1, n_parts = 1;
  int64_t m_size = 0, n_size = 0;  // rows / columns per part (the last part may be shorter)
  int64_t tasks() const { return m_parts * n_parts; }
};

// Chooses how to cut each problem into m_parts x n_parts tasks, minimizing an estimate in cycles:
// waves of tasks over the threads * (compute + packing) + dispatch overhead.
Split choose_split(const Problem& p, Mode mode, int threads) {
  const int64_t m_unit = mode == Mode::kDot ? p.M : kMR;
  const int64_t n_unit = mode == Mode::kDot ? 4 : kNR;
  const int64_t max_m = mode == Mode::kDot ? 1 : ceil_div(p.M, m_unit);
  const int64_t max_n = ceil_div(p.N, n_unit);
  const int64_t limit = 4 * static_cast<int64_t>(threads);
  const int64_t count = p.count();
  Split best;
  best.m_size = p.M;
  best.n_size = p.N;
  // Small problems stay on one thread; many problems in a batch are enough tasks by themselves.
  const double macs = static_cast<double>(count) * static_cast<double>(p.M) * static_cast<double>(p.N) *
                      static_cast<double>(p.K);
  if (threads <= 1 || macs < 256.0 * 1024.0 || count >= limit) return best;
  double best_cost = -1.0;
  for (int64_t mp = 1; mp <= std::min(max_m, limit); ++mp) {
    const int64_t ms = round_up(ceil_div(p.M, mp), m_unit);
    const int64_t real_mp = ceil_div(p.M, ms);
    for (int64_t np = 1; np <= std::min(max_n, limit / mp) || np == 1; ++np) {
      const int64_t ns = round_up(ceil_div(p.N, np), n_unit);
      const int64_t real_np = ceil_div(p.N, ns);
      const int64_t tasks = count * real_mp * real_np;
      const double mpad = static_cast<double>(round_up(ms, kMR)), npad = static_cast<double>(round_up(ns, kNR));
      const double k = static_cast<double>(p.K);
      const double a_packs = static_cast<double>(ceil_div(ns, kNC)), b_packs = static_cast<double>(ceil_div(ms, kMC));
      double per_task = mpad * npad * k / 16.0;                                       // 16 multiply-adds/cycle
      per_task += mpad * k * a_packs * 0.5;                                           // packing A
      per_task += mode == Mode::kPacked ? npad * k * b_packs * 0.5 : npad * k * 0.25;  // packing / streaming B
      per_task += 500.0;
      const int64_t waves = ceil_div(tasks, threads);
      const double cost = static_cast<double>(waves) * per_task + (tasks > 1 ? 30000.0 : 0.0);
      if (best_cost < 0 || cost < best_cost * 0.98) {
        best_cost = cost;
        best.m_parts = real_mp;
        best.n_parts = real_np;
        best.m_size = ms;
        best.n_size = ns;
      }
      if (np >= max_n) break;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------
// Task bodies.

void macro_kernel(const Kernels& kr, int64_t mc, int64_t nc, int64_t kc, const float* Ap, const float* Bsrc,
                  int64_t b_rs, bool b_packed, const float* b_edge, float* C, int64_t ldc, float alpha,
                  float beta) {
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kNR, nc - jr));
    const int nv = nr > 8 ? 2 : 1;
    const float* bp;
    int64_t rs;
    if (b_packed) {
      bp = Bsrc + jr * kc;
      rs = kNR;
    } else if (nr == kNR) {
      bp = Bsrc + jr;
      rs = b_rs;
    } else {
      bp = b_edge;
      rs = kNR;
    }
    for (int64_t ir = 0; ir < mc; ir += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - ir));
      kr.ukr[mr - 1][nv - 1](kc, Ap + ir * kc, bp, rs, C + ir * ldc + jr, ldc, alpha, beta, nr);
    }
  }
}

// C[i_begin:i_end, j_begin:j_end] of problem b, packed or with B read in place.
void run_block(const Kernels& kr, const Problem& p, Mode mode, int64_t b, int64_t i_begin, int64_t i_end,
               int64_t j_begin, int64_t j_end) {
  const float *A, *B;
  float* C;
  p.operands(b, A, B, C);
  const bool packed = mode == Mode::kPacked;
  const int64_t kc_blk = ceil_div(p.K, ceil_div(p.K, kKC));
  const int64_t m = i_end - i_begin;
  const int64_t mc_blk = round_up(ceil_div(m, ceil_div(m, kMC)), kMR);
  const int64_t n = j_end - j_begin;
  const int64_t nc_blk = round_up(ceil_div(n, ceil_div(n, kNC)), kNR);
  float* Ap = t_pack_a.get(mc_blk * kc_blk + 8);
  float* Bp = t_pack_b.get((packed ? nc_blk : kNR) * kc_blk);
  for (int64_t jc = j_begin; jc < j_end; jc += nc_blk) {
    const int64_t nc = std::min(nc_blk, j_end - jc);
    for (int64_t pc = 0; pc < p.K; pc += kc_blk) {
      const int64_t kc = std::min(kc_blk, p.K - pc);
      const float beta = pc == 0 ? p.beta : 1.0f;
      const float* bsrc = Bp;
      if (packed) {
        pack_b(p.tb, B, p.ldb, pc, kc, jc, nc, Bp, kr.avx2);
      } else {
        bsrc = B + pc * p.ldb + jc;
        if (nc % kNR != 0) pack_b(false, B, p.ldb, pc, kc, jc + nc - nc % kNR, nc % kNR, Bp, kr.avx2);
      }
      for (int64_t ic = i_begin; ic < i_end; ic += mc_blk) {
        const int64_t mc = std::min(mc_blk, i_end - ic);
        pack_a(p.ta, A, p.lda, ic, mc, pc, kc, Ap, kr.avx2);
        macro_kernel(kr, mc, nc, kc, Ap, bsrc, p.ldb, packed, Bp, C + ic * p.ldc + jc, p.ldc, p.alpha, beta);
      }
    }
  }
}

// C[:, j_begin:j_end] of problem b with the dot-product kernel (B transposed, few rows).
void run_dot(const Kernels& kr, const Problem& p, int64_t b, int64_t j_begin, int64_t j_end) {
  const float *A, *B;
  float* C;
  p.operands(b, A, B, C);
  int64_t lda = p.lda;
  if (p.ta) {  // rows of op(A) must be contiguous: transpose the (small) A
    float* t = t_trans_a.get(p.M * p.K);
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < p.M; ++i) t[i * p.K + k] = A[k * p.lda + i];
    A = t;
    lda = p.K;
  }
  for (int64_t j = j_begin; j < j_end; j += 4) {
    const int nj = static_cast<int>(std::min<int64_t>(4, j_end - j));
    for (int64_t i = 0; i < p.M; i += 2) {
      const int mi = static_cast<int>(std::min<int64_t>(2, p.M - i));
      kr.dot[mi - 1][nj - 1](p.K, A + i * lda, lda, B + j * p.ldb, p.ldb, C + i * p.ldc + j, p.ldc, p.alpha, p.beta);
    }
  }
}

void scale_c(const Problem& p) {
  for (int64_t b = 0; b < p.count(); ++b) {
    const float *A, *B;
    float* C;
    p.operands(b, A, B, C);
    for (int64_t i = 0; i < p.M; ++i) {
      float* c = C + i * p.ldc;
      if (p.beta == 0.0f) {
        std::fill(c, c + p.N, 0.0f);
      } else {
        for (int64_t j = 0; j < p.N; ++j) c[j] *= p.beta;
      }
    }
  }
}

void run(const Problem& p, ThreadPool* pool) {
  if (p.M <= 0 || p.N <= 0 || p.count() <= 0) return;
  if (p.K <= 0 || p.alpha == 0.0f) {
    scale_c(p);
    return;
  }
  const Kernels& kr = kernels();
  const Mode mode = choose_mode(p);
  const int threads = pool ? pool->num_threads() : 1;
  const Split s = choose_split(p, mode, threads);
  auto task = [&](int64_t t) {
    const int64_t ip = t % s.m_parts;
    const int64_t jp = (t / s.m_parts) % s.n_parts;
    const int64_t b = t / (s.m_parts * s.n_parts);
    const int64_t i0 = ip * s.m_size, i1 = std::min(p.M, i0 + s.m_size);
    const int64_t j0 = jp * s.n_size, j1 = std::min(p.N, j0 + s.n_size);
    if (mode == Mode::kDot) {
      run_dot(kr, p, b, j0, j1);
    } else {
      run_block(kr, p, mode, b, i0, i1, j0, j1);
    }
  };
  const int64_t total = p.count() * s.tasks();
  if (pool == nullptr || total == 1 || threads <= 1) {
    for (int64_t t = 0; t < total; ++t) task(t);
    return;
  }
  pool->parallel_for(total, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) task(t);
  });
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool) {
  run(Problem{trans_a, trans_b, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, {}}, pool);
}

void sgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                           int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                           int64_t batch, ThreadPool* pool) {
  detail::GemmBatch2 b;
  b.outer = batch;
  b.outer_stride_a = stride_a;
  b.outer_stride_b = stride_b;
  b.outer_stride_c = stride_c;
  run(Problem{trans_a, trans_b, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, b}, pool);
}

namespace detail {

void sgemm_batched2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                    const GemmBatch2& batch, ThreadPool* pool) {
  run(Problem{trans_a, trans_b, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, batch}, pool);
}

const char* gemm_isa() { return kernels().name; }
void gemm_force_generic(bool on) { g_force_generic.store(on, std::memory_order_relaxed); }

}  // namespace detail
}  // namespace kiln::cpu
