// Kernels whose output sizes depend on input values (NonZero, Compress, Unique, NonMaxSuppression) against
// naive references written here, on random inputs. They run through cpu::eval_node, which gives memory to
// outputs of data-dependent shape when the kernel asks (KernelContext::set_output_shape).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <random>

#include "backends/cpu/eval.h"
#include "ir/graph.h"

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

std::mt19937_64& rng() {
  static std::mt19937_64 r(977);
  return r;
}
int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

// Random floats with about a third exact zeros / repeats (drawn from a small set), so counts are interesting.
HostTensor random_floats(const Dims& shape, int distinct) {
  HostTensor t(DataType::kFLOAT, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = 0.5f * static_cast<float>(rand_int(-distinct, distinct));
  return t;
}

std::vector<HostTensor> run(const std::string& op, std::vector<const HostTensor*> ins, ir::Attrs at = {}, int outs = 1) {
  ir::Graph g;
  std::vector<ir::Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i)
    vals.push_back(ins[i] ? g.add_input("in" + std::to_string(i), ins[i]->dtype(), ins[i]->shape()) : nullptr);
  ir::Node* n = g.add_node(op, "node", vals, outs);
  n->attrs = std::move(at);
  return cpu::eval_node(*n, ins);
}

Ints ints(const HostTensor& t) { return t.to_i64(); }

TEST(DataDependentKernels, NonZeroMatchesNaive) {
  for (const Dims& shape : {Dims{7}, Dims{3, 4}, Dims{2, 3, 5}, Dims{2, 0, 3}, Dims{}}) {
    HostTensor x = random_floats(shape, 1);
    auto y = run("NonZero", {&x});
    ASSERT_EQ(y.size(), 1u);
    const int64_t r = std::max<int64_t>(static_cast<int64_t>(shape.size()), 1);
    // Naive: walk every index in row-major order and keep the nonzero ones' coordinates.
    std::vector<Ints> coords;
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (x.data<float>()[i] == 0.0f) continue;
      Ints c(r, 0);
      int64_t rem = i;
      for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
        c[d] = rem % shape[d];
        rem /= shape[d];
      }
      coords.push_back(c);
    }
    const int64_t n = static_cast<int64_t>(coords.size());
    ASSERT_EQ(y[0].shape(), (Dims{r, n})) << dims_str(shape);
    Ints got = ints(y[0]);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t d = 0; d < r; ++d) EXPECT_EQ(got[d * n + k], coords[k][d]);
  }
}

TEST(DataDependentKernels, NonZeroOnIntsAndBools) {
  HostTensor b(DataType::kBOOL, {2, 3});
  const uint8_t bits[] = {1, 0, 0, 1, 1, 0};
  std::copy(bits, bits + 6, b.mutable_data<uint8_t>());
  auto y = run("NonZero", {&b});
  EXPECT_EQ(y[0].shape(), (Dims{2, 3}));
  EXPECT_EQ(ints(y[0]), (Ints{0, 1, 1, 0, 0, 1}));
  HostTensor i = HostTensor::from_i64({0, 5, -2, 0});
  EXPECT_EQ(ints(run("NonZero", {&i})[0]), (Ints{1, 2}));
}

TEST(DataDependentKernels, CompressMatchesNaive) {
  for (int trial = 0; trial < 20; ++trial) {
    Dims shape{rand_int(1, 4), rand_int(1, 5), rand_int(1, 3)};
    HostTensor x = random_floats(shape, 5);
    bool has_axis = trial % 4 != 0;
    int64_t axis = has_axis ? rand_int(-3, 2) : 0, ax = axis < 0 ? axis + 3 : axis;
    int64_t len = has_axis ? rand_int(0, shape[ax]) : rand_int(0, x.numel());
    HostTensor cond(DataType::kBOOL, {len});
    for (int64_t i = 0; i < len; ++i) cond.mutable_data<uint8_t>()[i] = rand_int(0, 1);
    ir::Attrs at;
    if (has_axis) {
      at.set("has_axis", int64_t{1});
      at.set("axis", axis);
    }
    auto y = run("Compress", {&x, &cond}, at);
    // Naive: keep element/slice i where cond[i].
    std::vector<float> want;
    Dims want_shape;
    if (!has_axis) {
      for (int64_t i = 0; i < len; ++i)
        if (cond.data<uint8_t>()[i]) want.push_back(x.data<float>()[i]);
      want_shape = {static_cast<int64_t>(want.size())};
    } else {
      Ints keep;
      for (int64_t i = 0; i < len; ++i)
        if (cond.data<uint8_t>()[i]) keep.push_back(i);
      want_shape = shape;
      want_shape[ax] = static_cast<int64_t>(keep.size());
      for (int64_t a = 0; a < want_shape[0]; ++a)
        for (int64_t b = 0; b < want_shape[1]; ++b)
          for (int64_t c = 0; c < want_shape[2]; ++c) {
            Ints idx{a, b, c};
            idx[ax] = keep[idx[ax]];
            want.push_back(x.data<float>()[(idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]]);
          }
    }
    ASSERT_EQ(y[0].shape(), want_shape);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y[0].data<float>()[i], want[i]);
  }
}

TEST(DataDependentKernels, CompressRejectsLongCondition) {
  HostTensor x = random_floats({3}, 2);
  HostTensor cond(DataType::kBOOL, {4});
  EXPECT_THROW(run("Compress", {&x, &cond}), Error);
}

// Naive Unique over slices along `axis` (-1: flattened elements).
struct UniqueRef {
  std::vector<std::vector<float>> values;
  Ints first, inverse, counts;
};
UniqueRef unique_ref(const HostTensor& x, int64_t axis, bool sorted) {
  Dims s = x.shape();
  int64_t outer = 1, len = x.numel(), inner = 1;
  if (axis >= 0) {
    len = s[axis];
    outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= s[d];
    for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
  }
  auto slice = [&](int64_t k) {
    std::vector<float> v;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) v.push_back(x.data<float>()[(o * len + k) * inner + i]);
    return v;
  };
  UniqueRef r;
  std::map<std::vector<float>, int64_t> seen;  // slice -> position in first-occurrence order
  for (int64_t k = 0; k < len; ++k) {
    auto v = slice(k);
    auto it = seen.find(v);
    if (it == seen.end()) {
      seen[v] = static_cast<int64_t>(r.values.size());
      r.values.push_back(v);
      r.first.push_back(k);
      r.counts.push_back(1);
    } else {
      ++r.counts[it->second];
    }
  }
  Ints order(r.values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (sorted) std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return r.values[a] < r.values[b]; });
  UniqueRef o;
  Ints pos(order.size());
  for (size_t p = 0; p < order.size(); ++p) {
    o.values.push_back(r.values[order[p]]);
    o.first.push_back(r.first[order[p]]);
    o.counts.push_back(r.counts[order[p]]);
    pos[order[p]] = static_cast<int64_t>(p);
  }
  for (int64_t k = 0; k < len; ++k) {
    for (size_t q = 0; q < r.values.size(); ++q)
      if (r.values[q] == slice(k)) o.inverse.push_back(pos[q]);
  }
  return o;
}

TEST(DataDependentKernels, UniqueMatchesNaive) {
  for (int trial = 0; trial < 24; ++trial) {
    Dims shape{rand_int(1, 4), rand_int(1, 6)};
    HostTensor x = random_floats(shape, trial % 2 ? 1 : 3);
    int64_t axis = trial % 3 == 0 ? -1 : rand_int(0, 1);
    bool sorted = trial % 2 == 0;
    ir::Attrs at;
    at.set("sorted", int64_t{sorted});
    if (axis >= 0) {
      at.set("has_axis", int64_t{1});
      at.set("axis", axis);
    }
    auto y = run("Unique", {&x}, at, 4);
    UniqueRef want = unique_ref(x, axis, sorted);
    const int64_t u = static_cast<int64_t>(want.values.size());
    Dims yshape = axis < 0 ? Dims{u} : shape;
    if (axis >= 0) yshape[axis] = u;
    ASSERT_EQ(y[0].shape(), yshape);
    // Y holds the unique slices along the axis: compare slice by slice.
    int64_t outer = axis <= 0 ? 1 : shape[0], inner = axis == 0 ? shape[1] : 1;
    if (axis < 0) outer = inner = 1;
    for (int64_t p = 0; p < u; ++p)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i)
          EXPECT_EQ(y[0].data<float>()[(o * u + p) * inner + i], want.values[p][o * inner + i]);
    EXPECT_EQ(ints(y[1]), want.first);
    EXPECT_EQ(ints(y[2]), want.inverse);
    EXPECT_EQ(ints(y[3]), want.counts);
  }
}

// Naive NMS: per batch and class, boxes above the score threshold by descending score (ties: lower index),
// each kept unless it overlaps a kept one by IoU > threshold, at most max_out per class.
Ints nms_ref(const HostTensor& boxes, const HostTensor& scores, int64_t max_out, float iou_th, float score_th) {
  int64_t B = scores.shape()[0], C = scores.shape()[1], N = scores.shape()[2];
  auto box = [&](int64_t b, int64_t i) {
    const float* p = boxes.data<float>() + (b * N + i) * 4;
    return std::array<float, 4>{std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]), std::max(p[1], p[3])};
  };
  auto iou = [](std::array<float, 4> a, std::array<float, 4> c) {
    float aa = (a[2] - a[0]) * (a[3] - a[1]), ac = (c[2] - c[0]) * (c[3] - c[1]);
    if (aa <= 0 || ac <= 0) return 0.0f;
    float h = std::max(0.0f, std::min(a[2], c[2]) - std::max(a[0], c[0]));
    float w = std::max(0.0f, std::min(a[3], c[3]) - std::max(a[1], c[1]));
    return h * w / (aa + ac - h * w);
  };
  Ints out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const float* s = scores.data<float>() + (b * C + c) * N;
      Ints idx;
      for (int64_t i = 0; i < N; ++i)
        if (s[i] > score_th) idx.push_back(i);
      std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t d) { return s[a] > s[d] || (s[a] == s[d] && a < d); });
      Ints kept;
      for (int64_t i : idx) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool ok = true;
        for (int64_t k : kept) ok = ok && iou(box(b, i), box(b, k)) <= iou_th;
        if (!ok) continue;
        kept.push_back(i);
        out.insert(out.end(), {b, c, i});
      }
    }
  return out;
}

TEST(DataDependentKernels, NonMaxSuppressionMatchesNaive) {
  for (int trial = 0; trial < 12; ++trial) {
    int64_t B = rand_int(1, 2), C = rand_int(1, 3), N = rand_int(1, 12);
    HostTensor boxes(DataType::kFLOAT, {B, N, 4}), scores(DataType::kFLOAT, {B, C, N});
    for (int64_t i = 0; i < boxes.numel(); ++i)
      boxes.mutable_data<float>()[i] = static_cast<float>(std::uniform_real_distribution<double>(0, 4)(rng()));
    for (int64_t i = 0; i < scores.numel(); ++i)
      scores.mutable_data<float>()[i] = 0.1f * static_cast<float>(rand_int(0, 9));  // ties happen
    int64_t max_out = rand_int(0, 5);
    float iou_th = 0.1f * static_cast<float>(rand_int(0, 9)), score_th = 0.1f * static_cast<float>(rand_int(0, 5));
    HostTensor mo = HostTensor::from_i64({max_out});
    HostTensor it = HostTensor::from_f32({iou_th}, {1}), st = HostTensor::from_f32({score_th}, {1});
    auto y = run("NonMaxSuppression", {&boxes, &scores, &mo, &it, &st});
    Ints want = nms_ref(boxes, scores, max_out, iou_th, score_th);
    ASSERT_EQ(y[0].shape(), (Dims{static_cast<int64_t>(want.size()) / 3, 3}));
    EXPECT_EQ(ints(y[0]), want) << "trial " << trial;
  }
}

TEST(DataDependentKernels, NonMaxSuppressionCenterBoxes) {
  // Two heavily overlapping center-format boxes and one apart: the weaker overlapping one is suppressed.
  HostTensor boxes = HostTensor::from_f32({0.5f, 0.5f, 1, 1, 0.55f, 0.5f, 1, 1, 5, 5, 1, 1}, {1, 3, 4});
  HostTensor scores = HostTensor::from_f32({0.9f, 0.8f, 0.7f}, {1, 1, 3});
  HostTensor mo = HostTensor::from_i64({10});
  HostTensor it = HostTensor::from_f32({0.5f}, {1});
  ir::Attrs at;
  at.set("center_point_box", int64_t{1});
  auto y = run("NonMaxSuppression", {&boxes, &scores, &mo, &it}, at);
  EXPECT_EQ(ints(y[0]), (Ints{0, 0, 0, 0, 0, 2}));
}

}  // namespace
}  // namespace kiln
