// Resize kernel against a reference written from the ONNX Resize specification: the value at an output
// index is interpolated one axis at a time, recursively; on each axis the neighbours are the n input
// indices closest to the source coordinate (ties to the smaller index) in the edge-padded input, with the
// spec's nearest / linear / cubic coefficients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "backends/cpu/eval.h"
#include "ir/graph.h"

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

std::mt19937_64& rng() {
  static std::mt19937_64 r(99);
  return r;
}

HostTensor random_f32(Dims shape) {
  HostTensor t(DataType::kFLOAT, shape);
  std::uniform_real_distribution<float> u(0.1f, 2.f);
  std::bernoulli_distribution sign(0.5);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng()) * (sign(rng()) ? 1.f : -1.f);
  return t;
}

struct RefParams {
  int64_t mode = 0, coord = 1, rounding = 2;
  double A = -0.75;
  bool exclude = false;
  double extrap = 0;
  std::vector<double> scales, roi;
};

double source_coord(const RefParams& p, size_t axis, int64_t x, int64_t in, int64_t out) {
  double scale = p.scales[axis];
  // An axis that is not resized is the identity (as ONNX Runtime does; the raw tf_half_pixel_for_nn
  // formula with ceil rounding would shift it by one element).
  if (scale == 1.0 && in == out && p.coord != 66) return static_cast<double>(x);
  switch (p.coord) {
    case 0: return out == 1 ? 0.0 : x * double(in - 1) / double(out - 1);                 // align_corners
    case 1: return x / scale;                                                              // asymmetric
    case 2: return (x + 0.5) / scale - 0.5;                                                // half_pixel
    case 64: return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;                               // pytorch_half_pixel
    case 65: return (x + 0.5) / scale;                                                     // tf_half_pixel_for_nn
    default: {                                                                             // tf_crop_and_resize
      size_t r = p.roi.size() / 2;
      double s = p.roi[axis], e = p.roi[r + axis];
      return out > 1 ? s * (in - 1) + x * (e - s) * (in - 1) / double(out - 1) : 0.5 * (s + e) * (in - 1);
    }
  }
}

Ints neighbours(double x, int n, int64_t in) {
  int pad = (n + 1) / 2;
  Ints cand;
  for (int64_t i = -pad; i < in + pad; ++i) cand.push_back(i);
  std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) {
    double da = std::fabs(x - a), db = std::fabs(x - b);
    return da < db || (da == db && a < b);
  });
  cand.resize(n);
  std::sort(cand.begin(), cand.end());
  return cand;
}

std::vector<double> coefficients(const RefParams& p, double ratio, bool integer) {
  if (p.mode == 0) {
    if (integer) return {0, 1};
    switch (p.rounding) {
      case 0: return {double(ratio < 0.5), double(ratio >= 0.5)};   // round_prefer_ceil
      case 1: return {double(ratio <= 0.5), double(ratio > 0.5)};   // round_prefer_floor
      case 2: return {1, 0};                                        // floor
      default: return {0, 1};                                       // ceil
    }
  }
  if (p.mode == 1) return {1 - ratio, ratio};
  double A = p.A, t = ratio;
  return {((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A, ((A + 2) * t - (A + 3)) * t * t + 1,
          ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1,
          ((A * ((1 - t) + 1) - 5 * A) * ((1 - t) + 1) + 8 * A) * ((1 - t) + 1) - 4 * A};
}

double interp(const HostTensor& x, const Dims& out, const Ints& oidx, size_t axis, int64_t base, const RefParams& p) {
  const Dims& shape = x.shape();
  if (axis == shape.size()) return x.get_f64(base);
  int64_t in = shape[axis], stride = 1;
  for (size_t d = axis + 1; d < shape.size(); ++d) stride *= shape[d];
  double xo = source_coord(p, axis, oidx[axis], in, out[axis]);
  if (p.coord == 66 && (xo < 0 || xo > in - 1)) return p.extrap;
  bool integer = xo == std::floor(xo);
  double ratio = integer ? 1.0 : xo - std::floor(xo);
  std::vector<double> c = coefficients(p, ratio, integer);
  int n = static_cast<int>(c.size());
  Ints idx = neighbours(xo, n, in);
  if (p.exclude) {
    double sum = 0;
    for (int k = 0; k < n; ++k) {
      if (idx[k] < 0 || idx[k] >= in) c[k] = 0;
      sum += c[k];
    }
    for (auto& v : c) v /= sum;
  }
  double acc = 0;
  for (int k = 0; k < n; ++k) {
    if (c[k] == 0) continue;
    int64_t i = std::clamp<int64_t>(idx[k], 0, in - 1);
    acc += c[k] * interp(x, out, oidx, axis + 1, base + i * stride, p);
  }
  return acc;
}

HostTensor reference(const HostTensor& x, const Dims& out, const RefParams& p) {
  HostTensor y(DataType::kDOUBLE, out);
  Ints idx(out.size(), 0);
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i;
    for (size_t d = out.size(); d-- > 0;) {
      idx[d] = rem % out[d];
      rem /= out[d];
    }
    y.mutable_data<double>()[i] = interp(x, out, idx, 0, 0, p);
  }
  return y;
}

struct Case {
  Dims in;
  Dims sizes;                  // given as sizes when non-empty
  std::vector<float> scales;   // else as scales
};

// Runs Resize with sizes or scales (as inputs or attributes) and compares with the reference.
void check(const HostTensor& x, const Case& c, RefParams p, int variant, const std::string& what) {
  ir::Graph g;
  auto* vx = g.add_input("x", x.dtype(), x.shape());
  HostTensor sizes = HostTensor::from_i64(c.sizes);
  HostTensor scales = c.scales.empty() ? HostTensor() : HostTensor::from_f32(c.scales, {int64_t(c.scales.size())});
  std::vector<const HostTensor*> ins{&x};
  std::vector<ir::Value*> vals{vx};
  bool as_input = variant % 2 == 0;
  if (as_input && !c.sizes.empty()) {
    ins.push_back(&sizes);
    vals.push_back(g.add_input("sizes", DataType::kINT64, sizes.shape()));
  } else if (as_input) {
    ins.push_back(nullptr);
    vals.push_back(nullptr);
    ins.push_back(&scales);
    vals.push_back(g.add_input("scales", DataType::kFLOAT, scales.shape()));
  }
  ir::Node* n = g.add_node("Resize", "resize", vals, 1);
  if (!as_input) {
    if (!c.sizes.empty()) n->attrs.set("sizes", c.sizes);
    else n->attrs.set("scales", std::vector<double>(c.scales.begin(), c.scales.end()));
  }
  n->attrs.set("mode", p.mode);
  n->attrs.set("coordinate_transformation", p.coord);
  n->attrs.set("nearest_rounding", p.rounding);
  n->attrs.set("cubic_coeff", p.A);
  n->attrs.set("exclude_outside", static_cast<int64_t>(p.exclude));
  n->attrs.set("extrapolation_value", p.extrap);
  if (!p.roi.empty()) n->attrs.set("roi", p.roi);
  auto y = cpu::eval_node(*n, ins);
  Dims out = c.sizes;
  p.scales.clear();
  if (out.empty()) {
    for (size_t d = 0; d < c.in.size(); ++d) {
      out.push_back(static_cast<int64_t>(std::floor(double(c.in[d]) * double(c.scales[d]))));
      p.scales.push_back(double(c.scales[d]));
    }
  } else {
    for (size_t d = 0; d < c.in.size(); ++d) p.scales.push_back(double(out[d]) / double(c.in[d]));
  }
  ASSERT_EQ(dims_str(y[0].shape()), dims_str(out)) << what;
  HostTensor want = reference(x, out, p);
  for (int64_t i = 0; i < want.numel(); ++i) {
    double w = want.data<double>()[i], got = y[0].get_f64(i);
    double tol = x.dtype() == DataType::kFLOAT ? 2e-5 * (1 + std::fabs(w)) : 0.0;
    if (!(std::fabs(got - w) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " got " << got << " want " << w;
      return;
    }
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {{1, 2, 5, 7}, {1, 2, 9, 4}, {}},              // up H, down W
      {{2, 1, 4, 4}, {2, 1, 8, 8}, {}},              // 2x
      {{1, 3, 6, 5}, {1, 3, 3, 1}, {}},              // down, single column
      {{1, 2, 5, 7}, {}, {1.f, 1.f, 1.7f, 0.6f}},   // fractional scales
      {{1, 1, 3, 4}, {}, {1.f, 1.f, 2.5f, 3.f}},
      {{3, 7}, {}, {1.f, 0.5f}},                     // 2-D, last axis only
      {{2, 3, 4}, {2, 5, 2}, {}},                    // 3-D, two axes
      {{1, 1, 3, 4, 5}, {1, 1, 5, 3, 7}, {}},        // 5-D, trilinear/tricubic
      {{2, 4, 3}, {3, 4, 3}, {}},                    // a leading axis
  };
  return c;
}

TEST(ResizeKernels, NearestEveryRoundingAndTransform) {
  int variant = 0;
  for (const Case& c : cases())
    for (int64_t coord : {0, 1, 2, 64, 65})
      for (int64_t rounding : {0, 1, 2, 3}) {
        RefParams p;
        p.mode = 0;
        p.coord = coord;
        p.rounding = rounding;
        HostTensor x = random_f32(c.in);
        check(x, c, p, variant++,
              "nearest in " + dims_str(c.in) + " coord " + std::to_string(coord) + " rounding " + std::to_string(rounding));
      }
}

TEST(ResizeKernels, NearestIntegerDtypes) {
  Case c{{2, 3, 5}, {2, 7, 3}, {}};
  for (DataType dt : {DataType::kINT32, DataType::kINT64, DataType::kUINT8}) {
    HostTensor x(dt, c.in);
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t v = static_cast<int64_t>(rng()() % 200) + 1;
      if (dt == DataType::kINT32) x.mutable_data<int32_t>()[i] = static_cast<int32_t>(v);
      else if (dt == DataType::kINT64) x.mutable_data<int64_t>()[i] = v;
      else x.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v);
    }
    RefParams p;
    p.coord = 2;
    p.rounding = 1;
    check(x, c, p, 0, std::string("nearest ") + dtype_name(dt));
  }
}

TEST(ResizeKernels, LinearEveryTransform) {
  int variant = 0;
  for (const Case& c : cases())
    for (int64_t coord : {0, 1, 2, 64})
      for (bool exclude : {false, true}) {
        RefParams p;
        p.mode = 1;
        p.coord = coord;
        p.exclude = exclude;
        HostTensor x = random_f32(c.in);
        check(x, c, p, variant++, "linear in " + dims_str(c.in) + " coord " + std::to_string(coord));
      }
}

TEST(ResizeKernels, CubicCoefficientsAndExcludeOutside) {
  int variant = 0;
  for (const Case& c : cases())
    for (int64_t coord : {0, 1, 2, 64})
      for (double A : {-0.75, -0.5})
        for (bool exclude : {false, true}) {
          RefParams p;
          p.mode = 2;
          p.coord = coord;
          p.A = A;
          p.exclude = exclude;
          HostTensor x = random_f32(c.in);
          check(x, c, p, variant++,
                "cubic in " + dims_str(c.in) + " coord " + std::to_string(coord) + " A " + std::to_string(A) +
                    " exclude " + std::to_string(exclude));
        }
}

TEST(ResizeKernels, TfCropAndResizeExtrapolates) {
  Case c{{1, 2, 6, 5}, {1, 2, 7, 9}, {}};
  for (int64_t mode : {0, 1, 2}) {
    RefParams p;
    p.mode = mode;
    p.coord = 66;
    p.rounding = 0;
    p.extrap = 7.5;
    p.roi = {0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3};
    HostTensor x = random_f32(c.in);
    check(x, c, p, 0, "tf_crop_and_resize mode " + std::to_string(mode));
  }
}

TEST(ResizeKernels, LargeBilinearMultithreaded) {
  Case c{{2, 16, 40, 50}, {2, 16, 97, 33}, {}};
  RefParams p;
  p.mode = 1;
  p.coord = 2;
  HostTensor x = random_f32(c.in);
  check(x, c, p, 0, "large bilinear");
}

}  // namespace
}  // namespace kiln
