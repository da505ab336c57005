#include "backends/cuda/host_parameters.h"

#include <map>

#include "ir/op_registry.h"
#include "runtime/shape_inputs.h"

namespace kiln::cuda {

const std::vector<int>& host_parameter_slots(const std::string& op) {
  // The kernels that read TensorRef::host of these inputs (kernels/*.cu). Inputs read on the device, or
  // read on the host only when a copy happens to exist (Pad's and Slice's fill value), are not listed.
  static const std::map<std::string, std::vector<int>> table = {
      {"Reduce", {1}},       {"CumSum", {1}},     {"Fill", {1, 2}},  {"Resize", {2}},
      {"Slice", {1, 3}},     {"DynamicSlice", {1, 2, 3, 4}},         {"Pad", {1, 3}},
  };
  static const std::vector<int> none;
  auto it = table.find(op);
  return it == table.end() ? none : it->second;
}

std::vector<bool> values_feeding_host_parameters(const ir::Graph& g) {
  // A parameter computed from other tensors (axis = Add(a, b)) is known on the host when they are: shape
  // analysis evaluates small nodes whose inputs it knows.
  return values_feeding_slots(g, &host_parameter_slots, [](const ir::Value* v) { return ir::constant_value(v) != nullptr; });
}

}  // namespace kiln::cuda
