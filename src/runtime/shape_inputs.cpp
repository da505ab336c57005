#include "runtime/shape_inputs.h"

#include <map>

namespace kiln {

const std::vector<int>& shape_defining_slots(const std::string& op) {
  // Kept beside ir/OPS.md: when an op gains a shape-defining tensor input, list its slot here.
  static const std::map<std::string, std::vector<int>> table = {
      {"Shuffle", {1}},         {"Squeeze", {1}},        {"Unsqueeze", {1}},        {"Split", {1}},
      {"Slice", {1, 2, 3}},     {"DynamicSlice", {1, 2, 3, 4}}, {"ConstantOfShape", {0}}, {"Fill", {0}},
      {"Range", {0, 1, 2}},     {"Expand", {1}},         {"Tile", {1}},             {"Pad", {1, 3}},
      {"Resize", {1, 2}},       {"TopK", {1}},           {"Reduce", {1}},           {"OneHot", {1}},
      {"DFT", {1, 2}},          {"STFT", {1, 3}},        {"Window", {0}},           {"MelWeightMatrix", {0, 1}},
      {"AffineGrid", {1}},      {"CenterCropPad", {1}},  {"Col2Im", {1, 2}},        {"MaxUnpool", {2}},
  };
  static const std::vector<int> none;
  auto it = table.find(op);
  return it == table.end() ? none : it->second;
}

std::vector<bool> values_feeding_slots(const ir::Graph& g, const std::vector<int>& (*slots)(const std::string&),
                                       const std::function<bool(const ir::Value*)>& known) {
  std::vector<bool> feeds(g.values().size(), false);
  std::vector<const ir::Value*> work;
  auto mark = [&](const ir::Value* v) {
    if (v && !known(v) && !feeds[v->id]) {
      feeds[v->id] = true;
      work.push_back(v);
    }
  };
  for (auto& n : g.nodes())
    for (int slot : slots(n->op))
      if (slot < static_cast<int>(n->inputs.size())) mark(n->inputs[slot]);
  while (!work.empty()) {
    const ir::Node* p = work.back()->producer;
    work.pop_back();
    if (!p || p->op == "Shape" || p->op == "Constant") continue;
    for (const ir::Value* in : p->inputs) mark(in);
  }
  return feeds;
}

std::vector<bool> find_shape_inputs(const ir::Graph& g, const ShapeAnalysis& r,
                                    const std::vector<int64_t>& fallback_sizes) {
  const std::vector<bool> needed = values_feeding_slots(
      g, &shape_defining_slots, [&](const ir::Value* v) { return ir::constant_value(v) || !r.values[v->id].empty(); });
  std::vector<bool> out(g.inputs().size(), false);
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const ir::Value* v = g.inputs()[i];
    if (!needed[v->id]) continue;
    int64_t n = r.info[v->id].present ? volume(r.info[v->id].shape) : -1;
    if (n < 0 && i < fallback_sizes.size()) n = fallback_sizes[i];
    out[i] = n >= 0 && n <= kMaxHostValueElements;
  }
  return out;
}

}  // namespace kiln
