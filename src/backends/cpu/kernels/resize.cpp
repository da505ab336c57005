// CPU kernel for Resize (ONNX Resize, opset 11+ semantics; attribute values in ir/OPS.md).
//
// Every axis gets a table of taps: for each output index, the input indices and weights it reads (one tap
// for NEAREST, two for LINEAR, four for CUBIC), computed from the coordinate transformation. NEAREST is a
// pure gather over per-axis index tables and works for any dtype. LINEAR and CUBIC (float32) are separable:
// the tensor is resampled one axis at a time (axes whose taps are the identity are skipped), each pass a
// weighted sum of whole contiguous inner rows, which vectorizes. TF_CROP_AND_RESIZE writes
// `extrapolation_value` where the source coordinate falls outside the input on any axis.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using Ints = std::vector<int64_t>;

enum Mode : int64_t { kNearest = 0, kLinear = 1, kCubic = 2 };
enum Coord : int64_t {
  kAlignCorners = 0,
  kAsymmetric = 1,
  kHalfPixel = 2,
  kPytorchHalfPixel = 64,
  kTfHalfPixelForNN = 65,
  kTfCropAndResize = 66,
};
enum Rounding : int64_t { kHalfUp = 0, kHalfDown = 1, kFloor = 2, kCeil = 3 };

struct Params {
  int64_t mode, coord, rounding;
  double cubic_a;
  bool exclude_outside;
  double extrapolation;
  std::vector<double> scales;  // per axis
  std::vector<double> roi;     // 2 * rank: starts then ends (TF_CROP_AND_RESIZE)
};

// Input coordinate of output index x on one axis.
double source_coord(const Params& p, int64_t axis, int64_t x, int64_t in, int64_t out) {
  double scale = p.scales[axis], xd = static_cast<double>(x);
  // An axis that is not resized maps each index to itself, whatever the transformation (OPS.md: Resize
  // acts on the dims whose scale != 1; tf_half_pixel_for_nn with ceil rounding would shift it by one).
  if (scale == 1.0 && in == out && p.coord != kTfCropAndResize) return xd;
  switch (p.coord) {
    case kAlignCorners: return out == 1 ? 0.0 : xd * static_cast<double>(in - 1) / static_cast<double>(out - 1);
    case kAsymmetric: return xd / scale;
    case kHalfPixel: return (xd + 0.5) / scale - 0.5;
    case kPytorchHalfPixel: return out > 1 ? (xd + 0.5) / scale - 0.5 : 0.0;
    case kTfHalfPixelForNN: return (xd + 0.5) / scale;
    default: {  // kTfCropAndResize
      size_t r = p.roi.size() / 2;
      double start = p.roi[axis], end = p.roi[r + axis];
      if (out > 1) return start * (in - 1) + xd * (end - start) * (in - 1) / static_cast<double>(out - 1);
      return 0.5 * (start + end) * (in - 1);
    }
  }
}

// Taps of one axis: for output j, taps n*j .. n*j+n-1; extrap[j] marks outputs that take the
// extrapolation value.
struct AxisTaps {
  int64_t n = 1;
  Ints idx;
  std::vector<float> w;
  std::vector<uint8_t> extrap;
  bool identity = false;
};

AxisTaps make_taps(const Params& p, int64_t axis, int64_t in, int64_t out) {
  AxisTaps t;
  t.n = p.mode == kNearest ? 1 : p.mode == kLinear ? 2 : 4;
  t.idx.assign(static_cast<size_t>(out * t.n), 0);
  t.w.assign(static_cast<size_t>(out * t.n), 0.f);
  t.extrap.assign(static_cast<size_t>(out), 0);
  for (int64_t j = 0; j < out; ++j) {
    double xo = source_coord(p, axis, j, in, out);
    if (p.coord == kTfCropAndResize && (xo < 0 || xo > static_cast<double>(in - 1))) {
      t.extrap[j] = 1;
      continue;
    }
    int64_t* ix = &t.idx[j * t.n];
    float* w = &t.w[j * t.n];
    if (p.mode == kNearest) {
      double v;
      switch (p.rounding) {
        case kHalfUp: v = std::floor(xo + 0.5); break;
        case kHalfDown: v = std::ceil(xo - 0.5); break;
        case kFloor: v = std::floor(xo); break;
        default: v = std::ceil(xo); break;
      }
      ix[0] = std::clamp<int64_t>(static_cast<int64_t>(v), 0, in - 1);
      w[0] = 1.f;
      continue;
    }
    double x0 = std::floor(xo), ratio = xo - x0;
    int64_t base = static_cast<int64_t>(x0);
    double c[4];
    if (p.mode == kLinear) {
      c[0] = 1.0 - ratio;
      c[1] = ratio;
    } else {
      base -= 1;
      double A = p.cubic_a, r1 = ratio + 1, r2 = 1 - ratio, r3 = 2 - ratio;
      c[0] = ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A;
      c[1] = ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1;
      c[2] = ((A + 2) * r2 - (A + 3)) * r2 * r2 + 1;
      c[3] = ((A * r3 - 5 * A) * r3 + 8 * A) * r3 - 4 * A;
    }
    if (p.exclude_outside) {
      double sum = 0;
      for (int64_t k = 0; k < t.n; ++k) {
        int64_t i = base + k;
        if (i < 0 || i >= in) c[k] = 0;
        sum += c[k];
      }
      if (sum != 0)
        for (int64_t k = 0; k < t.n; ++k) c[k] /= sum;
    }
    for (int64_t k = 0; k < t.n; ++k) {
      ix[k] = std::clamp<int64_t>(base + k, 0, in - 1);
      w[k] = static_cast<float>(c[k]);
    }
  }
  t.identity = in == out;
  for (int64_t j = 0; j < out && t.identity; ++j) {
    if (t.extrap[j]) t.identity = false;
    for (int64_t k = 0; k < t.n && t.identity; ++k) {
      float w = t.w[j * t.n + k];
      if (w != 0.f && (w != 1.f || t.idx[j * t.n + k] != j)) t.identity = false;
    }
  }
  return t;
}

void parallel(ThreadPool* pool, int64_t n, int64_t bytes_per_item, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int64_t grain = std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(1, bytes_per_item));
  if (!pool || n <= grain || pool->num_threads() <= 1) {
    fn(0, n);
    return;
  }
  pool->parallel_for(n, grain, fn);
}

// NEAREST for any dtype: out[i...] = x[idx_0[i_0], ...], or the fill value where an axis extrapolates.
template <class T>
void nearest(const KernelContext& ctx, const std::vector<AxisTaps>& taps, const T fill) {
  const TensorRef& x = ctx.in[0];
  const TensorRef& y = ctx.out[0];
  size_t r = y.shape.size();
  int64_t total = y.numel();
  if (total == 0) return;
  const T* src = x.as<T>();
  T* dst = y.as<T>();
  if (r == 0) {
    dst[0] = src[0];
    return;
  }
  Ints xs(r);
  for (int64_t d = static_cast<int64_t>(r) - 1, acc = 1; d >= 0; --d) {
    xs[d] = acc;
    acc *= x.shape[d];
  }
  std::vector<Ints> off(r);
  for (size_t d = 0; d < r; ++d) {
    off[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t j = 0; j < y.shape[d]; ++j) off[d][j] = taps[d].extrap[j] ? -1 : taps[d].idx[j] * xs[d];
  }
  int64_t W = y.shape[r - 1], rows = total / W;
  parallel(ctx.pool, rows, W * static_cast<int64_t>(sizeof(T)), [&](int64_t b, int64_t e) {
    Ints idx(r - 1, 0);
    for (int64_t d = static_cast<int64_t>(r) - 2, rem = b; d >= 0; --d) {
      idx[d] = rem % y.shape[d];
      rem /= y.shape[d];
    }
    const Ints& last = off[r - 1];
    for (int64_t row = b; row < e; ++row) {
      int64_t base = 0;
      bool filled = false;
      for (size_t d = 0; d + 1 < r; ++d) {
        filled |= off[d][idx[d]] < 0;
        base += off[d][idx[d]];
      }
      T* out = dst + row * W;
      if (filled) std::fill(out, out + W, fill);
      else
        for (int64_t i = 0; i < W; ++i) out[i] = last[i] < 0 ? fill : src[base + last[i]];
      for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) {
        if (++idx[d] < y.shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

// One separable pass: [outer, in_n, inner] -> [outer, out_n, inner]. Along the last axis (inner == 1) each
// output is a short dot product over gathered inputs; otherwise whole inner rows are blended.
template <int NT>
void resample_last_axis(const float* src, float* dst, int64_t o0, int64_t o1, int64_t in_n, int64_t out_n,
                        const AxisTaps& t, float extrap) {
  for (int64_t o = o0; o < o1; ++o) {
    const float* base = src + o * in_n;
    float* y = dst + o * out_n;
    for (int64_t j = 0; j < out_n; ++j) {
      const int64_t* ix = &t.idx[j * NT];
      const float* w = &t.w[j * NT];
      float acc = 0.f;
      for (int k = 0; k < NT; ++k) acc += w[k] * base[ix[k]];
      y[j] = t.extrap[j] ? extrap : acc;
    }
  }
}

void resample_axis(const float* src, float* dst, int64_t outer, int64_t in_n, int64_t out_n, int64_t inner,
                   const AxisTaps& t, float extrap, ThreadPool* pool) {
  if (inner == 1) {
    parallel(pool, outer, out_n * 4 * t.n, [&](int64_t b, int64_t e) {
      if (t.n == 2) resample_last_axis<2>(src, dst, b, e, in_n, out_n, t, extrap);
      else if (t.n == 4) resample_last_axis<4>(src, dst, b, e, in_n, out_n, t, extrap);
      else resample_last_axis<1>(src, dst, b, e, in_n, out_n, t, extrap);
    });
    return;
  }
  parallel(pool, outer * out_n, inner * 4 * t.n, [&](int64_t b, int64_t e) {
    for (int64_t u = b; u < e; ++u) {
      int64_t o = u / out_n, j = u % out_n;
      float* y = dst + u * inner;
      if (t.extrap[j]) {
        std::fill(y, y + inner, extrap);
        continue;
      }
      const float* base = src + o * in_n * inner;
      const int64_t* ix = &t.idx[j * t.n];
      const float* w = &t.w[j * t.n];
      const float* s0 = base + ix[0] * inner;
      float w0 = w[0];
      for (int64_t k = 0; k < inner; ++k) y[k] = w0 * s0[k];
      for (int64_t q = 1; q < t.n; ++q) {
        const float* s = base + ix[q] * inner;
        float wq = w[q];
        if (wq == 0.f) continue;
        for (int64_t k = 0; k < inner; ++k) y[k] += wq * s[k];
      }
    }
  });
}

void k_resize(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const auto& a = ctx.attrs();
  size_t r = x.shape.size();
  Params p;
  p.mode = a.i("mode", kNearest);
  p.coord = a.i("coordinate_transformation", kAsymmetric);
  p.rounding = a.i("nearest_rounding", kFloor);
  p.cubic_a = a.f("cubic_coeff", -0.75);
  p.exclude_outside = a.i("exclude_outside", 0) != 0;
  p.extrapolation = a.f("extrapolation_value", 0.0);
  bool sizes_given = (ctx.has_input(1) && ctx.in[1].numel() > 0) || !a.ints("sizes").empty();
  if (!sizes_given && ctx.has_input(2) && ctx.in[2].numel() > 0) {
    // Run-time scales: one per axis, or one per listed axis with `axes` (the others stay 1).
    std::vector<int64_t> axes = a.ints("axes");
    if (axes.empty())
      for (size_t d = 0; d < r; ++d) axes.push_back(static_cast<int64_t>(d));
    if (ctx.in[2].numel() != static_cast<int64_t>(axes.size()))
      ctx.fail("expected " + std::to_string(axes.size()) + " scales, got " + std::to_string(ctx.in[2].numel()));
    p.scales.assign(r, 1.0);
    for (size_t i = 0; i < axes.size(); ++i)
      p.scales[axes[i] < 0 ? axes[i] + static_cast<int64_t>(r) : axes[i]] = ctx.in[2].get_f64(static_cast<int64_t>(i));
  } else if (!sizes_given && !a.floats("scales").empty()) {
    p.scales = a.floats("scales");
  } else {
    for (size_t d = 0; d < r; ++d)
      p.scales.push_back(x.shape[d] > 0 ? static_cast<double>(y.shape[d]) / static_cast<double>(x.shape[d]) : 1.0);
  }
  if (p.scales.size() != r) ctx.fail("expected " + std::to_string(r) + " scales, got " + std::to_string(p.scales.size()));
  p.roi = a.floats("roi");
  if (p.roi.empty()) {
    p.roi.assign(r, 0.0);
    p.roi.resize(2 * r, 1.0);
  }
  if (p.coord == kTfCropAndResize && p.roi.size() != 2 * r)
    ctx.fail("'roi' needs " + std::to_string(2 * r) + " values, got " + std::to_string(p.roi.size()));
  if (y.numel() == 0) return;
  for (size_t d = 0; d < r; ++d)
    if (x.shape[d] == 0) ctx.fail("cannot resize an empty axis " + std::to_string(d) + " to a non-empty one");

  std::vector<AxisTaps> taps;
  for (size_t d = 0; d < r; ++d) taps.push_back(make_taps(p, static_cast<int64_t>(d), x.shape[d], y.shape[d]));

  if (p.mode == kNearest) {
    uint64_t fill = 0;
    switch (x.dtype) {
      case DataType::kFLOAT: { float f = static_cast<float>(p.extrapolation); std::memcpy(&fill, &f, 4); break; }
      case DataType::kDOUBLE: std::memcpy(&fill, &p.extrapolation, 8); break;
      case DataType::kHALF: { uint16_t h = float_to_half(static_cast<float>(p.extrapolation)); std::memcpy(&fill, &h, 2); break; }
      case DataType::kBF16: { uint16_t h = float_to_bf16(static_cast<float>(p.extrapolation)); std::memcpy(&fill, &h, 2); break; }
      case DataType::kINT32: { int32_t i = static_cast<int32_t>(p.extrapolation); std::memcpy(&fill, &i, 4); break; }
      case DataType::kINT64: { int64_t i = static_cast<int64_t>(p.extrapolation); std::memcpy(&fill, &i, 8); break; }
      default: { int8_t i = static_cast<int8_t>(p.extrapolation); std::memcpy(&fill, &i, 1); break; }
    }
    switch (dtype_size(x.dtype)) {
      case 1: nearest<uint8_t>(ctx, taps, static_cast<uint8_t>(fill)); break;
      case 2: nearest<uint16_t>(ctx, taps, static_cast<uint16_t>(fill)); break;
      case 4: nearest<uint32_t>(ctx, taps, static_cast<uint32_t>(fill)); break;
      default: nearest<uint64_t>(ctx, taps, fill); break;
    }
    return;
  }
  if (x.dtype != DataType::kFLOAT)
    ctx.fail(std::string("LINEAR and CUBIC resize support float32, got ") + dtype_name(x.dtype));

  // Separable passes, the most shrinking axes first (less work for the later passes).
  std::vector<size_t> axes;
  for (size_t d = 0; d < r; ++d)
    if (!taps[d].identity) axes.push_back(d);
  std::stable_sort(axes.begin(), axes.end(), [&](size_t a1, size_t a2) {
    return static_cast<double>(y.shape[a1]) / x.shape[a1] < static_cast<double>(y.shape[a2]) / x.shape[a2];
  });
  if (axes.empty()) {
    std::memcpy(y.data, x.data, x.nbytes());
    return;
  }
  Dims cur = x.shape;
  const float* src = x.as<float>();
  std::vector<float> buf[2];
  float extrap = static_cast<float>(p.extrapolation);
  for (size_t k = 0; k < axes.size(); ++k) {
    size_t d = axes[k];
    Dims next = cur;
    next[d] = y.shape[d];
    float* dst;
    if (k + 1 == axes.size()) {
      dst = y.as<float>();
    } else {
      buf[k % 2].resize(static_cast<size_t>(volume(next)));
      dst = buf[k % 2].data();
    }
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < d; ++i) outer *= cur[i];
    for (size_t i = d + 1; i < r; ++i) inner *= cur[i];
    resample_axis(src, dst, outer, cur[d], next[d], inner, taps[d], extrap, ctx.pool);
    src = dst;
    cur = next;
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Resize", &k_resize);

}  // namespace kiln::cpu
