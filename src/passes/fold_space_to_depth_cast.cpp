#include "passes/fold_space_to_depth_cast.h"

#include <algorithm>

#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

// The Cast feeding `op` that the op can do itself, or nullptr.
ir::Node* foldable_cast(const ir::Graph& g, const ir::Node& op) {
  if (op.inputs.size() != 1 || !op.inputs[0] || op.outputs.size() != 1) return nullptr;
  ir::Value* low = op.inputs[0];
  ir::Node* cast = low->producer;
  if (!cast || cast->op != "Cast" || cast->inputs.size() != 1 || !cast->inputs[0]) return nullptr;
  if (cast->inputs[0]->dtype != DataType::kFLOAT || !fusion::is_half_type(low->dtype)) return nullptr;
  // The op must not convert already (its output is what it reads), and the Cast's output must have no
  // other use, or the Cast would stay and run anyway.
  if (op.outputs[0]->dtype != low->dtype || low->is_output) return nullptr;
  const std::vector<ir::Node*> users = g.users(low);
  if (users.size() != 1 || users[0] != &op) return nullptr;
  return cast;
}

}  // namespace

bool FoldSpaceToDepthCast::run(ir::Graph& g) {
  std::vector<const ir::Node*> folded;
  for (auto& n : g.nodes()) {
    if (n->op != "SpaceToDepthNhwc") continue;
    ir::Node* cast = foldable_cast(g, *n);
    if (!cast) continue;
    n->attrs.set("output_dtype", static_cast<int64_t>(n->inputs[0]->dtype));
    n->inputs[0] = cast->inputs[0];
    folded.push_back(cast);
  }
  if (folded.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return std::find(folded.begin(), folded.end(), n) != folded.end(); });
  return true;
}

}  // namespace kiln::passes
