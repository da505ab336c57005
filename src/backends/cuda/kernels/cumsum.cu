// CUDA kernel for CumSum (running sums along an axis; with attr `product` running products, ONNX CumProd),
// with `exclusive` and `reverse`, matching src/backends/cpu/kernels/reduce.cpp. float32/float16/bfloat16
// accumulate in float32; int32/int64 in their own type with wrapping.
//
// The input is [outer, R, inner]. inner > 1: one thread per (outer, inner) column scans R sequentially
// (neighbouring threads read neighbouring addresses). inner == 1: one block per row scans chunks of
// kThreads elements with warp-shuffle scans, carrying the running total from chunk to chunk.
#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {
namespace {

template <class A, bool PROD> __device__ __forceinline__ A step(A a, A b) {
  if constexpr (PROD) return wmul(a, b);
  else return wadd(a, b);
}

template <class T, bool PROD>
__global__ void k_cumsum_cols(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t n, int64_t inner,
                              bool exclusive, bool reverse) {
  using A = Compute<T>;
  const int64_t total = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const int64_t base = o * n * inner + i;
    A acc = PROD ? A(1) : A(0);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t e = base + (reverse ? n - 1 - s : s) * inner;
      const A v = load_c(x[e]);
      if (exclusive) {
        y[e] = store_c<T>(acc);
        acc = step<A, PROD>(acc, v);
      } else {
        acc = step<A, PROD>(acc, v);
        y[e] = store_c<T>(acc);
      }
    }
  }
}

template <class T, bool PROD>
__global__ void k_cumsum_rows(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n, bool exclusive,
                              bool reverse) {
  using A = Compute<T>;
  __shared__ A warp_tot[kThreads / 32];
  const A ident = PROD ? A(1) : A(0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    A carry = ident;
    for (int64_t c0 = 0; c0 < n; c0 += blockDim.x) {
      const int64_t s = c0 + threadIdx.x;  // position in scan order
      const int64_t e = reverse ? n - 1 - s : s;
      const A v = s < n ? load_c(xr[e]) : ident;
      // Inclusive scan within the warp.
      A inc = v;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const A u = __shfl_up_sync(0xffffffffu, inc, off);
        if (lane >= off) inc = step<A, PROD>(u, inc);
      }
      if (lane == 31) warp_tot[warp] = inc;
      __syncthreads();
      A before = carry;  // everything ahead of this warp
      for (int w = 0; w < warp; ++w) before = step<A, PROD>(before, warp_tot[w]);
      A exc = __shfl_up_sync(0xffffffffu, inc, 1);
      if (lane == 0) exc = ident;
      if (s < n) yr[e] = store_c<T>(step<A, PROD>(before, exclusive ? exc : inc));
      for (int w = 0; w < nwarps; ++w) carry = step<A, PROD>(carry, warp_tot[w]);
      __syncthreads();  // warp_tot is rewritten by the next chunk
    }
  }
}

bool cumsum_dtype_ok(DataType t) { return is_float_type(t) || t == DataType::kINT32 || t == DataType::kINT64; }

bool supports_cumsum(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && cumsum_dtype_ok(in[0].dtype);
}

void cumsum_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (!cumsum_dtype_ok(x.dtype)) ctx.fail(std::string("CumSum on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.attrs().i("axis", 0);
  if (ctx.has_input(1)) {
    const TensorRef& a = ctx.in[1];
    if (!a.host || a.numel() != 1) ctx.fail("input 1 (axis) must be one value known on the host");
    axis = a.host_i64()[0];
  }
  axis = norm_axis(ctx, axis, rank);
  const bool exclusive = ctx.attrs().i("exclusive", 0) != 0, reverse = ctx.attrs().i("reverse", 0) != 0;
  const bool product = ctx.attrs().i("product", 0) != 0;
  const int64_t outer = prod(x.shape, 0, axis), n = x.shape[axis], inner = prod(x.shape, axis + 1, rank);
  if (x.numel() == 0) return;
  cudaStream_t s = ctx.stream();
  dispatch_float_i32_i64(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto prod_tag) {
      constexpr bool P = decltype(prod_tag)::value;
      if (inner == 1) {
        const unsigned grid = static_cast<unsigned>(std::min<int64_t>(outer, 65535LL * 16));
        k_cumsum_rows<T, P><<<grid, kThreads, 0, s>>>(x.as<T>(), ctx.out[0].as<T>(), outer, n, exclusive, reverse);
      } else {
        k_cumsum_cols<T, P><<<blocks_for(outer * inner), kThreads, 0, s>>>(x.as<T>(), ctx.out[0].as<T>(), outer, n, inner,
                                                                           exclusive, reverse);
      }
      KILN_CUDA_LAUNCH_CHECK();
    };
    if (product) run(std::true_type{});
    else run(std::false_type{});
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("CumSum", &cumsum_kernel, &supports_cumsum);

}  // namespace kiln::cuda::kern
