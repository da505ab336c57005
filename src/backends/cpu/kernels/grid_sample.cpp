// CPU kernels for GridSample (ONNX opset 16 2-D and opset 20 N-D; the PyTorch grid_sample semantics) and
// AffineGrid (the grids GridSample consumes).
//
// GridSample: for every output point the grid gives normalized coordinates in [-1, 1], last component
// first (x indexes the last spatial dim). Each is mapped to a pixel coordinate (align_corners: -1 and 1 are
// the centers of the corner pixels; else their outer edges), rounded half-to-even for NEAREST, and, when it
// lies outside the image, clamped (BORDER) or reflected (REFLECTION) back in. Interpolation is separable:
// per dim 1 (nearest), 2 (linear) or 4 (cubic, Keys a = -0.75) taps; a tap outside the image reads 0
// (ZEROS), the edge pixel (BORDER) or its reflection (REFLECTION). The taps of one output point are
// computed once and applied to every channel. Arithmetic is in the input's type, as ONNX Runtime does.
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range, grain_for
#include "ir/op_registry.h"                  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

enum Mode : int64_t { kNearest = 0, kLinear = 1, kCubic = 2 };
enum Padding : int64_t { kZeros = 0, kBorder = 1, kReflection = 2 };

// Reflects x into [lo, hi] by repeated mirroring at the nearer border.
template <class T>
T reflect(T x, T lo, T hi) {
  const T range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const T dx = lo - x;
    const int64_t n = static_cast<int64_t>(dx / range);
    const T r = dx - static_cast<T>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const T dx = x - hi;
    const int64_t n = static_cast<int64_t>(dx / range);
    const T r = dx - static_cast<T>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

template <class T>
void cubic_coeffs(T t, T* c) {
  constexpr T a = static_cast<T>(-0.75);
  const T x0 = t + 1, x1 = t, x2 = 1 - t, x3 = 2 - t;
  c[0] = ((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a;
  c[1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1;
  c[2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
  c[3] = ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a;
}

// The taps of one dim: element offsets (stride already applied; -1 = reads zero) and weights.
template <class T>
struct DimTaps {
  int n = 0;
  int64_t off[4];
  T w[4];
};

template <class T>
DimTaps<T> dim_taps(T v, int64_t len, int64_t stride, int64_t mode, int64_t pad, bool align) {
  T x = align ? (v + 1) / 2 * static_cast<T>(len - 1) : ((v + 1) * static_cast<T>(len) - 1) / 2;
  if (mode == kNearest) x = std::nearbyint(x);  // half to even, as PyTorch
  const T lo = align ? T(0) : T(-0.5), hi = align ? static_cast<T>(len - 1) : static_cast<T>(len) - T(0.5);
  if (x < lo || x > hi) {
    if (pad == kBorder) x = std::min(std::max(x, T(0)), static_cast<T>(len - 1));
    else if (pad == kReflection) x = reflect(x, lo, hi);
  }
  DimTaps<T> t;
  int64_t first;
  if (mode == kNearest) {
    t.n = 1;
    t.w[0] = 1;
    first = static_cast<int64_t>(x);  // integral already; truncation as the ONNX reference
  } else {
    const T fl = std::floor(x);
    const T f = x - fl;
    first = static_cast<int64_t>(fl);
    if (mode == kLinear) {
      t.n = 2;
      t.w[0] = 1 - f;
      t.w[1] = f;
    } else {
      t.n = 4;
      first -= 1;
      cubic_coeffs(f, t.w);
    }
  }
  for (int k = 0; k < t.n; ++k) {
    int64_t i = first + k;
    if (i < 0 || i >= len) {
      if (pad == kZeros) i = -1;
      else if (pad == kBorder) i = std::min<int64_t>(std::max<int64_t>(i, 0), len - 1);
      else i = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(reflect(static_cast<T>(i), lo, hi)), 0), len - 1);
    }
    t.off[k] = i < 0 ? -1 : i * stride;
  }
  return t;
}

template <class T>
void grid_sample(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& g = ctx.input(1);
  const int64_t mode = ctx.attrs().i("mode", kLinear), pad = ctx.attrs().i("padding_mode", kZeros);
  const bool align = ctx.attrs().i("align_corners", 0) != 0;
  const int64_t r = static_cast<int64_t>(x.shape.size()) - 2;
  const int64_t n_batch = x.shape[0], channels = x.shape[1];
  std::vector<int64_t> len(static_cast<size_t>(r)), stride(static_cast<size_t>(r));
  int64_t in_vol = 1;
  for (int64_t d = r; d-- > 0;) {
    len[d] = x.shape[d + 2];
    stride[d] = in_vol;
    in_vol *= len[d];
  }
  int64_t out_vol = 1;
  for (int64_t d = 1; d <= r; ++d) out_vol *= g.shape[d];
  if (ctx.out[0].numel() == 0) return;
  if (in_vol == 0) ctx.fail("cannot sample an empty input " + dims_str(x.shape));
  const bool grid_f32 = g.dtype == DataType::kFLOAT;
  const T* xs = x.as<T>();
  T* ys = ctx.out[0].as<T>();
  int64_t max_taps = 1;
  for (int64_t d = 0; d < r; ++d) max_taps *= (mode == kNearest ? 1 : mode == kLinear ? 2 : 4);
  parallel_range(ctx.pool, n_batch * out_vol, grain_for(channels * max_taps), [&](int64_t b, int64_t e) {
    std::vector<DimTaps<T>> taps(static_cast<size_t>(r));
    std::vector<int64_t> offs;
    std::vector<T> ws;
    for (int64_t p = b; p < e; ++p) {
      const int64_t n = p / out_vol, o = p % out_vol;
      for (int64_t d = 0; d < r; ++d) {
        const int64_t gi = p * r + (r - 1 - d);  // the grid lists the last spatial dim first
        const T v = grid_f32 ? static_cast<T>(g.as<float>()[gi]) : static_cast<T>(g.as<double>()[gi]);
        taps[d] = dim_taps<T>(v, len[d], stride[d], mode, pad, align);
      }
      // The tensor product of the dims' taps, dropping combinations that read zero.
      offs.assign(1, 0);
      ws.assign(1, T(1));
      for (int64_t d = 0; d < r; ++d) {
        std::vector<int64_t> no;
        std::vector<T> nw;
        for (size_t k = 0; k < offs.size(); ++k)
          for (int t = 0; t < taps[d].n; ++t)
            if (taps[d].off[t] >= 0) {
              no.push_back(offs[k] + taps[d].off[t]);
              nw.push_back(ws[k] * taps[d].w[t]);
            }
        offs.swap(no);
        ws.swap(nw);
      }
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = xs + (n * channels + c) * in_vol;
        T acc = 0;
        for (size_t k = 0; k < offs.size(); ++k) acc += ws[k] * plane[offs[k]];
        ys[(n * channels + c) * out_vol + o] = acc;
      }
    }
  });
}

void k_grid_sample(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return grid_sample<float>(ctx);
    case DataType::kDOUBLE: return grid_sample<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

// AffineGrid: out[n, s..., k] = sum_j theta[n, k, j] * base_j(s) + theta[n, k, r], where base_j is the
// normalized coordinate of spatial position s along the dim that component j describes (x = last dim).
template <class T>
void affine_grid(KernelContext& ctx) {
  const T* theta = ctx.input(0).as<T>();
  const TensorRef& y = ctx.out[0];
  const int64_t r = static_cast<int64_t>(y.shape.size()) - 2;
  const bool align = ctx.attrs().i("align_corners", 0) != 0;
  const int64_t n_batch = y.shape[0];
  // base[d][i]: the normalized coordinate of index i along spatial dim d.
  std::vector<std::vector<T>> base(static_cast<size_t>(r));
  int64_t vol = 1;
  for (int64_t d = 0; d < r; ++d) {
    const int64_t s = y.shape[d + 1];
    vol *= s;
    for (int64_t i = 0; i < s; ++i) {
      double v = align ? (s > 1 ? -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(s - 1) : -1.0)
                       : -1.0 + (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(s);
      base[d].push_back(static_cast<T>(v));
    }
  }
  T* out = y.as<T>();
  std::vector<int64_t> idx(static_cast<size_t>(r));
  std::vector<T> coord(static_cast<size_t>(r));
  for (int64_t n = 0; n < n_batch; ++n) {
    const T* th = theta + n * r * (r + 1);
    for (int64_t p = 0; p < vol; ++p) {
      int64_t rem = p;
      for (int64_t d = r; d-- > 0;) {
        idx[d] = rem % y.shape[d + 1];
        rem /= y.shape[d + 1];
      }
      for (int64_t j = 0; j < r; ++j) coord[j] = base[r - 1 - j][idx[r - 1 - j]];  // component 0 is x
      for (int64_t k = 0; k < r; ++k) {
        T acc = th[k * (r + 1) + r];
        for (int64_t j = 0; j < r; ++j) acc += th[k * (r + 1) + j] * coord[j];
        out[(n * vol + p) * r + k] = acc;
      }
    }
  }
}

void k_affine_grid(KernelContext& ctx) {
  const TensorRef& size = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  // The output was sized from `size`; a run-time size that disagrees would index out of bounds.
  for (size_t d = 0; d < y.shape.size() - 1; ++d)
    if (size.get_i64(d == 0 ? 0 : static_cast<int64_t>(d) + 1) != y.shape[d])
      ctx.fail("size " + dims_str(size.to_i64()) + " does not match the output shape " + dims_str(y.shape));
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return affine_grid<float>(ctx);
    case DataType::kDOUBLE: return affine_grid<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("GridSample", &k_grid_sample);
KILN_REGISTER_CPU_KERNEL("AffineGrid", &k_affine_grid);

}  // namespace kiln::cpu
