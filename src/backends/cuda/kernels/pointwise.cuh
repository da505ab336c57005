// Generic pointwise kernels over a functor: y[i] = f(x[i]) and y[i] = f(a[i], b[i]), contiguous (vectorized
// with 16-byte loads when every pointer allows) or through a broadcast Walk. The ops themselves are
// functors (plain structs with a __device__ operator(), since extended lambdas are not enabled), and take
// their op code as a run-time member: one kernel per dtype serves every op of a family, which keeps nvcc's
// instantiations (and compile time) small; the switch is uniform across the grid.
#pragma once
#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {

template <int V, class T, class U, class F>
__global__ void k_map1(const T* __restrict__ x, U* __restrict__ y, int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nv = n / V;
  if constexpr (V > 1) {
    const Vec<T, V>* xv = reinterpret_cast<const Vec<T, V>*>(x);
    Vec<U, V>* yv = reinterpret_cast<Vec<U, V>*>(y);
    for (int64_t i = t0; i < nv; i += stride) {
      const Vec<T, V> a = xv[i];
      Vec<U, V> r;
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = f(a.v[k]);
      yv[i] = r;
    }
  }
  for (int64_t i = nv * V + t0; i < n; i += stride) y[i] = f(x[i]);
}

template <int V, class T, class U, class F>
__global__ void k_map2(const T* __restrict__ a, const T* __restrict__ b, U* __restrict__ y, int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nv = n / V;
  if constexpr (V > 1) {
    const Vec<T, V>* av = reinterpret_cast<const Vec<T, V>*>(a);
    const Vec<T, V>* bv = reinterpret_cast<const Vec<T, V>*>(b);
    Vec<U, V>* yv = reinterpret_cast<Vec<U, V>*>(y);
    for (int64_t i = t0; i < nv; i += stride) {
      const Vec<T, V> x1 = av[i], x2 = bv[i];
      Vec<U, V> r;
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = f(x1.v[k], x2.v[k]);
      yv[i] = r;
    }
  }
  for (int64_t i = nv * V + t0; i < n; i += stride) y[i] = f(a[i], b[i]);
}

template <class T, class U, class F>
__global__ void k_map2_walk(const T* __restrict__ a, const T* __restrict__ b, U* __restrict__ y, int64_t n,
                            Walk<2> w, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[2];
    w.offsets(i, off);
    y[i] = f(a[off[0]], b[off[1]]);
  }
}

// Vector width for a map over T inputs and U outputs: 16-byte input loads, when every pointer is aligned
// to its vector (the output vector is V * sizeof(U) bytes).
template <class T, class U> int map_width(std::initializer_list<const void*> ins, const void* out) {
  constexpr int kV = static_cast<int>(16 / sizeof(T));
  if (kV <= 1) return 1;
  for (const void* p : ins)
    if (reinterpret_cast<uintptr_t>(p) % (sizeof(T) * kV) != 0) return 1;
  if (reinterpret_cast<uintptr_t>(out) % (sizeof(U) * kV) != 0) return 1;
  return kV;
}

// y = f(x) over n contiguous elements.
template <class T, class U, class F> void launch_map1(cudaStream_t s, const T* x, U* y, int64_t n, F f) {
  if (n <= 0) return;
  constexpr int kV = static_cast<int>(16 / sizeof(T)) > 1 ? static_cast<int>(16 / sizeof(T)) : 1;
  if (kV > 1 && map_width<T, U>({x}, y) == kV) {
    k_map1<kV, T, U, F><<<blocks_for((n + kV - 1) / kV), kThreads, 0, s>>>(x, y, n, f);
  } else {
    k_map1<1, T, U, F><<<blocks_for(n), kThreads, 0, s>>>(x, y, n, f);
  }
  KILN_CUDA_LAUNCH_CHECK();
}

// y = f(a, b) with numpy broadcasting of a and b onto y's shape.
template <class T, class U, class F>
void launch_map2(const KernelContext& ctx, const T* a, const Dims& as, const T* b, const Dims& bs, U* y,
                 const Dims& ys, F f) {
  const int64_t n = volume(ys);
  if (n <= 0) return;
  cudaStream_t s = ctx.stream();
  if (as == ys && bs == ys) {
    constexpr int kV = static_cast<int>(16 / sizeof(T)) > 1 ? static_cast<int>(16 / sizeof(T)) : 1;
    if (kV > 1 && map_width<T, U>({a, b}, y) == kV) {
      k_map2<kV, T, U, F><<<blocks_for((n + kV - 1) / kV), kThreads, 0, s>>>(a, b, y, n, f);
    } else {
      k_map2<1, T, U, F><<<blocks_for(n), kThreads, 0, s>>>(a, b, y, n, f);
    }
  } else {
    Walk<2> w = broadcast_walk<2>(ctx, ys, {&as, &bs});
    k_map2_walk<T, U, F><<<blocks_for(n), kThreads, 0, s>>>(a, b, y, n, w, f);
  }
  KILN_CUDA_LAUNCH_CHECK();
}

}  // namespace kiln::cuda::kern
