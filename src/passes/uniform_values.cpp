#include "passes/uniform_values.h"


namespace kiln::passes {

namespace {

constexpr int kMaxDepth = 16;

// Layers whose output elements are all elements of their first input (repeated, moved or regrouped):
// Expand broadcasts, Shuffle/Squeeze/Unsqueeze/Identity view. Value-changing ops are handled apart.
bool keeps_values(const ir::Node& n) {
  return n.op == "Expand" || n.op == "Shuffle" || n.op == "Squeeze" || n.op == "Unsqueeze" || n.op == "Identity";
}

// The constant's elements all equal `want` when compared as doubles (bool: 0 or 1).
bool constant_all(const HostTensor& t, double want) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.get_f64(i) != want) return false;
  return true;
}

}  // namespace

bool uniform_bool(const ir::Value* v, bool* truth, int depth) {
  if (!v || v->dtype != DataType::kBOOL || depth > kMaxDepth) return false;
  if (const HostTensor* c = ir::constant_value(v)) {
    if (c->numel() == 0) return false;  // no element to read the value from
    const bool first = c->get_i64(0) != 0;
    if (!constant_all(*c, first ? 1.0 : 0.0)) return false;
    *truth = first;
    return true;
  }
  const ir::Node* n = v->producer;
  if (!n || n->inputs.empty() || !n->inputs[0]) return false;
  if (keeps_values(*n) || (n->op == "Cast" && n->inputs[0]->dtype == DataType::kBOOL))
    return uniform_bool(n->inputs[0], truth, depth + 1);
  return false;
}

bool all_zero(const ir::Value* v, int depth) {
  if (!v || depth > kMaxDepth) return false;
  if (const HostTensor* c = ir::constant_value(v)) return constant_all(*c, 0.0);
  const ir::Node* n = v->producer;
  if (!n || n->inputs.empty() || !n->inputs[0]) return false;
  if (keeps_values(*n) || n->op == "Cast") return all_zero(n->inputs[0], depth + 1);  // a cast keeps 0 as 0
  if (n->op == "Select" && n->inputs.size() == 3) {
    bool truth;
    if (uniform_bool(n->inputs[0], &truth, depth + 1)) return all_zero(n->inputs[truth ? 1 : 2], depth + 1);
    return all_zero(n->inputs[1], depth + 1) && all_zero(n->inputs[2], depth + 1);
  }
  return false;
}

}  // namespace kiln::passes
