// CPU kernels for Pooling (MAX, AVERAGE with or without padding in the count, MAX_AVERAGE_BLEND, LP;
// 1 to 3 spatial dims, dilation, ceil mode, SAME padding) and GlobalPooling (MAX, AVERAGE, LP). float32.
//
// Pooling works on one [D, H, W] plane per (n, c) (fewer spatial dims are padded with leading 1s) and
// spreads the planes over the thread pool. For each output row it accumulates whole rows of the window:
// for every window column kw the range of output columns whose tap lands inside the input is computed
// once, so the inner loop has no bounds checks and vectorizes (contiguous when the stride is 1).
// Channels-last Pooling ([N, spatial..., C], attr channels_last) vectorizes along C instead.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using Ints = std::vector<int64_t>;

enum PoolType : int64_t { kMax = 0, kAverage = 1, kBlend = 2, kLp = 64 };
enum PaddingMode : int64_t { kRoundDown = 0, kRoundUp = 1, kSameUpper = 2, kSameLower = 3 };

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// One spatial axis: input/output sizes, window, and per-output counts of taps inside the input (valid) and
// inside the padded extent [-pre, in + post) (padded).
struct Axis {
  int64_t in = 1, out = 1, k = 1, s = 1, d = 1, pre = 0, post = 0;
  Ints valid_count, pad_count;
  void prepare() {
    valid_count.assign(static_cast<size_t>(out), 0);
    pad_count.assign(static_cast<size_t>(out), 0);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t t = 0; t < k; ++t) {
        int64_t i = o * s - pre + t * d;
        valid_count[o] += i >= 0 && i < in;
        pad_count[o] += i >= -pre && i < in + post;
      }
  }
  int64_t tap(int64_t o, int64_t t) const { return o * s - pre + t * d; }
};

Ints spatial(const KernelContext& ctx, const char* name, size_t nsp, int64_t def) {
  Ints v = ctx.attrs().ints(name);
  if (v.empty()) return Ints(nsp, def);
  if (v.size() != nsp)
    ctx.fail(std::string("'") + name + "' has " + std::to_string(v.size()) + " values, expected " + std::to_string(nsp));
  return v;
}

void parallel_planes(ThreadPool* pool, int64_t planes, int64_t plane_work, const std::function<void(int64_t, int64_t)>& fn) {
  if (planes <= 0) return;
  int64_t grain = std::max<int64_t>(1, (32 << 10) / std::max<int64_t>(1, plane_work));
  if (!pool || planes <= grain || pool->num_threads() <= 1) {
    fn(0, planes);
    return;
  }
  pool->parallel_for(planes, grain, fn);
}

// The attributes of a Pooling and its three axes (D, H, W; fewer spatial dims are padded with leading 1s),
// for input spatial dims `in` and output spatial dims `out` (either layout).
struct PoolGeometry {
  Axis ax[3];
  int64_t type = kMax;
  bool exclude_pad = true;
  double p = 2.0;
  float blend = 0.f;
};

PoolGeometry pool_geometry(const KernelContext& ctx, const Dims& in, const Dims& out) {
  const size_t nsp = in.size();
  const auto& a = ctx.attrs();
  PoolGeometry G;
  G.type = a.i("type", kMax);
  if (G.type != kMax && G.type != kAverage && G.type != kBlend && G.type != kLp)
    ctx.fail("unknown pooling type " + std::to_string(G.type));
  int64_t mode = a.i("padding_mode", kRoundDown);
  G.exclude_pad = a.i("exclude_pad", 1) != 0;
  G.p = a.f("p", 2.0);
  G.blend = static_cast<float>(a.f("blend_factor", 0.0));
  Ints win = a.req_ints("window"), stride = spatial(ctx, "stride", nsp, 1), dil = spatial(ctx, "dilation", nsp, 1),
       pre = spatial(ctx, "pre_padding", nsp, 0), post = spatial(ctx, "post_padding", nsp, 0);
  if (win.size() != nsp) ctx.fail("'window' must have one value per spatial dim");
  size_t off = 3 - nsp;
  for (size_t i = 0; i < nsp; ++i) {
    Axis& A = G.ax[off + i];
    A.in = in[i];
    A.out = out[i];
    A.k = win[i];
    A.s = stride[i];
    A.d = dil[i];
    if (A.k < 1 || A.s < 1 || A.d < 1) ctx.fail("window, stride and dilation must be >= 1");
    int64_t eff = A.d * (A.k - 1) + 1;
    if (mode == kSameUpper || mode == kSameLower) {
      int64_t total = std::max<int64_t>(0, (A.out - 1) * A.s + eff - A.in);
      int64_t small = total / 2, large = total - small;
      A.pre = mode == kSameUpper ? small : large;
      A.post = mode == kSameUpper ? large : small;
    } else {
      A.pre = pre[i];
      A.post = post[i];
    }
  }
  for (auto& A : G.ax) A.prepare();
  return G;
}

// NCHW: one [D, H, W] plane per (n, c).
void pool_planes(KernelContext& ctx, const PoolGeometry& G) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const Axis &AD = G.ax[0], &AH = G.ax[1], &AW = G.ax[2];
  const int64_t type = G.type;
  const double p = G.p;
  const bool exclude_pad = G.exclude_pad;
  const float blend = G.blend;
  int64_t planes = x.shape[0] * x.shape[1];
  int64_t in_plane = AD.in * AH.in * AW.in, out_plane = AD.out * AH.out * AW.out;
  if (planes == 0 || out_plane == 0) return;
  // Output column range [lo, hi) for which window column t reads inside the input.
  Ints lo(static_cast<size_t>(AW.k)), hi(static_cast<size_t>(AW.k));
  for (int64_t t = 0; t < AW.k; ++t) {
    int64_t shift = t * AW.d - AW.pre;  // input column = ow * s + shift
    lo[t] = std::clamp<int64_t>(ceil_div(-shift, AW.s), 0, AW.out);
    hi[t] = std::clamp<int64_t>(floor_div(AW.in - 1 - shift, AW.s) + 1, lo[t], AW.out);
  }
  bool need_max = type == kMax || type == kBlend, need_sum = type != kMax;
  float inv_p = static_cast<float>(1.0 / p);
  const float* X = x.as<float>();
  float* Y = y.as<float>();
  const int64_t Q = AW.out;
  parallel_planes(ctx.pool, planes, in_plane * AD.k * AH.k * AW.k / std::max<int64_t>(1, AD.s * AH.s * AW.s) + out_plane,
                  [&](int64_t b, int64_t e) {
    std::vector<float> mx(static_cast<size_t>(Q)), sm(static_cast<size_t>(Q));
    for (int64_t pl = b; pl < e; ++pl) {
      const float* xp = X + pl * in_plane;
      float* yp = Y + pl * out_plane;
      for (int64_t od = 0; od < AD.out; ++od)
        for (int64_t oh = 0; oh < AH.out; ++oh) {
          std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
          std::fill(sm.begin(), sm.end(), 0.f);
          for (int64_t td = 0; td < AD.k; ++td) {
            int64_t id = AD.tap(od, td);
            if (id < 0 || id >= AD.in) continue;
            for (int64_t th = 0; th < AH.k; ++th) {
              int64_t ih = AH.tap(oh, th);
              if (ih < 0 || ih >= AH.in) continue;
              const float* row = xp + (id * AH.in + ih) * AW.in;
              for (int64_t t = 0; t < AW.k; ++t) {
                int64_t shift = t * AW.d - AW.pre, l = lo[t], h = hi[t];
                if (AW.s == 1) {
                  const float* r = row + shift;
                  if (need_max)
                    for (int64_t q = l; q < h; ++q) mx[q] = r[q] > mx[q] ? r[q] : mx[q];
                  if (type == kLp && p == 2.0)
                    for (int64_t q = l; q < h; ++q) sm[q] += r[q] * r[q];
                  else if (type == kLp)
                    for (int64_t q = l; q < h; ++q) sm[q] += std::pow(std::fabs(r[q]), static_cast<float>(p));
                  else if (need_sum)
                    for (int64_t q = l; q < h; ++q) sm[q] += r[q];
                } else {
                  const int64_t s = AW.s;
                  if (need_max)
                    for (int64_t q = l; q < h; ++q) {
                      float v = row[q * s + shift];
                      mx[q] = v > mx[q] ? v : mx[q];
                    }
                  if (type == kLp && p == 2.0)
                    for (int64_t q = l; q < h; ++q) sm[q] += row[q * s + shift] * row[q * s + shift];
                  else if (type == kLp)
                    for (int64_t q = l; q < h; ++q) sm[q] += std::pow(std::fabs(row[q * s + shift]), static_cast<float>(p));
                  else if (need_sum)
                    for (int64_t q = l; q < h; ++q) sm[q] += row[q * s + shift];
                }
              }
            }
          }
          float* out = yp + (od * AH.out + oh) * Q;
          if (type == kMax) {
            std::copy(mx.begin(), mx.end(), out);
          } else if (type == kLp) {
            for (int64_t q = 0; q < Q; ++q) out[q] = p == 2.0 ? std::sqrt(sm[q]) : std::pow(sm[q], inv_p);
          } else {
            int64_t cdh = exclude_pad ? AD.valid_count[od] * AH.valid_count[oh] : AD.pad_count[od] * AH.pad_count[oh];
            const Ints& cw = exclude_pad ? AW.valid_count : AW.pad_count;
            for (int64_t q = 0; q < Q; ++q) {
              int64_t cnt = cdh * cw[q];
              float avg = cnt > 0 ? sm[q] / static_cast<float>(cnt) : 0.f;
              out[q] = type == kAverage ? avg : (1.f - blend) * mx[q] + blend * avg;
            }
          }
        }
    }
  });
}

// Channels-last (attr channels_last, from passes/channels_last): x [N, D, H, W, C] (fewer spatial dims padded
// with 1s). One output pixel at a time: every tap inside the input adds a whole row of C channels, which is
// contiguous, so the inner loops vectorize.
void pool_channels_last(KernelContext& ctx, const PoolGeometry& G) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  const Axis &AD = G.ax[0], &AH = G.ax[1], &AW = G.ax[2];
  const int64_t type = G.type, C = x.shape.back();
  const double p = G.p;
  const float inv_p = static_cast<float>(1.0 / p);
  const int64_t pixels = x.shape[0] * AD.out * AH.out * AW.out;
  if (pixels == 0 || C == 0) return;
  const bool need_max = type == kMax || type == kBlend, need_sum = type != kMax;
  const float* X = x.as<float>();
  float* Y = y.as<float>();
  parallel_planes(ctx.pool, pixels, AD.k * AH.k * AW.k * C, [&](int64_t b, int64_t e) {
    std::vector<float> mx(static_cast<size_t>(C)), sm(static_cast<size_t>(C));
    for (int64_t pix = b; pix < e; ++pix) {
      int64_t rem = pix;
      const int64_t ow = rem % AW.out;
      rem /= AW.out;
      const int64_t oh = rem % AH.out;
      rem /= AH.out;
      const int64_t od = rem % AD.out, n = rem / AD.out;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
      std::fill(sm.begin(), sm.end(), 0.f);
      for (int64_t td = 0; td < AD.k; ++td) {
        const int64_t id = AD.tap(od, td);
        if (id < 0 || id >= AD.in) continue;
        for (int64_t th = 0; th < AH.k; ++th) {
          const int64_t ih = AH.tap(oh, th);
          if (ih < 0 || ih >= AH.in) continue;
          for (int64_t tw = 0; tw < AW.k; ++tw) {
            const int64_t iw = AW.tap(ow, tw);
            if (iw < 0 || iw >= AW.in) continue;
            const float* r = X + (((n * AD.in + id) * AH.in + ih) * AW.in + iw) * C;
            if (need_max)
              for (int64_t c = 0; c < C; ++c) mx[c] = r[c] > mx[c] ? r[c] : mx[c];
            if (type == kLp && p == 2.0)
              for (int64_t c = 0; c < C; ++c) sm[c] += r[c] * r[c];
            else if (type == kLp)
              for (int64_t c = 0; c < C; ++c) sm[c] += std::pow(std::fabs(r[c]), static_cast<float>(p));
            else if (need_sum)
              for (int64_t c = 0; c < C; ++c) sm[c] += r[c];
          }
        }
      }
      float* out = Y + pix * C;
      if (type == kMax) {
        std::copy(mx.begin(), mx.end(), out);
      } else if (type == kLp) {
        for (int64_t c = 0; c < C; ++c) out[c] = p == 2.0 ? std::sqrt(sm[c]) : std::pow(sm[c], inv_p);
      } else {
        const int64_t cnt = G.exclude_pad ? AD.valid_count[od] * AH.valid_count[oh] * AW.valid_count[ow]
                                          : AD.pad_count[od] * AH.pad_count[oh] * AW.pad_count[ow];
        for (int64_t c = 0; c < C; ++c) {
          const float avg = cnt > 0 ? sm[c] / static_cast<float>(cnt) : 0.f;
          out[c] = type == kAverage ? avg : (1.f - G.blend) * mx[c] + G.blend * avg;
        }
      }
    }
  });
}

void k_pooling(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  if (x.dtype != DataType::kFLOAT) ctx.fail(std::string("supports float32, got ") + dtype_name(x.dtype));
  if (x.shape.size() < 3 || x.shape.size() > 5) ctx.fail("expected 1 to 3 spatial dims, got input " + dims_str(x.shape));
  if (ctx.attrs().i("channels_last", 0) != 0) {
    Dims in(x.shape.begin() + 1, x.shape.end() - 1), out(y.shape.begin() + 1, y.shape.end() - 1);
    return pool_channels_last(ctx, pool_geometry(ctx, in, out));
  }
  Dims in(x.shape.begin() + 2, x.shape.end()), out(y.shape.begin() + 2, y.shape.end());
  pool_planes(ctx, pool_geometry(ctx, in, out));
}

void k_global_pooling(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  TensorRef& y = ctx.out[0];
  if (x.dtype != DataType::kFLOAT) ctx.fail(std::string("supports float32, got ") + dtype_name(x.dtype));
  if (x.shape.size() < 2) ctx.fail("expected [N, C, spatial...], got " + dims_str(x.shape));
  int64_t type = ctx.attrs().i("type", kMax);
  double p = ctx.attrs().f("p", 2.0);
  int64_t planes = x.shape[0] * x.shape[1];
  int64_t n = planes ? x.numel() / planes : 0;
  const float* X = x.as<float>();
  float* Y = y.as<float>();
  parallel_planes(ctx.pool, planes, n, [&](int64_t b, int64_t e) {
    constexpr int kLanes = 8;
    for (int64_t pl = b; pl < e; ++pl) {
      const float* v = X + pl * n;
      float acc[kLanes];
      int64_t i = 0, n8 = n / kLanes * kLanes;
      if (type == kMax) {
        std::fill(acc, acc + kLanes, -std::numeric_limits<float>::infinity());
        for (; i < n8; i += kLanes)
          for (int l = 0; l < kLanes; ++l) acc[l] = v[i + l] > acc[l] ? v[i + l] : acc[l];
        float m = -std::numeric_limits<float>::infinity();
        for (int l = 0; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m;
        for (; i < n; ++i) m = v[i] > m ? v[i] : m;
        Y[pl] = m;
        continue;
      }
      std::fill(acc, acc + kLanes, 0.f);
      if (type == kLp && p != 2.0) {
        double s = 0;
        for (; i < n; ++i) s += std::pow(std::fabs(static_cast<double>(v[i])), p);
        Y[pl] = static_cast<float>(std::pow(s, 1.0 / p));
        continue;
      }
      bool sq = type == kLp;
      for (; i < n8; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += sq ? v[i + l] * v[i + l] : v[i + l];
      double s = 0;
      for (int l = 0; l < kLanes; ++l) s += acc[l];
      for (; i < n; ++i) s += sq ? static_cast<double>(v[i]) * v[i] : v[i];
      Y[pl] = sq ? static_cast<float>(std::sqrt(s)) : n ? static_cast<float>(s / static_cast<double>(n)) : 0.f;
    }
  });
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Pooling", &k_pooling);
KILN_REGISTER_CPU_KERNEL("GlobalPooling", &k_global_pooling);

}  // namespace kiln::cpu
