#include "backends/cuda/host_parameters.h"

#include <map>

#include "ir/op_registry.h"

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
  std::vector<bool> feeds(g.values().size(), false);
  std::vector<const ir::Value*> work;
  auto mark = [&](const ir::Value* v) {
    if (v && !ir::constant_value(v) && !feeds[v->id]) {
      feeds[v->id] = true;
      work.push_back(v);
    }
  };
  for (auto& n : g.nodes())
    for (int slot : host_parameter_slots(n->op))
      if (slot < static_cast<int>(n->inputs.size())) mark(n->inputs[slot]);
  // A parameter computed from other tensors (axis = Add(a, b)) is known on the host when they are: shape
  // analysis evaluates small nodes whose inputs it knows.
  while (!work.empty()) {
    const ir::Node* p = work.back()->producer;
    work.pop_back();
    if (!p || p->op == "Shape" || p->op == "Constant") continue;
    for (const ir::Value* in : p->inputs) mark(in);
  }
  return feeds;
}

}  // namespace kiln::cuda
