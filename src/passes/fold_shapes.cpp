#include "passes/pass.h"
#include "runtime/shape_analysis.h"

namespace kiln::passes {

bool FoldShapes::run(ir::Graph& g) {
  bool changed = false;
  for (auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (n.op != "Shape" || n.inputs.size() != 1 || !n.inputs[0] || !dims_known(n.inputs[0]->shape)) continue;
    HostTensor value = shape_node_value(n, n.inputs[0]->shape);
    n.op = "Constant";
    n.inputs.clear();
    n.attrs = ir::Attrs();
    n.outputs[0]->dtype = DataType::kINT64;
    n.outputs[0]->shape = value.shape();
    n.attrs.set("value", std::move(value));
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
