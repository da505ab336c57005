// Data-movement kernels (Shuffle, Squeeze, Unsqueeze, Concatenation, Split, Slice, DynamicSlice, Gather,
// Shape, ConstantOfShape, Fill, Range, Expand, Tile, Pad, Constant) against naive references written here,
// on random inputs of several dtypes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "backends/cpu/eval.h"
#include "ir/graph.h"

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

std::mt19937_64& rng() {
  static std::mt19937_64 r(1234);
  return r;
}

int64_t rand_int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

// Random contents: floats are nonzero in [-2, -0.1] U [0.1, 2]; other dtypes random non-zero bytes.
HostTensor random_tensor(DataType dt, Dims shape) {
  HostTensor t(dt, shape);
  if (dt == DataType::kFLOAT) {
    std::uniform_real_distribution<float> u(0.1f, 2.f);
    float* p = t.mutable_data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(rng()) * (rand_int(0, 1) ? 1.f : -1.f);
  } else {
    auto* p = static_cast<uint8_t*>(t.mutable_raw());
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rand_int(1, 255));
  }
  return t;
}

HostTensor ints_tensor(const Ints& v, DataType dt = DataType::kINT64, Dims shape = {-2}) {
  if (shape == Dims{-2}) shape = {static_cast<int64_t>(v.size())};
  HostTensor t(dt, shape);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DataType::kINT64) t.mutable_data<int64_t>()[i] = v[i];
    else t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v[i]);
  }
  return t;
}

Ints strides_of(const Dims& d) {
  Ints s(d.size());
  int64_t acc = 1;
  for (size_t i = d.size(); i-- > 0;) {
    s[i] = acc;
    acc *= d[i];
  }
  return s;
}

Ints unravel(int64_t i, const Dims& d) {
  Ints idx(d.size());
  for (size_t k = d.size(); k-- > 0;) {
    idx[k] = i % d[k];
    i /= d[k];
  }
  return idx;
}

int64_t ravel(const Ints& idx, const Dims& d) {
  int64_t off = 0;
  for (size_t k = 0; k < d.size(); ++k) off = off * d[k] + idx[k];
  return off;
}

// Reference builder: out element i comes from in element src(out_idx) (or fill when src returns -1).
HostTensor ref_map(const HostTensor& in, Dims out_shape, const std::function<int64_t(const Ints&)>& src,
                   const void* fill = nullptr) {
  HostTensor out(in.dtype(), out_shape);
  size_t es = dtype_size(in.dtype());
  static const char kNoFill[16] = {};  // zeros for a caller that gave no fill value (the test then fails)
  const char* fill_bytes = fill ? static_cast<const char*>(fill) : kNoFill;
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t s = src(unravel(i, out_shape));
    auto* dst = static_cast<char*>(out.mutable_raw()) + i * es;
    if (s < 0 && !fill) ADD_FAILURE() << "an output with no source and no fill value";
    std::memcpy(dst, s < 0 ? fill_bytes : static_cast<const char*>(in.raw()) + s * es, es);
  }
  return out;
}

void expect_same(const HostTensor& got, const HostTensor& want, const std::string& what = "") {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(dims_str(got.shape()), dims_str(want.shape())) << what;
  size_t es = dtype_size(got.dtype());
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (std::memcmp(static_cast<const char*>(got.raw()) + i * es, static_cast<const char*>(want.raw()) + i * es, es)) {
      ADD_FAILURE() << what << ": element " << i << " (index " << dims_str(unravel(i, got.shape())) << ") differs";
      return;
    }
  }
}

struct OpRun {
  ir::Graph g;
  ir::Node* node = nullptr;
  OpRun(const std::string& op, const std::vector<const HostTensor*>& ins, int nout = 1) {
    std::vector<ir::Value*> vals;
    for (size_t i = 0; i < ins.size(); ++i)
      vals.push_back(ins[i] ? g.add_input("in" + std::to_string(i), ins[i]->dtype(), ins[i]->shape()) : nullptr);
    node = g.add_node(op, "node", vals, nout);
  }
  ir::Attrs& attrs() { return node->attrs; }
};

std::vector<HostTensor> eval(OpRun& r, const std::vector<const HostTensor*>& ins) { return cpu::eval_node(*r.node, ins); }

const DataType kDtypes[] = {DataType::kFLOAT, DataType::kINT8, DataType::kHALF, DataType::kINT64, DataType::kINT32,
                            DataType::kBOOL};

// Reference transpose: out dim j = in dim perm[j].
HostTensor ref_transpose(const HostTensor& x, const Ints& perm) {
  Dims out(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) out[j] = x.shape()[perm[j]];
  Ints xs = strides_of(x.shape());
  return ref_map(x, out, [&](const Ints& o) {
    int64_t s = 0;
    for (size_t j = 0; j < perm.size(); ++j) s += o[j] * xs[perm[j]];
    return s;
  });
}

// ------------------------------------------------------------------------------------------------------
TEST(DataMovementKernels, TransposeRandomShapesAndDtypes) {
  for (int iter = 0; iter < 120; ++iter) {
    int64_t r = rand_int(1, 5);
    Dims shape(r);
    for (auto& d : shape) d = rand_int(0, 5) == 0 ? 1 : rand_int(1, r <= 3 ? 40 : 9);
    Ints perm(r);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng());
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    OpRun run("Shuffle", {&x});
    run.attrs().set("first_transpose", perm);
    auto y = eval(run, {&x});
    expect_same(y[0], ref_transpose(x, perm), "shape " + dims_str(shape) + " perm " + dims_str(perm));
  }
}

TEST(DataMovementKernels, TransposeLargeMultithreaded) {
  struct Case { Dims shape; Ints perm; DataType dt; };
  std::vector<Case> cases = {
      {{257, 129}, {1, 0}, DataType::kFLOAT},
      {{8, 130, 67}, {0, 2, 1}, DataType::kFLOAT},
      {{3, 64, 56, 56}, {0, 2, 3, 1}, DataType::kFLOAT},   // NCHW -> NHWC
      {{3, 56, 56, 64}, {0, 3, 1, 2}, DataType::kHALF},    // NHWC -> NCHW
      {{16, 12, 128, 33}, {0, 2, 1, 3}, DataType::kFLOAT}, // heads swap, last dim kept (row copies)
      {{100, 300}, {1, 0}, DataType::kINT8},
      {{2, 300, 190}, {2, 1, 0}, DataType::kINT64},
  };
  for (auto& c : cases) {
    HostTensor x = random_tensor(c.dt, c.shape);
    OpRun run("Shuffle", {&x});
    run.attrs().set("first_transpose", c.perm);
    auto y = eval(run, {&x});
    expect_same(y[0], ref_transpose(x, c.perm), dims_str(c.shape) + " perm " + dims_str(c.perm));
  }
}

TEST(DataMovementKernels, ShuffleReshapePlaceholdersAndTransposes) {
  HostTensor x = random_tensor(DataType::kFLOAT, {2, 3, 4, 5});
  {
    OpRun run("Shuffle", {&x});
    run.attrs().set("reshape_dims", Ints{0, -1, 5});
    run.attrs().set("has_reshape", 1);
    auto y = eval(run, {&x});
    EXPECT_EQ(dims_str(y[0].shape()), "[2, 12, 5]");
    expect_same(y[0], x.reshaped({2, 12, 5}));
  }
  {  // first transpose, reshape with 0 placeholder (refers to the transposed dims), second transpose
    Ints p1{0, 2, 1, 3}, p2{2, 0, 1};
    OpRun run("Shuffle", {&x});
    run.attrs().set("first_transpose", p1);
    run.attrs().set("reshape_dims", Ints{0, 0, -1});
    run.attrs().set("has_reshape", 1);
    run.attrs().set("second_transpose", p2);
    auto y = eval(run, {&x});
    HostTensor want = ref_transpose(ref_transpose(x, p1).reshaped({2, 4, 15}), p2);
    expect_same(y[0], want);
  }
  {  // reshape dims from an input tensor (int32), zero_is_placeholder = 0 with a real 0-size dim
    HostTensor dims = ints_tensor({6, 20}, DataType::kINT32);
    OpRun run("Shuffle", {&x, &dims});
    auto y = eval(run, {&x, &dims});
    expect_same(y[0], x.reshaped({6, 20}));
    HostTensor e = random_tensor(DataType::kFLOAT, {0, 3});
    HostTensor d0 = ints_tensor({3, 0});
    OpRun run2("Shuffle", {&e, &d0});
    run2.attrs().set("zero_is_placeholder", 0);
    auto y2 = eval(run2, {&e, &d0});
    EXPECT_EQ(dims_str(y2[0].shape()), "[3, 0]");
  }
  {  // second transpose only, int64
    HostTensor xi = random_tensor(DataType::kINT64, {6, 10});
    OpRun run("Shuffle", {&xi});
    run.attrs().set("reshape_dims", Ints{3, 2, 10});
    run.attrs().set("has_reshape", 1);
    run.attrs().set("second_transpose", Ints{2, 0, 1});
    auto y = eval(run, {&xi});
    expect_same(y[0], ref_transpose(xi.reshaped({3, 2, 10}), {2, 0, 1}));
  }
  {  // volume mismatch fails with a message naming both shapes
    OpRun run("Shuffle", {&x});
    run.attrs().set("reshape_dims", Ints{7, -1});
    run.attrs().set("has_reshape", 1);
    try {
      eval(run, {&x});
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot reshape [2, 3, 4, 5] (120 elements) to [7, -1]"), std::string::npos)
          << e.what();
    }
  }
}

TEST(DataMovementKernels, SqueezeUnsqueeze) {
  HostTensor x = random_tensor(DataType::kHALF, {1, 3, 1, 4});
  OpRun sq("Squeeze", {&x});
  sq.attrs().set("axes", Ints{-2, 0});
  auto y = eval(sq, {&x});
  expect_same(y[0], x.reshaped({3, 4}));
  OpRun sq_all("Squeeze", {&x});
  expect_same(eval(sq_all, {&x})[0], x.reshaped({3, 4}));
  OpRun un("Unsqueeze", {&x});
  un.attrs().set("axes", Ints{-1, 1});
  auto z = eval(un, {&x});
  expect_same(z[0], x.reshaped({1, 1, 3, 1, 4, 1}));
}

TEST(DataMovementKernels, ConcatenationEveryAxis) {
  for (DataType dt : kDtypes) {
    for (int64_t axis = -3; axis < 3; ++axis) {
      int64_t a = axis < 0 ? axis + 3 : axis;
      std::vector<HostTensor> ins;
      Dims base{3, 4, 5};
      for (int k = 0; k < 3; ++k) {
        Dims s = base;
        s[a] = rand_int(0, 4);
        ins.push_back(random_tensor(dt, s));
      }
      std::vector<const HostTensor*> ptrs;
      for (auto& t : ins) ptrs.push_back(&t);
      OpRun run("Concatenation", ptrs);
      run.attrs().set("axis", axis);
      auto y = eval(run, ptrs);
      Dims out = base;
      out[a] = ins[0].shape()[a] + ins[1].shape()[a] + ins[2].shape()[a];
      // Reference: find the input along the axis.
      HostTensor want(dt, out);
      size_t es = dtype_size(dt);
      for (int64_t i = 0; i < want.numel(); ++i) {
        Ints o = unravel(i, out);
        int64_t c = o[a];
        size_t k = 0;
        while (c >= ins[k].shape()[a]) c -= ins[k++].shape()[a];
        o[a] = c;
        std::memcpy(static_cast<char*>(want.mutable_raw()) + i * es,
                    static_cast<const char*>(ins[k].raw()) + ravel(o, ins[k].shape()) * es, es);
      }
      expect_same(y[0], want, "axis " + std::to_string(axis));
    }
  }
}

TEST(DataMovementKernels, SplitModes) {
  HostTensor x = random_tensor(DataType::kFLOAT, {4, 7, 3});
  auto check = [&](const std::vector<HostTensor>& outs, int64_t a, const Ints& sizes) {
    ASSERT_EQ(outs.size(), sizes.size());
    int64_t start = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      Dims s = x.shape();
      s[a] = sizes[k];
      Ints xs = strides_of(x.shape());
      HostTensor want = ref_map(x, s, [&](const Ints& o) {
        Ints i = o;
        i[a] += start;
        return ravel(i, x.shape());
      });
      expect_same(outs[k], want, "chunk " + std::to_string(k));
      start += sizes[k];
    }
  };
  {  // equal split, last chunk smaller
    OpRun run("Split", {&x}, 3);
    run.attrs().set("axis", -2);
    check(eval(run, {&x}), 1, {3, 3, 1});
  }
  {
    OpRun run("Split", {&x}, 3);
    run.attrs().set("axis", 1);
    run.attrs().set("split", Ints{2, 0, 5});
    check(eval(run, {&x}), 1, {2, 0, 5});
  }
  {
    HostTensor sizes = ints_tensor({1, 3});
    OpRun run("Split", {&x, &sizes}, 2);
    run.attrs().set("axis", 0);
    check(eval(run, {&x, &sizes}), 0, {1, 3});
  }
}

// ------------------------------------------------------------------------------------------------------
int64_t ref_reflect(int64_t i, int64_t n) {
  // Walk: mirror about the edge elements until inside.
  if (n == 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i;
}

TEST(DataMovementKernels, SliceEveryMode) {
  for (int iter = 0; iter < 200; ++iter) {
    int64_t mode = iter % 5;
    int64_t r = rand_int(1, 4);
    Dims shape(r);
    for (auto& d : shape) d = rand_int(1, 7);
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    Ints start(r), size(r), stride(r);
    for (int64_t d = 0; d < r; ++d) {
      if (mode == 0) {  // in bounds
        stride[d] = rand_int(-2, 2);
        if (stride[d] == 0) stride[d] = 1;
        start[d] = rand_int(0, shape[d] - 1);
        int64_t room = stride[d] > 0 ? (shape[d] - 1 - start[d]) / stride[d] : start[d] / -stride[d];
        size[d] = rand_int(1, room + 1);
      } else {
        stride[d] = rand_int(-3, 3);
        start[d] = rand_int(-10, 10);
        size[d] = rand_int(0, 9);
      }
    }
    HostTensor fill = random_tensor(dt, {});
    bool via_inputs = iter % 2 == 1;
    HostTensor ts = ints_tensor(start), tz = ints_tensor(size, DataType::kINT32), tt = ints_tensor(stride);
    std::vector<const HostTensor*> ins{&x};
    if (via_inputs) ins = {&x, &ts, &tz, &tt};
    if (mode == 3) {
      if (!via_inputs) ins = {&x, nullptr, nullptr, nullptr};
      ins.push_back(&fill);
    }
    OpRun run("Slice", ins);
    run.attrs().set("mode", mode);
    if (!via_inputs) {
      run.attrs().set("start", start);
      run.attrs().set("size", size);
      run.attrs().set("stride", stride);
    }
    auto y = eval(run, ins);
    HostTensor want = ref_map(x, size, [&](const Ints& o) -> int64_t {
      Ints i(r);
      for (int64_t d = 0; d < r; ++d) {
        int64_t v = start[d] + o[d] * stride[d], n = shape[d];
        if (v < 0 || v >= n) {
          if (mode == 1) v = ((v % n) + n) % n;
          else if (mode == 2) v = std::min(std::max<int64_t>(v, 0), n - 1);
          else if (mode == 3) return -1;
          else if (mode == 4) v = ref_reflect(v, n);
        }
        i[d] = v;
      }
      return ravel(i, shape);
    }, fill.raw());
    expect_same(y[0], want, "mode " + std::to_string(mode) + " shape " + dims_str(shape) + " start " +
                                dims_str(start) + " size " + dims_str(size) + " stride " + dims_str(stride));
  }
  // Strict bounds violation is an error.
  HostTensor x = random_tensor(DataType::kFLOAT, {4});
  OpRun run("Slice", {&x});
  run.attrs().set("start", Ints{2});
  run.attrs().set("size", Ints{3});
  run.attrs().set("stride", Ints{1});
  EXPECT_THROW(eval(run, {&x}), Error);
}

// ONNX Slice reference: enumerate the indices by walking from the clamped start.
Ints ref_onnx_slice_indices(int64_t dim, int64_t s, int64_t e, int64_t st) {
  if (s < 0) s += dim;
  if (e < 0) e += dim;
  if (st > 0) {
    s = std::clamp<int64_t>(s, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
  } else {
    s = std::clamp<int64_t>(s, 0, dim - 1);
    e = std::clamp<int64_t>(e, -1, dim - 1);
  }
  Ints v;
  for (int64_t i = s; st > 0 ? i < e : i > e; i += st) v.push_back(i);
  return v;
}

TEST(DataMovementKernels, DynamicSliceEmptyAxis) {
  HostTensor x = random_tensor(DataType::kFLOAT, {0, 4});
  HostTensor st = ints_tensor({-1, 3}), en = ints_tensor({-100, 0}), sp = ints_tensor({-1, -2});
  OpRun run("DynamicSlice", {&x, &st, &en, nullptr, &sp});
  auto y = eval(run, {&x, &st, &en, nullptr, &sp});
  EXPECT_EQ(dims_str(y[0].shape()), "[0, 2]");
}

TEST(DataMovementKernels, DynamicSliceClampingAndNegativeSteps) {
  const int64_t big = std::numeric_limits<int64_t>::max(), small = std::numeric_limits<int64_t>::min();
  for (int iter = 0; iter < 200; ++iter) {
    int64_t r = rand_int(1, 4);
    Dims shape(r);
    for (auto& d : shape) d = rand_int(1, 8);
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    // A random subset of axes in random order, given as negative or positive numbers.
    Ints all(r);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng());
    int64_t n = rand_int(1, r);
    Ints axes(all.begin(), all.begin() + n), starts(n), ends(n), steps(n);
    std::vector<Ints> picks(r);
    for (int64_t d = 0; d < r; ++d) {
      picks[d].resize(shape[d]);
      std::iota(picks[d].begin(), picks[d].end(), 0);
    }
    for (int64_t i = 0; i < n; ++i) {
      int64_t dim = shape[axes[i]];
      auto pick = [&]() {
        int64_t c = rand_int(0, 9);
        return c == 0 ? big : c == 1 ? small : rand_int(-dim - 3, dim + 3);
      };
      starts[i] = pick();
      ends[i] = pick();
      steps[i] = rand_int(-3, 3);
      if (steps[i] == 0) steps[i] = -1;
      picks[axes[i]] = ref_onnx_slice_indices(dim, starts[i], ends[i], steps[i]);
      if (rand_int(0, 1)) axes[i] -= r;
    }
    HostTensor ts = ints_tensor(starts), te = ints_tensor(ends), ta = ints_tensor(axes, DataType::kINT32),
               tp = ints_tensor(steps);
    bool with_axes = n < r || rand_int(0, 1);
    std::vector<const HostTensor*> ins{&x, &ts, &te, &ta, &tp};
    if (!with_axes) {  // axes omitted means 0..n-1: use the identity order
      ins[3] = nullptr;
      // Recompute picks for axes 0..n-1 in order.
      for (int64_t d = 0; d < r; ++d) {
        picks[d].resize(shape[d]);
        std::iota(picks[d].begin(), picks[d].end(), 0);
      }
      for (int64_t i = 0; i < n; ++i) picks[i] = ref_onnx_slice_indices(shape[i], starts[i], ends[i], steps[i]);
    }
    OpRun run("DynamicSlice", ins);
    auto y = eval(run, ins);
    Dims out(r);
    for (int64_t d = 0; d < r; ++d) out[d] = static_cast<int64_t>(picks[d].size());
    HostTensor want = ref_map(x, out, [&](const Ints& o) {
      Ints i(r);
      for (int64_t d = 0; d < r; ++d) i[d] = picks[d][o[d]];
      return ravel(i, shape);
    });
    expect_same(y[0], want, "shape " + dims_str(shape) + " starts " + dims_str(starts) + " ends " + dims_str(ends) +
                                " axes " + dims_str(axes) + " steps " + dims_str(steps));
  }
}

// ------------------------------------------------------------------------------------------------------
TEST(DataMovementKernels, GatherDefaultNegativeIndices) {
  for (int iter = 0; iter < 60; ++iter) {
    int64_t r = rand_int(1, 4);
    Dims shape(r);
    for (auto& d : shape) d = rand_int(1, 6);
    int64_t axis = rand_int(-r, r - 1), a = axis < 0 ? axis + r : axis;
    Dims ishape(rand_int(0, 2));
    for (auto& d : ishape) d = rand_int(1, 4);
    Ints idx(static_cast<size_t>(volume(ishape)));
    for (auto& v : idx) v = rand_int(-shape[a], shape[a] - 1);
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    HostTensor ti = ints_tensor(idx, iter % 2 ? DataType::kINT32 : DataType::kINT64, ishape);
    OpRun run("Gather", {&x, &ti});
    run.attrs().set("axis", axis);
    auto y = eval(run, {&x, &ti});
    Dims out(shape.begin(), shape.begin() + a);
    out.insert(out.end(), ishape.begin(), ishape.end());
    out.insert(out.end(), shape.begin() + a + 1, shape.end());
    int64_t q = static_cast<int64_t>(ishape.size());
    HostTensor want = ref_map(x, out, [&](const Ints& o) {
      Ints ii(o.begin() + a, o.begin() + a + q);
      int64_t v = idx[ravel(ii, ishape)];
      if (v < 0) v += shape[a];
      Ints i(o.begin(), o.begin() + a);
      i.push_back(v);
      i.insert(i.end(), o.begin() + a + q, o.end());
      return ravel(i, shape);
    });
    expect_same(y[0], want, "shape " + dims_str(shape) + " axis " + std::to_string(axis) + " indices " + dims_str(ishape));
  }
  HostTensor x = random_tensor(DataType::kFLOAT, {3, 4});
  HostTensor bad = ints_tensor({0, 4});
  OpRun run("Gather", {&x, &bad});
  run.attrs().set("axis", 1);
  try {
    eval(run, {&x, &bad});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index 4 is out of range"), std::string::npos) << e.what();
  }
}

TEST(DataMovementKernels, GatherElements) {
  for (int iter = 0; iter < 40; ++iter) {
    int64_t r = rand_int(1, 4);
    Dims shape(r), ishape(r);
    for (int64_t d = 0; d < r; ++d) {
      shape[d] = rand_int(1, 6);
      ishape[d] = rand_int(1, shape[d]);
    }
    int64_t axis = rand_int(-r, r - 1), a = axis < 0 ? axis + r : axis;
    ishape[a] = rand_int(1, 7);
    Ints idx(static_cast<size_t>(volume(ishape)));
    for (auto& v : idx) v = rand_int(-shape[a], shape[a] - 1);
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    HostTensor ti = ints_tensor(idx, iter % 2 ? DataType::kINT32 : DataType::kINT64, ishape);
    OpRun run("Gather", {&x, &ti});
    run.attrs().set("axis", axis);
    run.attrs().set("mode", 1);
    auto y = eval(run, {&x, &ti});
    HostTensor want = ref_map(x, ishape, [&](const Ints& o) {
      Ints i = o;
      int64_t v = idx[ravel(o, ishape)];
      i[a] = v < 0 ? v + shape[a] : v;
      return ravel(i, shape);
    });
    expect_same(y[0], want, "shape " + dims_str(shape) + " axis " + std::to_string(axis));
  }
}

TEST(DataMovementKernels, GatherND) {
  for (int iter = 0; iter < 40; ++iter) {
    int64_t r = rand_int(1, 4);
    Dims shape(r);
    for (auto& d : shape) d = rand_int(1, 5);
    int64_t b = rand_int(0, r - 1);
    int64_t k = rand_int(1, r - b);
    Dims ishape(shape.begin(), shape.begin() + b);
    int64_t extra = rand_int(0, 2);
    for (int64_t e = 0; e < extra; ++e) ishape.push_back(rand_int(1, 3));
    ishape.push_back(k);
    Ints idx(static_cast<size_t>(volume(ishape)));
    for (size_t i = 0; i < idx.size(); ++i) {
      int64_t dim = shape[b + static_cast<int64_t>(i) % k];
      idx[i] = rand_int(-dim, dim - 1);
    }
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    HostTensor ti = ints_tensor(idx, DataType::kINT64, ishape);
    OpRun run("Gather", {&x, &ti});
    run.attrs().set("mode", 2);
    run.attrs().set("num_elementwise_dims", b);
    auto y = eval(run, {&x, &ti});
    Dims out(ishape.begin(), ishape.end() - 1);
    out.insert(out.end(), shape.begin() + b + k, shape.end());
    int64_t qm1 = static_cast<int64_t>(ishape.size()) - 1;
    HostTensor want = ref_map(x, out, [&](const Ints& o) {
      Ints i(o.begin(), o.begin() + b);
      Ints io(o.begin(), o.begin() + qm1);
      io.push_back(0);
      for (int64_t j = 0; j < k; ++j) {
        io[qm1] = j;
        int64_t v = idx[ravel(io, ishape)];
        i.push_back(v < 0 ? v + shape[b + j] : v);
      }
      i.insert(i.end(), o.begin() + qm1, o.end());
      return ravel(i, shape);
    });
    expect_same(y[0], want, "shape " + dims_str(shape) + " b " + std::to_string(b) + " indices " + dims_str(ishape));
  }
}

// ------------------------------------------------------------------------------------------------------
TEST(DataMovementKernels, ShapeConstantOfShapeConstant) {
  HostTensor x = random_tensor(DataType::kHALF, {2, 0, 5});
  OpRun s("Shape", {&x});
  auto y = eval(s, {&x});
  EXPECT_EQ(y[0].dtype(), DataType::kINT64);
  EXPECT_EQ(y[0].to_i64(), (Ints{2, 0, 5}));
  OpRun s2("Shape", {&x});
  s2.attrs().set("start", -2);
  EXPECT_EQ(eval(s2, {&x})[0].to_i64(), (Ints{0, 5}));

  HostTensor shape = ints_tensor({3, 2});
  OpRun c("ConstantOfShape", {&shape});
  int32_t v = -17;
  c.attrs().set("value", HostTensor::copy_of(DataType::kINT32, {1}, &v));
  auto z = eval(c, {&shape});
  ASSERT_EQ(z[0].dtype(), DataType::kINT32);
  ASSERT_EQ(dims_str(z[0].shape()), "[3, 2]");
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(z[0].data<int32_t>()[i], -17);
  OpRun c0("ConstantOfShape", {&shape});
  auto z0 = eval(c0, {&shape});
  EXPECT_EQ(z0[0].dtype(), DataType::kFLOAT);

  ir::Graph g;
  HostTensor val = random_tensor(DataType::kINT64, {4, 3});
  ir::Node* n = g.add_constant("k", val);
  expect_same(cpu::eval_node(*n, {})[0], val);
}

TEST(DataMovementKernels, FillLinspaceAndRandom) {
  OpRun f("Fill", {});
  f.attrs().set("op", 0);
  f.attrs().set("shape", Ints{3, 4});
  f.attrs().set("alpha", 1.5);
  f.attrs().set("beta", std::vector<double>{10.0, -0.25});
  auto y = eval(f, {});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y[0].data<float>()[i * 4 + j], 1.5f + 10.f * i - 0.25f * j);
  // int32 with the shape, alpha and beta given as inputs.
  HostTensor shape = ints_tensor({5}), alpha = HostTensor::scalar_i64(7), beta = ints_tensor({-3});
  OpRun fi("Fill", {&shape, &alpha, &beta});
  fi.attrs().set("dtype", static_cast<int64_t>(DataType::kINT32));
  auto yi = eval(fi, {&shape, &alpha, &beta});
  ASSERT_EQ(yi[0].dtype(), DataType::kINT32);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(yi[0].data<int32_t>()[i], 7 - 3 * i);
  OpRun fr("Fill", {});
  fr.attrs().set("op", 1);
  fr.attrs().set("shape", Ints{1000});
  fr.attrs().set("alpha", 2.0);
  fr.attrs().set("beta", 3.0);
  auto yr = eval(fr, {});
  double mean = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    float v = yr[0].data<float>()[i];
    EXPECT_GE(v, 2.f);
    EXPECT_LE(v, 3.f);
    mean += v / 1000;
  }
  EXPECT_NEAR(mean, 2.5, 0.05);
}

TEST(DataMovementKernels, Range) {
  auto run_f = [](float s, float l, float d) {
    HostTensor a = HostTensor::from_f32({s}, {}), b = HostTensor::from_f32({l}, {}), c = HostTensor::from_f32({d}, {});
    OpRun r("Range", {&a, &b, &c});
    return eval(r, {&a, &b, &c})[0];
  };
  HostTensor y = run_f(1.f, 2.2f, 0.3f);  // length ceil((limit - start) / delta), computed in double
  ASSERT_EQ(y.numel(), static_cast<int64_t>(std::ceil((double(2.2f) - double(1.f)) / double(0.3f))));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], 1.f + i * 0.3f);
  EXPECT_EQ(run_f(5.f, 1.f, 1.f).numel(), 0);
  HostTensor a = HostTensor::scalar_i64(10), b = HostTensor::scalar_i64(-3), c = HostTensor::scalar_i64(-4);
  OpRun r("Range", {&a, &b, &c});
  EXPECT_EQ(eval(r, {&a, &b, &c})[0].to_i64(), (Ints{10, 6, 2, -2}));
}

TEST(DataMovementKernels, ExpandAndTile) {
  for (int iter = 0; iter < 40; ++iter) {
    int64_t r = rand_int(1, 4);
    Dims shape(r), target;
    for (auto& d : shape) d = rand_int(0, 2) == 0 ? 1 : rand_int(2, 5);
    int64_t extra = rand_int(0, 2);
    for (int64_t e = 0; e < extra; ++e) target.push_back(rand_int(1, 3));
    for (int64_t d : shape) target.push_back(d == 1 ? rand_int(1, 4) : (rand_int(0, 2) == 0 ? 1 : d));
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    HostTensor ts = ints_tensor(target);
    OpRun run("Expand", {&x, &ts});
    auto y = eval(run, {&x, &ts});
    Dims out(target.size());
    for (size_t d = 0; d < out.size(); ++d) {
      int64_t xd = static_cast<int64_t>(d) - extra;
      out[d] = xd < 0 ? target[d] : std::max(shape[xd], target[d]);
    }
    HostTensor want = ref_map(x, out, [&](const Ints& o) {
      Ints i(r);
      for (int64_t d = 0; d < r; ++d) i[d] = shape[d] == 1 ? 0 : o[d + extra];
      return ravel(i, shape);
    });
    expect_same(y[0], want, "expand " + dims_str(shape) + " to " + dims_str(target));

    Ints reps(r);
    for (auto& v : reps) v = rand_int(0, 3);
    HostTensor tr = ints_tensor(reps);
    OpRun tile("Tile", {&x, &tr});
    auto t = eval(tile, {&x, &tr});
    Dims tout(r);
    for (int64_t d = 0; d < r; ++d) tout[d] = shape[d] * reps[d];
    HostTensor twant = ref_map(x, tout, [&](const Ints& o) {
      Ints i(r);
      for (int64_t d = 0; d < r; ++d) i[d] = o[d] % shape[d];
      return ravel(i, shape);
    });
    expect_same(t[0], twant, "tile " + dims_str(shape) + " by " + dims_str(reps));
  }
}

TEST(DataMovementKernels, PadEveryMode) {
  const char* modes[] = {"constant", "reflect", "edge", "wrap"};
  for (int iter = 0; iter < 120; ++iter) {
    std::string mode = modes[iter % 4];
    int64_t r = rand_int(1, 4);
    Dims shape(r);
    for (auto& d : shape) d = rand_int(2, 6);
    Ints pads(2 * r);
    for (int64_t d = 0; d < r; ++d) {
      int64_t lim = mode == "reflect" ? shape[d] - 1 : shape[d] + 2;
      pads[d] = rand_int(-1, lim);
      pads[d + r] = rand_int(-1, lim);
    }
    DataType dt = kDtypes[iter % 6];
    HostTensor x = random_tensor(dt, shape);
    HostTensor tp = ints_tensor(pads);
    HostTensor cv = random_tensor(dt, {});
    bool inputs = iter % 2;
    std::vector<const HostTensor*> ins{&x};
    if (inputs) ins = {&x, &tp, &cv};
    OpRun run("Pad", ins);
    run.attrs().set("mode", mode);
    if (!inputs) {
      run.attrs().set("pads", pads);
      run.attrs().set("value", 0.0);
    }
    auto y = eval(run, ins);
    Dims out(r);
    for (int64_t d = 0; d < r; ++d) out[d] = shape[d] + pads[d] + pads[d + r];
    HostTensor zero(dt, {});
    HostTensor want = ref_map(x, out, [&](const Ints& o) -> int64_t {
      Ints i(r);
      for (int64_t d = 0; d < r; ++d) {
        int64_t v = o[d] - pads[d], n = shape[d];
        if (v < 0 || v >= n) {
          if (mode == "constant") return -1;
          if (mode == "reflect") v = ref_reflect(v, n);
          if (mode == "edge") v = std::min(std::max<int64_t>(v, 0), n - 1);
          if (mode == "wrap") v = ((v % n) + n) % n;
        }
        i[d] = v;
      }
      return ravel(i, shape);
    }, inputs ? cv.raw() : zero.raw());
    expect_same(y[0], want, mode + " " + dims_str(shape) + " pads " + dims_str(pads));
  }
  // A float constant from the attribute.
  HostTensor x = random_tensor(DataType::kFLOAT, {2, 2});
  OpRun run("Pad", {&x});
  run.attrs().set("pads", Ints{0, 1, 0, 0});
  run.attrs().set("value", 2.5);
  auto y = eval(run, {&x});
  EXPECT_EQ(y[0].data<float>()[0], 2.5f);
  EXPECT_EQ(y[0].data<float>()[1], x.data<float>()[0]);
}

}  // namespace
}  // namespace kiln
