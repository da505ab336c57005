// CUDA kernels for the generator ops: ConstantOfShape (any dtype), Range (float32/int32/int64, start and
// delta read on the device) and Fill LINSPACE (y[i0, i1, ..] = alpha + sum_k beta[k] * ik, any GPU dtype).
// Fill's RANDOM modes run on the CPU backend (the `supports` predicate says no), so that a seed gives the
// same numbers wherever the op runs.
#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {
namespace {

template <class T> __global__ void k_fill_value(T* __restrict__ y, int64_t n, T v) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = v;
}

void constant_of_shape_kernel(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  uint64_t v = 0;
  if (ctx.attrs().has("value")) {
    const HostTensor& t = ctx.attrs().tensor("value");
    if (t.numel() != 1 || t.dtype() != y.dtype) ctx.fail("the 'value' attribute must be one element of the output dtype");
    std::memcpy(&v, t.raw(), dtype_size(y.dtype));
  }
  const int64_t n = y.numel();
  if (n <= 0) return;
  const bool ok = dispatch_size(dtype_size(y.dtype), [&](auto tag) {
    using T = decltype(tag);
    k_fill_value<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(y.as<T>(), n, static_cast<T>(v));
    KILN_CUDA_LAUNCH_CHECK();
  });
  if (!ok) ctx.fail(std::string("unsupported dtype ") + dtype_name(y.dtype));
}

// Range: y[i] = start + i * delta, computed in T as the CPU kernel does.
template <class T> __global__ void k_range(T* __restrict__ y, int64_t n, const T* start, const T* delta) {
  const T s = *start, d = *delta;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = static_cast<T>(s + static_cast<T>(i) * d);
}

bool range_dtype_ok(DataType t) { return t == DataType::kFLOAT || t == DataType::kINT32 || t == DataType::kINT64; }

bool supports_range(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  return in.size() == 3 && range_dtype_ok(in[0].dtype) && in[1].dtype == in[0].dtype && in[2].dtype == in[0].dtype;
}

void range_kernel(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  const TensorRef& start = ctx.input(0);
  const TensorRef& delta = ctx.input(2);
  if (!range_dtype_ok(y.dtype) || start.dtype != y.dtype || delta.dtype != y.dtype)
    ctx.fail(std::string("Range on ") + dtype_name(y.dtype) + " is not supported by the CUDA kernel");
  if (start.numel() < 1 || delta.numel() < 1) ctx.fail("start and delta must hold one value");
  const int64_t n = y.numel();
  if (n <= 0) return;
  auto go = [&](auto tag) {
    using T = decltype(tag);
    k_range<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(y.as<T>(), n, start.as<T>(), delta.as<T>());
    KILN_CUDA_LAUNCH_CHECK();
  };
  switch (y.dtype) {
    case DataType::kFLOAT: return go(float{});
    case DataType::kINT32: return go(int32_t{});
    default: return go(int64_t{});
  }
}

// Fill LINSPACE: the value in double, converted as the CPU kernel's store_scalar.
struct Linspace {
  int rank;
  int64_t dims[kMaxDims];
  double alpha, beta[kMaxDims];
};

template <class T> __device__ __forceinline__ T from_double(double v) {
  if constexpr (kFloatLike<T>) return from_f<T>(static_cast<float>(v));
  else return static_cast<T>(v);
}

template <class T> __global__ void k_linspace(T* __restrict__ y, int64_t n, Linspace l) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    int64_t rem = e;
    double v = l.alpha;
    for (int d = l.rank - 1; d >= 0; --d) {
      const int64_t q = rem / l.dims[d];
      v += l.beta[d] * static_cast<double>(rem - q * l.dims[d]);
      rem = q;
    }
    if constexpr (std::is_same_v<T, bool>) y[e] = v != 0;
    else y[e] = from_double<T>(v);
  }
}

bool supports_fill(const ir::Node& node, const std::vector<ir::TensorInfo>&) {
  if (node.attrs.i("op", 0) != 0) return false;  // RANDOM_* stay on the CPU
  const int64_t dt = node.attrs.i("dtype", static_cast<int64_t>(DataType::kFLOAT));
  return dtype_is_valid(static_cast<int32_t>(dt)) && is_gpu_type(static_cast<DataType>(dt));
}

double host_f64(const KernelContext& ctx, size_t i, int64_t k) {
  const TensorRef& t = ctx.in[i];
  if (!t.host) ctx.fail("input " + std::to_string(i) + " must be known on the host");
  switch (t.dtype) {
    case DataType::kFLOAT: return static_cast<const float*>(t.host)[k];
    case DataType::kDOUBLE: return static_cast<const double*>(t.host)[k];
    case DataType::kHALF: return half_to_float(static_cast<const uint16_t*>(t.host)[k]);
    case DataType::kBF16: return bf16_to_float(static_cast<const uint16_t*>(t.host)[k]);
    default: return static_cast<double>(t.host_i64().at(static_cast<size_t>(k)));
  }
}

void fill_kernel(KernelContext& ctx) {
  TensorRef& y = ctx.out[0];
  if (ctx.attrs().i("op", 0) != 0) ctx.fail("only LINSPACE runs on the GPU");
  if (!is_gpu_type(y.dtype)) ctx.fail(std::string("Fill of ") + dtype_name(y.dtype) + " is not supported by the CUDA kernel");
  Linspace l{};
  l.alpha = ctx.has_input(1) ? host_f64(ctx, 1, 0) : ctx.attrs().f("alpha", 0.0);
  std::vector<double> beta;
  if (ctx.has_input(2)) {
    for (int64_t i = 0; i < ctx.in[2].numel(); ++i) beta.push_back(host_f64(ctx, 2, i));
  } else {
    beta = ctx.attrs().floats("beta", {1.0});
  }
  const size_t r = y.shape.size();
  if (r > 0 && beta.size() != r)
    ctx.fail("LINSPACE needs one beta per output dim (" + std::to_string(r) + "), got " + std::to_string(beta.size()));
  if (r > static_cast<size_t>(kMaxDims)) ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims");
  l.rank = static_cast<int>(r);
  for (size_t d = 0; d < r; ++d) {
    l.dims[d] = y.shape[d];
    l.beta[d] = beta[d];
  }
  const int64_t n = y.numel();
  if (n <= 0) return;
  cudaStream_t s = ctx.stream();
  auto go = [&](auto tag) {
    using T = decltype(tag);
    k_linspace<T><<<blocks_for(n), kThreads, 0, s>>>(y.as<T>(), n, l);
    KILN_CUDA_LAUNCH_CHECK();
  };
  if (y.dtype == DataType::kBOOL) {
    k_linspace<bool><<<blocks_for(n), kThreads, 0, s>>>(static_cast<bool*>(y.data), n, l);
    KILN_CUDA_LAUNCH_CHECK();
    return;
  }
  dispatch_numeric(y.dtype, go);
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("ConstantOfShape", &constant_of_shape_kernel);
KILN_REGISTER_CUDA_KERNEL("Range", &range_kernel, &supports_range);
KILN_REGISTER_CUDA_KERNEL("Fill", &fill_kernel, &supports_fill);

}  // namespace kiln::cuda::kern
