#include "passes/fuse_gather_addend.h"

#include <vector>

#include "ir/gather_addend.h"
#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

using fusion::Uses;

bool addend_dtype(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

// A Gather of rows along axis 0 (DEFAULT mode) with no addend yet, of a dtype the addend can have.
bool row_gather(const ir::Node& n) {
  if (n.op != "Gather" || n.inputs.size() != 2 || !n.inputs[0] || !n.inputs[1] || n.outputs.size() != 1) return false;
  const int64_t rank = static_cast<int64_t>(n.inputs[0]->shape.size());
  const int64_t axis = n.attrs.i("axis", 0);
  return n.attrs.i("mode", 0) == 0 && rank > 0 && (axis == 0 || axis == -rank) && addend_dtype(n.outputs[0]->dtype);
}

// Whether `addend` is likely added to the gathered y as the Gather copies its rows (ir/gather_addend.h): on
// known dims that is sure; an unknown dim is taken as whatever fits, and if the real dims turn out otherwise
// the kernels add by elements instead, still numpy's broadcast. Shapes that can never fit stay unfused: the
// element path is the fallback for shapes that turn out so at run time, not a kernel tuned to be chosen.
bool addend_shape_ok(const ir::Value* addend, const ir::Value* y, size_t row_rank) {
  return ir::gather_addend_may_fit(addend->shape, y->shape, row_rank);
}

}  // namespace

bool FuseGatherAddend::run(ir::Graph& g) {
  Uses uses(g);
  std::vector<ir::Node*> gathers;
  for (auto& n : g.nodes())
    if (row_gather(*n)) gathers.push_back(n.get());
  bool changed = false;
  for (ir::Node* gather : gathers) {
    ir::Value* y = gather->outputs[0];
    ir::Node* sum = uses.only_user(y);
    if (!sum || !fusion::is_elementwise(*sum, fusion::kSum) || sum->outputs.size() != 1 ||
        !fusion::same_constraints(*gather, *sum))
      continue;
    ir::Value* addend = fusion::other_operand(*sum, y);  // nullptr for y + y
    const ir::Value* s = sum->outputs[0];
    // The fused y is the broadcast of the gathered rows and the addend, as the SUM's output is (ir/OPS.md).
    if (!addend || addend->dtype != y->dtype || s->dtype != y->dtype) continue;
    if (!addend_shape_ok(addend, y, gather->inputs[0]->shape.size() - 1)) continue;
    gather->inputs.push_back(addend);
    fusion::record_fused(*gather, *sum);
    fusion::take_output(*gather, *sum);
    uses.removed.insert(sum);
    changed = true;
  }
  if (changed) {
    g.remove_nodes_if([&](const ir::Node* n) { return uses.removed.count(n) > 0; });
    g.topo_sort();
  }
  return changed;
}

}  // namespace kiln::passes
