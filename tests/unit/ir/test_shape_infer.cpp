// Shape/type inference of the data-movement, shape and convolution/pooling ops: exact shapes when values
// are known, -1 propagation when they are not, and error messages that say what was expected.
#include <gtest/gtest.h>

#include "ir/op_registry.h"

namespace kiln {
namespace {

using ir::TensorInfo;
using Ints = std::vector<int64_t>;

TensorInfo T(DataType dt, Dims shape, const HostTensor* value = nullptr) {
  TensorInfo t;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.value = value;
  return t;
}
TensorInfo F(Dims shape) { return T(DataType::kFLOAT, std::move(shape)); }
TensorInfo I64(const HostTensor& v) { return T(DataType::kINT64, v.shape(), &v); }
TensorInfo I64_unknown(int64_t len) { return T(DataType::kINT64, {len}); }
TensorInfo Absent() {
  TensorInfo t;
  t.present = false;
  return t;
}

struct Infer {
  ir::Graph g;
  ir::Node* n;
  explicit Infer(const std::string& op, int num_outputs = 1) {
    n = g.add_node(op, "layer1", {}, num_outputs);
  }
  ir::Attrs& attrs() { return n->attrs; }
  std::vector<TensorInfo> run(std::vector<TensorInfo> ins) {
    n->inputs.assign(ins.size(), nullptr);
    return ir::infer_node(*n, std::move(ins));
  }
  std::string shape(std::vector<TensorInfo> ins, size_t i = 0) { return dims_str(run(std::move(ins)).at(i).shape); }
  std::string error(std::vector<TensorInfo> ins) {
    try {
      run(std::move(ins));
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
};

#define EXPECT_CONTAINS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << haystack

TEST(ShapeInfer, Constant) {
  Infer c("Constant");
  HostTensor v = HostTensor::from_i64({1, 2, 3});
  c.attrs().set("value", v);
  auto o = c.run({});
  EXPECT_EQ(o[0].dtype, DataType::kINT64);
  EXPECT_EQ(dims_str(o[0].shape), "[3]");
  EXPECT_CONTAINS(Infer("Constant").error({}), "'value'");
}

TEST(ShapeInfer, ShuffleReshape) {
  Infer s("Shuffle");
  s.attrs().set("reshape_dims", Ints{0, -1});
  s.attrs().set("has_reshape", 1);
  EXPECT_EQ(s.shape({F({-1, 3, 4})}), "[-1, 12]");   // placeholder cancels the unknown dim
  EXPECT_EQ(s.shape({F({2, -1, 4})}), "[2, -1]");
  EXPECT_EQ(s.shape({F({2, 3, 4})}), "[2, 12]");

  Infer bad("Shuffle");
  bad.attrs().set("reshape_dims", Ints{4, -1});
  bad.attrs().set("has_reshape", 1);
  EXPECT_CONTAINS(bad.error({F({2, 3})}), "layer 'layer1' (Shuffle): cannot reshape [2, 3] (6 elements) to [4, -1]");
  Infer bad2("Shuffle");
  bad2.attrs().set("reshape_dims", Ints{4, 2});
  bad2.attrs().set("has_reshape", 1);
  EXPECT_CONTAINS(bad2.error({F({2, 3})}), "cannot reshape [2, 3] (6 elements) to [4, 2]");
  // A placeholder copying a zero dim: both sides hold zero elements, so the other dims are free, and a -1
  // beside it is ambiguous.
  Infer empty("Shuffle");
  empty.attrs().set("reshape_dims", Ints{5, 0});
  empty.attrs().set("has_reshape", 1);
  EXPECT_EQ(empty.shape({F({3, 0})}), "[5, 0]");
  Infer empty_infer("Shuffle");
  empty_infer.attrs().set("reshape_dims", Ints{-1, 0});
  empty_infer.attrs().set("has_reshape", 1);
  EXPECT_CONTAINS(empty_infer.error({F({3, 0})}), "ambiguous");
  Infer two("Shuffle");
  two.attrs().set("reshape_dims", Ints{-1, -1});
  two.attrs().set("has_reshape", 1);
  EXPECT_CONTAINS(two.error({F({2, 3})}), "more than one -1");

  // Reshape dims as an input: known value, unknown value (rank from its length).
  HostTensor dims = HostTensor::from_i64({3, 0, -1});
  Infer d("Shuffle");
  EXPECT_EQ(d.shape({F({2, 5, 6}), I64(dims)}), "[3, 5, 4]");
  EXPECT_EQ(d.shape({F({2, 5, 6}), I64_unknown(3)}), "[-1, -1, -1]");
  EXPECT_CONTAINS(d.error({F({2, 5, 6}), I64_unknown(-1)}), "must have a known length");
  // A literal 0 without placeholders.
  Infer z("Shuffle");
  z.attrs().set("reshape_dims", Ints{0, 4});
  z.attrs().set("has_reshape", 1);
  z.attrs().set("zero_is_placeholder", 0);
  EXPECT_EQ(z.shape({F({0, 3})}), "[0, 4]");
}

TEST(ShapeInfer, ShuffleTransposes) {
  Infer s("Shuffle");
  s.attrs().set("first_transpose", Ints{0, 2, 3, 1});
  EXPECT_EQ(s.shape({F({-1, 3, 8, 9})}), "[-1, 8, 9, 3]");
  s.attrs().set("reshape_dims", Ints{0, -1, 3});
  s.attrs().set("has_reshape", 1);
  s.attrs().set("second_transpose", Ints{2, 0, 1});
  EXPECT_EQ(s.shape({F({2, 3, 8, 9})}), "[3, 2, 72]");
  Infer bad("Shuffle");
  bad.attrs().set("first_transpose", Ints{0, 0, 1});
  EXPECT_CONTAINS(bad.error({F({1, 2, 3})}), "not a permutation");
  Infer rank("Shuffle");
  rank.attrs().set("first_transpose", Ints{1, 0});
  EXPECT_CONTAINS(rank.error({F({1, 2, 3})}), "has rank 3");
}

TEST(ShapeInfer, SqueezeUnsqueeze) {
  Infer s("Squeeze");
  s.attrs().set("axes", Ints{-1, 1});
  EXPECT_EQ(s.shape({F({-1, 1, 5, -1})}), "[-1, 5]");
  EXPECT_CONTAINS(s.error({F({2, 3, 1})}), "cannot squeeze axis 1 of size 3 in [2, 3, 1]");
  Infer all("Squeeze");
  EXPECT_EQ(all.shape({F({1, 3, 1})}), "[3]");
  EXPECT_CONTAINS(all.error({F({1, -1})}), "needs known dims");
  Infer u("Unsqueeze");
  u.attrs().set("axes", Ints{0, -1});
  EXPECT_EQ(u.shape({F({-1, 4})}), "[1, -1, 4, 1]");
  u.attrs().set("axes", Ints{0, 0});
  EXPECT_CONTAINS(u.error({F({4})}), "appears twice");
  u.attrs().set("axes", Ints{4});
  EXPECT_CONTAINS(u.error({F({4})}), "axis 4 is out of range for a 2-D tensor");
}

TEST(ShapeInfer, Concatenation) {
  Infer c("Concatenation");
  c.attrs().set("axis", -1);
  EXPECT_EQ(c.shape({F({2, 3}), F({2, 5}), F({-1, 1})}), "[2, 9]");
  EXPECT_EQ(c.shape({F({-1, 3}), F({2, -1})}), "[2, -1]");
  EXPECT_CONTAINS(c.error({F({2, 3}), F({4, 5})}), "input 1 has shape [4, 5], which does not match input 0 [2, 3]");
  EXPECT_CONTAINS(c.error({F({2, 3}), T(DataType::kINT32, {2, 3})}), "input 1 has dtype int32");
  EXPECT_CONTAINS(c.error({F({2, 3}), F({2})}), "expected rank 2");
}

TEST(ShapeInfer, Split) {
  Infer s("Split", 3);
  s.attrs().set("axis", 1);
  auto o = s.run({F({2, 7})});
  EXPECT_EQ(dims_str(o[0].shape), "[2, 3]");
  EXPECT_EQ(dims_str(o[2].shape), "[2, 1]");
  EXPECT_EQ(s.shape({F({2, -1})}, 1), "[2, -1]");
  EXPECT_EQ(s.shape({F({2, 9}), I64_unknown(3)}, 2), "[2, -1]");
  HostTensor sizes = HostTensor::from_i64({1, 2, 3});
  EXPECT_EQ(s.shape({F({2, 6}), I64(sizes)}, 2), "[2, 3]");
  EXPECT_CONTAINS(s.error({F({2, 7}), I64(sizes)}), "split sizes [1, 2, 3] add up to 6, but axis 1 of [2, 7] has size 7");
  HostTensor two = HostTensor::from_i64({1, 2});
  EXPECT_CONTAINS(s.error({F({2, 3}), I64(two)}), "has 2 values [1, 2], expected 3");
}

TEST(ShapeInfer, Slice) {
  Infer s("Slice");
  s.attrs().set("start", Ints{0, 1});
  s.attrs().set("size", Ints{2, 2});
  s.attrs().set("stride", Ints{1, 2});
  EXPECT_EQ(s.shape({F({-1, 5})}), "[2, 2]");
  EXPECT_CONTAINS(s.error({F({4, 3})}), "reads index 3 on axis 1, outside [0, 3) (mode STRICT_BOUNDS)");
  s.attrs().set("mode", 2);
  EXPECT_EQ(s.shape({F({4, 4})}), "[2, 2]");
  Infer d("Slice");
  EXPECT_EQ(d.shape({F({4, 4}), Absent(), I64_unknown(2)}), "[-1, -1]");
  EXPECT_CONTAINS(d.error({F({4, 4})}), "needs the 'size' attribute");
  s.attrs().set("size", Ints{2});
  EXPECT_CONTAINS(s.error({F({4, 4})}), "the slice size has 1 values [2], expected 2");
}

TEST(ShapeInfer, DynamicSlice) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  Infer s("DynamicSlice");
  HostTensor st = HostTensor::from_i64({1, -1}), en = HostTensor::from_i64({big, -big}), ax = HostTensor::from_i64({0, -1}),
             sp = HostTensor::from_i64({2, -2});
  EXPECT_EQ(s.shape({F({9, 3, 7}), I64(st), I64(en), I64(ax), I64(sp)}), "[4, 3, 4]");
  EXPECT_EQ(s.shape({F({-1, 3, 7}), I64(st), I64(en), I64(ax), I64(sp)}), "[-1, 3, 4]");
  HostTensor back = HostTensor::from_i64({-1, -2}), neg = HostTensor::from_i64({-1, -1});
  EXPECT_EQ(s.shape({F({0, 3, 7}), I64(st), I64(en), I64(ax), I64(neg)}), "[0, 3, 7]");  // empty axis, negative step
  EXPECT_EQ(s.shape({F({0, 3, 7}), I64(back), I64(en), I64(ax), I64(sp)}), "[0, 3, 3]");
  EXPECT_EQ(s.shape({F({9, 3, 7}), I64_unknown(2), I64(en), I64(ax), I64(sp)}), "[-1, 3, -1]");
  EXPECT_EQ(s.shape({F({9, 3, 7}), I64(st), I64(en), I64_unknown(2), I64(sp)}), "[-1, -1, -1]");
  EXPECT_EQ(s.shape({F({9, 3, 7}), I64(st), I64(en)}), "[8, 0, 7]");  // axes 0, 1; steps 1
  HostTensor zero = HostTensor::from_i64({1, 0});
  EXPECT_CONTAINS(s.error({F({9, 3, 7}), I64(st), I64(en), I64(ax), I64(zero)}), "slice step on axis -1 is 0");
  HostTensor dup = HostTensor::from_i64({0, -3});
  EXPECT_CONTAINS(s.error({F({9, 3, 7}), I64(st), I64(en), I64(dup), I64(sp)}), "appears twice");
}

TEST(ShapeInfer, Gather) {
  Infer g("Gather");
  g.attrs().set("axis", -2);
  EXPECT_EQ(g.shape({F({5, 6, 7}), T(DataType::kINT32, {2, -1})}), "[5, 2, -1, 7]");
  EXPECT_EQ(g.shape({F({5, 6, 7}), T(DataType::kINT64, {})}), "[5, 7]");
  EXPECT_CONTAINS(g.error({F({5, 6, 7}), F({2})}), "indices (input 1) must be int32 or int64, got float32");
  g.attrs().set("num_elementwise_dims", 1);
  EXPECT_CONTAINS(g.error({F({5, 6, 7}), T(DataType::kINT64, {2})}), "only supported in ND mode");
  Infer e("Gather");
  e.attrs().set("mode", 1);
  e.attrs().set("axis", 1);
  EXPECT_EQ(e.shape({F({5, 6}), T(DataType::kINT64, {5, 9})}), "[5, 9]");
  EXPECT_CONTAINS(e.error({F({5, 6}), T(DataType::kINT64, {9})}), "ELEMENT mode needs indices of the data's rank");
  Infer nd("Gather");
  nd.attrs().set("mode", 2);
  nd.attrs().set("num_elementwise_dims", 1);
  EXPECT_EQ(nd.shape({F({-1, 4, 5, 6}), T(DataType::kINT64, {3, 7, 2})}), "[3, 7, 6]");
  EXPECT_CONTAINS(nd.error({F({2, 4, 5}), T(DataType::kINT64, {2, 7, 3})}), "exceed the data rank 3");
  EXPECT_CONTAINS(nd.error({F({2, 4, 5}), T(DataType::kINT64, {2, -1})}), "last dim of the indices known");
  EXPECT_CONTAINS(Infer("Gather").error({F({2})}), "takes 2 to 3 inputs, got 1");  // input 2: the fused addend
}

TEST(ShapeInfer, ShapeAndConstantOfShapeAndFill) {
  auto o = Infer("Shape").run({F({-1, 3, -1})});
  EXPECT_EQ(o[0].dtype, DataType::kINT64);
  EXPECT_EQ(dims_str(o[0].shape), "[3]");
  Infer c("ConstantOfShape");
  HostTensor dims = HostTensor::from_i64({2, 3});
  EXPECT_EQ(c.shape({I64(dims)}), "[2, 3]");
  EXPECT_EQ(c.shape({I64_unknown(4)}), "[-1, -1, -1, -1]");
  int32_t one = 1;
  c.attrs().set("value", HostTensor::copy_of(DataType::kINT32, {1}, &one));
  EXPECT_EQ(c.run({I64(dims)})[0].dtype, DataType::kINT32);
  HostTensor neg = HostTensor::from_i64({2, -3});
  EXPECT_CONTAINS(c.error({I64(neg)}), "negative dim");
  Infer f("Fill");
  f.attrs().set("shape", Ints{4, 5});
  f.attrs().set("dtype", static_cast<int64_t>(DataType::kINT32));
  auto fo = f.run({});
  EXPECT_EQ(fo[0].dtype, DataType::kINT32);
  EXPECT_EQ(dims_str(fo[0].shape), "[4, 5]");
  EXPECT_EQ(Infer("Fill").shape({I64_unknown(2)}), "[-1, -1]");
  Infer fr("Fill");
  fr.attrs().set("op", 1);
  fr.attrs().set("dtype", static_cast<int64_t>(DataType::kINT32));
  EXPECT_CONTAINS(fr.error({}), "random fill needs a float dtype");
}

TEST(ShapeInfer, Range) {
  Infer r("Range");
  HostTensor a = HostTensor::scalar_i64(2), b = HostTensor::scalar_i64(11), c = HostTensor::scalar_i64(3);
  EXPECT_EQ(r.shape({I64(a), I64(b), I64(c)}), "[3]");
  EXPECT_EQ(r.shape({I64(b), I64(a), I64(c)}), "[0]");
  HostTensor m3 = HostTensor::scalar_i64(-3);
  EXPECT_EQ(r.shape({I64(b), I64(a), I64(m3)}), "[3]");
  EXPECT_EQ(r.shape({T(DataType::kINT64, {}), I64(b), I64(c)}), "[-1]");
  HostTensor fs = HostTensor::from_f32({0.f}, {}), fl = HostTensor::from_f32({1.f}, {}), fd = HostTensor::from_f32({0.25f}, {});
  EXPECT_EQ(r.shape({T(DataType::kFLOAT, {}, &fs), T(DataType::kFLOAT, {}, &fl), T(DataType::kFLOAT, {}, &fd)}), "[4]");
  HostTensor z = HostTensor::scalar_i64(0);
  EXPECT_CONTAINS(r.error({I64(a), I64(b), I64(z)}), "delta is 0");
  EXPECT_CONTAINS(r.error({I64(a), T(DataType::kINT32, {}), I64(c)}), "input 1 has dtype int32, input 0 has int64");
}

TEST(ShapeInfer, ExpandTilePad) {
  Infer e("Expand");
  HostTensor s = HostTensor::from_i64({2, 1, 4});
  EXPECT_EQ(e.shape({F({3, 1}), I64(s)}), "[2, 3, 4]");
  EXPECT_EQ(e.shape({F({3, 1}), I64_unknown(3)}), "[-1, 3, -1]");
  HostTensor bad = HostTensor::from_i64({2, 5});
  EXPECT_CONTAINS(e.error({F({3, 1}), I64(bad)}), "cannot broadcast shapes [3, 1] and [2, 5]");

  Infer t("Tile");
  HostTensor reps = HostTensor::from_i64({2, 0, 3});
  EXPECT_EQ(t.shape({F({-1, 4, 5}), I64(reps)}), "[-1, 0, 15]");
  EXPECT_EQ(t.shape({F({2, 4, 5}), I64_unknown(3)}), "[-1, -1, -1]");
  EXPECT_CONTAINS(t.error({F({2, 4}), I64(reps)}), "the repeats has 3 values [2, 0, 3], expected 2");

  Infer p("Pad");
  p.attrs().set("pads", Ints{1, 0, 2, -1});
  EXPECT_EQ(p.shape({F({3, -1})}), "[6, -1]");
  HostTensor pads = HostTensor::from_i64({0, -3, 0, -1});
  EXPECT_CONTAINS(p.error({F({3, 3}), I64(pads)}), "padding axis 1 of size 3 by [-3, -1] gives a negative size");
  EXPECT_EQ(p.shape({F({3, 3}), I64_unknown(4)}), "[-1, -1]");
  p.attrs().set("mode", "mirror");
  EXPECT_CONTAINS(p.error({F({3, 3})}), "unknown pad mode 'mirror'");
}

TEST(ShapeInfer, Resize) {
  Infer r("Resize");
  HostTensor sizes = HostTensor::from_i64({1, 3, 20, 30});
  EXPECT_EQ(r.shape({F({1, 3, -1, -1}), I64(sizes)}), "[1, 3, 20, 30]");
  EXPECT_EQ(r.shape({F({1, 3, 10, 10}), I64_unknown(4)}), "[-1, -1, -1, -1]");
  HostTensor scales = HostTensor::from_f32({1.f, 1.f, 1.5f, 0.7f}, {4});
  EXPECT_EQ(r.shape({F({1, 3, 5, -1}), Absent(), T(DataType::kFLOAT, {4}, &scales)}), "[1, 3, 7, -1]");
  EXPECT_EQ(r.shape({F({1, 3, 5, 5}), Absent(), F({4})}), "[-1, -1, -1, -1]");
  EXPECT_CONTAINS(r.error({F({1, 3, 5, 5})}), "needs output sizes or scales");
  HostTensor three = HostTensor::from_i64({1, 2, 3});
  EXPECT_CONTAINS(r.error({F({1, 3, 5, 5}), I64(three)}), "the sizes has 3 values [1, 2, 3], expected 4");
  Infer a("Resize");
  a.attrs().set("scales", std::vector<double>{1, 1, 2, 2});
  EXPECT_EQ(a.shape({F({-1, 3, 5, 6})}), "[-1, 3, 10, 12]");
}

TEST(ShapeInfer, Convolution) {
  Infer c("Convolution");
  c.attrs().set("num_output_maps", 64);
  c.attrs().set("kernel", Ints{7, 7});
  c.attrs().set("stride", Ints{2, 2});
  c.attrs().set("pre_padding", Ints{3, 3});
  c.attrs().set("post_padding", Ints{3, 3});
  EXPECT_EQ(c.shape({F({1, 3, 224, 224}), F({64, 3, 7, 7}), F({64})}), "[1, 64, 112, 112]");
  EXPECT_EQ(c.shape({F({-1, 3, -1, 225}), F({64, 3, 7, 7})}), "[-1, 64, -1, 113]");
  c.attrs().set("padding_mode", 1);  // round up
  EXPECT_EQ(c.shape({F({1, 3, 224, 224}), F({64, 3, 7, 7})}), "[1, 64, 113, 113]");
  c.attrs().set("padding_mode", 2);
  EXPECT_EQ(c.shape({F({1, 3, 225, 9}), F({64, 3, 7, 7})}), "[1, 64, 113, 5]");
  EXPECT_CONTAINS(c.error({F({1, 4, 224, 224}), F({64, 3, 7, 7})}),
                  "weights [64, 3, 7, 7] expect 3 input channels (dim 1 x groups 1), the input [1, 4, 224, 224] has 4");
  EXPECT_CONTAINS(c.error({F({1, 3, 224, 224}), F({64, 3, 7, 7}), F({32})}), "bias (input 2) has shape [32], expected 64");
  EXPECT_CONTAINS(c.error({F({1, 3, 224}), F({64, 3, 7})}), "'kernel' [7, 7] has 2 values, expected 1");
  Infer g("Convolution");
  g.attrs().set("groups", 4);
  g.attrs().set("dilation", Ints{2});
  EXPECT_EQ(g.shape({F({2, 8, 20}), F({12, 2, 3})}), "[2, 12, 16]");
  EXPECT_CONTAINS(g.error({F({2, 8, 20}), F({10, 2, 3})}), "output maps 10 are not divisible by groups 4");
  Infer small("Convolution");
  EXPECT_CONTAINS(small.error({F({1, 1, 2, 2}), F({1, 1, 3, 3})}), "is larger than the padded input 2");
  Infer d3("Convolution");
  d3.attrs().set("stride", Ints{1, 2, 2});
  EXPECT_EQ(d3.shape({F({1, 2, 8, 9, 10}), F({4, 2, 3, 3, 3})}), "[1, 4, 6, 4, 4]");
  EXPECT_CONTAINS(Infer("Convolution").error({F({1, 2}), F({4, 2})}), "must be [N, C, spatial...]");
}

TEST(ShapeInfer, Deconvolution) {
  Infer d("Deconvolution");
  d.attrs().set("groups", 2);
  d.attrs().set("stride", Ints{2, 2});
  d.attrs().set("pre_padding", Ints{1, 1});
  d.attrs().set("post_padding", Ints{1, 0});
  d.attrs().set("output_padding", Ints{1, 1});
  EXPECT_EQ(d.shape({F({1, 8, 5, -1}), F({8, 4, 3, 3})}), "[1, 8, 10, -1]");
  EXPECT_EQ(d.shape({F({1, 8, 5, 5}), F({8, 4, 3, 3})}), "[1, 8, 10, 11]");
  d.attrs().set("padding_mode", 3);
  EXPECT_EQ(d.shape({F({1, 8, 5, 6}), F({8, 4, 3, 3})}), "[1, 8, 11, 13]");
  EXPECT_CONTAINS(d.error({F({1, 6, 5, 5}), F({8, 4, 3, 3})}), "weights [8, 4, 3, 3] expect 8 input channels");
}

TEST(ShapeInfer, Pooling) {
  Infer p("Pooling");
  p.attrs().set("window", Ints{3, 3});
  p.attrs().set("stride", Ints{2, 2});
  p.attrs().set("pre_padding", Ints{1, 1});
  p.attrs().set("post_padding", Ints{1, 1});
  EXPECT_EQ(p.shape({F({-1, 64, 112, -1})}), "[-1, 64, 56, -1]");
  Infer c("Pooling");
  c.attrs().set("window", Ints{2});
  c.attrs().set("stride", Ints{2});
  c.attrs().set("pre_padding", Ints{1});
  c.attrs().set("post_padding", Ints{1});
  c.attrs().set("padding_mode", 1);
  EXPECT_EQ(c.shape({F({1, 1, 5})}), "[1, 1, 3]");  // ceil gives 4; the window starting in the end padding is dropped
  c.attrs().set("post_padding", Ints{0});
  c.attrs().set("pre_padding", Ints{0});
  EXPECT_EQ(c.shape({F({1, 1, 5})}), "[1, 1, 3]");
  c.attrs().set("padding_mode", 2);
  EXPECT_EQ(c.shape({F({1, 1, 7})}), "[1, 1, 4]");
  EXPECT_CONTAINS(Infer("Pooling").error({F({1, 1, 6})}), "missing the 'window' attribute");
  Infer big("Pooling");
  big.attrs().set("window", Ints{2});
  big.attrs().set("pre_padding", Ints{2});
  EXPECT_CONTAINS(big.error({F({1, 1, 6})}), "must be smaller than the window");
  auto g = Infer("GlobalPooling").run({F({2, 3, -1, 7})});
  EXPECT_EQ(dims_str(g[0].shape), "[2, 3, 1, 1]");
}

}  // namespace
}  // namespace kiln
