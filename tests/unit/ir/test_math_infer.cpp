// Shape/type inference of the math ops (Identity, Cast, Activation, ElementWise, Unary, Select, Scale,
// Reduce, ArgMinMax, SoftMax, Normalization, TopK, CumSum, MatrixMultiply, Einsum): shapes and dtypes,
// -1 propagation, and error messages that say what was expected and what was got.
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
TensorInfo Absent() {
  TensorInfo t;
  t.present = false;
  return t;
}

struct MathInfer {
  ir::Graph g;
  ir::Node* n;
  explicit MathInfer(const std::string& op, int num_outputs = 1) { n = g.add_node(op, "L", {}, num_outputs); }
  ir::Attrs& attrs() { return n->attrs; }
  std::vector<TensorInfo> run(std::vector<TensorInfo> ins) {
    n->inputs.assign(ins.size(), nullptr);
    return ir::infer_node(*n, std::move(ins));
  }
  std::string shape(std::vector<TensorInfo> ins, size_t i = 0) { return dims_str(run(std::move(ins)).at(i).shape); }
  DataType dtype(std::vector<TensorInfo> ins, size_t i = 0) { return run(std::move(ins)).at(i).dtype; }
  std::string error(std::vector<TensorInfo> ins) {
    try {
      run(std::move(ins));
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
};

#define EXPECT_ERROR_HAS(expr, text) EXPECT_NE(std::string(expr).find(text), std::string::npos) << (expr)

TEST(MathInfer, IdentityAndCast) {
  MathInfer id("Identity");
  EXPECT_EQ(id.shape({T(DataType::kINT8, {-1, 3})}), "[-1, 3]");
  EXPECT_EQ(id.dtype({T(DataType::kINT8, {2})}), DataType::kINT8);
  MathInfer c("Cast");
  EXPECT_ERROR_HAS(c.error({F({2})}), "attribute 'to' is required");
  c.attrs().set("to", static_cast<int64_t>(DataType::kHALF));
  EXPECT_EQ(c.dtype({F({-1, 4})}), DataType::kHALF);
  EXPECT_EQ(c.shape({F({-1, 4})}), "[-1, 4]");
  c.attrs().set("to", int64_t{12});  // no DataType has this value
  std::string e = c.error({F({2})});
  EXPECT_ERROR_HAS(e, "layer 'L' (Cast)");
  EXPECT_ERROR_HAS(e, "attribute 'to' must be a DataType value, got 12");
  c.attrs().set("to", static_cast<int64_t>(DataType::kFP8));  // every dtype pair casts
  EXPECT_EQ(c.dtype({T(DataType::kINT4, {2})}), DataType::kFP8);
}

TEST(MathInfer, Activation) {
  MathInfer a("Activation");
  a.attrs().set("type", 12);
  EXPECT_EQ(a.shape({F({-1, 128, 3072})}), "[-1, 128, 3072]");
  EXPECT_EQ(a.dtype({T(DataType::kHALF, {2})}), DataType::kHALF);
  EXPECT_ERROR_HAS(a.error({T(DataType::kINT32, {2})}), "input 0 must be float32, float16, bfloat16 or float64, got int32");
  a.attrs().set("type", 0);
  EXPECT_EQ(a.dtype({T(DataType::kINT32, {2})}), DataType::kINT32);  // RELU on ints
  a.attrs().set("type", 42);
  EXPECT_ERROR_HAS(a.error({F({2})}), "must be an ActivationType");
  EXPECT_ERROR_HAS(a.error({F({2})}), "got 42");
  MathInfer none("Activation");
  EXPECT_ERROR_HAS(none.error({F({2})}), "attribute 'type' is required");
  EXPECT_ERROR_HAS(none.error({F({2}), F({2})}), "takes 1 to 1 inputs, got 2");
}

TEST(MathInfer, ElementWiseBroadcastAndTypes) {
  MathInfer e("ElementWise");
  e.attrs().set("op", 0);
  EXPECT_EQ(e.shape({F({2, 3, 4}), F({4})}), "[2, 3, 4]");
  EXPECT_EQ(e.shape({F({3, 1}), F({1, 4})}), "[3, 4]");
  EXPECT_EQ(e.shape({F({-1, 1}), F({1, 4})}), "[-1, 4]");
  EXPECT_EQ(e.shape({F({-1, 5}), F({3, -1})}), "[3, 5]");
  EXPECT_EQ(e.shape({F({}), F({})}), "[]");
  EXPECT_EQ(e.dtype({T(DataType::kINT64, {2}), T(DataType::kINT64, {2})}), DataType::kINT64);
  EXPECT_ERROR_HAS(e.error({F({2, 3}), F({4})}), "cannot broadcast shapes [2, 3] and [4]");
  EXPECT_ERROR_HAS(e.error({F({2}), T(DataType::kINT32, {2})}), "inputs must share a dtype, got float32 and int32");
  EXPECT_ERROR_HAS(e.error({T(DataType::kBOOL, {2}), T(DataType::kBOOL, {2})}), "got bool");
  e.attrs().set("op", 12);  // GREATER -> bool
  EXPECT_EQ(e.dtype({F({2}), F({2})}), DataType::kBOOL);
  e.attrs().set("op", 8);  // AND needs bool
  EXPECT_EQ(e.dtype({T(DataType::kBOOL, {2}), T(DataType::kBOOL, {1})}), DataType::kBOOL);
  EXPECT_ERROR_HAS(e.error({F({2}), F({2})}), "inputs of AND/OR/XOR must be bool, got float32");
  e.attrs().set("op", 11);
  EXPECT_EQ(e.dtype({T(DataType::kBOOL, {2}), T(DataType::kBOOL, {2})}), DataType::kBOOL);
  e.attrs().set("op", 99);
  EXPECT_ERROR_HAS(e.error({F({2}), F({2})}), "must be an ElementWiseOperation");
}

TEST(MathInfer, UnaryAndSelect) {
  MathInfer u("Unary");
  u.attrs().set("op", 1);
  EXPECT_EQ(u.shape({F({-1, 2})}), "[-1, 2]");
  EXPECT_ERROR_HAS(u.error({T(DataType::kINT32, {2})}), "input 0 must be float32, float16, bfloat16 or float64, got int32");
  u.attrs().set("op", 24);
  EXPECT_EQ(u.dtype({F({2})}), DataType::kBOOL);
  u.attrs().set("op", 20);
  EXPECT_ERROR_HAS(u.error({F({2})}), "input 0 of NOT must be bool, got float32");
  u.attrs().set("op", 4);
  EXPECT_EQ(u.dtype({T(DataType::kINT64, {2})}), DataType::kINT64);
  u.attrs().set("op", 25);
  EXPECT_ERROR_HAS(u.error({F({2})}), "must be a UnaryOperation (0-24), got 25");

  MathInfer s("Select");
  EXPECT_EQ(s.shape({T(DataType::kBOOL, {3, 1}), F({1, 4}), F({-1, 1, 1})}), "[-1, 3, 4]");
  EXPECT_EQ(s.dtype({T(DataType::kBOOL, {}), T(DataType::kINT64, {2}), T(DataType::kINT64, {2})}), DataType::kINT64);
  EXPECT_ERROR_HAS(s.error({F({2}), F({2}), F({2})}), "input 0 (the condition) must be bool, got float32");
  EXPECT_ERROR_HAS(s.error({T(DataType::kBOOL, {2}), F({2}), T(DataType::kHALF, {2})}),
                   "inputs 1 and 2 must share a dtype, got float32 and float16");
  EXPECT_ERROR_HAS(s.error({T(DataType::kBOOL, {3}), F({2}), F({2})}), "cannot broadcast");
}

TEST(MathInfer, Scale) {
  MathInfer s("Scale");
  s.attrs().set("mode", 1);
  EXPECT_EQ(s.shape({F({-1, 3, 8, 8}), F({3}), F({3}), Absent()}), "[-1, 3, 8, 8]");
  EXPECT_EQ(s.shape({F({2, -1, 8}), F({5}), Absent(), Absent()}), "[2, -1, 8]");  // unknown channels: no check
  std::string e = s.error({F({2, 3, 8}), Absent(), F({4}), Absent()});
  EXPECT_ERROR_HAS(e, "input 2 (scale) must hold 3 values for mode CHANNEL on input shape [2, 3, 8], got shape [4]");
  s.attrs().set("mode", 2);
  EXPECT_EQ(s.shape({F({2, 3, 4}), F({12}), Absent(), Absent()}), "[2, 3, 4]");
  EXPECT_ERROR_HAS(s.error({F({2, 3, 4}), F({3}), Absent(), Absent()}), "must hold 12 values for mode ELEMENTWISE");
  s.attrs().set("mode", 0);
  EXPECT_ERROR_HAS(s.error({F({2, 3}), F({2}), Absent(), Absent()}), "must hold 1 values for mode UNIFORM");
  s.attrs().set("mode", 1);
  s.attrs().set("channel_axis", 5);
  EXPECT_ERROR_HAS(s.error({F({2, 3}), F({2})}), "axis 5 is out of range for a 2-D tensor");
  s.attrs().set("mode", 7);
  EXPECT_ERROR_HAS(s.error({F({2, 3})}), "attribute 'mode' must be UNIFORM 0, CHANNEL 1 or ELEMENTWISE 2, got 7");
}

TEST(MathInfer, Reduce) {
  MathInfer r("Reduce");
  r.attrs().set("op", 4);
  r.attrs().set("axes", Ints{1, -1});
  r.attrs().set("keep_dims", 1);
  EXPECT_EQ(r.shape({F({-1, 5, 6})}), "[-1, 1, 1]");
  r.attrs().set("keep_dims", 0);
  EXPECT_EQ(r.shape({F({-1, 5, 6})}), "[-1]");
  r.attrs().set("axes", Ints{});
  EXPECT_EQ(r.shape({F({2, 5, 6})}), "[]");
  r.attrs().set("axes", Ints{1, -2});
  EXPECT_ERROR_HAS(r.error({F({2, 5, 6})}), "axis -2 is listed twice in 'axes'");
  r.attrs().set("axes", Ints{3});
  EXPECT_ERROR_HAS(r.error({F({2, 5, 6})}), "layer 'L' (Reduce): axis 3 is out of range for a 3-D tensor");
  r.attrs().set("axes", Ints{0});
  EXPECT_EQ(r.dtype({T(DataType::kINT32, {4})}), DataType::kINT32);
  EXPECT_ERROR_HAS(r.error({T(DataType::kBOOL, {4})}), "got bool");
  r.attrs().set("op", 5);
  EXPECT_ERROR_HAS(r.error({F({4})}), "must be a ReduceOperation");
}

TEST(MathInfer, ArgMinMaxSoftMaxCumSum) {
  MathInfer a("ArgMinMax");
  a.attrs().set("axis", -1);
  a.attrs().set("keep_dims", 0);
  EXPECT_EQ(a.shape({F({-1, 7})}), "[-1]");
  EXPECT_EQ(a.dtype({F({3, 7})}), DataType::kINT64);
  a.attrs().set("keep_dims", 1);
  EXPECT_EQ(a.shape({F({-1, 7})}), "[-1, 1]");
  EXPECT_ERROR_HAS(a.error({F({})}), "input 0 must have rank >= 1, got a scalar");

  MathInfer s("SoftMax");
  EXPECT_EQ(s.shape({F({-1, 12, -1, -1})}), "[-1, 12, -1, -1]");
  s.attrs().set("axis", 4);
  EXPECT_ERROR_HAS(s.error({F({1, 2})}), "axis 4 is out of range for a 2-D tensor");
  s.attrs().set("axis", 0);
  EXPECT_ERROR_HAS(s.error({T(DataType::kINT32, {2})}), "got int32");

  MathInfer c("CumSum");
  HostTensor ax = HostTensor::scalar_i64(-1);
  EXPECT_EQ(c.shape({F({-1, 4}), T(DataType::kINT64, {}, &ax)}), "[-1, 4]");
  EXPECT_EQ(c.shape({F({-1, 4}), T(DataType::kINT32, {1})}), "[-1, 4]");  // unknown axis value
  HostTensor bad = HostTensor::scalar_i64(2);
  EXPECT_ERROR_HAS(c.error({F({3, 4}), T(DataType::kINT64, {}, &bad)}), "axis 2 is out of range for a 2-D tensor");
  EXPECT_ERROR_HAS(c.error({F({3, 4}), F({})}), "input 1 (axis) must be int64 or int32, got float32");
  EXPECT_ERROR_HAS(c.error({F({3, 4}), T(DataType::kINT64, {2})}), "input 1 (axis) must be a scalar, got shape [2]");
}

TEST(MathInfer, Normalization) {
  MathInfer n("Normalization");
  n.attrs().set("axes", Ints{-1});
  EXPECT_EQ(n.shape({F({-1, -1, 768}), F({768}), F({768})}), "[-1, -1, 768]");
  EXPECT_ERROR_HAS(n.error({F({2, 4, 768}), F({512}), F({768})}),
                   "input 1 (scale) of shape [512] does not broadcast to the input shape [2, 4, 768]");
  EXPECT_ERROR_HAS(n.error({F({4, 768}), F({1, 4, 768}), F({768})}), "does not broadcast");
  n.attrs().set("axes", Ints{2, 3});
  n.attrs().set("num_groups", 4);
  EXPECT_EQ(n.shape({F({-1, 32, 8, 8}), F({1, 32, 1, 1}), F({1, 32, 1, 1})}), "[-1, 32, 8, 8]");
  EXPECT_ERROR_HAS(n.error({F({1, 30, 8, 8}), F({1, 30, 1, 1}), F({1, 30, 1, 1})}),
                   "channel count 30 is not divisible by num_groups 4");
  // output_dtype (passes/fold_normalization_cast): the dtype y is stored in.
  MathInfer wide("Normalization");
  wide.attrs().set("axes", Ints{-1});
  EXPECT_EQ(wide.dtype({F({2, 768}), F({768}), F({768})}), DataType::kFLOAT);
  wide.attrs().set("output_dtype", static_cast<int64_t>(DataType::kHALF));
  EXPECT_EQ(wide.dtype({F({2, 768}), F({768}), F({768})}), DataType::kHALF);
  wide.attrs().set("output_dtype", static_cast<int64_t>(DataType::kINT32));
  EXPECT_ERROR_HAS(wide.error({F({2, 768}), F({768}), F({768})}), "output_dtype 3 must be a float type");
  wide.attrs().set("output_dtype", int64_t{999});
  EXPECT_ERROR_HAS(wide.error({F({2, 768}), F({768}), F({768})}), "output_dtype 999 must be a float type");
  MathInfer none("Normalization");
  EXPECT_ERROR_HAS(none.error({F({2, 3}), F({3}), F({3})}), "attribute 'axes' is required");
  EXPECT_ERROR_HAS(none.error({F({2, 3}), F({3})}), "takes 3 to 3 inputs, got 2");
}

TEST(MathInfer, TopK) {
  MathInfer t("TopK", 2);
  t.attrs().set("k", 3);
  auto out = t.run({F({-1, 10})});
  EXPECT_EQ(dims_str(out[0].shape), "[-1, 3]");
  EXPECT_EQ(out[1].dtype, DataType::kINT64);
  t.attrs().set("index_dtype", static_cast<int64_t>(DataType::kINT32));
  EXPECT_EQ(t.dtype({F({4, 10})}, 1), DataType::kINT32);
  EXPECT_ERROR_HAS(t.error({F({4, 2})}), "k = 3 exceeds the size 2 of axis 1 of input shape [4, 2]");
  MathInfer ti("TopK", 2);
  HostTensor k = HostTensor::from_i64({5});
  EXPECT_EQ(ti.shape({F({2, 8}), T(DataType::kINT64, {1}, &k)}), "[2, 5]");
  EXPECT_EQ(ti.shape({F({2, 8}), T(DataType::kINT64, {1})}), "[2, -1]");  // k unknown
  EXPECT_ERROR_HAS(ti.error({F({2, 8})}), "needs attribute 'k' or input 1 (k)");
  EXPECT_ERROR_HAS(ti.error({F({2, 8}), T(DataType::kINT64, {3})}), "input 1 (k) must be a scalar or hold one value, got shape [3]");
  MathInfer bad("TopK", 1);
  bad.attrs().set("k", 1);
  EXPECT_ERROR_HAS(bad.error({F({2, 8})}), "must have 2 outputs, has 1");
}

TEST(MathInfer, MatrixMultiply) {
  MathInfer m("MatrixMultiply");
  EXPECT_EQ(m.shape({F({-1, 12, 128, 64}), F({-1, 12, 64, 128})}), "[-1, 12, 128, 128]");
  EXPECT_EQ(m.shape({F({2, 1, 3, 4}), F({5, 4, 6})}), "[2, 5, 3, 6]");
  EXPECT_EQ(m.shape({F({4}), F({4, 6})}), "[6]");
  EXPECT_EQ(m.shape({F({3, 4}), F({4})}), "[3]");
  EXPECT_EQ(m.shape({F({4}), F({4})}), "[]");
  EXPECT_EQ(m.shape({F({-1, 3, 4}), F({-1, 5})}), "[-1, 3, 5]");
  EXPECT_ERROR_HAS(m.error({F({3, 4}), F({5, 6})}), "contraction dims differ: input 0 [3, 4] gives K = 4, input 1 [5, 6] gives K = 5");
  EXPECT_ERROR_HAS(m.error({F({3, 4}), T(DataType::kHALF, {4, 6})}), "inputs must share a dtype, got float32 and float16");
  EXPECT_ERROR_HAS(m.error({F({}), F({4})}), "inputs must have rank >= 1");
  EXPECT_ERROR_HAS(m.error({F({2, 3, 4}), F({3, 4, 5})}), "cannot broadcast shapes [2] and [3]");
  m.attrs().set("op_a", 1);
  m.attrs().set("op_b", 1);
  EXPECT_EQ(m.shape({F({2, 4, 3}), F({2, 5, 4})}), "[2, 3, 5]");
  EXPECT_ERROR_HAS(m.error({F({4}), F({5, 4})}), "op_a TRANSPOSE needs input 0 of rank >= 2, got [4]");
  m.attrs().set("op_a", 2);
  m.attrs().set("op_b", 0);
  EXPECT_EQ(m.shape({F({2, 4}), F({2, 4, 5})}), "[2, 5]");
  m.attrs().set("op_b", 2);
  EXPECT_EQ(m.shape({F({3, 2, 4}), F({2, 4})}), "[3, 2]");
  m.attrs().set("op_b", 3);
  EXPECT_ERROR_HAS(m.error({F({2, 4}), F({4})}), "must be NONE 0, TRANSPOSE 1 or VECTOR 2, got 3");
}

TEST(MathInfer, Einsum) {
  MathInfer e("Einsum");
  EXPECT_ERROR_HAS(e.error({F({2, 3})}), "attribute 'equation' is required");
  e.attrs().set("equation", "bij,bjk->bik");
  EXPECT_EQ(e.shape({F({-1, 3, 4}), F({-1, 4, 5})}), "[-1, 3, 5]");
  EXPECT_EQ(e.shape({F({1, 3, 4}), F({7, 4, 5})}), "[7, 3, 5]");
  EXPECT_ERROR_HAS(e.error({F({2, 3, 4}), F({2, 5, 6})}), "label 'j' has size 4 in one operand and 5 in input 1");
  EXPECT_ERROR_HAS(e.error({F({2, 3}), F({2, 3, 4})}), "term 'bij' of equation 'bij,bjk->bik' names 3 dims but input 0 has rank 2");
  EXPECT_ERROR_HAS(e.error({F({2, 3, 4})}), "has 2 operand terms but the op has 1 inputs");
  e.attrs().set("equation", "ij,jk");
  EXPECT_EQ(e.shape({F({2, 3}), F({3, 4})}), "[2, 4]");
  e.attrs().set("equation", "ba,cb");  // implicit output: letters once, alphabetical
  EXPECT_EQ(e.shape({F({2, 3}), F({4, 2})}), "[3, 4]");
  e.attrs().set("equation", "...ij,...jk->...ik");
  EXPECT_EQ(e.shape({F({5, 1, 2, 3}), F({4, 3, 6})}), "[5, 4, 2, 6]");
  e.attrs().set("equation", "...ii->...i");
  EXPECT_EQ(e.shape({F({7, 3, 3})}), "[7, 3]");
  e.attrs().set("equation", "ii");
  EXPECT_EQ(e.shape({F({3, 3})}), "[]");
  e.attrs().set("equation", "ij->ik");
  EXPECT_ERROR_HAS(e.error({F({2, 3})}), "output label 'k' does not appear in any input term");
  e.attrs().set("equation", "ij->ii");
  EXPECT_ERROR_HAS(e.error({F({2, 3})}), "output label 'i' is repeated");
  e.attrs().set("equation", "i.j->ij");
  EXPECT_ERROR_HAS(e.error({F({2, 3})}), "'.' must be part of an ellipsis");
  e.attrs().set("equation", "ij,jk->ik");
  EXPECT_ERROR_HAS(e.error({F({2, 3}), T(DataType::kDOUBLE, {3, 4})}), "all inputs must share a dtype");
}

}  // namespace
}  // namespace kiln
