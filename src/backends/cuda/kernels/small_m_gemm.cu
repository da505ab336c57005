// The small-M GEMM (small_m_gemm.h says what it takes and why).
//
#include "backends/cuda/kernels/small_m_gemm.h"

#include <atomic>
#include <cstring>

#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"

namespace kiln::cuda {

namespace {

using kern::bf16;
using kern::half;

constexpr int kWarps = 8;
constexpr int kPiece = 8;  // values in a 16-byte load
constexpr int kCols = 4;   // output columns a block computes

struct Args {
  const void* a;
  const void* w;
  const void* bias;
  const void* residual;
  void* y;
  int64_t n;
  int m, k;
  int act;
  float alpha, beta;
  bool allow_next;  // the next kernel may start once this one's wait is over (programmatic_launch.h)
};

// The 8 values of a 16-byte piece as floats.
template <class T> __device__ __forceinline__ void unpack(const uint4& u, float (&f)[kPiece]) {
  T v[kPiece];
  memcpy(v, &u, sizeof(u));
#pragma unroll
  for (int i = 0; i < kPiece; ++i) f[i] = kern::to_f(v[i]);
}

// A block computes kCols output columns (w's rows n0 .. n0 + kCols - 1) for all M rows; its 8 warps split K:
// thread t takes the pieces t, t + 256, ... So at K = 2048 each thread does one step: kCols weight pieces and
// M pieces of a, all loaded before any is multiplied (they are independent), and a's pieces serve all kCols
// columns. The sums go across the warp (shuffles), then across the 8 warps through shared memory, in warp
// order (a fixed order: the result does not depend on timing).
//
// Why not one warp a column walking K: ptxas issued each step's loads just before that step's multiplies
// (SASS of that first version: 32 registers, two loads ahead), one round trip to memory a step in series.
template <class T, int M>
__global__ void __launch_bounds__(32 * kWarps) k_small_m_gemm(Args p) {
  __shared__ float sums[kWarps][kCols][M];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kCols;
  const int cols = static_cast<int>(p.n - n0 < kCols ? p.n - n0 : kCols);
  const int pieces = p.k / kPiece;  // per row
  const uint4* w = reinterpret_cast<const uint4*>(static_cast<const T*>(p.w) + n0 * p.k);
  const uint4* a = reinterpret_cast<const uint4*>(p.a);
  float acc[kCols][M];
#pragma unroll
  for (int c = 0; c < kCols; ++c)
#pragma unroll
    for (int r = 0; r < M; ++r) acc[c][r] = 0.f;
  uint4 wv[kCols];
  auto load_w = [&](int i) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) wv[c] = c < cols ? __ldg(&w[static_cast<int64_t>(c) * pieces + i]) : make_uint4(0, 0, 0, 0);
  };
  // The first step's weights are loaded before waiting for the kernel that writes a (launched programmatically,
  // this kernel may start while that one runs: programmatic_launch.h), and the bias below; the rest after.
  if (tid < pieces) load_w(tid);
  // The epilogue's bias (a weight: before the wait too) and residual (after it), loaded by the threads that
  // finish the columns, now: their round trips hide behind the product's instead of following it.
  const int fin_c = tid / M, fin_r = tid - fin_c * M;
  const bool finishes = tid < kCols * M && fin_c < cols;
  const int64_t fin_n = n0 + fin_c, fin_out = static_cast<int64_t>(fin_r) * p.n + fin_n;
  // Kept as T until used: a conversion here would wait for the load.
  T fin_bias = kern::from_f<T>(0.f), fin_residual = fin_bias;
  if (finishes && p.bias) fin_bias = static_cast<const T*>(p.bias)[fin_n];
  kern::wait_for_prior_kernels();
  if (finishes && p.residual) fin_residual = static_cast<const T*>(p.residual)[fin_out];
  if (p.allow_next) kern::allow_next_kernel_to_start();  // it too waits for this one before it reads y
  for (int i = tid; i < pieces; i += 32 * kWarps) {
    uint4 av[M];
    if (i != tid) load_w(i);
#pragma unroll
    for (int r = 0; r < M; ++r) av[r] = __ldg(&a[static_cast<int64_t>(r) * pieces + i]);
#pragma unroll
    for (int r = 0; r < M; ++r) {
      float af[kPiece];
      unpack<T>(av[r], af);
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        float wf[kPiece];
        unpack<T>(wv[c], wf);
#pragma unroll
        for (int e = 0; e < kPiece; ++e) acc[c][r] = fmaf(af[e], wf[e], acc[c][r]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kCols; ++c)
#pragma unroll
    for (int r = 0; r < M; ++r) {
      float v = acc[c][r];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) sums[warp][c][r] = v;
    }
  __syncthreads();
  if (!finishes) return;
  float v = 0.f;
#pragma unroll
  for (int q = 0; q < kWarps; ++q) v += sums[q][fin_c][fin_r];
  if (p.bias) v += kern::to_f(fin_bias);  // in the order the sum always took (the same bits as before)
  if (p.residual) v += kern::to_f(fin_residual);
  if (p.act >= 0) v = kern::act::activate(p.act, p.alpha, p.beta, v);
  static_cast<T*>(p.y)[fin_out] = kern::from_f<T>(v);
}

template <class T>
auto kernel_for_rows(int m) {
  switch (m) {
    case 1: return k_small_m_gemm<T, 1>;
    case 2: return k_small_m_gemm<T, 2>;
    case 3: return k_small_m_gemm<T, 3>;
    case 4: return k_small_m_gemm<T, 4>;
    case 5: return k_small_m_gemm<T, 5>;
    case 6: return k_small_m_gemm<T, 6>;
    case 7: return k_small_m_gemm<T, 7>;
    default: return k_small_m_gemm<T, 8>;
  }
}
static_assert(kSmallMMaxRows == 8, "kernel_for_rows instantiates 1 to 8 rows");

std::atomic<int64_t> g_chosen{0};

}  // namespace

const char* small_m_gemm_refusal(const SmallMProblem& p) {
  if (p.dtype != DataType::kHALF && p.dtype != DataType::kBF16) return "not float16 or bfloat16";
  if (!p.a_rows_packed) return "a is not [M, K] with rows K apart";
  if (!p.w_rows_of_k) return "the weights are not [N, K] with rows K apart";
  if (p.m < 1 || p.m > kSmallMMaxRows) return "more than 8 rows";
  if (p.n < 1) return "no output columns";
  if (p.k < kPiece || p.k % kPiece != 0) return "K not a multiple of 8";
  if (p.k >= (int64_t{1} << 31) || (p.n + kCols - 1) / kCols >= (int64_t{1} << 31)) return "K or N too large";
  if (p.a_address % 16 != 0 || p.w_address % 16 != 0) return "a or the weights not 16-byte aligned";
  return nullptr;
}

bool launch_small_m_gemm(cudaStream_t stream, const SmallMGemmArgs& g, std::string* why) {
  Args p{g.a, g.w, g.bias, g.residual, g.y, g.n, static_cast<int>(g.m), static_cast<int>(g.k), g.act, g.alpha, g.beta,
         g.allow_next};
  const dim3 grid(static_cast<unsigned>((g.n + kCols - 1) / kCols)), block(32 * kWarps);
  const cudaError_t err =
      g.dtype == DataType::kHALF
          ? launch_maybe_programmatic(kernel_for_rows<half>(p.m), grid, block, 0, stream, g.programmatic, p)
          : launch_maybe_programmatic(kernel_for_rows<bf16>(p.m), grid, block, 0, stream, g.programmatic, p);
  if (err != cudaSuccess) {
    cudaGetLastError();  // no error left pending
    *why = std::string("the small-M GEMM kernel did not launch: ") + cudaGetErrorString(err);
    return false;
  }
  return true;
}

int64_t small_m_gemm_chosen() { return g_chosen.load(); }
void count_small_m_gemm_chosen() { ++g_chosen; }

}  // namespace kiln::cuda
