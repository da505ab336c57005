// Reading the data-movement layers that only change how a tensor is viewed (Shuffle, Squeeze, Unsqueeze),
// shared by the passes that rewrite or look through them (simplify_views, fuse_attention).
#pragma once
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes::views {

// The user pinned the node's precision or an output type: it may not be merged away.
inline bool pinned(const ir::Node* n) {
  if (n->precision) return true;
  for (auto& t : n->output_types)
    if (t) return true;
  return false;
}

// A Shuffle that is one transpose and nothing else (Shuffle = transpose2(reshape(transpose1(x))): no reshape,
// an identity second transpose): its permutation (output dim j = input dim perm[j]), or empty.
inline std::vector<int64_t> pure_transpose(const ir::Node* n) {
  if (!n || n->op != "Shuffle" || n->inputs.empty() || !n->inputs[0] || (n->inputs.size() > 1 && n->inputs[1])) return {};
  if (n->attrs.i("has_reshape", n->attrs.has("reshape_dims") ? 1 : 0) != 0) return {};  // infer_shuffle's rule
  const std::vector<int64_t> second = n->attrs.ints("second_transpose");
  for (size_t i = 0; i < second.size(); ++i)
    if (second[i] != static_cast<int64_t>(i)) return {};
  std::vector<int64_t> perm = n->attrs.ints("first_transpose");
  if (perm.size() != n->inputs[0]->shape.size()) return {};
  return perm;
}

inline bool is_transpose(const ir::Node* n, const std::vector<int64_t>& perm) {
  return n && !perm.empty() && pure_transpose(n) == perm;
}

// A Shuffle that only reshapes (no transposes), with its dims as an attribute or a shape input.
inline bool reshape_only(const ir::Node* n) {
  if (!n || n->op != "Shuffle" || n->inputs.empty() || !n->inputs[0] || n->outputs.size() != 1) return false;
  for (const char* t : {"first_transpose", "second_transpose"}) {
    const std::vector<int64_t> p = n->attrs.ints(t);
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// A layer that changes only its input's shape, never the order of its elements or their values: a reshape-only
// Shuffle, a Squeeze, an Unsqueeze. Any dtype moves through it unchanged.
inline bool shape_only(const ir::Node* n) {
  if (!n || n->outputs.size() != 1 || n->inputs.empty() || !n->inputs[0]) return false;
  return reshape_only(n) || n->op == "Squeeze" || n->op == "Unsqueeze";
}

// A Gather that picks by constant indices alone (default mode, no elementwise dims): its integer indices,
// with its axis normalized for the gathered tensor's rank in *axis; nullptr otherwise. The view rewrites and
// the attention pass read such Gathers as slices.
inline const HostTensor* constant_gather(const ir::Node* n, int64_t* axis) {
  if (!n || n->op != "Gather" || n->inputs.size() != 2 || !n->inputs[0] || !n->inputs[1]) return nullptr;
  if (n->attrs.i("mode", 0) != 0 || n->attrs.i("num_elementwise_dims", 0) != 0) return nullptr;
  const HostTensor* idx = ir::constant_value(n->inputs[1]);
  if (!idx || (idx->dtype() != DataType::kINT64 && idx->dtype() != DataType::kINT32)) return nullptr;
  const int64_t rank = static_cast<int64_t>(n->inputs[0]->shape.size());
  int64_t a = n->attrs.i("axis", 0);
  if (a < 0) a += rank;
  if (a < 0 || a >= rank) return nullptr;
  *axis = a;
  return idx;
}

// A reshape-only Shuffle of x to static `dims` (with zero_ph, a 0 copies x's dim at that index; one -1 is
// inferred), its output given `shape` (what inference will find) until the graph is re-inferred.
inline ir::Value* add_reshape(ir::Graph& g, const std::string& name, ir::Value* x, const std::vector<int64_t>& dims,
                              Dims shape, bool zero_ph = true) {
  ir::Node* r = g.add_node("Shuffle", name, {x}, 1);
  r->attrs.set("has_reshape", int64_t{1});
  r->attrs.set("reshape_dims", dims);
  r->attrs.set("zero_is_placeholder", int64_t{zero_ph ? 1 : 0});
  r->outputs[0]->dtype = x->dtype;
  r->outputs[0]->shape = std::move(shape);
  return r->outputs[0];
}

}  // namespace kiln::passes::views
