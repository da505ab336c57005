#include "passes/fold_normalization_cast.h"

#include <algorithm>
#include <vector>

#include "passes/fusion_match.h"
#include "passes/view_ops.h"

namespace kiln::passes {

namespace {

bool output_type_set(const ir::Node& n) {
  return std::any_of(n.output_types.begin(), n.output_types.end(), [](const auto& t) { return t.has_value(); });
}

// A view of y that float32 moves through as well as half precision does, with the same values, and whose
// output type the user left to Kiln.
bool view_layer(const ir::Node* n) { return views::shape_only(n) && !views::pinned(n); }

// What the widening Cast `cast` folds into: the Normalization whose y it reads, directly or through views of y
// (GPT-2's export reshapes ln_f's output before the network output), each the only reader of the one before.
struct Foldable {
  ir::Node* norm = nullptr;
  std::vector<ir::Node*> views;  // from the Cast's input back towards the Normalization
};

Foldable foldable_normalization(const fusion::Uses& uses, ir::Node& cast) {
  if (cast.op != "Cast" || cast.inputs.size() != 1 || !cast.inputs[0] || cast.outputs.size() != 1) return {};
  if (!fusion::is_half_type(cast.inputs[0]->dtype) || cast.outputs[0]->dtype != DataType::kFLOAT ||
      output_type_set(cast))
    return {};
  Foldable f;
  ir::Node* reader = &cast;
  ir::Value* y = cast.inputs[0];
  while (view_layer(y->producer) && y->producer->inputs[0]->dtype == y->dtype) {
    if (uses.only_user(y) != reader) return {};
    reader = y->producer;
    f.views.push_back(reader);
    y = reader->inputs[0];
  }
  ir::Node* norm = y->producer;
  if (!norm || norm->op != "Normalization" || norm->outputs.size() != 1 || norm->inputs.empty() || !norm->inputs[0])
    return {};
  // y must be stored in x's dtype now (not folded already), and each value on the way read by the next layer
  // alone (none a network output).
  if (norm->inputs[0]->dtype != y->dtype || output_type_set(*norm) || uses.only_user(y) != reader) return {};
  f.norm = norm;
  return f;
}

}  // namespace

bool FoldNormalizationCast::run(ir::Graph& g) {
  fusion::Uses uses(g);
  for (auto& n : g.nodes()) {
    const Foldable f = foldable_normalization(uses, *n);
    if (!f.norm) continue;
    f.norm->attrs.set("output_dtype", static_cast<int64_t>(DataType::kFLOAT));
    f.norm->outputs[0]->dtype = DataType::kFLOAT;
    for (ir::Node* v : f.views) v->outputs[0]->dtype = DataType::kFLOAT;
    fusion::record_fused(*f.norm, *n);
    // The layer next to the Cast takes its output value (name, network-output mark), so that the Cast, now
    // holding that layer's old value, can go.
    fusion::take_output(f.views.empty() ? *f.norm : *f.views.front(), *n);
    uses.removed.insert(n.get());
  }
  if (uses.removed.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return uses.removed.count(n) > 0; });
  return true;
}

}  // namespace kiln::passes
