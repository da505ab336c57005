// Reduction-style CPU kernels (Reduce, ArgMinMax, SoftMax, Normalization, TopK, CumSum) against naive
// double-precision references written here, on random non-zero inputs: many shapes, negative axes,
// keep_dims, integer dtypes, and sizes large enough for the parallel paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "math_kernel_test_util.h"

namespace kiln {
namespace {

using namespace mtest;

// Groups the elements of shape `s` by their index with `reduced` dims zeroed (the output element).
struct ReduceIndex {
  Dims out_keep;                     // output dims with reduced dims as 1
  std::vector<int64_t> out_of;       // input flat index -> output flat index
  int64_t count = 1;                 // elements per output
};
ReduceIndex reduce_index(const Dims& s, const std::vector<bool>& red) {
  ReduceIndex r;
  for (size_t d = 0; d < s.size(); ++d) {
    r.out_keep.push_back(red[d] ? 1 : s[d]);
    if (red[d]) r.count *= s[d];
  }
  auto os = strides_of(r.out_keep);
  for (int64_t i = 0; i < volume(s); ++i) {
    auto idx = unravel(i, s);
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d) o += (red[d] ? 0 : idx[d]) * os[d];
    r.out_of.push_back(o);
  }
  return r;
}

std::vector<bool> reduced_mask(const std::vector<int64_t>& axes, size_t rank) {
  std::vector<bool> red(rank, axes.empty());
  for (int64_t a : axes) red[a < 0 ? a + static_cast<int64_t>(rank) : a] = true;
  return red;
}

// ================================================ Reduce ==================================================

std::vector<double> reduce_ref(int64_t op, const std::vector<double>& x, const ReduceIndex& ri, bool is_int) {
  const size_t n_out = static_cast<size_t>(volume(ri.out_keep));
  std::vector<std::vector<double>> groups(n_out);
  for (size_t i = 0; i < x.size(); ++i) groups[ri.out_of[i]].push_back(x[i]);
  std::vector<double> out(n_out);
  for (size_t o = 0; o < n_out; ++o) {
    const auto& g = groups[o];
    double r = 0;
    switch (op) {
      case 0: for (double v : g) r += v; break;
      case 1: r = 1; for (double v : g) r *= v; break;
      case 2: r = -INFINITY; for (double v : g) r = std::max(r, v); break;
      case 3: r = INFINITY; for (double v : g) r = std::min(r, v); break;
      case 4: for (double v : g) r += v; r = is_int ? std::trunc(r / g.size()) : r / g.size(); break;
      case 64: for (double v : g) r += std::fabs(v); break;
      case 65: for (double v : g) r += v * v; r = std::sqrt(r); if (is_int) r = std::trunc(r); break;
      case 66: for (double v : g) r += v; r = std::log(r); if (is_int) r = std::trunc(r); break;
      case 67: {
        double m = -INFINITY;
        for (double v : g) m = std::max(m, v);
        for (double v : g) r += std::exp(v - m);
        r = std::log(r) + m;
        if (is_int) r = std::trunc(r);
        break;
      }
      case 68: for (double v : g) r += v * v; break;
    }
    out[o] = r;
  }
  return out;
}

// Absolute error scale of a sum over the group: sum of |terms|.
std::vector<double> abs_scale(int64_t op, const std::vector<double>& x, const ReduceIndex& ri) {
  std::vector<double> s(static_cast<size_t>(volume(ri.out_keep)), 0);
  for (size_t i = 0; i < x.size(); ++i) s[ri.out_of[i]] += (op == 65 || op == 68) ? x[i] * x[i] : std::fabs(x[i]);
  return s;
}

void check_reduce(int64_t op, DataType dt, const Dims& shape, const std::vector<int64_t>& axes, bool keep) {
  const bool is_int = !dtype_is_float(dt);
  HostTensor x;
  if (op == 1) x = is_int ? rand_ints(shape, dt, 1, 2) : rand_float(shape, dt, 0.9, 1.1);  // keep products finite
  else if (op == 66) x = is_int ? rand_ints(shape, dt, 1, 100) : rand_float(shape, dt, 0.1, 2.0, true);
  else x = is_int ? rand_ints(shape, dt, -1000, 1000, true) : rand_float(shape, dt, 0.1, 2.0);
  HostTensor y = run1("Reduce", {&x}, [&](ir::Attrs& a) {
    a.set("op", op);
    a.set("axes", axes);
    a.set("keep_dims", keep ? 1 : 0);
  }, test_pool());
  auto red = reduced_mask(axes, shape.size());
  ReduceIndex ri = reduce_index(shape, red);
  Dims want;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!red[d]) want.push_back(shape[d]);
    else if (keep) want.push_back(1);
  ASSERT_EQ(y.shape(), want) << "op " << op;
  ASSERT_EQ(y.dtype(), dt);
  std::vector<double> xs = to_f64(x);
  std::vector<double> ref = reduce_ref(op, xs, ri, is_int);
  if (is_int) {
    EXPECT_TRUE(close(y, ref, 0, 0)) << "op " << op << " " << dtype_name(dt) << " " << dims_str(shape);
    return;
  }
  // Sums: error relative to the sum of magnitudes (cancellation is the reference's business, not ours).
  std::vector<double> sc = abs_scale(op, xs, ri);
  const double eps = dt == DataType::kFLOAT ? 1e-5 : 1e-12;
  bool ok = true;
  for (size_t o = 0; o < ref.size() && ok; ++o) {
    const double g = y.get_f64(static_cast<int64_t>(o));
    double tol = eps * std::fabs(ref[o]);
    if (op == 0 || op == 4) tol = eps * sc[o] / (op == 4 ? ri.count : 1);
    if (op == 64 || op == 68) tol = eps * sc[o];
    if (op == 66 || op == 67) tol = eps * (std::fabs(ref[o]) + 1);  // log of a rounded sum: absolute error
    if (op == 1) tol = eps * std::fabs(ref[o]) * (1.0 + static_cast<double>(ri.count) / 64);
    // Empty reductions give identities (+-inf for MAX/MIN, NaN for AVG as numpy): compare exactly.
    ok = g == ref[o] || (ri.count == 0 && std::isnan(g) && std::isnan(ref[o])) ||
         (!std::isnan(g) && std::fabs(g - ref[o]) <= tol + 1e-30);
    EXPECT_TRUE(ok) << "op " << op << " " << dtype_name(dt) << " " << dims_str(shape) << " out " << o << ": got " << g
                    << " want " << ref[o];
  }
}

struct ReduceCase {
  Dims shape;
  std::vector<int64_t> axes;
};
const std::vector<ReduceCase> kReduceCases = {
    {{7}, {0}},           {{7}, {}},              {{3, 5}, {1}},           {{3, 5}, {0}},          {{3, 5}, {-1}},
    {{2, 3, 4}, {1}},     {{2, 3, 4}, {0, 2}},    {{2, 3, 4}, {-3, -1}},   {{2, 3, 4, 5}, {1, 3}}, {{2, 3, 4, 5}, {2, 3}},
    {{4, 1, 6}, {1}},     {{4, 1, 6}, {0, 1}},    {{1, 1}, {0}},           {{5, 0, 3}, {1}},       {{2, 3, 4, 5}, {0, 1, 2, 3}},
    {{3, 1000}, {1}},     {{1000, 3}, {0}},       {{2, 300000}, {1}},      {{600000}, {}},         {{64, 256, 9}, {1}},
};

TEST(ReduceKernels, AllOpsFloat) {
  for (int64_t op : {0, 1, 2, 3, 4, 64, 65, 66, 67, 68})
    for (const ReduceCase& c : kReduceCases)
      for (bool keep : {true, false}) {
        if (op == 1 && volume(c.shape) > 5000) continue;  // products of many values over/underflow
        check_reduce(op, DataType::kFLOAT, c.shape, c.axes, keep);
      }
}

TEST(ReduceKernels, AllOpsDouble) {
  for (int64_t op : {0, 1, 2, 3, 4, 64, 65, 66, 67, 68})
    for (const ReduceCase& c : kReduceCases) {
      if (volume(c.shape) > 100000 || (op == 1 && volume(c.shape) > 5000)) continue;
      check_reduce(op, DataType::kDOUBLE, c.shape, c.axes, true);
    }
}

TEST(ReduceKernels, IntegerTypes) {
  for (DataType dt : {DataType::kINT32, DataType::kINT64})
    for (int64_t op : {0, 1, 2, 3, 4, 64, 68})
      for (const ReduceCase& c : kReduceCases) {
        if (volume(c.shape) > 100000 || (op == 1 && volume(c.shape) > 24)) continue;
        if (volume(c.shape) == 0 && (op == 2 || op == 3 || op == 4)) continue;  // no integer infinity / NaN
        check_reduce(op, dt, c.shape, c.axes, op % 2 == 0);
      }
}

TEST(ReduceKernels, EmptyReductionGivesIdentity) {
  HostTensor x(DataType::kFLOAT, {3, 0});
  HostTensor s = run1("Reduce", {&x}, [](ir::Attrs& a) { a.set("op", 0); a.set("axes", std::vector<int64_t>{1}); });
  HostTensor p = run1("Reduce", {&x}, [](ir::Attrs& a) { a.set("op", 1); a.set("axes", std::vector<int64_t>{1}); });
  EXPECT_TRUE(close(s, {0, 0, 0}, 0, 0));
  EXPECT_TRUE(close(p, {1, 1, 1}, 0, 0));
}

// =============================================== ArgMinMax ================================================

TEST(ReduceKernels, ArgMinMax) {
  const std::vector<std::pair<Dims, int64_t>> cases = {{{7}, 0},       {{3, 5}, 1},   {{3, 5}, 0},   {{3, 5}, -1},
                                                      {{2, 3, 4}, 1}, {{2, 3, 4}, -3}, {{4, 700}, 0}, {{50000, 8}, 1},
                                                      {{2, 1000, 3}, 1}};
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64, DataType::kINT8})
    for (auto& [shape, axis] : cases)
      for (int64_t op : {0, 1})
        for (int64_t last : {0, 1})
          for (bool keep : {true, false}) {
            // Integer inputs with few values: lots of ties.
            HostTensor x = dtype_is_float(dt) ? rand_float(shape, dt, 0.1, 2.0) : rand_ints(shape, dt, -3, 3, true);
            HostTensor y = run1("ArgMinMax", {&x}, [&](ir::Attrs& a) {
              a.set("op", op);
              a.set("axis", axis);
              a.set("keep_dims", keep ? 1 : 0);
              a.set("select_last_index", last);
            }, test_pool());
            ASSERT_EQ(y.dtype(), DataType::kINT64);
            const int64_t ax = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
            const int64_t outer = std::accumulate(shape.begin(), shape.begin() + ax, int64_t{1}, std::multiplies<>());
            const int64_t inner = std::accumulate(shape.begin() + ax + 1, shape.end(), int64_t{1}, std::multiplies<>());
            const int64_t n = shape[ax];
            std::vector<double> ref;
            for (int64_t o = 0; o < outer; ++o)
              for (int64_t i = 0; i < inner; ++i) {
                int64_t best = 0;
                for (int64_t r = 1; r < n; ++r) {
                  const double v = x.get_f64((o * n + r) * inner + i), b = x.get_f64((o * n + best) * inner + i);
                  const bool better = op == 0 ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
                  if (better) best = r;
                }
                ref.push_back(static_cast<double>(best));
              }
            EXPECT_TRUE(close(y, ref, 0, 0)) << dims_str(shape) << " axis " << axis << " op " << op << " last " << last
                                             << " " << dtype_name(dt);
            EXPECT_EQ(y.shape().size(), shape.size() - (keep ? 0 : 1));
          }
}

// ================================================ SoftMax =================================================

TEST(ReduceKernels, SoftMaxAndLogSoftMax) {
  const std::vector<std::pair<Dims, int64_t>> cases = {
      {{5}, 0},          {{3, 7}, -1},      {{3, 7}, 0},        {{2, 3, 4}, 1},     {{2, 3, 4}, -1},
      {{4, 1, 5}, 1},    {{1, 13}, 1},      {{12, 128, 128}, -1}, {{2, 2000}, 1},   {{3, 700, 9}, 1},
      {{8, 16, 600}, 0}, {{1, 100003}, -1}};
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE})
    for (auto& [shape, axis] : cases)
      for (int64_t log : {0, 1}) {
        HostTensor x = rand_float(shape, dt, 0.01, 8.0);
        HostTensor y = run1("SoftMax", {&x}, [&](ir::Attrs& a) {
          a.set("axis", axis);
          a.set("log", log);
        }, test_pool());
        const int64_t ax = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
        const int64_t outer = std::accumulate(shape.begin(), shape.begin() + ax, int64_t{1}, std::multiplies<>());
        const int64_t inner = std::accumulate(shape.begin() + ax + 1, shape.end(), int64_t{1}, std::multiplies<>());
        const int64_t n = shape[ax];
        std::vector<double> ref(static_cast<size_t>(x.numel()));
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            double m = -INFINITY, s = 0;
            for (int64_t r = 0; r < n; ++r) m = std::max(m, x.get_f64((o * n + r) * inner + i));
            for (int64_t r = 0; r < n; ++r) s += std::exp(x.get_f64((o * n + r) * inner + i) - m);
            for (int64_t r = 0; r < n; ++r) {
              const int64_t k = (o * n + r) * inner + i;
              ref[k] = log ? x.get_f64(k) - m - std::log(s) : std::exp(x.get_f64(k) - m) / s;
            }
          }
        const double rtol = dt == DataType::kFLOAT ? 1e-5 : 1e-12;
        // log-softmax values near 0 carry the absolute error of log(s) (relative to its magnitude).
        const double atol = log ? (dt == DataType::kFLOAT ? 2e-6 : 1e-13) : 0;
        EXPECT_TRUE(close(y, ref, rtol, atol)) << dims_str(shape) << " axis " << axis << " log " << log << " "
                                               << dtype_name(dt);
      }
}

TEST(ReduceKernels, SoftMaxLargeValuesStayFinite) {
  HostTensor x = HostTensor::from_f32({1000.f, 1001.f, 999.f, -1e30f}, {1, 4});
  HostTensor y = run1("SoftMax", {&x}, [](ir::Attrs& a) { a.set("axis", -1); });
  const double d = std::exp(0.0) + std::exp(1.0) + std::exp(-1.0);
  EXPECT_TRUE(close(y, {1 / d, std::exp(1.0) / d, std::exp(-1.0) / d, 0}, 1e-6, 1e-30));
}

// ============================================= Normalization ==============================================

struct NormCase {
  Dims x;
  std::vector<int64_t> axes;
  int64_t groups;
  Dims scale;
};

void check_norm(DataType dt, const NormCase& c) {
  HostTensor x = rand_float(c.x, dt, 0.01, 3.0);
  // Give rows different offsets so the mean matters.
  for (int64_t i = 0; i < x.numel(); ++i) set_elem(x, i, x.get_f64(i) + static_cast<double>(i % 7) - 3.0);
  HostTensor scale = rand_float(c.scale, dt, 0.5, 2.0);
  HostTensor bias = rand_float(c.scale, dt, 0.1, 1.0);
  const double eps = 1e-5;
  HostTensor y = run1("Normalization", {&x, &scale, &bias}, [&](ir::Attrs& a) {
    a.set("axes", c.axes);
    a.set("epsilon", eps);
    a.set("num_groups", c.groups);
  }, test_pool());
  ASSERT_EQ(y.shape(), c.x);
  // Reference: group elements by (non-stat indices, group of channel) and normalize each group.
  const size_t rank = c.x.size();
  auto red = reduced_mask(c.axes, rank);
  std::vector<int64_t> key(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = unravel(i, c.x);
    int64_t k = 0;
    for (size_t d = 0; d < rank; ++d) {
      int64_t v = red[d] ? 0 : idx[d];
      int64_t size = c.x[d];
      if (d == 1 && c.groups > 1) {
        v = red[d] ? 0 : idx[d] / (c.x[1] / c.groups);
        size = c.groups;
      }
      k = k * size + v;
    }
    key[i] = k;
  }
  std::map<int64_t, std::pair<double, double>> stats;  // key -> (sum, count)
  for (int64_t i = 0; i < x.numel(); ++i) {
    stats[key[i]].first += x.get_f64(i);
    stats[key[i]].second += 1;
  }
  std::map<int64_t, double> var;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double m = stats[key[i]].first / stats[key[i]].second, d = x.get_f64(i) - m;
    var[key[i]] += d * d / stats[key[i]].second;
  }
  std::vector<double> ref;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double m = stats[key[i]].first / stats[key[i]].second;
    const double n = (x.get_f64(i) - m) / std::sqrt(var[key[i]] + eps);
    auto idx = unravel(i, c.x);
    const int64_t so = bcast_offset(idx, c.scale);
    ref.push_back(n * scale.get_f64(so) + bias.get_f64(so));
  }
  const double tol = dt == DataType::kFLOAT ? 1e-5 : 1e-11;
  // Outputs near zero: error scale is |scale| * (normalized magnitude ~1) * eps.
  EXPECT_TRUE(close(y, ref, tol, tol * 4)) << dims_str(c.x) << " groups " << c.groups << " scale " << dims_str(c.scale)
                                           << " " << dtype_name(dt);
}

TEST(ReduceKernels, NormalizationLayerInstanceGroup) {
  const std::vector<NormCase> cases = {
      {{4, 16}, {1}, 1, {16}},                       // LayerNorm
      {{2, 5, 768}, {-1}, 1, {768}},                 // BERT-like
      {{2, 5, 768}, {2}, 1, {1, 1, 768}},
      {{3, 4, 6}, {1, 2}, 1, {4, 6}},                // two normalized dims
      {{3, 4, 6}, {1, 2}, 1, {4, 1}},                // scale broadcast inside the row (gather path)
      {{3, 4, 6}, {2}, 1, {3, 4, 1}},                // scale varies per row only
      {{3, 4, 6}, {2}, 1, {1}},                      // scalar scale
      {{2, 3, 5, 5}, {2, 3}, 1, {1, 3, 1, 1}},       // InstanceNorm
      {{2, 6, 4, 4}, {2, 3}, 3, {1, 6, 1, 1}},       // GroupNorm
      {{2, 8, 10}, {2}, 4, {1, 8, 1}},
      {{2, 8, 10}, {2}, 8, {1, 8, 1}},
      {{2, 4, 3}, {1}, 1, {1, 4, 1}},                // statistics over a middle axis (general path)
      {{2, 4, 3, 5}, {0, 2}, 1, {4, 1, 5}},          // non-contiguous axes (general path)
      {{256, 1024}, {1}, 1, {1024}},                 // parallel rows
      {{1, 4, 6, 1}, {1, 2}, 1, {4, 6, 1}},          // trailing size-1 dim
  };
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE})
    for (const NormCase& c : cases) check_norm(dt, c);
}

// output_dtype (passes/fold_normalization_cast): y computed in x's dtype and stored in another float type is the
// same bytes as the op followed by a Cast, for every path (rows, groups, the general transpose path).
TEST(ReduceKernels, NormalizationStoresTheOutputDtypeAsACastWould) {
  const std::vector<NormCase> cases = {
      {{4, 16}, {1}, 1, {16}}, {{2, 6, 4, 4}, {2, 3}, 3, {1, 6, 1, 1}}, {{2, 4, 3, 5}, {0, 2}, 1, {4, 1, 5}}};
  for (DataType xt : {DataType::kFLOAT, DataType::kDOUBLE})
    for (DataType yt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kDOUBLE})
      for (const NormCase& c : cases) {
        SCOPED_TRACE(std::string(dtype_name(xt)) + " -> " + dtype_name(yt) + " " + dims_str(c.x));
        const HostTensor x = rand_float(c.x, xt, -2.0, 3.0), scale = rand_float(c.scale, xt, 0.5, 2.0);
        const HostTensor bias = rand_float(c.scale, xt, 0.1, 1.0);
        auto attrs = [&](ir::Attrs& a) {
          a.set("axes", c.axes);
          a.set("epsilon", 1e-5);
          a.set("num_groups", c.groups);
        };
        const HostTensor plain = run1("Normalization", {&x, &scale, &bias}, attrs, test_pool());
        const HostTensor cast = run1("Cast", {&plain}, [&](ir::Attrs& a) { a.set("to", static_cast<int64_t>(yt)); });
        const HostTensor got = run1("Normalization", {&x, &scale, &bias}, [&](ir::Attrs& a) {
          attrs(a);
          a.set("output_dtype", static_cast<int64_t>(yt));
        }, test_pool());
        ASSERT_EQ(got.dtype(), yt);
        EXPECT_TRUE(got.same_bytes(cast));
      }
}

// ================================================= TopK ===================================================

void check_topk(DataType dt, const Dims& shape, int64_t axis, int64_t k, int64_t op, bool k_input, bool i32) {
  HostTensor x = dtype_is_float(dt) ? rand_float(shape, dt, 0.1, 2.0) : rand_ints(shape, dt, -5, 5, true);
  HostTensor kt = HostTensor::from_i64({k});
  auto outs = run_op("TopK", {&x, k_input ? &kt : nullptr}, [&](ir::Attrs& a) {
    a.set("op", op);
    a.set("axis", axis);
    if (!k_input) a.set("k", k);
    if (i32) a.set("index_dtype", static_cast<int64_t>(DataType::kINT32));
  }, 2, test_pool());
  const int64_t ax = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
  Dims want = shape;
  want[ax] = k;
  ASSERT_EQ(outs[0].shape(), want);
  ASSERT_EQ(outs[1].dtype(), i32 ? DataType::kINT32 : DataType::kINT64);
  const int64_t outer = std::accumulate(shape.begin(), shape.begin() + ax, int64_t{1}, std::multiplies<>());
  const int64_t inner = std::accumulate(shape.begin() + ax + 1, shape.end(), int64_t{1}, std::multiplies<>());
  const int64_t n = shape[ax];
  std::vector<double> rv(static_cast<size_t>(volume(want))), ri(rv.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<std::pair<double, int64_t>> v;
      for (int64_t r = 0; r < n; ++r) v.push_back({x.get_f64((o * n + r) * inner + i), r});
      std::stable_sort(v.begin(), v.end(), [&](auto& a, auto& b) { return op == 0 ? a.first > b.first : a.first < b.first; });
      for (int64_t r = 0; r < k; ++r) {
        rv[(o * k + r) * inner + i] = v[r].first;
        ri[(o * k + r) * inner + i] = static_cast<double>(v[r].second);
      }
    }
  EXPECT_TRUE(close(outs[0], rv, 0, 0)) << dims_str(shape) << " axis " << axis << " k " << k << " op " << op;
  EXPECT_TRUE(close(outs[1], ri, 0, 0)) << dims_str(shape) << " axis " << axis << " k " << k << " op " << op;
}

TEST(ReduceKernels, TopK) {
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
    for (int64_t op : {0, 1}) {
      check_topk(dt, {10}, 0, 3, op, false, false);
      check_topk(dt, {10}, -1, 10, op, true, false);
      check_topk(dt, {4, 9}, 1, 4, op, true, true);
      check_topk(dt, {4, 9}, 0, 2, op, false, false);
      check_topk(dt, {3, 5, 7}, 1, 5, op, false, true);
      check_topk(dt, {3, 5, 7}, -2, 0, op, true, false);
      check_topk(dt, {200, 1000}, 1, 5, op, true, false);
    }
}

TEST(ReduceKernels, TopKNanOrdersFirstForMax) {
  HostTensor x = HostTensor::from_f32({1.0f, std::nanf(""), 3.0f, 2.0f}, {4});
  auto outs = run_op("TopK", {&x}, [](ir::Attrs& a) { a.set("k", 2); }, 2);
  EXPECT_TRUE(std::isnan(outs[0].data<float>()[0]));
  EXPECT_EQ(outs[0].data<float>()[1], 3.0f);
  EXPECT_EQ(outs[1].data<int64_t>()[0], 1);
}

// ================================================ CumSum ==================================================

TEST(ReduceKernels, CumSum) {
  const std::vector<std::pair<Dims, int64_t>> cases = {{{9}, 0},        {{3, 5}, 1},  {{3, 5}, 0},       {{3, 5}, -1},
                                                      {{2, 3, 4}, -2},  {{2, 3, 4}, 0}, {{5, 3000}, 1}, {{2000, 3, 70}, 0}};
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
    for (auto& [shape, axis] : cases)
      for (int64_t excl : {0, 1})
        for (int64_t rev : {0, 1})
          for (DataType adt : {DataType::kINT64, DataType::kINT32}) {
            HostTensor x = dtype_is_float(dt) ? rand_float(shape, dt, 0.1, 2.0) : rand_ints(shape, dt, -100, 100, true);
            HostTensor a = scalar_of(adt, static_cast<double>(axis));
            HostTensor y = run1("CumSum", {&x, &a}, [&](ir::Attrs& at) {
              at.set("exclusive", excl);
              at.set("reverse", rev);
            }, test_pool());
            const int64_t ax = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
            const int64_t outer = std::accumulate(shape.begin(), shape.begin() + ax, int64_t{1}, std::multiplies<>());
            const int64_t inner = std::accumulate(shape.begin() + ax + 1, shape.end(), int64_t{1}, std::multiplies<>());
            const int64_t n = shape[ax];
            std::vector<double> ref(static_cast<size_t>(x.numel())), mag(ref.size());
            for (int64_t o = 0; o < outer; ++o)
              for (int64_t i = 0; i < inner; ++i) {
                double s = 0, m = 0;
                for (int64_t t = 0; t < n; ++t) {
                  const int64_t r = rev ? n - 1 - t : t;
                  const int64_t k = (o * n + r) * inner + i;
                  if (!excl) { s += x.get_f64(k); m += std::fabs(x.get_f64(k)); }
                  ref[k] = s;
                  mag[k] = m;
                  if (excl) { s += x.get_f64(k); m += std::fabs(x.get_f64(k)); }
                }
              }
            const double eps = dt == DataType::kFLOAT ? 1e-5 : (dt == DataType::kDOUBLE ? 1e-14 : 0);
            bool ok = true;
            for (int64_t k = 0; k < x.numel() && ok; ++k) {
              const double g = y.get_f64(k);
              ok = !std::isnan(g) && std::fabs(g - ref[k]) <= eps * mag[k] * 4;
              EXPECT_TRUE(ok) << dims_str(shape) << " axis " << axis << " excl " << excl << " rev " << rev << " at " << k
                              << ": got " << g << " want " << ref[k];
            }
          }
}

// CumSum with `product` (ONNX CumProd): running products against a double reference (floats near 1 so
// long axes stay finite) and a wrapping uint64 reference for integers.
TEST(ReduceKernels, CumProd) {
  const std::vector<std::pair<Dims, int64_t>> cases = {{{9}, 0},        {{3, 5}, 1},  {{3, 5}, 0},       {{3, 5}, -1},
                                                      {{2, 3, 4}, -2},  {{2, 3, 4}, 0}, {{5, 3000}, 1}, {{2000, 3, 70}, 0}};
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
    for (auto& [shape, axis] : cases)
      for (int64_t excl : {0, 1})
        for (int64_t rev : {0, 1}) {
          const bool is_float = dtype_is_float(dt);
          HostTensor x = is_float ? rand_float(shape, dt, 0.99, 1.01) : rand_ints(shape, dt, -3, 3, true);
          HostTensor a = scalar_of(DataType::kINT64, static_cast<double>(axis));
          HostTensor y = run1("CumSum", {&x, &a}, [&](ir::Attrs& at) {
            at.set("exclusive", excl);
            at.set("reverse", rev);
            at.set("product", int64_t{1});
          }, test_pool());
          ASSERT_EQ(y.shape(), x.shape());
          const int64_t ax = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
          const int64_t outer = std::accumulate(shape.begin(), shape.begin() + ax, int64_t{1}, std::multiplies<>());
          const int64_t inner = std::accumulate(shape.begin() + ax + 1, shape.end(), int64_t{1}, std::multiplies<>());
          const int64_t n = shape[ax];
          const double ulp = dt == DataType::kFLOAT ? 1.2e-7 : 2.3e-16;
          int bad = 0;
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
              double p = 1;
              uint64_t q = 1;
              for (int64_t t = 0; t < n; ++t) {
                const int64_t r = rev ? n - 1 - t : t;
                const int64_t k = (o * n + r) * inner + i;
                if (!excl) {
                  p *= x.get_f64(k);
                  q *= static_cast<uint64_t>(static_cast<int64_t>(x.get_f64(k)));
                }
                if (is_float) {
                  const double g = y.get_f64(k);
                  if (!(std::fabs(g - p) <= 4 * ulp * static_cast<double>(t + 2) * std::fabs(p)) && bad++ < 5)
                    ADD_FAILURE() << dims_str(shape) << " axis " << axis << " excl " << excl << " rev " << rev << " at "
                                  << k << ": got " << g << " want " << p;
                } else {
                  const int64_t want = dt == DataType::kINT32 ? static_cast<int32_t>(static_cast<uint32_t>(q))
                                                              : static_cast<int64_t>(q);
                  const int64_t got = dt == DataType::kINT32 ? y.data<int32_t>()[k] : y.data<int64_t>()[k];
                  if (got != want && bad++ < 5)
                    ADD_FAILURE() << dims_str(shape) << " axis " << axis << " excl " << excl << " rev " << rev << " at "
                                  << k << ": got " << got << " want " << want;
                }
                if (excl) {
                  p *= x.get_f64(k);
                  q *= static_cast<uint64_t>(static_cast<int64_t>(x.get_f64(k)));
                }
              }
            }
        }
}

}  // namespace
}  // namespace kiln
