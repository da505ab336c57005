// Partially known shape values (ir/partial_values.h): what the build can know of a shape tensor computed
// from Shape ops when the batch dim is dynamic, the reshape dims it makes known, and the folding it enables.
#include <gtest/gtest.h>

#include "ir/partial_values.h"
#include "passes/pass.h"
#include "runtime/shape_analysis.h"

using namespace kiln;

namespace {

ir::Value* constant_i64(ir::Graph& g, const std::vector<int64_t>& v, bool scalar = false) {
  HostTensor t = HostTensor::from_i64(v);
  if (scalar) t = t.reshaped({});
  return g.add_constant(g.unique_name("c"), t)->outputs[0];
}

ir::Value* node(ir::Graph& g, const std::string& op, std::vector<ir::Value*> in,
                const std::function<void(ir::Attrs&)>& set = nullptr) {
  ir::Node* n = g.add_node(op, g.unique_name(op), std::move(in), 1);
  if (set) set(n->attrs);
  return n->outputs[0];
}

std::string str(const ir::PartialEntries& p) {
  std::string s;
  for (const ir::PartialEntry& x : p) s += (s.empty() ? "" : ",") + (x.value ? std::to_string(*x.value) : std::string("?"));
  return s;
}

std::string partial(const ir::Value* v) {
  ir::PartialEntries p;
  return ir::partial_entries(v, &p) ? str(p) : "none";
}

// The view(*src.shape[:2], -1, 64) target exporters write for a head split: src's two leading dims read from
// its Shape at run time, then -1 and the head size.
ir::Value* heads_target(ir::Graph& g, ir::Value* src) {
  ir::Value* lead = node(g, "DynamicSlice", {node(g, "Shape", {src}), constant_i64(g, {0}), constant_i64(g, {2})});
  return node(g, "Concatenation", {lead, constant_i64(g, {-1, 64})});
}

}  // namespace

// nn.MultiheadAttention's reshape target [S, B * H, D] from Shape(x) of x [S, B, E] with a dynamic B.
TEST(PartialValues, ShapeGatherSliceConcat) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {17, -1, 128});
  ir::Value* shape = node(g, "Shape", {x});
  ir::Value* s = node(g, "Gather", {shape, constant_i64(g, {0}, true)});
  ir::Value* b = node(g, "Gather", {shape, constant_i64(g, {1}, true)});
  ir::Value* e = node(g, "Gather", {shape, constant_i64(g, {-1}, true)});
  ir::Value* bh = node(g, "ElementWise", {b, constant_i64(g, {2}, true)}, [](ir::Attrs& a) { a.set("op", int64_t{1}); });
  ir::Value* last = node(g, "DynamicSlice", {shape, constant_i64(g, {-1}), constant_i64(g, {INT64_MAX})});
  ir::Value* head = node(g, "Slice", {shape}, [](ir::Attrs& a) {
    a.set("start", std::vector<int64_t>{0});
    a.set("size", std::vector<int64_t>{2});
    a.set("stride", std::vector<int64_t>{1});
  });
  auto unsq = [&](ir::Value* v) { return node(g, "Unsqueeze", {v, constant_i64(g, {0})}); };
  ir::Value* target = node(g, "Concatenation", {unsq(s), unsq(bh), constant_i64(g, {64})});
  ir::Value* y = node(g, "Shuffle", {x, target});
  infer_graph_inplace(g);
  EXPECT_EQ(partial(shape), "17,?,128");
  EXPECT_EQ(partial(s), "17");
  EXPECT_EQ(partial(b), "?");
  EXPECT_EQ(partial(e), "128");
  EXPECT_EQ(partial(bh), "?") << "an op the walk does not read: unknown entries of the known count";
  EXPECT_EQ(partial(last), "128");
  EXPECT_EQ(partial(head), "17,?");
  EXPECT_EQ(partial(target), "17,?,64");
  EXPECT_EQ(y->shape, (Dims{17, -1, 64})) << "the reshape's known dims";
  EXPECT_EQ(partial(x), "none") << "a float tensor is no shape tensor";
}

// A 0 in the reshape dims copies the input's dim, known or not; a -1 stays unknown until run time.
TEST(PartialValues, ReshapeWithPlaceholders) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {-1, 12, 64});
  ir::Value* n = g.add_input("n", DataType::kINT64, {});
  auto unsq = [&](ir::Value* v) { return node(g, "Unsqueeze", {v, constant_i64(g, {0})}); };
  ir::Value* y = node(g, "Shuffle", {x, node(g, "Concatenation", {constant_i64(g, {0, -1}), unsq(n)})});
  ir::Value* z = node(g, "Shuffle", {x, node(g, "Concatenation", {constant_i64(g, {0, 0}), unsq(n)})});
  infer_graph_inplace(g);
  EXPECT_EQ(y->shape, (Dims{-1, -1, -1}));
  EXPECT_EQ(z->shape, (Dims{-1, 12, -1}));
}

// A shape computation decided by known dims becomes a constant even while its tensor's batch is dynamic, and
// the folding runs to a fixed point: the attention scale 1/sqrt(head size), computed from the Shape of a
// reshape whose dims only become known once an earlier Gather(Shape) folded, ends as one constant.
TEST(PartialValues, FoldShapeArithmeticReachesTheScale) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {17, -1, 128});
  ir::Value* shape = node(g, "Shape", {x});
  ir::Value* e = node(g, "Gather", {shape, constant_i64(g, {2}, true)});
  ir::Value* d = node(g, "ElementWise", {e, constant_i64(g, {2}, true)}, [](ir::Attrs& a) { a.set("op", int64_t{5}); });
  auto unsq = [&](ir::Value* v) { return node(g, "Unsqueeze", {v, constant_i64(g, {0})}); };
  ir::Value* b = node(g, "Gather", {shape, constant_i64(g, {1}, true)});
  ir::Value* target = node(g, "Concatenation", {constant_i64(g, {17}), unsq(b), constant_i64(g, {2}), unsq(d)});
  ir::Value* q = node(g, "Shuffle", {x, target});  // [17, B, 2, 64]
  ir::Value* last = node(g, "DynamicSlice", {node(g, "Shape", {q}), constant_i64(g, {-1}), constant_i64(g, {INT64_MAX})});
  ir::Value* f = node(g, "Cast", {last}, [](ir::Attrs& a) { a.set("to", int64_t{static_cast<int>(DataType::kFLOAT)}); });
  ir::Value* scale = node(g, "Unary", {f}, [](ir::Attrs& a) { a.set("op", int64_t{2}); });  // SQRT
  ir::Value* y = node(g, "ElementWise", {q, scale}, [](ir::Attrs& a) { a.set("op", int64_t{5}); });
  g.mark_output(y);
  infer_graph_inplace(g);
  EXPECT_EQ(q->shape, (Dims{17, -1, 2, -1})) << "before folding, the head size is not known yet";
  passes::FoldShapeArithmetic fold;
  EXPECT_TRUE(fold.run(g));
  EXPECT_EQ(q->shape, (Dims{17, -1, 2, 64}));
  ASSERT_NE(scale->producer, nullptr);
  ASSERT_EQ(scale->producer->op, "Constant");
  EXPECT_FLOAT_EQ(static_cast<float>(scale->producer->attrs.tensor("value").get_f64(0)), 8.f);
  EXPECT_FALSE(fold.run(g));
}

// GPT-2's view(*x.shape[:-1], -1, D): the batch entry is read from the Shape of the reshaped tensor itself, at
// the dim it lands on, so it copies that dim and the -1 resolves. The same entry read from another tensor's
// Shape proves nothing about this one: the -1 stays unknown.
TEST(PartialValues, EntriesFromTheReshapedTensorsOwnShape) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {-1, 128, 768});
  ir::Value* other = g.add_input("other", DataType::kFLOAT, {-1, 128, 768});
  ir::Value* own = node(g, "Shuffle", {x, heads_target(g, x)});
  ir::Value* foreign = node(g, "Shuffle", {x, heads_target(g, other)});
  infer_graph_inplace(g);
  EXPECT_EQ(own->shape, (Dims{-1, 128, 12, 64}));
  EXPECT_EQ(foreign->shape, (Dims{-1, 128, -1, 64}));
}

// Newer transformers' view(*hidden_states.shape[:-1], -1, D) of a projection of hidden_states: the batch entry is
// read from the projection's input, whose leading dims a GEMM against a matrix and a bias add keep, so it still
// copies the reshaped tensor's dim and the -1 resolves. A residual-style add of another tensor with its own
// unknown batch proves nothing (that operand could broadcast into the dim).
TEST(PartialValues, EntriesFromATensorWhoseDimsTheLayersKeep) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {-1, 128, 768});
  ir::Value* other = g.add_input("other", DataType::kFLOAT, {-1, 128, 768});
  ir::Value* w = g.add_constant("w", HostTensor(DataType::kFLOAT, {768, 768}))->outputs[0];
  ir::Value* b = g.add_constant("b", HostTensor(DataType::kFLOAT, {768}))->outputs[0];
  ir::Value* proj = node(g, "ElementWise", {b, node(g, "MatrixMultiply", {x, w})}, [](ir::Attrs& a) { a.set("op", int64_t{0}); });
  ir::Value* mixed = node(g, "ElementWise", {proj, other}, [](ir::Attrs& a) { a.set("op", int64_t{0}); });
  ir::Value* heads = node(g, "Shuffle", {proj, heads_target(g, x)});
  ir::Value* unproven = node(g, "Shuffle", {mixed, heads_target(g, x)});
  infer_graph_inplace(g);
  EXPECT_TRUE(ir::same_dim_at_run_time(proj, x, 0));
  EXPECT_FALSE(ir::same_dim_at_run_time(proj, x, 2)) << "the GEMM's columns are the weight's";
  EXPECT_EQ(heads->shape, (Dims{-1, 128, 12, 64}));
  EXPECT_EQ(unproven->shape, (Dims{-1, 128, -1, 64}));
}

// GPT-2 in newer transformers reshapes v (one Split output) with the leading dims read from k's Shape (another
// output of the same Split along the last axis): both keep the Split input's leading dims, so the entries copy
// v's dims and the -1 resolves. The split axis itself proves nothing, nor does an unrelated input's Shape.
TEST(PartialValues, EntriesFromASiblingSplitOutput) {
  ir::Graph g;
  ir::Value* qkv = g.add_input("qkv", DataType::kFLOAT, {-1, 128, 2304});
  ir::Value* other = g.add_input("other", DataType::kFLOAT, {-1, 128, 768});
  ir::Node* split = g.add_node("Split", "split", {qkv}, 3);
  split->attrs.set("axis", int64_t{2});
  split->attrs.set("split", std::vector<int64_t>{768, 768, 768});
  ir::Value* k = split->outputs[1];
  ir::Value* v = split->outputs[2];
  ir::Value* heads = node(g, "Shuffle", {v, heads_target(g, k)});
  ir::Value* unproven = node(g, "Shuffle", {v, heads_target(g, other)});
  infer_graph_inplace(g);
  EXPECT_TRUE(ir::same_dim_at_run_time(v, k, 0));
  EXPECT_TRUE(ir::same_dim_at_run_time(v, qkv, 1));
  EXPECT_FALSE(ir::same_dim_at_run_time(v, k, 2)) << "the split axis";
  EXPECT_FALSE(ir::same_dim_at_run_time(v, other, 0));
  EXPECT_EQ(heads->shape, (Dims{-1, 128, 12, 64}));
  EXPECT_EQ(unproven->shape, (Dims{-1, 128, -1, 64}));
}
