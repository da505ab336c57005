// CUDA kernel for TopK along one axis, matching src/backends/cpu/kernels/reduce.cpp: the k largest (op MAX)
// or smallest (op MIN) values in order, ties broken by the smaller index, NaN first for MAX and last for MIN;
// indices int64 (or int32 when the output says so). float32/float16/bfloat16/int32/int64.
//
// Every (outer, inner) row is handled by one block. Rows of up to kSortMax elements are bitonic-sorted in
// shared memory as (key, index) pairs under that total order (keys: float for the float types, int64 for
// integers, both exact); longer rows select their k winners one at a time, each the best element ordered
// after the previous winner (k block-wide passes over the row).
#include <cmath>

#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {
namespace {

constexpr int64_t kSortMax = 4096;

template <class T> using Key = std::conditional_t<kFloatLike<T>, float, int64_t>;

// Whether (a, ai) comes before (b, bi) in the output order; indices >= n are padding and come last.
template <class K> struct Order {
  bool largest;
  int64_t n;
  __device__ __forceinline__ bool before(K a, int64_t ai, K b, int64_t bi) const {
    if (ai >= n || bi >= n) return ai < bi;
    if constexpr (std::is_floating_point_v<K>) {
      const bool an = a != a, bn = b != b;
      if (an || bn) {
        if (an && bn) return ai < bi;
        return largest ? an : bn;
      }
    }
    if (a != b) return largest ? a > b : a < b;
    return ai < bi;
  }
};

template <class T> __device__ __forceinline__ Key<T> key_of(T v) { return static_cast<Key<T>>(load_c(v)); }

template <class T, class I>
__global__ void k_topk_sort(const T* __restrict__ x, T* __restrict__ vals, I* __restrict__ idxs, int64_t rows,
                            int64_t n, int64_t inner, int64_t k, int P, bool largest) {
  using K = Key<T>;
  extern __shared__ unsigned char smem_raw[];
  K* key = reinterpret_cast<K*>(smem_raw);
  int32_t* id = reinterpret_cast<int32_t*>(key + P);
  const Order<K> ord{largest, n};
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t o = row / inner, i = row - o * inner;
    const T* xr = x + o * n * inner + i;
    for (int j = threadIdx.x; j < P; j += blockDim.x) {
      key[j] = j < n ? key_of(xr[j * inner]) : K(0);
      id[j] = j;
    }
    __syncthreads();
    for (int size = 2; size <= P; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int j = threadIdx.x; j < P; j += blockDim.x) {
          const int partner = j ^ stride;
          if (partner <= j) continue;
          const bool ascending = (j & size) == 0;
          const bool swap = ascending ? ord.before(key[partner], id[partner], key[j], id[j])
                                      : ord.before(key[j], id[j], key[partner], id[partner]);
          if (swap) {
            const K tk = key[j];
            key[j] = key[partner];
            key[partner] = tk;
            const int32_t ti = id[j];
            id[j] = id[partner];
            id[partner] = ti;
          }
        }
        __syncthreads();
      }
    }
    T* vo = vals + o * k * inner + i;
    I* io = idxs + o * k * inner + i;
    for (int64_t r = threadIdx.x; r < k; r += blockDim.x) {
      vo[r * inner] = xr[static_cast<int64_t>(id[r]) * inner];
      io[r * inner] = static_cast<I>(id[r]);
    }
    __syncthreads();  // the next row reuses shared memory
  }
}

template <class T, class I>
__global__ void k_topk_select(const T* __restrict__ x, T* __restrict__ vals, I* __restrict__ idxs, int64_t rows,
                              int64_t n, int64_t inner, int64_t k, bool largest) {
  using K = Key<T>;
  __shared__ K sk[kThreads / 32];
  __shared__ int64_t si[kThreads / 32];
  const Order<K> ord{largest, n};
  const int64_t kNone = INT64_MAX;  // "no candidate": the padding index, ordered last
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t o = row / inner, i = row - o * inner;
    const T* xr = x + o * n * inner + i;
    K pk = K(0);
    int64_t pi = -1;  // the previous winner (none yet)
    for (int64_t t = 0; t < k; ++t) {
      K bk = K(0);
      int64_t bi = kNone;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const K v = key_of(xr[j * inner]);
        if (pi >= 0 && !ord.before(pk, pi, v, j)) continue;  // taken already
        if (ord.before(v, j, bk, bi)) { bk = v; bi = j; }
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        const K v = __shfl_xor_sync(0xffffffffu, bk, off);
        const int64_t j = __shfl_xor_sync(0xffffffffu, bi, off);
        if (ord.before(v, j, bk, bi)) { bk = v; bi = j; }
      }
      __syncthreads();
      if ((threadIdx.x & 31) == 0) {
        sk[threadIdx.x >> 5] = bk;
        si[threadIdx.x >> 5] = bi;
      }
      __syncthreads();
      bk = sk[0];
      bi = si[0];
      for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w)
        if (ord.before(sk[w], si[w], bk, bi)) { bk = sk[w]; bi = si[w]; }
      if (threadIdx.x == 0) {
        vals[(o * k + t) * inner + i] = xr[bi * inner];
        idxs[(o * k + t) * inner + i] = static_cast<I>(bi);
      }
      pk = bk;
      pi = bi;
    }
  }
}

bool topk_dtype_ok(DataType t) { return is_float_type(t) || t == DataType::kINT32 || t == DataType::kINT64; }

bool supports_topk(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && topk_dtype_ok(in[0].dtype);
}

void topk_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (!topk_dtype_ok(x.dtype)) ctx.fail(std::string("TopK on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", -1), rank);
  const bool largest = ctx.attrs().i("op", 0) == 0;
  const bool i32 = ctx.out[1].dtype == DataType::kINT32;
  const int64_t outer = prod(x.shape, 0, axis), n = x.shape[axis], inner = prod(x.shape, axis + 1, rank);
  const int64_t k = ctx.out[0].shape[axis];
  if (k > n) ctx.fail("k = " + std::to_string(k) + " exceeds the axis size " + std::to_string(n));
  const int64_t rows = outer * inner;
  if (k == 0 || rows == 0) return;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(rows, 65535LL * 16));
  cudaStream_t s = ctx.stream();
  dispatch_float_i32_i64(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto itag) {
      using I = decltype(itag);
      T* vals = ctx.out[0].as<T>();
      I* idxs = ctx.out[1].as<I>();
      if (n <= kSortMax) {
        int P = 1;
        while (P < n) P <<= 1;
        const size_t smem = static_cast<size_t>(P) * (sizeof(Key<T>) + sizeof(int32_t));
        k_topk_sort<T, I><<<grid, kThreads, smem, s>>>(x.as<T>(), vals, idxs, rows, n, inner, k, P, largest);
      } else {
        k_topk_select<T, I><<<grid, kThreads, 0, s>>>(x.as<T>(), vals, idxs, rows, n, inner, k, largest);
      }
      KILN_CUDA_LAUNCH_CHECK();
    };
    if (i32) run(int32_t{});
    else run(int64_t{});
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("TopK", &topk_kernel, &supports_topk);

}  // namespace kiln::cuda::kern
