// CUDA kernels for Cast and Identity. Cast converts between float32/float16/bfloat16/int8/uint8/int32/int64/
// bool exactly as the CPU kernel (src/backends/cpu/kernels/elementwise.cpp): float -> integer truncates
// toward zero (NaN gives 0, values beyond int64 saturate there, narrower types keep the low bits),
// -> bool is x != 0, integers -> float16/bfloat16 go through float32. The float32 <-> float16/bfloat16
// casts of mixed-precision graphs get their own vectorized kernels; every other pair goes through one
// generic kernel that reads as double/int64 and writes the destination type.
#include "backends/cuda/kernels/pointwise.cuh"

namespace kiln::cuda::kern {
namespace {

template <class S, class D> struct FloatCast {
  __device__ __forceinline__ D operator()(S v) const { return from_f<D>(to_f(v)); }
};

// One element of dtype `dt` at p[i], as double (float types) or int64 (integers and bool).
struct Scalar {
  bool is_float;
  double f;
  int64_t i;
};
__device__ __forceinline__ Scalar read_elem(const void* p, int dt, int64_t i) {
  switch (dt) {
    case static_cast<int>(DataType::kFLOAT): return {true, static_cast<const float*>(p)[i], 0};
    case static_cast<int>(DataType::kHALF): return {true, __half2float(static_cast<const half*>(p)[i]), 0};
    case static_cast<int>(DataType::kBF16): return {true, __bfloat162float(static_cast<const bf16*>(p)[i]), 0};
    case static_cast<int>(DataType::kINT8): return {false, 0, static_cast<const int8_t*>(p)[i]};
    case static_cast<int>(DataType::kUINT8): return {false, 0, static_cast<const uint8_t*>(p)[i]};
    case static_cast<int>(DataType::kINT32): return {false, 0, static_cast<const int32_t*>(p)[i]};
    case static_cast<int>(DataType::kINT64): return {false, 0, static_cast<const int64_t*>(p)[i]};
    default: return {false, 0, static_cast<const uint8_t*>(p)[i] != 0};  // kBOOL
  }
}

// float -> int64: truncation toward zero, NaN -> 0, saturation at the int64 range.
__device__ __forceinline__ int64_t f_to_i64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2233720368547758e18) return INT64_MAX;
  if (v <= -9.2233720368547758e18) return INT64_MIN;
  return static_cast<int64_t>(v);
}

template <class T> __device__ __forceinline__ void put_int(void* p, int64_t i, int64_t v) {
  static_cast<T*>(p)[i] = static_cast<T>(static_cast<uint64_t>(v));  // keeps the low bits
}

__device__ __forceinline__ void write_elem(void* p, int dt, int64_t i, const Scalar& s) {
  switch (dt) {
    case static_cast<int>(DataType::kFLOAT):
      static_cast<float*>(p)[i] = s.is_float ? static_cast<float>(s.f) : static_cast<float>(s.i);
      return;
    case static_cast<int>(DataType::kHALF):
      static_cast<half*>(p)[i] = __float2half_rn(s.is_float ? static_cast<float>(s.f) : static_cast<float>(s.i));
      return;
    case static_cast<int>(DataType::kBF16):
      static_cast<bf16*>(p)[i] = __float2bfloat16_rn(s.is_float ? static_cast<float>(s.f) : static_cast<float>(s.i));
      return;
    case static_cast<int>(DataType::kBOOL):
      static_cast<uint8_t*>(p)[i] = s.is_float ? (s.f != 0.0) : (s.i != 0);
      return;
    default: break;
  }
  const int64_t v = s.is_float ? f_to_i64(s.f) : s.i;
  switch (dt) {
    case static_cast<int>(DataType::kINT8): return put_int<int8_t>(p, i, v);
    case static_cast<int>(DataType::kUINT8): return put_int<uint8_t>(p, i, v);
    case static_cast<int>(DataType::kINT32): return put_int<int32_t>(p, i, v);
    default: return put_int<int64_t>(p, i, v);
  }
}

__global__ void k_cast_generic(const void* __restrict__ x, int sdt, void* __restrict__ y, int ddt, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    write_elem(y, ddt, i, read_elem(x, sdt, i));
}

bool supports_cast(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.empty() || !is_gpu_type(in[0].dtype)) return false;
  const int64_t to = node.attrs.i("to", -1);
  return dtype_is_valid(static_cast<int32_t>(to)) && is_gpu_type(static_cast<DataType>(to));
}

void copy_device(const KernelContext& ctx, void* dst, const void* src, size_t bytes) {
  if (dst == src || bytes == 0) return;
  KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
}

void cast_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  if (!is_gpu_type(x.dtype) || !is_gpu_type(y.dtype))
    ctx.fail(std::string("cannot cast ") + dtype_name(x.dtype) + " to " + dtype_name(y.dtype) + " on the GPU");
  const int64_t n = x.numel();
  if (x.dtype == y.dtype) return copy_device(ctx, y.data, x.data, x.nbytes());
  cudaStream_t s = ctx.stream();
  const DataType a = x.dtype, b = y.dtype;
  if (a == DataType::kFLOAT && b == DataType::kHALF) return launch_map1(s, x.as<float>(), y.as<half>(), n, FloatCast<float, half>{});
  if (a == DataType::kFLOAT && b == DataType::kBF16) return launch_map1(s, x.as<float>(), y.as<bf16>(), n, FloatCast<float, bf16>{});
  if (a == DataType::kHALF && b == DataType::kFLOAT) return launch_map1(s, x.as<half>(), y.as<float>(), n, FloatCast<half, float>{});
  if (a == DataType::kBF16 && b == DataType::kFLOAT) return launch_map1(s, x.as<bf16>(), y.as<float>(), n, FloatCast<bf16, float>{});
  if (n <= 0) return;
  k_cast_generic<<<blocks_for(n), kThreads, 0, s>>>(x.data, static_cast<int>(a), y.data, static_cast<int>(b), n);
  KILN_CUDA_LAUNCH_CHECK();
}

// Identity, and the reshapes that keep the bytes (Squeeze, Unsqueeze): a device-to-device copy.
void copy_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (x.nbytes() != ctx.out[0].nbytes()) ctx.fail("input and output sizes differ");
  copy_device(ctx, ctx.out[0].data, x.data, x.nbytes());
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Cast", &cast_kernel, &supports_cast);
KILN_REGISTER_CUDA_KERNEL("Identity", &copy_kernel);
KILN_REGISTER_CUDA_KERNEL("Squeeze", &copy_kernel);
KILN_REGISTER_CUDA_KERNEL("Unsqueeze", &copy_kernel);

}  // namespace kiln::cuda::kern
