// CUDA kernels for Activation (ActivationType codes and alpha/beta defaults as the CPU kernel in
// src/backends/cpu/kernels/elementwise.cpp) and Scale (y = (x*scale + shift)^power per UNIFORM, CHANNEL or
// ELEMENTWISE coefficients). Float types compute in float32; Activation RELU and CLIP also run on
// int8/uint8/int32/int64.
#include <cmath>
#include <limits>

#include "backends/cuda/kernels/activation_math.cuh"
#include "backends/cuda/kernels/pointwise.cuh"

namespace kiln::cuda::kern {
namespace {

using namespace act;  // the Activation math: activation_math.cuh

template <class T> struct FloatAct {
  int type;
  float alpha, beta;
  __device__ __forceinline__ T operator()(T x) const { return from_f<T>(activate(type, alpha, beta, to_f(x))); }
};
// RELU is CLIP to [0, max].
template <class T> struct IntClip {
  T lo, hi;
  __device__ __forceinline__ T operator()(T v) const { return v < lo ? lo : (v > hi ? hi : v); }
};

// A float bound rounded into T without overflow (up: ceil for the lower bound, else floor).
template <class T> T int_bound(double v, bool up) {
  const double r = up ? std::ceil(v) : std::floor(v);
  if (!(r > static_cast<double>(std::numeric_limits<T>::lowest()))) return std::numeric_limits<T>::lowest();
  if (!(r < static_cast<double>(std::numeric_limits<T>::max()))) return std::numeric_limits<T>::max();
  return static_cast<T>(r);
}

bool activation_ok(int type, DataType dt) {
  if (is_float_type(dt)) return known_activation(type);
  if (dt == DataType::kINT8 || dt == DataType::kUINT8 || dt == DataType::kINT32 || dt == DataType::kINT64)
    return type == kRelu || type == kClip;
  return false;
}

bool supports_activation(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  return !in.empty() && activation_ok(static_cast<int>(node.attrs.i("type", -1)), in[0].dtype);
}

void activation_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const int type = static_cast<int>(ctx.attrs().i("type", -1));
  if (!activation_ok(type, x.dtype))
    ctx.fail("activation " + std::to_string(type) + " on " + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  double alpha, beta;
  activation_params(ctx.attrs(), type, &alpha, &beta);
  const int64_t n = x.numel();
  cudaStream_t s = ctx.stream();
  if (dispatch_float(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        launch_map1(s, x.as<T>(), y.as<T>(), n, FloatAct<T>{type, static_cast<float>(alpha), static_cast<float>(beta)});
      }))
    return;
  dispatch_numeric(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      IntClip<T> f{type == kRelu ? T(0) : int_bound<T>(alpha, true),
                   type == kRelu ? std::numeric_limits<T>::max() : int_bound<T>(beta, false)};
      launch_map1(s, x.as<T>(), y.as<T>(), n, f);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Scale: x viewed as [outer, c, inner]; coefficient k = (i / inner) % c. UNIFORM: c = 1; CHANNEL: c = the
// channel dim; ELEMENTWISE: c = everything from the channel axis on (inner = 1). Absent coefficient inputs
// are identities. Coefficients may be any float dtype (read through load_param).

struct ScaleCoeffs {
  const void* shift;
  const void* scale;
  const void* power;
  int shift_dt, scale_dt, power_dt;
};

template <class T>
__global__ void k_scale(const T* __restrict__ x, T* __restrict__ y, int64_t n, int64_t c, int64_t inner,
                        ScaleCoeffs p) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t k = (i / inner) % c;
    float v = to_f(x[i]);
    if (p.scale) v *= load_param(p.scale, p.scale_dt, k);
    if (p.shift) v += load_param(p.shift, p.shift_dt, k);
    if (p.power) {
      const float e = load_param(p.power, p.power_dt, k);
      if (e != 1.0f) v = powf(v, e);
    }
    y[i] = from_f<T>(v);
  }
}

bool supports_scale(const ir::Node&, const std::vector<ir::TensorInfo>& in) {
  if (in.empty() || !is_float_type(in[0].dtype)) return false;
  for (size_t i = 1; i < in.size(); ++i)
    if (in[i].present && !is_float_type(in[i].dtype)) return false;
  return true;
}

void scale_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  if (!is_float_type(x.dtype)) ctx.fail(std::string("Scale on ") + dtype_name(x.dtype) + " is not supported by the CUDA kernel");
  const int64_t mode = ctx.attrs().i("mode", 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t c = 1, inner = 1;
  if (mode != 0) {
    const int64_t axis = norm_axis(ctx, ctx.attrs().i("channel_axis", 1), rank, "channel_axis");
    if (mode == 1) {
      c = x.shape[axis];
      inner = prod(x.shape, axis + 1, x.shape.size());
    } else {
      c = prod(x.shape, axis, x.shape.size());
    }
  }
  ScaleCoeffs p{nullptr, nullptr, nullptr, 0, 0, 0};
  const void** ptr[3] = {&p.shift, &p.scale, &p.power};
  int* dts[3] = {&p.shift_dt, &p.scale_dt, &p.power_dt};
  static const char* kNames[3] = {"shift", "scale", "power"};
  for (int k = 0; k < 3; ++k) {
    if (!ctx.has_input(1 + k)) continue;
    const TensorRef& t = ctx.in[1 + k];
    if (!is_float_type(t.dtype)) ctx.fail(std::string(kNames[k]) + " must be a float tensor, got " + dtype_name(t.dtype));
    if (t.numel() != c)
      ctx.fail(std::string(kNames[k]) + " has " + std::to_string(t.numel()) + " coefficients, expected " + std::to_string(c));
    *ptr[k] = t.data;
    *dts[k] = static_cast<int>(t.dtype);
  }
  const int64_t n = x.numel();
  if (n <= 0) return;
  if (c <= 0) ctx.fail("Scale over an empty channel axis");
  dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    k_scale<T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(x.as<T>(), y.as<T>(), n, c, inner, p);
    KILN_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Activation", &activation_kernel, &supports_activation);
KILN_REGISTER_CUDA_KERNEL("Scale", &scale_kernel, &supports_scale);

}  // namespace kiln::cuda::kern
