// Shape tensors: graph inputs whose *contents* (not only their shapes) shape inference needs, such as the
// `shape` input of a Reshape, the `k` of a TopK or the scales of a Resize fed at run time. On the CPU
// backend inputs live in host memory, so the runtime reads them and analyzes shapes again with their values
// (TensorRT calls them shape inputs: engine.is_shape_inference_io). A GPU executor can reuse this as is.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/shape_analysis.h"

namespace kiln {

// Input slots of `op` whose values define its output shapes (empty for ops whose shapes depend on input
// shapes only). Ops whose output *sizes* depend on their data (NonZero, Unique, ...) are not listed: they
// run in the executor's dynamic mode instead.
const std::vector<int>& shape_defining_slots(const std::string& op);

// By value id: the values whose contents the inputs in `slots(op)` of g's nodes need: those inputs and,
// through their producers, what they are computed from (not through Shape, which reads only dims, nor
// Constants). A value `known(v)` says is available is neither marked nor walked through.
std::vector<bool> values_feeding_slots(const ir::Graph& g, const std::vector<int>& (*slots)(const std::string&),
                                       const std::function<bool(const ir::Value*)>& known);

// Per graph input (graph input order): whether its values are needed to compute shapes, given an analysis
// made without input values. Only inputs of at most kMaxHostValueElements elements qualify (their sizes
// come from `r`, or from `fallback_sizes` where `r` has unknown dims; -1 = unknown).
std::vector<bool> find_shape_inputs(const ir::Graph& g, const ShapeAnalysis& r,
                                    const std::vector<int64_t>& fallback_sizes = {});

}  // namespace kiln
