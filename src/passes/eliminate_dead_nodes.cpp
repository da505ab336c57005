#include <unordered_set>

#include "passes/pass.h"

namespace kiln::passes {

bool EliminateDeadNodes::run(ir::Graph& g) {
  // Walk back from the outputs; everything not reached is dead.
  std::unordered_set<const ir::Node*> live;
  std::vector<const ir::Node*> stack;
  for (auto* v : g.outputs())
    if (v->producer) stack.push_back(v->producer);
  while (!stack.empty()) {
    const ir::Node* n = stack.back();
    stack.pop_back();
    if (!live.insert(n).second) continue;
    for (auto* in : n->inputs)
      if (in && in->producer) stack.push_back(in->producer);
  }
  size_t before = g.num_nodes();
  g.remove_nodes_if([&](const ir::Node* n) { return !live.count(n); });
  return g.num_nodes() != before;
}

}  // namespace kiln::passes
