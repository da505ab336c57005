// CUDA kernel for SoftMax (and LogSoftmax with `log` = 1) over one axis, numerically stable: the row max is
// subtracted before exp (a row whose max is not finite uses 0 instead, as the CPU kernel). The input is
// seen as [outer, R, inner]: contiguous rows (inner == 1) are handled by a warp or a whole block per row
// with shuffle reductions; otherwise one thread per (outer, inner) column walks R with stride inner.
// float32/float16/bfloat16, computed in float32.
#include <cmath>

#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {
namespace {

template <class T>
__global__ void k_softmax_rows(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n, bool log_out,
                               int tpr) {
  __shared__ float smem[kThreads / 32];
  const int rpb = blockDim.x / tpr;
  const int lane = threadIdx.x % tpr;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * rpb + threadIdx.x / tpr; row < rows;
       row += static_cast<int64_t>(gridDim.x) * rpb) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    float m = -INFINITY;
    for (int64_t i = lane; i < n; i += tpr) m = fmaxf(m, to_f(xr[i]));
    m = row_allreduce(m, MaxOp{}, tpr, smem);
    if (!isfinite(m)) m = 0.0f;
    float s = 0.0f;
    for (int64_t i = lane; i < n; i += tpr) s += expf(to_f(xr[i]) - m);
    s = row_allreduce(s, SumOp{}, tpr, smem);
    if (log_out) {
      const float c = m + logf(s);
      for (int64_t i = lane; i < n; i += tpr) yr[i] = from_f<T>(to_f(xr[i]) - c);
    } else {
      const float inv = 1.0f / s;
      for (int64_t i = lane; i < n; i += tpr) yr[i] = from_f<T>(expf(to_f(xr[i]) - m) * inv);
    }
  }
}

template <class T>
__global__ void k_softmax_cols(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t n,
                               int64_t inner, bool log_out) {
  const int64_t total = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const T* xp = x + o * n * inner + i;
    T* yp = y + o * n * inner + i;
    float m = -INFINITY;
    for (int64_t r = 0; r < n; ++r) m = fmaxf(m, to_f(xp[r * inner]));
    if (!isfinite(m)) m = 0.0f;
    float s = 0.0f;
    for (int64_t r = 0; r < n; ++r) s += expf(to_f(xp[r * inner]) - m);
    if (log_out) {
      const float c = m + logf(s);
      for (int64_t r = 0; r < n; ++r) yp[r * inner] = from_f<T>(to_f(xp[r * inner]) - c);
    } else {
      const float inv = 1.0f / s;
      for (int64_t r = 0; r < n; ++r) yp[r * inner] = from_f<T>(expf(to_f(xp[r * inner]) - m) * inv);
    }
  }
}

bool supports_softmax(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && is_float_type(in[0].dtype);
}

void softmax_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (!is_float_type(x.dtype)) ctx.fail(std::string("SoftMax on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t axis = norm_axis(ctx, ctx.attrs().i("axis", -1), rank);
  const bool log_out = ctx.attrs().i("log", 0) != 0;
  const int64_t outer = prod(x.shape, 0, axis), n = x.shape[axis], inner = prod(x.shape, axis + 1, rank);
  if (x.numel() == 0) return;
  cudaStream_t s = ctx.stream();
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* y = ctx.out[0].as<T>();
    if (inner == 1) {
      const int tpr = threads_per_row(n);
      const int rpb = kThreads / tpr;
      k_softmax_rows<T><<<blocks_for((outer + rpb - 1) / rpb, 1), kThreads, 0, s>>>(x.as<T>(), y, outer, n, log_out, tpr);
    } else {
      k_softmax_cols<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(x.as<T>(), y, outer, n, inner, log_out);
    }
    KILN_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("SoftMax", &softmax_kernel, &supports_softmax);

}  // namespace kiln::cuda::kern
