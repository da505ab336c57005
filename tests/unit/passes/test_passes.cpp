// Each pass: a graph before, run the pass, the graph expected after.
#include <gtest/gtest.h>

#include "backends/cpu/eval.h"
#include "passes/pass.h"

using namespace kiln;

namespace {
ir::Node* act(ir::Graph& g, ir::Value* in, const std::string& name) {
  auto* n = g.add_node("Activation", name, {in}, 1);
  n->attrs.set("type", int64_t{0});
  n->outputs[0]->shape = in->shape;
  return n;
}
}  // namespace

TEST(EliminateDeadNodes, RemovesUnreachableNodes) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {4});
  auto* live = act(g, x, "live");
  act(g, x, "dead");
  act(g, live->outputs[0], "dead2");
  g.mark_output(live->outputs[0]);
  passes::EliminateDeadNodes p;
  EXPECT_TRUE(p.run(g));
  ASSERT_EQ(g.num_nodes(), 1u);
  EXPECT_EQ(g.node(0)->name, "live");
  EXPECT_FALSE(p.run(g));  // idempotent
}

TEST(EliminateIdentities, BypassesIdentityButKeepsOutputNames) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {4});
  auto* id = g.add_node("Identity", "id", {x}, 1);
  auto* r = act(g, id->outputs[0], "relu");
  auto* out_id = g.add_node("Identity", "out_id", {r->outputs[0]}, 1);
  out_id->outputs[0]->name = "y";
  g.mark_output(out_id->outputs[0]);
  passes::EliminateIdentities p;
  EXPECT_TRUE(p.run(g));
  EXPECT_EQ(g.find_node("id"), nullptr);
  EXPECT_EQ(g.find_node("relu")->inputs[0], x);
  ASSERT_NE(g.find_node("out_id"), nullptr) << "an identity producing a graph output keeps its name";
  EXPECT_FALSE(p.run(g));
}

TEST(FoldConstants, EvaluatesConstantSubgraphsInPlace) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2});
  auto* a = g.add_constant("a", HostTensor::from_f32({1, -2}, {2}));
  auto* b = g.add_constant("b", HostTensor::from_f32({3, 4}, {2}));
  auto* sum = g.add_node("ElementWise", "sum", {a->outputs[0], b->outputs[0]}, 1);
  sum->attrs.set("op", int64_t{0});
  auto* mul = g.add_node("ElementWise", "mul", {x, sum->outputs[0]}, 1);
  mul->attrs.set("op", int64_t{1});
  g.mark_output(mul->outputs[0]);
  passes::FoldConstants p;
  EXPECT_TRUE(p.run(g));
  ir::Node* folded = g.find_node("sum");
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->op, "Constant");
  const HostTensor& v = folded->attrs.tensor("value");
  EXPECT_EQ(v.data<float>()[0], 4.0f);
  EXPECT_EQ(v.data<float>()[1], 2.0f);
  EXPECT_EQ(g.find_node("mul")->op, "ElementWise") << "depends on an input: not folded";
  EXPECT_FALSE(p.run(g));
}

TEST(MergeReshapes, CollapsesReshapeChains) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2, 3, 4});
  auto* r1 = g.add_node("Shuffle", "r1", {x}, 1);
  r1->attrs.set("has_reshape", int64_t{1});
  r1->attrs.set("reshape_dims", std::vector<int64_t>{6, 4});
  r1->outputs[0]->shape = {6, 4};
  auto* r2 = g.add_node("Shuffle", "r2", {r1->outputs[0]}, 1);
  r2->attrs.set("has_reshape", int64_t{1});
  r2->attrs.set("reshape_dims", std::vector<int64_t>{24});
  r2->outputs[0]->shape = {24};
  g.mark_output(r2->outputs[0]);
  passes::MergeReshapes p;
  EXPECT_TRUE(p.run(g));
  EXPECT_EQ(r2->inputs[0], x);
  passes::EliminateDeadNodes dce;
  dce.run(g);
  EXPECT_EQ(g.num_nodes(), 1u);
}

TEST(FoldShapes, ReplacesShapesOfStaticTensorsOnly) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2, 3, 4});
  auto* d = g.add_input("d", DataType::kFLOAT, {-1, 3});
  auto* sx = g.add_node("Shape", "sx", {x}, 1);
  sx->attrs.set("start", int64_t{1});
  auto* sd = g.add_node("Shape", "sd", {d}, 1);
  g.mark_output(sx->outputs[0]);
  g.mark_output(sd->outputs[0]);
  passes::FoldShapes p;
  EXPECT_TRUE(p.run(g));
  ASSERT_EQ(sx->op, "Constant");
  EXPECT_EQ(sx->attrs.tensor("value").to_i64(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(sd->op, "Shape") << "a dynamic dim keeps the Shape node";
  EXPECT_FALSE(p.run(g));
}
