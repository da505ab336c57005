#include "backends/cpu/eval.h"
#include "passes/pass.h"

namespace kiln::passes {

namespace {
bool foldable(const ir::Node& n) {
  if (n.op == "Constant" || n.outputs.size() != 1) return false;
  if (n.op == "Fill" && n.attrs.i("op", 0) != 0) return false;  // random fills stay random per run
  if (n.inputs.empty() && n.op != "Fill") return false;
  for (auto* in : n.inputs)
    if (in && !ir::constant_value(in)) return false;
  return true;
}
}  // namespace

bool FoldConstants::run(ir::Graph& g) {
  bool changed = false;
  for (auto& np : g.nodes()) {  // in topological order, so folds cascade in one run
    ir::Node& n = *np;
    if (!foldable(n)) continue;
    std::vector<const HostTensor*> ins;
    int64_t in_bytes = 0;
    for (auto* in : n.inputs) {
      ins.push_back(in ? ir::constant_value(in) : nullptr);
      if (in) in_bytes += static_cast<int64_t>(ir::constant_value(in)->nbytes());
    }
    std::vector<HostTensor> out;
    try {
      out = cpu::eval_node(n, ins);
    } catch (const Error&) {
      continue;  // leave it to run time, where the error is reported with real inputs
    }
    if (static_cast<int64_t>(out[0].nbytes()) > in_bytes + max_growth_bytes) continue;
    // Turn the node into a Constant in place: its output value (and name) stay the same.
    n.op = "Constant";
    n.inputs.clear();
    n.attrs = ir::Attrs();
    n.outputs[0]->dtype = out[0].dtype();
    n.outputs[0]->shape = out[0].shape();
    n.attrs.set("value", std::move(out[0]));
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
