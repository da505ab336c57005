// CUDA kernels for Resize (ONNX Resize, opset 11+ semantics; attribute values in ir/OPS.md), matching
// src/backends/cpu/kernels/resize.cpp. Each output element finds, per resized axis, its input taps and
// weights (1 tap for NEAREST, 2 for LINEAR, 4 for CUBIC) from the coordinate transformation (computed in
// double, as on the CPU), and sums the tensor product of the axes' taps; axes that are not resized map
// index to index. NEAREST copies elements of any dtype; LINEAR and CUBIC take float32/float16/bfloat16 and
// accumulate in float32. TF_CROP_AND_RESIZE writes `extrapolation_value` where the source coordinate falls
// outside the input on any axis.
#include <cmath>

#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {
namespace {

enum Mode : int { kNearest = 0, kLinear = 1, kCubic = 2 };
enum Coord : int {
  kAlignCorners = 0, kAsymmetric = 1, kHalfPixel = 2, kPytorchHalfPixel = 64, kTfHalfPixelForNN = 65,
  kTfCropAndResize = 66
};
enum Rounding : int { kHalfUp = 0, kHalfDown = 1, kFloor = 2, kCeil = 3 };

struct ResizeAxis {
  int64_t in, out, stride;  // stride: the input's element stride
  double scale, roi_start, roi_end;
  bool active;              // resized (else index maps to itself)
};

struct ResizeParams {
  int rank;
  ResizeAxis ax[kMaxDims];
  int mode, coord, rounding;
  double cubic_a;
  bool exclude_outside;
};

// Input coordinate of output index x on one axis (CPU: source_coord).
__device__ double source_coord(const ResizeParams& p, const ResizeAxis& a, int64_t x) {
  const double xd = static_cast<double>(x);
  switch (p.coord) {
    case kAlignCorners: return a.out == 1 ? 0.0 : xd * static_cast<double>(a.in - 1) / static_cast<double>(a.out - 1);
    case kAsymmetric: return xd / a.scale;
    case kHalfPixel: return (xd + 0.5) / a.scale - 0.5;
    case kPytorchHalfPixel: return a.out > 1 ? (xd + 0.5) / a.scale - 0.5 : 0.0;
    case kTfHalfPixelForNN: return (xd + 0.5) / a.scale;
    default: {  // kTfCropAndResize
      const double in1 = static_cast<double>(a.in - 1);
      if (a.out > 1) return a.roi_start * in1 + xd * (a.roi_end - a.roi_start) * in1 / static_cast<double>(a.out - 1);
      return 0.5 * (a.roi_start + a.roi_end) * in1;
    }
  }
}

constexpr int kMaxActiveAxes = 4;  // resized axes LINEAR/CUBIC handle at once (4^4 taps for CUBIC)

struct Taps {
  int n;
  int64_t idx[4];
  float w[4];
  bool extrap;
};

// The taps of output index j on axis a (CPU: make_taps).
__device__ Taps axis_taps(const ResizeParams& p, const ResizeAxis& a, int64_t j) {
  Taps t;
  t.extrap = false;
  if (!a.active) {
    t.n = 1;
    t.idx[0] = j;
    t.w[0] = 1.0f;
    return t;
  }
  const double xo = source_coord(p, a, j);
  if (p.coord == kTfCropAndResize && (xo < 0 || xo > static_cast<double>(a.in - 1))) {
    t.n = 0;
    t.extrap = true;
    return t;
  }
  if (p.mode == kNearest) {
    double v;
    switch (p.rounding) {
      case kHalfUp: v = floor(xo + 0.5); break;
      case kHalfDown: v = ceil(xo - 0.5); break;
      case kFloor: v = floor(xo); break;
      default: v = ceil(xo); break;
    }
    int64_t i = static_cast<int64_t>(v);
    t.n = 1;
    t.idx[0] = i < 0 ? 0 : (i > a.in - 1 ? a.in - 1 : i);
    t.w[0] = 1.0f;
    return t;
  }
  const double x0 = floor(xo), ratio = xo - x0;
  int64_t base = static_cast<int64_t>(x0);
  double c[4];
  if (p.mode == kLinear) {
    t.n = 2;
    c[0] = 1.0 - ratio;
    c[1] = ratio;
  } else {
    t.n = 4;
    base -= 1;
    const double A = p.cubic_a, r1 = ratio + 1, r2 = 1 - ratio, r3 = 2 - ratio;
    c[0] = ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A;
    c[1] = ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1;
    c[2] = ((A + 2) * r2 - (A + 3)) * r2 * r2 + 1;
    c[3] = ((A * r3 - 5 * A) * r3 + 8 * A) * r3 - 4 * A;
  }
  if (p.exclude_outside) {
    double sum = 0;
    for (int k = 0; k < t.n; ++k) {
      const int64_t i = base + k;
      if (i < 0 || i >= a.in) c[k] = 0;
      sum += c[k];
    }
    if (sum != 0)
      for (int k = 0; k < t.n; ++k) c[k] /= sum;
  }
  for (int k = 0; k < t.n; ++k) {
    const int64_t i = base + k;
    t.idx[k] = i < 0 ? 0 : (i > a.in - 1 ? a.in - 1 : i);
    t.w[k] = static_cast<float>(c[k]);
  }
  return t;
}

template <class T>
__global__ void k_resize_nearest(const T* __restrict__ x, T* __restrict__ y, int64_t n, ResizeParams p, uint64_t fill) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    int64_t rem = e, off = 0;
    bool extrap = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      const ResizeAxis& a = p.ax[d];
      const int64_t q = rem / a.out, j = rem - q * a.out;
      rem = q;
      const Taps t = axis_taps(p, a, j);
      extrap |= t.extrap;
      if (!t.extrap) off += t.idx[0] * a.stride;
    }
    y[e] = extrap ? static_cast<T>(fill) : x[off];
  }
}

template <class T>
__global__ void k_resize_interp(const T* __restrict__ x, T* __restrict__ y, int64_t n, ResizeParams p, float extrap_v) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    // Taps of the active axes only (at most 4 of them, checked on the host); the others add a fixed offset.
    Taps taps[kMaxActiveAxes];
    int64_t strides[kMaxActiveAxes];
    int na = 0;
    int64_t rem = e, base = 0;
    bool extrap = false;
    for (int d = p.rank - 1; d >= 0; --d) {
      const ResizeAxis& a = p.ax[d];
      const int64_t q = rem / a.out, j = rem - q * a.out;
      rem = q;
      if (!a.active) {
        base += j * a.stride;
        continue;
      }
      taps[na] = axis_taps(p, a, j);
      extrap |= taps[na].extrap;
      strides[na] = a.stride;
      ++na;
    }
    if (extrap) {
      y[e] = from_f<T>(extrap_v);
      continue;
    }
    int combos = 1;
    for (int k = 0; k < na; ++k) combos *= taps[k].n;
    float acc = 0.0f;
    for (int c = 0; c < combos; ++c) {
      int r = c;
      float w = 1.0f;
      int64_t off = base;
      for (int k = 0; k < na; ++k) {
        const int t = r % taps[k].n;
        r /= taps[k].n;
        w *= taps[k].w[t];
        off += taps[k].idx[t] * strides[k];
      }
      if (w != 0.0f) acc += w * to_f(x[off]);
    }
    y[e] = from_f<T>(acc);
  }
}

bool supports_resize(const ir::Node& node, const std::vector<ir::TensorInfo>& in) {
  if (in.empty() || in[0].shape.size() > static_cast<size_t>(kMaxDims) || dtype_size(in[0].dtype) > 8) return false;
  const int64_t mode = node.attrs.i("mode", kNearest);
  if (mode == kNearest) return true;
  if (mode != kLinear && mode != kCubic) return false;
  if (!is_float_type(in[0].dtype)) return false;
  // At most kMaxActiveAxes resized axes (checked again at run time): count them where the node says.
  const Dims& xs = in[0].shape;
  if (node.attrs.i("coordinate_transformation", kAsymmetric) == kTfCropAndResize)
    return xs.size() <= static_cast<size_t>(kMaxActiveAxes);
  int resized = 0;
  const std::vector<double> sc = node.attrs.floats("scales");
  const std::vector<int64_t> sz = node.attrs.ints("sizes");
  if (!sz.empty() && sz.size() == xs.size()) {
    for (size_t d = 0; d < xs.size(); ++d) resized += xs[d] < 0 || sz[d] != xs[d];
  } else if (!sc.empty()) {
    for (double v : sc) resized += v != 1.0;
  }
  return resized <= kMaxActiveAxes;
}

// The scales input (host copy): one value per axis, or with the `axes` attribute one per listed axis (the
// others keep scale 1), as the CPU kernel reads it.
std::vector<double> runtime_scales(const KernelContext& ctx, size_t rank) {
  const TensorRef& t = ctx.in[2];
  if (!t.host) ctx.fail("input 2 (scales) must be known on the host");
  std::vector<int64_t> axes = ctx.attrs().ints("axes");
  if (axes.empty())
    for (size_t d = 0; d < rank; ++d) axes.push_back(static_cast<int64_t>(d));
  if (t.numel() != static_cast<int64_t>(axes.size()))
    ctx.fail("expected " + std::to_string(axes.size()) + " scales, got " + std::to_string(t.numel()));
  std::vector<double> scales(rank, 1.0);
  for (size_t i = 0; i < axes.size(); ++i) {
    double v = 0;
    switch (t.dtype) {
      case DataType::kFLOAT: v = static_cast<const float*>(t.host)[i]; break;
      case DataType::kDOUBLE: v = static_cast<const double*>(t.host)[i]; break;
      case DataType::kHALF: v = half_to_float(static_cast<const uint16_t*>(t.host)[i]); break;
      case DataType::kBF16: v = bf16_to_float(static_cast<const uint16_t*>(t.host)[i]); break;
      default: ctx.fail(std::string("input 2 (scales) must be float, got ") + dtype_name(t.dtype));
    }
    scales[norm_axis(ctx, axes[i], static_cast<int64_t>(rank))] = v;
  }
  return scales;
}

void resize_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const auto& a = ctx.attrs();
  const size_t r = x.shape.size();
  if (r > static_cast<size_t>(kMaxDims)) ctx.fail("the CUDA kernel handles at most " + std::to_string(kMaxDims) + " dims");
  if (y.shape.size() != r) ctx.fail("input and output ranks differ");
  ResizeParams p{};
  p.rank = static_cast<int>(r);
  p.mode = static_cast<int>(a.i("mode", kNearest));
  p.coord = static_cast<int>(a.i("coordinate_transformation", kAsymmetric));
  p.rounding = static_cast<int>(a.i("nearest_rounding", kFloor));
  p.cubic_a = a.f("cubic_coeff", -0.75);
  p.exclude_outside = a.i("exclude_outside", 0) != 0;
  const double extrapolation = a.f("extrapolation_value", 0.0);
  if (p.mode != kNearest && p.mode != kLinear && p.mode != kCubic) ctx.fail("unknown resize mode " + std::to_string(p.mode));
  // Scales: the scales input (host copy), else the attribute, else output/input sizes.
  std::vector<double> scales;
  const bool sizes_given = (ctx.has_input(1) && ctx.in[1].numel() > 0) || !a.ints("sizes").empty();
  if (!sizes_given && ctx.has_input(2) && ctx.in[2].numel() > 0) {
    scales = runtime_scales(ctx, r);
  } else if (!sizes_given && !a.floats("scales").empty()) {
    scales = a.floats("scales");
  } else {
    for (size_t d = 0; d < r; ++d)
      scales.push_back(x.shape[d] > 0 ? static_cast<double>(y.shape[d]) / static_cast<double>(x.shape[d]) : 1.0);
  }
  if (scales.size() != r) ctx.fail("expected " + std::to_string(r) + " scales, got " + std::to_string(scales.size()));
  std::vector<double> roi = a.floats("roi");
  if (roi.empty()) {
    roi.assign(r, 0.0);
    roi.resize(2 * r, 1.0);
  }
  if (p.coord == kTfCropAndResize && roi.size() != 2 * r)
    ctx.fail("'roi' needs " + std::to_string(2 * r) + " values, got " + std::to_string(roi.size()));
  const int64_t n = y.numel();
  if (n == 0) return;
  for (size_t d = 0; d < r; ++d)
    if (x.shape[d] == 0) ctx.fail("cannot resize an empty axis " + std::to_string(d) + " to a non-empty one");
  const Dims xs = contiguous_strides(x.shape);
  int active = 0;
  for (size_t d = 0; d < r; ++d) {
    ResizeAxis& ax = p.ax[d];
    ax.in = x.shape[d];
    ax.out = y.shape[d];
    ax.stride = xs[d];
    ax.scale = scales[d];
    ax.roi_start = roi.size() == 2 * r ? roi[d] : 0.0;
    ax.roi_end = roi.size() == 2 * r ? roi[r + d] : 1.0;
    // As the CPU kernel: an axis that is not resized maps each index to itself.
    ax.active = !(ax.scale == 1.0 && ax.in == ax.out && p.coord != kTfCropAndResize);
    active += ax.active;
  }
  cudaStream_t s = ctx.stream();
  if (p.mode == kNearest) {
    const uint64_t fill = [&]() -> uint64_t {
      uint64_t b = 0;
      switch (x.dtype) {
        case DataType::kFLOAT: { float f = static_cast<float>(extrapolation); std::memcpy(&b, &f, 4); break; }
        case DataType::kDOUBLE: std::memcpy(&b, &extrapolation, 8); break;
        case DataType::kHALF: { uint16_t h = float_to_half(static_cast<float>(extrapolation)); std::memcpy(&b, &h, 2); break; }
        case DataType::kBF16: { uint16_t h = float_to_bf16(static_cast<float>(extrapolation)); std::memcpy(&b, &h, 2); break; }
        case DataType::kINT32: { int32_t i = static_cast<int32_t>(extrapolation); std::memcpy(&b, &i, 4); break; }
        case DataType::kINT64: { int64_t i = static_cast<int64_t>(extrapolation); std::memcpy(&b, &i, 8); break; }
        default: { int8_t i = static_cast<int8_t>(extrapolation); std::memcpy(&b, &i, 1); break; }
      }
      return b;
    }();
    const bool ok = dispatch_size(dtype_size(x.dtype), [&](auto tag) {
      using T = decltype(tag);
      k_resize_nearest<T><<<blocks_for(n), kThreads, 0, s>>>(x.as<T>(), y.as<T>(), n, p, fill);
      KILN_CUDA_LAUNCH_CHECK();
    });
    if (!ok) ctx.fail(std::string("unsupported dtype ") + dtype_name(x.dtype));
    return;
  }
  if (active > kMaxActiveAxes)
    ctx.fail("LINEAR/CUBIC resize of " + std::to_string(active) + " axes at once; the CUDA kernel handles up to " +
             std::to_string(kMaxActiveAxes));
  const bool ok = dispatch_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    k_resize_interp<T><<<blocks_for(n), kThreads, 0, s>>>(x.as<T>(), y.as<T>(), n, p, static_cast<float>(extrapolation));
    KILN_CUDA_LAUNCH_CHECK();
  });
  if (!ok) ctx.fail(std::string("LINEAR and CUBIC resize support float types, got ") + dtype_name(x.dtype));
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Resize", &resize_kernel, &supports_resize);

}  // namespace kiln::cuda::kern
