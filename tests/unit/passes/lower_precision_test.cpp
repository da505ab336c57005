// LowerPrecision: float32 layers the backend supports run in float16; weights convert once; network I/O
// keeps float32 through Casts; pinned layers stay float32 under OBEY_PRECISION_CONSTRAINTS.
#include <gtest/gtest.h>

#include <cmath>

#include "passes/lower_precision.h"
#include "runtime/shape_analysis.h"

using namespace kiln;

namespace {

struct Net {
  ir::Graph g;
  ir::Value* x;
  ir::Node* mm;
  ir::Node* act;
  Net() {
    x = g.add_input("x", DataType::kFLOAT, {2, 3});
    auto* w = g.add_constant("w", HostTensor::from_f32({1, 2, 3, 4, 5, 6}, {3, 2}));
    mm = g.add_node("MatrixMultiply", "mm", {x, w->outputs[0]}, 1);
    act = g.add_node("Activation", "relu", {mm->outputs[0]}, 1);
    act->attrs.set("type", int64_t{0});
    act->outputs[0]->name = "y";
    g.mark_output(act->outputs[0]);
    infer_graph_inplace(g);
  }
};

bool always(const ir::Node&, const std::vector<ir::TensorInfo>&) { return true; }

}  // namespace

TEST(LowerPrecision, LowersLayersConvertsWeightsAndKeepsIo) {
  Net n;
  passes::LowerPrecision p(DataType::kHALF, false, &always);
  ASSERT_TRUE(p.run(n.g));
  EXPECT_EQ(n.mm->outputs[0]->dtype, DataType::kHALF);
  EXPECT_EQ(n.act->outputs[0]->dtype, DataType::kHALF);
  // The weight is now a float16 constant with the same values.
  const ir::Value* w = n.mm->inputs[1];
  ASSERT_EQ(w->producer->op, "Constant");
  const HostTensor& wt = w->producer->attrs.tensor("value");
  ASSERT_EQ(wt.dtype(), DataType::kHALF);
  EXPECT_EQ(half_to_float(wt.data<uint16_t>()[5]), 6.f);
  // The input reaches the layer through a Cast; the output is float32 under its original name.
  ASSERT_EQ(n.mm->inputs[0]->producer->op, "Cast");
  EXPECT_EQ(n.mm->inputs[0]->producer->inputs[0], n.x);
  ASSERT_EQ(n.g.outputs().size(), 1u);
  EXPECT_EQ(n.g.outputs()[0]->name, "y");
  EXPECT_EQ(n.g.outputs()[0]->dtype, DataType::kFLOAT);
  EXPECT_EQ(n.g.outputs()[0]->producer->op, "Cast");
  infer_graph_inplace(n.g);  // still a valid graph
  EXPECT_FALSE(p.run(n.g));  // idempotent
}

TEST(LowerPrecision, PinnedLayerKeepsFloat32WhenObeyingConstraints) {
  Net n;
  n.act->precision = DataType::kFLOAT;
  passes::LowerPrecision p(DataType::kHALF, true, &always);
  ASSERT_TRUE(p.run(n.g));
  EXPECT_EQ(n.mm->outputs[0]->dtype, DataType::kHALF);
  EXPECT_EQ(n.act->outputs[0]->dtype, DataType::kFLOAT);
  ASSERT_EQ(n.act->inputs[0]->producer->op, "Cast");  // back to float32 before the pinned layer
  EXPECT_EQ(n.g.outputs()[0], n.act->outputs[0]);
}

TEST(LowerPrecision, UnsupportedLayersStayFloat32) {
  Net n;
  passes::LowerPrecision p(DataType::kBF16, false,
                           [](const ir::Node& node, const std::vector<ir::TensorInfo>&) { return node.op != "Activation"; });
  ASSERT_TRUE(p.run(n.g));
  EXPECT_EQ(n.mm->outputs[0]->dtype, DataType::kBF16);
  EXPECT_EQ(n.act->outputs[0]->dtype, DataType::kFLOAT);
  infer_graph_inplace(n.g);
}

TEST(LowerPrecision, HugeFiniteWeightsSaturateInsteadOfBecomingInfinite) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {3});
  auto* c = g.add_constant("mask_min", HostTensor::from_f32({-3.4e38f, 1.f, 70000.f}, {3}));
  auto* mul = g.add_node("ElementWise", "mul", {x, c->outputs[0]}, 1);
  mul->attrs.set("op", int64_t{1});
  g.mark_output(mul->outputs[0]);
  infer_graph_inplace(g);
  passes::LowerPrecision p(DataType::kHALF, false, &always);
  ASSERT_TRUE(p.run(g));
  const HostTensor& t = c->attrs.tensor("value");
  ASSERT_EQ(t.dtype(), DataType::kHALF);
  EXPECT_EQ(half_to_float(t.data<uint16_t>()[0]), -65504.f);
  EXPECT_EQ(half_to_float(t.data<uint16_t>()[1]), 1.f);
  EXPECT_EQ(half_to_float(t.data<uint16_t>()[2]), 65504.f);
}

TEST(LowerPrecision, Float32LowestSaturatesInBfloat16Too) {
  // float32's lowest value rounds to -inf in bfloat16 (its largest finite is 3.3895e38): saturated instead.
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2});
  auto* c = g.add_constant("mask_min", HostTensor::from_f32({-3.4028235e38f, 2.f}, {2}));
  auto* mul = g.add_node("ElementWise", "mul", {x, c->outputs[0]}, 1);
  mul->attrs.set("op", int64_t{1});
  g.mark_output(mul->outputs[0]);
  infer_graph_inplace(g);
  passes::LowerPrecision p(DataType::kBF16, false, &always);
  ASSERT_TRUE(p.run(g));
  const HostTensor& t = c->attrs.tensor("value");
  ASSERT_EQ(t.dtype(), DataType::kBF16);
  EXPECT_TRUE(std::isfinite(bf16_to_float(t.data<uint16_t>()[0])));
  EXPECT_LT(bf16_to_float(t.data<uint16_t>()[0]), -3.3e38f);
  EXPECT_EQ(bf16_to_float(t.data<uint16_t>()[1]), 2.f);
}

TEST(LowerPrecision, ShapeReadsTheLowPrecisionValueWithoutACast) {
  // Exported MatMuls read Shape of their activations to rebuild 3-D outputs; a Cast to float32 in front of
  // each Shape would convert the whole tensor only for its dims.
  Net n;
  ir::Node* shape = n.g.add_node("Shape", "shape", {n.mm->outputs[0]}, 1);
  shape->outputs[0]->name = "dims";
  n.g.mark_output(shape->outputs[0]);
  infer_graph_inplace(n.g);
  passes::LowerPrecision p(DataType::kHALF, false, &always);
  ASSERT_TRUE(p.run(n.g));
  EXPECT_EQ(shape->inputs[0], n.mm->outputs[0]);
  EXPECT_EQ(shape->inputs[0]->dtype, DataType::kHALF);
  size_t casts_to_float = 0;
  for (auto& node : n.g.nodes())
    if (node->op == "Cast" && node->outputs[0]->dtype == DataType::kFLOAT) ++casts_to_float;
  EXPECT_EQ(casts_to_float, 1u) << "only the network output's Cast back";
  infer_graph_inplace(n.g);
  EXPECT_EQ(shape->outputs[0]->dtype, DataType::kINT64);
}
