#include <gtest/gtest.h>

#include <cmath>

#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace kiln;

TEST(Graph, AddNodesAndFindThem) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {1, 3});
  auto* n = g.add_node("Activation", "relu", {x}, 1);
  g.mark_output(n->outputs[0]);
  EXPECT_EQ(g.find_value("x"), x);
  EXPECT_EQ(g.find_node("relu"), n);
  EXPECT_EQ(n->outputs[0]->producer, n);
  EXPECT_TRUE(n->outputs[0]->is_output);
  EXPECT_EQ(g.users(x).size(), 1u);
  EXPECT_THROW(g.add_input("x", DataType::kFLOAT, {1}), Error);
}

TEST(Graph, TopoSortOrdersProducersFirstAndFindsCycles) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2});
  auto* b = g.add_node("Identity", "b", {nullptr}, 1);
  auto* a = g.add_node("Identity", "a", {x}, 1);
  b->inputs[0] = a->outputs[0];
  g.topo_sort();
  EXPECT_EQ(g.node(0), a);
  EXPECT_EQ(g.node(1), b);
  a->inputs[0] = b->outputs[0];
  EXPECT_THROW(g.topo_sort(), Error);
}

TEST(Graph, CloneIsDeepAndEqual) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2, -1});
  auto* c = g.add_constant("w", HostTensor::from_f32({1, 2}, {2, 1}));
  auto* n = g.add_node("ElementWise", "add", {x, c->outputs[0]}, 1);
  n->attrs.set("op", int64_t{0});
  g.mark_output(n->outputs[0]);
  auto g2 = g.clone();
  EXPECT_EQ(g2->to_string(), g.to_string());
  EXPECT_NE(g2->node(1), n);
  EXPECT_EQ(g2->node(1)->inputs[0], g2->inputs()[0]);
  EXPECT_EQ(g2->outputs()[0]->producer, g2->node(1));
  EXPECT_TRUE(g2->node(1)->attrs == n->attrs);
}

TEST(Graph, RemoveNodesDropsTheirValues) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2});
  auto* a = g.add_node("Identity", "a", {x}, 1);
  auto* b = g.add_node("Identity", "b", {x}, 1);
  g.mark_output(b->outputs[0]);
  g.remove_nodes_if([&](const ir::Node* n) { return n == a; });
  EXPECT_EQ(g.num_nodes(), 1u);
  EXPECT_EQ(g.values().size(), 2u);
  EXPECT_EQ(g.find_value("a_output_0"), nullptr);
}

TEST(Attrs, TypedAccessAndErrors) {
  ir::Attrs a;
  a.set("i", int64_t{3});
  a.set("f", 2.5);
  a.set("s", "hello");
  a.set("v", std::vector<int64_t>{1, 2});
  EXPECT_EQ(a.i("i", 0), 3);
  EXPECT_EQ(a.f("f", 0), 2.5);
  EXPECT_EQ(a.s("s", ""), "hello");
  EXPECT_EQ(a.ints("v"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(a.i("missing", 7), 7);
  EXPECT_THROW(a.i("s", 0), Error);
  EXPECT_THROW(a.req_i("nope"), Error);
  EXPECT_THROW(a.tensor("i"), Error);
}

TEST(HostTensor, HalfAndBf16RoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-5f, 3.14159f}) {
    EXPECT_NEAR(half_to_float(float_to_half(f)), f, std::abs(f) * 1e-3 + 1e-7);
    EXPECT_NEAR(bf16_to_float(float_to_bf16(f)), f, std::abs(f) * 1e-2 + 1e-30);
  }
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(HostTensor, AccessorsAndReshape) {
  auto t = HostTensor::from_i64({4, 5, 6});
  EXPECT_EQ(t.numel(), 3);
  EXPECT_EQ(t.to_i64(), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(t.get_f64(1), 5.0);
  EXPECT_THROW(t.reshaped({2}), Error);
  EXPECT_THROW(HostTensor(DataType::kFLOAT, {-1, 2}), Error);
  EXPECT_THROW(HostTensor::from_f32({1, 2}, {3}).to_i64(), Error);
}

TEST(OpRegistry, InferNodeChecksArity) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2});
  auto* n = g.add_node("NoSuchOp", "n", {x}, 1);
  EXPECT_THROW(ir::infer_node(*n, {ir::TensorInfo{true, DataType::kFLOAT, {2}}}), Error);
}
