#include <algorithm>

#include "passes/pass.h"

namespace kiln::passes {

namespace {
bool is_identity(const ir::Node& n) {
  if (n.inputs.size() != 1 || !n.inputs[0] || n.outputs.size() != 1) return false;
  if (n.op == "Identity") return n.outputs[0]->dtype == n.inputs[0]->dtype;
  if (n.op == "Cast") return n.outputs[0]->dtype == n.inputs[0]->dtype;
  return false;
}
}  // namespace

bool EliminateIdentities::run(ir::Graph& g) {
  bool changed = false;
  std::vector<const ir::Node*> doomed;
  for (auto& n : g.nodes()) {
    if (!is_identity(*n) || n->outputs[0]->is_output) continue;
    g.replace_all_uses(n->outputs[0], n->inputs[0]);
    doomed.push_back(n.get());
    changed = true;
  }
  if (changed)
    g.remove_nodes_if([&](const ir::Node* n) { return std::find(doomed.begin(), doomed.end(), n) != doomed.end(); });
  return changed;
}

}  // namespace kiln::passes
