#include "passes/fold_normalization_cast.h"

#include <algorithm>

#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

bool output_type_set(const ir::Node& n) {
  return std::any_of(n.output_types.begin(), n.output_types.end(), [](const auto& t) { return t.has_value(); });
}

// The Normalization whose y the widening Cast `cast` reads and may store itself, or nullptr.
ir::Node* foldable_normalization(const fusion::Uses& uses, ir::Node& cast) {
  if (cast.op != "Cast" || cast.inputs.size() != 1 || !cast.inputs[0] || cast.outputs.size() != 1) return nullptr;
  ir::Value* y = cast.inputs[0];
  ir::Node* norm = y->producer;
  if (!norm || norm->op != "Normalization" || norm->outputs.size() != 1 || norm->inputs.empty() || !norm->inputs[0])
    return nullptr;
  if (!fusion::is_half_type(y->dtype) || cast.outputs[0]->dtype != DataType::kFLOAT) return nullptr;
  // y must be stored in x's dtype now (not folded already), and the Cast its only reader (y no network output).
  if (norm->inputs[0]->dtype != y->dtype || output_type_set(*norm) || output_type_set(cast)) return nullptr;
  return uses.only_user(y) == &cast ? norm : nullptr;
}

}  // namespace

bool FoldNormalizationCast::run(ir::Graph& g) {
  fusion::Uses uses(g);
  for (auto& n : g.nodes()) {
    ir::Node* norm = foldable_normalization(uses, *n);
    if (!norm) continue;
    norm->attrs.set("output_dtype", static_cast<int64_t>(DataType::kFLOAT));
    fusion::record_fused(*norm, *n);
    fusion::take_output(*norm, *n);
    uses.removed.insert(n.get());
  }
  if (uses.removed.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return uses.removed.count(n) > 0; });
  return true;
}

}  // namespace kiln::passes
