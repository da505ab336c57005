// Shape/type inference of the loss, sampling, signal, rearranging, unpooling, linear-algebra, bitwise,
// TensorScatter and RotaryEmbedding ops: output shapes (from input values when known, -1 otherwise) and
// error messages that name what is wrong.
#include <gtest/gtest.h>

#include "ir/op_registry.h"

namespace kiln {
namespace {

using ir::TensorInfo;

TensorInfo T(DataType dt, Dims shape, const HostTensor* value = nullptr) {
  TensorInfo t;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.value = value;
  return t;
}
TensorInfo F(Dims shape) { return T(DataType::kFLOAT, std::move(shape)); }
TensorInfo I64(Dims shape, const HostTensor* value = nullptr) { return T(DataType::kINT64, std::move(shape), value); }
TensorInfo Absent() {
  TensorInfo t;
  t.present = false;
  return t;
}

struct Infer {
  ir::Graph g;
  ir::Node* n;
  explicit Infer(const std::string& op) { n = g.add_node(op, "L", {}, 1); }
  ir::Attrs& attrs() { return n->attrs; }
  std::vector<TensorInfo> run(std::vector<TensorInfo> ins) {
    n->inputs.assign(ins.size(), nullptr);
    return ir::infer_node(*n, std::move(ins));
  }
  std::string shape(std::vector<TensorInfo> ins) { return dims_str(run(std::move(ins)).at(0).shape); }
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

TEST(NewOpsInfer, NllLoss) {
  Infer i("NLLLoss");
  i.attrs().set("reduction", "none");
  EXPECT_EQ(i.shape({F({2, 5, 3, 4}), I64({2, 3, 4})}), "[2, 3, 4]");
  i.attrs().set("reduction", "mean");
  EXPECT_EQ(i.shape({F({2, 5}), I64({2}), F({5})}), "[]");
  EXPECT_ERROR_HAS(i.error({F({2, 5}), I64({2}), F({4})}), "weight");
  EXPECT_ERROR_HAS(i.error({F({2, 5, 3}), I64({2, 4})}), "without dim 1");
}

TEST(NewOpsInfer, GridSampleAndAffineGrid) {
  Infer gs("GridSample");
  EXPECT_EQ(gs.shape({F({2, 3, 8, 9}), F({2, 4, 5, 2})}), "[2, 3, 4, 5]");
  EXPECT_EQ(gs.shape({F({1, 2, 4, 5, 6}), F({1, 2, 3, 4, 3})}), "[1, 2, 2, 3, 4]");
  EXPECT_ERROR_HAS(gs.error({F({2, 3, 8, 9}), F({2, 4, 5, 3})}), "grid must be");
  Infer ag("AffineGrid");
  HostTensor size = HostTensor::from_i64({2, 3, 6, 7});
  EXPECT_EQ(ag.shape({F({2, 2, 3}), I64({4}, &size)}), "[2, 6, 7, 2]");
  EXPECT_EQ(ag.shape({F({2, 2, 3}), I64({4})}), "[2, -1, -1, 2]");
  EXPECT_ERROR_HAS(ag.error({F({2, 3, 3}), I64({4})}), "theta must be");
}

TEST(NewOpsInfer, RoiOps) {
  Infer ra("RoiAlign");
  ra.attrs().set("pooled_shape", std::vector<int64_t>{3, 4});
  EXPECT_EQ(ra.shape({F({1, 8, 10, 10}), F({5, 4}), I64({5})}), "[5, 8, 3, 4]");
  EXPECT_ERROR_HAS(ra.error({F({1, 8, 10, 10}), F({5, 5}), I64({5})}), "rois must be");
  Infer mp("MaxRoiPool");
  mp.attrs().set("pooled_shape", std::vector<int64_t>{2, 2});
  EXPECT_EQ(mp.shape({F({1, 8, 10, 10}), F({3, 5})}), "[3, 8, 2, 2]");
}

TEST(NewOpsInfer, Dft) {
  Infer d("DFT");
  d.attrs().set("axis", int64_t{1});
  EXPECT_EQ(d.shape({F({2, 10, 3, 1})}), "[2, 10, 3, 2]");
  d.attrs().set("onesided", int64_t{1});
  EXPECT_EQ(d.shape({F({2, 10, 3, 1})}), "[2, 6, 3, 2]");
  HostTensor len = HostTensor::scalar_i64(16);
  EXPECT_EQ(d.shape({F({2, 10, 3, 1}), I64({}, &len)}), "[2, 9, 3, 2]");
  EXPECT_EQ(d.shape({F({2, 10, 3, 1}), I64({})}), "[2, -1, 3, 2]");  // length known at run time only
  EXPECT_ERROR_HAS(d.error({F({2, 10, 3, 2})}), "onesided needs a real input");
  Infer inv("DFT");
  inv.attrs().set("inverse", int64_t{1});
  inv.attrs().set("onesided", int64_t{1});
  inv.attrs().set("axis", int64_t{-2});
  EXPECT_EQ(inv.shape({F({4, 6, 2})}), "[4, 10, 1]");
  Infer bad("DFT");
  bad.attrs().set("axis", int64_t{2});
  EXPECT_ERROR_HAS(bad.error({F({2, 10, 2})}), "axis 2 is out of range");
}

TEST(NewOpsInfer, StftWindowMel) {
  Infer s("STFT");
  HostTensor step = HostTensor::scalar_i64(8), len = HostTensor::scalar_i64(16);
  EXPECT_EQ(s.shape({F({1, 128, 1}), I64({}, &step), Absent(), I64({}, &len)}), "[1, 15, 9, 2]");
  EXPECT_EQ(s.shape({F({1, 128, 1}), I64({}), F({16})}), "[1, -1, 9, 2]");
  Infer w("Window");
  HostTensor n = HostTensor::scalar_i64(10);
  EXPECT_EQ(w.shape({I64({}, &n)}), "[10]");
  EXPECT_EQ(w.shape({I64({})}), "[-1]");
  EXPECT_ERROR_HAS(w.error({F({})}), "size (input 0) must be int32 or int64");
  Infer m("MelWeightMatrix");
  HostTensor bins = HostTensor::scalar_i64(8), dl = HostTensor::scalar_i64(64);
  EXPECT_EQ(m.shape({I64({}, &bins), I64({}, &dl), I64({}), F({}), F({})}), "[33, 8]");
}

TEST(NewOpsInfer, Rearranging) {
  Infer oh("OneHot");
  oh.attrs().set("axis", int64_t{1});
  HostTensor depth = HostTensor::scalar_i64(5);
  EXPECT_EQ(oh.shape({I64({2, 3}), I64({}, &depth), F({2})}), "[2, 5, 3]");
  EXPECT_EQ(oh.shape({I64({2, 3}), I64({}), F({2})}), "[2, -1, 3]");
  EXPECT_ERROR_HAS(oh.error({I64({2, 3}), I64({}), F({3})}), "values (input 2) must be [off, on]");
  Infer rs("ReverseSequence");
  EXPECT_EQ(rs.shape({F({4, 3, 2}), I64({3})}), "[4, 3, 2]");
  EXPECT_ERROR_HAS(rs.error({F({4, 3, 2}), I64({4})}), "sequence_lens must be [batch]");
  Infer cc("CenterCropPad");
  cc.attrs().set("axes", std::vector<int64_t>{1, 2});
  HostTensor target = HostTensor::from_i64({7, 2});
  EXPECT_EQ(cc.shape({F({3, 5, 4}), I64({2}, &target)}), "[3, 7, 2]");
  EXPECT_ERROR_HAS(cc.error({F({3, 5, 4}), I64({3})}), "one size per axis");
}

TEST(NewOpsInfer, UnpoolCol2ImDet) {
  Infer mu("MaxUnpool");
  mu.attrs().set("kernel", std::vector<int64_t>{2, 2});
  mu.attrs().set("stride", std::vector<int64_t>{2, 2});
  EXPECT_EQ(mu.shape({F({1, 3, 2, 2}), I64({1, 3, 2, 2})}), "[1, 3, 4, 4]");
  HostTensor os = HostTensor::from_i64({1, 3, 5, 5});
  EXPECT_EQ(mu.shape({F({1, 3, 2, 2}), I64({1, 3, 2, 2}), I64({4}, &os)}), "[1, 3, 5, 5]");
  Infer ci("Col2Im");
  HostTensor img = HostTensor::from_i64({5, 5}), blk = HostTensor::from_i64({1, 5});
  EXPECT_EQ(ci.shape({F({1, 10, 5}), I64({2}, &img), I64({2}, &blk)}), "[1, 2, 5, 5]");
  HostTensor blk3 = HostTensor::from_i64({1, 3});
  EXPECT_ERROR_HAS(ci.error({F({1, 10, 5}), I64({2}, &img), I64({2}, &blk3)}), "not a multiple");
  Infer det("Det");
  EXPECT_EQ(det.shape({F({2, 3, 4, 4})}), "[2, 3]");
  EXPECT_ERROR_HAS(det.error({F({2, 3, 4})}), "square");
}

TEST(NewOpsInfer, BitwiseTensorScatterRotary) {
  Infer b("Bitwise");
  b.attrs().set("op", int64_t{2});
  EXPECT_EQ(b.shape({T(DataType::kINT32, {2, 3}), T(DataType::kINT32, {3})}), "[2, 3]");
  EXPECT_ERROR_HAS(b.error({F({2}), F({2})}), "needs an integer input");
  Infer ts("TensorScatter");
  ts.attrs().set("axis", int64_t{2});
  EXPECT_EQ(ts.shape({F({2, 3, 8, 4}), F({2, 3, 2, 4}), I64({2})}), "[2, 3, 8, 4]");
  EXPECT_ERROR_HAS(ts.error({F({2, 3, 8, 4}), F({2, 3, 9, 4})}), "does not fit the cache");
  Infer r("RotaryEmbedding");
  EXPECT_EQ(r.shape({F({2, 3, 5, 8}), F({2, 5, 4}), F({2, 5, 4})}), "[2, 3, 5, 8]");
  EXPECT_ERROR_HAS(r.error({F({2, 5, 24}), F({2, 5, 4}), F({2, 5, 4})}), "needs num_heads");
}

}  // namespace
}  // namespace kiln
