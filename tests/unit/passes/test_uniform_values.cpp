// Uniform values (passes/uniform_values.h): what the build may conclude about every element of a tensor whose
// shape it does not know, and what it must not.
#include <gtest/gtest.h>

#include "passes/uniform_values.h"

using namespace kiln;

namespace {

ir::Value* bool_constant(ir::Graph& g, const std::vector<int64_t>& bits, Dims shape) {
  HostTensor t(DataType::kBOOL, shape);
  for (size_t i = 0; i < bits.size(); ++i) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(bits[i]);
  return g.add_constant(g.unique_name("b"), t)->outputs[0];
}

ir::Value* float_constant(ir::Graph& g, const std::vector<float>& v, Dims shape) {
  return g.add_constant(g.unique_name("f"), HostTensor::from_f32(v, shape))->outputs[0];
}

ir::Value* add(ir::Graph& g, const std::string& op, std::vector<ir::Value*> in, DataType dt) {
  ir::Node* n = g.add_node(op, g.unique_name(op), std::move(in), 1);
  n->outputs[0]->dtype = dt;
  return n->outputs[0];
}

}  // namespace

// newer transformers' mask when none is given: Where(Expand(all-true, [B, 1, S, S]), 0, finfo.min).
TEST(UniformValues, ExpandedConditionPicksTheZeroBranch) {
  ir::Graph g;
  ir::Value* shape = g.add_input("shape", DataType::kINT64, {4});
  ir::Value* cond = add(g, "Expand", {bool_constant(g, {1, 1, 1}, {1, 1, 3, 1}), shape}, DataType::kBOOL);
  bool truth = false;
  EXPECT_TRUE(passes::uniform_bool(cond, &truth));
  EXPECT_TRUE(truth);
  ir::Value* mask = add(g, "Select", {cond, float_constant(g, {0.f}, {}), float_constant(g, {-3.4e38f}, {})},
                        DataType::kFLOAT);
  EXPECT_TRUE(passes::all_zero(mask));
  ir::Value* cast = add(g, "Cast", {mask}, DataType::kHALF);
  EXPECT_TRUE(passes::all_zero(cast));
  // The condition false everywhere picks the fill: not zero.
  ir::Value* never = add(g, "Expand", {bool_constant(g, {0, 0}, {2}), shape}, DataType::kBOOL);
  ir::Value* filled = add(g, "Select", {never, float_constant(g, {0.f}, {}), float_constant(g, {-1e9f}, {})},
                          DataType::kFLOAT);
  EXPECT_TRUE(passes::uniform_bool(never, &truth));
  EXPECT_FALSE(truth);
  EXPECT_FALSE(passes::all_zero(filled));
}

TEST(UniformValues, MixedOrUnknownValuesAreNotUniform) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kBOOL, {-1, 3});
  ir::Value* y = g.add_input("y", DataType::kFLOAT, {-1, 3});
  bool truth;
  EXPECT_FALSE(passes::uniform_bool(x, &truth)) << "a network input";
  EXPECT_FALSE(passes::uniform_bool(bool_constant(g, {1, 0, 1}, {3}), &truth)) << "mixed constant";
  EXPECT_FALSE(passes::uniform_bool(bool_constant(g, {}, {0}), &truth)) << "no element to read";
  EXPECT_FALSE(passes::all_zero(y));
  EXPECT_FALSE(passes::all_zero(float_constant(g, {0.f, 1e-30f}, {2})));
  // A Select on an unknown condition is zero only when both branches are.
  ir::Value* z = float_constant(g, {0.f}, {});
  EXPECT_TRUE(passes::all_zero(add(g, "Select", {x, z, float_constant(g, {-0.f}, {})}, DataType::kFLOAT)));
  EXPECT_FALSE(passes::all_zero(add(g, "Select", {x, z, y}, DataType::kFLOAT)));
  // Value-changing layers are not looked through.
  EXPECT_FALSE(passes::all_zero(add(g, "Unary", {z}, DataType::kFLOAT)));
}
