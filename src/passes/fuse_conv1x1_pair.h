// FuseConv1x1Pair: a channels-last 1x1 Convolution A whose output is read by another one, B, becomes one
// Conv1x1Pair node (ir/ops/conv1x1_pair.h): y1 = A's output (output 0), y2 = B's (output 1). In ResNet-50 a
// bottleneck block's last 1x1 convolution (64 -> 256 channels, + residual + ReLU) feeds the next block's first
// (256 -> 64, + ReLU); both are memory-bound, and a kernel that computes both keeps the 256-channel y1 on chip
// for the second instead of reading it back.
//
// Both convolutions: attr channels_last = 1, 1x1 kernel, stride 1, dilation 1, no padding, groups 1, weights
// from a Constant node, bias absent or constant, x, weights, bias (and A's residual) of the output's float
// dtype. B reads y1 as its input 0 and has no residual; A may have a residual and any epilogue, and its
// output may have other readers and be a network output (y1 stays a value of the graph: every reader, the
// output mark and the name go with it, and likewise for y2). Layers whose user precision constraints differ
// are not merged (fusion::same_constraints). Each Convolution joins at most one pair: nodes are taken in
// topological order, so in a chain A -> B -> C the pair is (A, B), and when y1 feeds several B's the first
// one the predicate accepts is taken.
//
// The candidate node (with all six inputs; nullptr for an absent b1, r1 or b2) is offered to `supported`, the
// target backend's predicate (gpu::supports, as LowerPrecision and FusePointwise take it), with its inputs'
// TensorInfo (constant inputs with their values), so the backend's fused kernel decides which shapes and
// dtypes it takes; pairs it refuses stay two Convolutions. No predicate: every match is fused (tests).
//
// The pair is named "pair(A, B)" and lists both convolutions and what they had absorbed in `fused`. Run it
// once dtypes and the layout are final (after LowerPrecision and ChannelsLast), before FusePointwise.
#pragma once
#include <functional>
#include <vector>

#include "ir/op_registry.h"
#include "passes/pass.h"

namespace kiln::passes {

class FuseConv1x1Pair : public Pass {
 public:
  using Supported = std::function<bool(const ir::Node&, const std::vector<ir::TensorInfo>&)>;
  explicit FuseConv1x1Pair(Supported supported = nullptr) : supported_(std::move(supported)) {}
  std::string name() const override { return "fuse-conv1x1-pair"; }
  bool run(ir::Graph& g) override;

 private:
  Supported supported_;
};

}  // namespace kiln::passes
