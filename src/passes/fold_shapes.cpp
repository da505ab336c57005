#include "ir/partial_values.h"
#include "passes/pass.h"
#include "runtime/shape_analysis.h"

namespace kiln::passes {

namespace {

// The ops whose integer result the partial-value walk (ir/partial_values.h) can know while their inputs are
// not all constants; FoldConstants handles the rest once they are.
bool shape_arithmetic(const ir::Node& n) {
  static const char* const kOps[] = {"Shape", "Gather", "Slice", "DynamicSlice", "Concatenation",
                                     "Unsqueeze", "Squeeze", "Shuffle", "Cast", "Identity"};
  for (const char* op : kOps)
    if (n.op == op) return true;
  return false;
}

void make_constant(ir::Node& n, HostTensor value) {
  n.op = "Constant";
  n.inputs.clear();
  n.attrs = ir::Attrs();
  n.outputs[0]->shape = value.shape();
  n.attrs.set("value", std::move(value));
}

}  // namespace

bool FoldShapes::run(ir::Graph& g) {
  bool changed = false;
  for (auto& np : g.nodes()) {
    ir::Node& n = *np;
    if (n.op == "Shape" && n.inputs.size() == 1 && n.inputs[0] && dims_known(n.inputs[0]->shape)) {
      n.outputs[0]->dtype = DataType::kINT64;
      make_constant(n, shape_node_value(n, n.inputs[0]->shape));
      changed = true;
      continue;
    }
    // A shape computation whose every entry the graph's known dims decide (Gather(Shape(x), 2) where x's dim 2
    // is known, though its batch dim is not).
    if (!shape_arithmetic(n) || n.outputs.size() != 1 || n.outputs[0]->is_output) continue;
    ir::Value* out = n.outputs[0];
    if (out->dtype != DataType::kINT64 && out->dtype != DataType::kINT32) continue;
    ir::PartialEntries p;
    if (!ir::partial_entries(out, &p) || !ir::all_known(p)) continue;
    std::vector<int64_t> v;
    for (const ir::PartialEntry& x : p) v.push_back(*x.value);
    HostTensor t(out->dtype, out->shape.empty() ? Dims{} : Dims{static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) {
      if (out->dtype == DataType::kINT64) t.mutable_data<int64_t>()[i] = v[i];
      else t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v[i]);
    }
    make_constant(n, std::move(t));
    changed = true;
  }
  return changed;
}

bool FoldShapeArithmetic::run(ir::Graph& g) {
  bool changed = false;
  for (int round = 0; round < 8; ++round) {
    const bool folded_shapes = shapes_.run(g);
    const bool folded_constants = constants_.run(g);
    if (!folded_shapes && !folded_constants) break;
    changed = true;
    // Folding may have made a reshape's dims known: refresh every shape before the next round looks.
    g.topo_sort();
    infer_graph_inplace(g);
  }
  return changed;
}

}  // namespace kiln::passes
