// What one layer costs in arithmetic and memory traffic, for the per-layer profile: `kiln bench --profile`
// and TensorRT's IProfiler report each layer's time next to the TFLOP/s or GB/s it reached, which tells a
// compute-bound layer (far from the GEMM peak) from a memory-bound one (far from HBM bandwidth).
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "kiln/runtime.h"

namespace kiln {

struct LayerCost {
  double flops = 0;  // multiply-adds count 2; 0 for data movement
  double bytes = 0;  // every input (weights included) read once plus every output written once
};

// Shapes are the run-time ones (fully known).
LayerCost layer_cost(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs,
                     const std::vector<ir::TensorInfo>& outputs);

// A profile row for the node: name, op and cost (ms is the caller's to fill).
LayerTiming layer_timing(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs,
                         const std::vector<ir::TensorInfo>& outputs);

}  // namespace kiln
