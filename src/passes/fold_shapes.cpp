#include "passes/pass.h"

namespace kiln::passes {

bool FoldShapes::run(ir::Graph& g) {
  bool changed = false;
  for (auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (n.op != "Shape" || n.inputs.size() != 1 || !n.inputs[0] || !dims_known(n.inputs[0]->shape)) continue;
    const Dims& s = n.inputs[0]->shape;
    int64_t rank = static_cast<int64_t>(s.size());
    auto clamp = [&](int64_t v) { return std::min(std::max(v < 0 ? v + rank : v, int64_t{0}), rank); };
    int64_t start = clamp(n.attrs.i("start", 0)), end = clamp(n.attrs.i("end", rank));
    Dims part;
    for (int64_t i = start; i < end; ++i) part.push_back(s[i]);
    n.op = "Constant";
    n.inputs.clear();
    n.attrs = ir::Attrs();
    n.outputs[0]->dtype = DataType::kINT64;
    n.outputs[0]->shape = {static_cast<int64_t>(part.size())};
    n.attrs.set("value", HostTensor::from_i64(part));
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
