// Fuses connected groups of pointwise nodes (ElementWise, Unary, Activation, Cast, Select, and Scale with
// constant coefficients) into one FusedPointwise node (ir/pointwise_program.h), which the CUDA backend
// compiles into a single kernel with NVRTC.
//
// A group has one sink (the node whose output leaves the group: a graph output, or read by nodes outside)
// and grows backwards from it: a producer joins when it is fusable, its output is not a graph output, and
// every reader of its output is already in the group. Groups are therefore convex (no path leaves the group
// and comes back), and every intermediate value disappears from the graph. Only groups of two or more
// nodes are fused. The group's external values become the node's inputs (numpy-broadcast onto the output:
// pointwise ops commute with broadcasting, so evaluating each node at the output index is exact); constants
// with one element become immediates of the program; Scale's CHANNEL/ELEMENTWISE coefficients become
// constants reshaped to broadcast against x.
//
// Run it after the other fusions and after LowerPrecision: dtypes are final, and float16/bfloat16
// intermediates are then computed in float32 without rounding (slightly more accurate than the unfused
// graph; explicit Casts still round). The `supported` predicate (the target backend's, as LowerPrecision
// takes it) excludes nodes the target cannot run; without one, every node of a program dtype is fusable.
#pragma once
#include <functional>

#include "ir/op_registry.h"
#include "passes/pass.h"

namespace kiln::passes {

class FusePointwise : public Pass {
 public:
  using Supported = std::function<bool(const ir::Node&, const std::vector<ir::TensorInfo>&)>;
  explicit FusePointwise(Supported supported = nullptr) : supported_(std::move(supported)) {}
  std::string name() const override { return "fuse-pointwise"; }
  bool run(ir::Graph& g) override;

  int max_inputs = 32;        // external inputs of one fused node (kernel parameters)
  int max_instructions = 512; // program length

 private:
  Supported supported_;
};

}  // namespace kiln::passes
