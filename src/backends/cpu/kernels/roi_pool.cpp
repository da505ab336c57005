// CPU kernels for region-of-interest pooling: RoiAlign (ONNX opset 10/16) and MaxRoiPool (ONNX opset 1,
// Caffe's ROIPooling).
//
// RoiAlign follows the ONNX reference (and ONNX Runtime) to the letter: each output bin is split into a
// sampling grid (sampling_ratio per side, or ceil(bin size) when 0), every sample is a bilinear
// interpolation whose 4 taps and weights are computed once per ROI and shared by the channels; AVERAGE mode
// averages the samples, MAX mode takes the maximum over samples of the largest *weighted tap*, which is what
// the reference defines (not the maximum of interpolated values). Samples more than one pixel outside
// the map contribute 0. `half_pixel` shifts ROI corners by -0.5 (opset 16 default); without it malformed
// ROIs are forced to at least 1x1.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range
#include "ir/op_registry.h"                  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

template <class T>
struct Sample {
  int64_t pos[4];
  T w[4];
};

template <class T>
void roi_align(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const T* xs = x.as<T>();
  const T* rois = ctx.input(1).as<T>();
  const TensorRef& bidx = ctx.input(2);
  T* ys = ctx.out[0].as<T>();
  const int64_t batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
  const int64_t num_rois = ctx.out[0].shape[0], ph_n = ctx.out[0].shape[2], pw_n = ctx.out[0].shape[3];
  const T scale = static_cast<T>(ctx.attrs().f("spatial_scale", 1.0));
  const int64_t ratio = ctx.attrs().i("sampling_ratio", 0);
  const bool avg = ctx.attrs().i("mode", 1) == 1;
  const bool half_pixel = ctx.attrs().i("half_pixel", 1) != 0;
  if (height * width == 0 && num_rois * channels > 0) ctx.fail("cannot pool from an empty feature map " + dims_str(x.shape));
  for (int64_t n = 0; n < num_rois; ++n) {
    const int64_t b = bidx.get_i64(n);
    if (b < 0 || b >= batch)
      ctx.fail("batch_indices[" + std::to_string(n) + "] = " + std::to_string(b) + " is out of range [0, " +
               std::to_string(batch - 1) + "]");
  }
  parallel_range(ctx.pool, num_rois, 1, [&](int64_t rb, int64_t re) {
    std::vector<Sample<T>> samples;
    for (int64_t n = rb; n < re; ++n) {
      const T* roi = rois + n * 4;
      const T off = half_pixel ? T(0.5) : T(0);
      const T sw = roi[0] * scale - off, sh = roi[1] * scale - off;
      T rw = roi[2] * scale - off - sw, rh = roi[3] * scale - off - sh;
      if (!half_pixel) {
        rw = std::max(rw, T(1));
        rh = std::max(rh, T(1));
      }
      const T bh = rh / static_cast<T>(ph_n), bw = rw / static_cast<T>(pw_n);
      auto grid = [&](T extent, int64_t bins) -> int64_t {
        if (ratio > 0) return ratio;
        const T g = std::ceil(extent / static_cast<T>(bins));
        if (!std::isfinite(g) || g >= T(1 << 20)) return int64_t{1} << 20;  // rejected below
        return std::max<int64_t>(static_cast<int64_t>(g), 0);  // an inverted ROI samples nothing (output 0)
      };
      const int64_t gh = grid(rh, ph_n), gw = grid(rw, pw_n);
      // A non-finite or absurdly large ROI would ask for an unbounded sampling grid.
      if (!(std::isfinite(rh) && std::isfinite(rw)) || gh > (int64_t{1} << 12) || gw > (int64_t{1} << 12))
        ctx.fail("roi " + std::to_string(n) + " gives a " + std::to_string(gh) + " x " + std::to_string(gw) +
                 " sampling grid per bin; the ROI coordinates must be finite and within the feature map's scale");
      const T count = static_cast<T>(std::max<int64_t>(gh * gw, 1));
      samples.clear();
      for (int64_t ph = 0; ph < ph_n; ++ph)
        for (int64_t pw = 0; pw < pw_n; ++pw)
          for (int64_t iy = 0; iy < gh; ++iy) {
            const T yy = sh + static_cast<T>(ph) * bh + (static_cast<T>(iy) + T(0.5)) * bh / static_cast<T>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              T xx = sw + static_cast<T>(pw) * bw + (static_cast<T>(ix) + T(0.5)) * bw / static_cast<T>(gw);
              T y = yy;
              Sample<T> s{{0, 0, 0, 0}, {0, 0, 0, 0}};
              if (!(y < -1 || y > static_cast<T>(height) || xx < -1 || xx > static_cast<T>(width))) {
                y = std::max(y, T(0));
                xx = std::max(xx, T(0));
                int64_t yl = static_cast<int64_t>(y), xl = static_cast<int64_t>(xx), yh, xh;
                if (yl >= height - 1) yh = yl = height - 1, y = static_cast<T>(yl);
                else yh = yl + 1;
                if (xl >= width - 1) xh = xl = width - 1, xx = static_cast<T>(xl);
                else xh = xl + 1;
                const T ly = y - static_cast<T>(yl), lx = xx - static_cast<T>(xl), hy = 1 - ly, hx = 1 - lx;
                s = {{yl * width + xl, yl * width + xh, yh * width + xl, yh * width + xh},
                     {hy * hx, hy * lx, ly * hx, ly * lx}};
              }
              samples.push_back(s);
            }
          }
      const int64_t per_bin = gh * gw;
      const int64_t b = bidx.get_i64(n);
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = xs + (b * channels + c) * height * width;
        T* out = ys + (n * channels + c) * ph_n * pw_n;
        for (int64_t bin = 0; bin < ph_n * pw_n; ++bin) {
          const Sample<T>* s = samples.data() + bin * per_bin;
          T acc = 0;
          for (int64_t k = 0; k < per_bin; ++k) {
            if (avg) {
              for (int t = 0; t < 4; ++t) acc += s[k].w[t] * plane[s[k].pos[t]];
            } else {
              T v = s[k].w[0] * plane[s[k].pos[0]];
              for (int t = 1; t < 4; ++t) v = std::max(v, s[k].w[t] * plane[s[k].pos[t]]);
              acc = k == 0 ? v : std::max(acc, v);
            }
          }
          out[bin] = avg ? acc / count : acc;
        }
      }
    }
  });
}

// MaxRoiPool: ROI corners (batch, x1, y1, x2, y2) scaled and rounded to pixels (inclusive), the ROI split
// into pooled_shape bins with floor/ceil edges, each bin the max of its pixels (0 for an empty bin).
template <class T>
void max_roi_pool(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const T* xs = x.as<T>();
  const T* rois = ctx.input(1).as<T>();
  T* ys = ctx.out[0].as<T>();
  const int64_t batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
  const int64_t num_rois = ctx.out[0].shape[0], ph_n = ctx.out[0].shape[2], pw_n = ctx.out[0].shape[3];
  const double scale = ctx.attrs().f("spatial_scale", 1.0);
  for (int64_t n = 0; n < num_rois; ++n) {
    const T* roi = rois + n * 5;
    const int64_t b = static_cast<int64_t>(roi[0]);
    if (b < 0 || b >= batch)
      ctx.fail("rois[" + std::to_string(n) + "] names batch " + std::to_string(b) + ", out of range [0, " +
               std::to_string(batch - 1) + "]");
    const int64_t x1 = std::llround(static_cast<double>(roi[1]) * scale);
    const int64_t y1 = std::llround(static_cast<double>(roi[2]) * scale);
    const int64_t x2 = std::llround(static_cast<double>(roi[3]) * scale);
    const int64_t y2 = std::llround(static_cast<double>(roi[4]) * scale);
    const double bh = static_cast<double>(std::max<int64_t>(y2 - y1 + 1, 1)) / static_cast<double>(ph_n);
    const double bw = static_cast<double>(std::max<int64_t>(x2 - x1 + 1, 1)) / static_cast<double>(pw_n);
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = xs + (b * channels + c) * height * width;
      T* out = ys + (n * channels + c) * ph_n * pw_n;
      for (int64_t ph = 0; ph < ph_n; ++ph) {
        const int64_t hs = std::clamp<int64_t>(static_cast<int64_t>(std::floor(ph * bh)) + y1, 0, height);
        const int64_t he = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((ph + 1) * bh)) + y1, 0, height);
        for (int64_t pw = 0; pw < pw_n; ++pw) {
          const int64_t ws = std::clamp<int64_t>(static_cast<int64_t>(std::floor(pw * bw)) + x1, 0, width);
          const int64_t we = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((pw + 1) * bw)) + x1, 0, width);
          T m = 0;
          bool any = false;
          for (int64_t h = hs; h < he; ++h)
            for (int64_t w = ws; w < we; ++w) {
              const T v = plane[h * width + w];
              if (!any || v > m) m = v;
              any = true;
            }
          out[ph * pw_n + pw] = m;
        }
      }
    }
  }
}

void k_roi_align(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return roi_align<float>(ctx);
    case DataType::kDOUBLE: return roi_align<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

void k_max_roi_pool(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return max_roi_pool<float>(ctx);
    case DataType::kDOUBLE: return max_roi_pool<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("RoiAlign", &k_roi_align);
KILN_REGISTER_CPU_KERNEL("MaxRoiPool", &k_max_roi_pool);

}  // namespace kiln::cpu
