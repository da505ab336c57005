#include "passes/merge_parallel_gemms.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "passes/fusion_match.h"
#include "passes/view_ops.h"

namespace kiln::passes {

namespace {

using fusion::Uses;

// One GEMM of a group: y = A @ W (+ bias).
struct Branch {
  ir::Node* mm = nullptr;
  const HostTensor* weight = nullptr;
  bool weight_transposed = false;  // op_b TRANSPOSE: the weight is [N, K]
  int64_t k = 0, n = 0;
  ir::Node* bias_add = nullptr;    // the output's only user, a SUM with a per-column constant; null when none
  const HostTensor* bias = nullptr;
};

bool mergeable_dtype(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

// n as a branch, or false when it is no plain GEMM with a constant matrix weight of its own (see the header).
bool as_branch(ir::Node& n, const Uses& uses, Branch* b) {
  if (n.op != "MatrixMultiply" || n.inputs.size() != 2 || !n.inputs[0] || !n.inputs[1] || n.outputs.size() != 1)
    return false;
  if (views::pinned(&n) || ir::fused_activation(n.attrs) != -1) return false;
  const int64_t op_a = n.attrs.i("op_a", 0), op_b = n.attrs.i("op_b", 0);
  if ((op_a != 0 && op_a != 1) || (op_b != 0 && op_b != 1)) return false;
  const ir::Value* a = n.inputs[0];
  const ir::Value* w = n.inputs[1];
  const ir::Value* y = n.outputs[0];
  if (!mergeable_dtype(a->dtype) || y->dtype != a->dtype || y->is_output) return false;
  const HostTensor* wt = ir::constant_value(w);
  // A weight shared with other layers would be held twice: once merged, once for them.
  if (!wt || wt->dtype() != a->dtype || wt->shape().size() != 2 || w->is_output || uses.num_uses(w) != 1)
    return false;
  const int64_t k = op_b == 1 ? wt->shape()[1] : wt->shape()[0];
  const int64_t nn = op_b == 1 ? wt->shape()[0] : wt->shape()[1];
  if (k <= 0 || nn <= 0 || y->shape.empty() || y->shape.back() != nn) return false;
  if (op_a == 1 && a->shape.size() < 2) return false;
  const int64_t ka = a->shape.empty() ? -1 : op_a == 1 ? a->shape[a->shape.size() - 2] : a->shape.back();
  if (ka >= 0 && ka != k) return false;
  b->mm = &n;
  b->weight = wt;
  b->weight_transposed = op_b == 1;
  b->k = k;
  b->n = nn;
  return true;
}

// Fills b's bias when y's only user adds a constant along the last dim only (fuse_gemm's bias rule).
void find_bias(const Uses& uses, Branch* b) {
  ir::Value* y = b->mm->outputs[0];
  ir::Node* u = uses.only_user(y);
  if (!u || !fusion::is_elementwise(*u, fusion::kSum) || u->outputs.size() != 1 || views::pinned(u)) return;
  const ir::Value* out = u->outputs[0];
  if (out->is_output || out->dtype != y->dtype || out->shape != y->shape) return;
  const HostTensor* c = fusion::column_bias(*u, y);  // y's last dim is b->n (as_branch)
  if (!c) return;
  b->bias_add = u;
  b->bias = c;
}

// Branches that may become one GEMM: the same A, op_a and output batch/row dims.
struct Group {
  ir::Value* a = nullptr;
  int64_t op_a = 0;
  Dims rows;  // the output's shape without its last dim
  std::vector<Branch> branches;
};

Dims rows_of(const ir::Value* y) { return Dims(y->shape.begin(), y->shape.end() - 1); }


// "merged(a, b, c)" from the names of the nodes merged (what `kiln inspect` and profiles show).
std::string merged_name(const std::vector<const ir::Node*>& nodes) {
  std::string s = "merged(";
  for (size_t i = 0; i < nodes.size(); ++i) s += (i ? ", " : "") + nodes[i]->name;
  return s + ")";
}

// The branches' weights side by side: [K, sum N] (op_b NONE), or [sum N, K] (TRANSPOSE) when `transposed`.
HostTensor concat_weights(const std::vector<Branch>& bs, bool transposed) {
  const int64_t k = bs[0].k;
  int64_t total = 0;
  for (const Branch& b : bs) total += b.n;
  const DataType dt = bs[0].weight->dtype();
  const size_t es = dtype_size(dt);
  HostTensor out(dt, transposed ? Dims{total, k} : Dims{k, total});
  char* dst = static_cast<char*>(out.mutable_raw());
  int64_t col = 0;
  for (const Branch& b : bs) {
    const char* src = static_cast<const char*>(b.weight->raw());
    if (transposed) {  // every branch is [N_i, K]: its rows follow the previous branch's
      std::memcpy(dst + static_cast<size_t>(col * k) * es, src, static_cast<size_t>(b.n * k) * es);
    } else if (!b.weight_transposed) {  // [K, N_i] rows into columns col .. col + N_i
      for (int64_t r = 0; r < k; ++r)
        std::memcpy(dst + static_cast<size_t>(r * total + col) * es, src + static_cast<size_t>(r * b.n) * es,
                    static_cast<size_t>(b.n) * es);
    } else {  // [N_i, K] transposed into columns col .. col + N_i
      for (int64_t j = 0; j < b.n; ++j)
        for (int64_t r = 0; r < k; ++r)
          std::memcpy(dst + static_cast<size_t>(r * total + col + j) * es, src + static_cast<size_t>(j * k + r) * es,
                      es);
    }
    col += b.n;
  }
  return out;
}

// The branches' biases one after the other, as a [sum N] tensor (each holds N_i values in order, whatever
// its [1, .., 1, N_i] shape).
HostTensor concat_biases(const std::vector<Branch>& bs) {
  int64_t total = 0;
  for (const Branch& b : bs) total += b.n;
  const DataType dt = bs[0].bias->dtype();
  HostTensor out(dt, {total});
  char* dst = static_cast<char*>(out.mutable_raw());
  for (const Branch& b : bs) {
    std::memcpy(dst, b.bias->raw(), b.bias->nbytes());
    dst += b.bias->nbytes();
  }
  return out;
}

// Rewrites one group into GEMM (+ bias add) + Split; records the nodes to remove in `doomed`.
void merge(ir::Graph& g, const Uses& uses, const Group& grp, std::unordered_set<const ir::Node*>& doomed) {
  const std::vector<Branch>& bs = grp.branches;
  bool with_bias = true, all_transposed = true;
  std::vector<const ir::Node*> mms, adds;
  std::vector<int64_t> widths;
  int64_t total = 0;
  for (const Branch& b : bs) {
    with_bias = with_bias && b.bias_add;
    all_transposed = all_transposed && b.weight_transposed;
    mms.push_back(b.mm);
    adds.push_back(b.bias_add);
    widths.push_back(b.n);
    total += b.n;
  }
  const DataType dt = grp.a->dtype;
  Dims merged_shape = grp.rows;
  merged_shape.push_back(total);

  const std::string mm_name = fusion::fresh_name(g, merged_name(mms));
  ir::Node* w = g.add_constant(fusion::fresh_name(g, mm_name + "/weights"), concat_weights(bs, all_transposed));
  ir::Node* mm = g.add_node("MatrixMultiply", mm_name, {grp.a, w->outputs[0]}, 1);
  mm->attrs.set("op_a", grp.op_a);
  mm->attrs.set("op_b", int64_t{all_transposed ? 1 : 0});
  mm->outputs[0]->dtype = dt;
  mm->outputs[0]->shape = merged_shape;
  ir::Value* packed = mm->outputs[0];
  std::string split_base = mm_name;
  if (with_bias) {
    const std::string add_name = fusion::fresh_name(g, merged_name(adds));
    ir::Node* bias = g.add_constant(fusion::fresh_name(g, add_name + "/bias"), concat_biases(bs));
    ir::Node* add = g.add_node("ElementWise", add_name, {packed, bias->outputs[0]}, 1);
    add->attrs.set("op", int64_t{fusion::kSum});
    add->outputs[0]->dtype = dt;
    add->outputs[0]->shape = merged_shape;
    packed = add->outputs[0];
    split_base = add_name;
  }
  ir::Node* split = g.add_node("Split", fusion::fresh_name(g, split_base + "/split"), {packed}, static_cast<int>(bs.size()));
  split->attrs.set("axis", static_cast<int64_t>(merged_shape.size()) - 1);
  split->attrs.set("split", widths);

  for (size_t i = 0; i < bs.size(); ++i) {
    const Branch& b = bs[i];
    // The Split takes over the branch's value (name, users); the removed node keeps the Split's fresh one.
    ir::Node* last = with_bias ? b.bias_add : b.mm;
    ir::Value* kept = last->outputs[0];
    ir::Value* unused = split->outputs[i];
    split->outputs[i] = kept;
    kept->producer = split;
    last->outputs[0] = unused;
    unused->producer = last;
    doomed.insert(b.mm);
    doomed.insert(b.mm->inputs[1]->producer);  // the weight's Constant (only this GEMM read it)
    if (with_bias) {
      doomed.insert(b.bias_add);
      const ir::Value* c = fusion::other_operand(*b.bias_add, b.mm->outputs[0]);
      if (c && !c->is_output && uses.num_uses(c) == 1) doomed.insert(c->producer);
    }
  }
}

}  // namespace

bool MergeParallelGemms::run(ir::Graph& g) {
  Uses uses(g);
  std::vector<Group> groups;  // in the order of their first branch, branches in graph order
  for (auto& n : g.nodes()) {
    Branch b;
    if (!as_branch(*n, uses, &b)) continue;
    find_bias(uses, &b);
    ir::Value* a = n->inputs[0];
    const int64_t op_a = n->attrs.i("op_a", 0);
    const Dims rows = rows_of(n->outputs[0]);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& gr) {
      return gr.a == a && gr.op_a == op_a && gr.rows == rows && gr.branches[0].k == b.k;
    });
    if (it == groups.end()) {
      groups.push_back(Group{a, op_a, rows, {}});
      it = groups.end() - 1;
    }
    it->branches.push_back(b);
  }
  std::unordered_set<const ir::Node*> doomed;
  for (const Group& grp : groups)
    if (grp.branches.size() >= 2) merge(g, uses, grp, doomed);
  if (doomed.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return doomed.count(n) > 0; });
  g.topo_sort();
  return true;
}

}  // namespace kiln::passes
