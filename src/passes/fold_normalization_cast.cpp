#include "passes/fold_normalization_cast.h"

#include <algorithm>
#include <vector>

#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

bool is_half_type(DataType t) { return t == DataType::kHALF || t == DataType::kBF16; }

bool output_type_set(const ir::Node& n) {
  return std::any_of(n.output_types.begin(), n.output_types.end(), [](const auto& t) { return t.has_value(); });
}

// The Normalization whose y the widening Cast `cast` reads and may store itself, or nullptr.
ir::Node* foldable_normalization(const ir::Graph& g, const ir::Node& cast) {
  if (cast.op != "Cast" || cast.inputs.size() != 1 || !cast.inputs[0] || cast.outputs.size() != 1) return nullptr;
  ir::Value* y = cast.inputs[0];
  ir::Node* norm = y->producer;
  if (!norm || norm->op != "Normalization" || norm->outputs.size() != 1 || norm->inputs.empty() || !norm->inputs[0])
    return nullptr;
  if (!is_half_type(y->dtype) || cast.outputs[0]->dtype != DataType::kFLOAT) return nullptr;
  // y must be stored in x's dtype now (not folded already), and the Cast its only reader.
  if (norm->inputs[0]->dtype != y->dtype || y->is_output || output_type_set(*norm) || output_type_set(cast))
    return nullptr;
  const std::vector<ir::Node*> users = g.users(y);
  if (users.size() != 1 || users[0] != &cast) return nullptr;
  return norm;
}

}  // namespace

bool FoldNormalizationCast::run(ir::Graph& g) {
  std::vector<const ir::Node*> folded;
  for (auto& n : g.nodes()) {
    ir::Node* norm = foldable_normalization(g, *n);
    if (!norm) continue;
    norm->attrs.set("output_dtype", static_cast<int64_t>(DataType::kFLOAT));
    fusion::record_fused(*norm, *n);
    fusion::take_output(*norm, *n);
    folded.push_back(n.get());
  }
  if (folded.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return std::find(folded.begin(), folded.end(), n) != folded.end(); });
  return true;
}

}  // namespace kiln::passes
