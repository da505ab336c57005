// A pass test's graph as an engine would run it: written into a plan and read back for the CPU target, with
// its shapes inferred again, so a test can check that what a pass produced (new ops, attributes, NHWC shapes)
// survives the plan and still computes the same.
#pragma once
#include <cstdint>
#include <vector>

#include "plan/plan_reader.h"
#include "plan/plan_writer.h"
#include "runtime/engine_data.h"
#include "runtime/shape_analysis.h"

namespace kiln::fusetest {

// g has one input "x" of the static shape x_shape and one output "y" (float32 both).
inline EngineData through_plan(const ir::Graph& g, const Dims& x_shape) {
  EngineData e;
  e.graph = g.clone();
  e.io = {IOTensorInfo{"x", true, DataType::kFLOAT, x_shape, {{x_shape, x_shape, x_shape}}},
          IOTensorInfo{"y", false, DataType::kFLOAT, g.outputs()[0]->shape, {}}};
  const std::vector<uint8_t> bytes = plan::write_plan(e);
  EngineData r = plan::read_plan(bytes.data(), bytes.size(), "cpu");
  infer_graph_inplace(*r.graph);
  return r;
}

}  // namespace kiln::fusetest
