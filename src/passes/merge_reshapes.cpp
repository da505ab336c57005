#include "passes/pass.h"

namespace kiln::passes {

namespace {
// A Shuffle that only reshapes to a fully static shape.
bool static_reshape(const ir::Node& n) {
  if (n.op != "Shuffle" || n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  if (!n.attrs.ints("first_transpose").empty() || !n.attrs.ints("second_transpose").empty()) return false;
  return dims_known(n.outputs[0]->shape);
}
}  // namespace

bool MergeReshapes::run(ir::Graph& g) {
  bool changed = false;
  for (auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (!static_reshape(n) || !n.inputs[0]) continue;
    ir::Node* p = n.inputs[0]->producer;
    if (!p || !static_reshape(*p)) continue;
    // reshape(reshape(x)) == reshape(x) to the final shape; the first one dies if nothing else uses it.
    n.inputs[0] = p->inputs[0];
    n.attrs.set("has_reshape", int64_t{1});
    n.attrs.set("zero_is_placeholder", int64_t{0});
    n.attrs.set("reshape_dims", std::vector<int64_t>(n.outputs[0]->shape));
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
