#include "passes/batch_first_attention.h"

#include "ir/ops/fused_attention_format.h"
#include "passes/fusion_match.h"
#include "passes/view_ops.h"
#include "runtime/shape_analysis.h"

namespace kiln::passes {
namespace {

using fusion::Uses;
using views::pinned;
using views::pure_transpose;
using views::reshape_only;

const std::vector<int64_t> kSwap01 = {1, 0, 2};

// One consumer (v no graph output: Uses::only_user), still there, no user constraints.
ir::Node* sole_user(const Uses& u, const ir::Value* v) {
  ir::Node* n = u.only_user(v);
  return n && !pinned(n) ? n : nullptr;
}

// A projection: MatrixMultiply(a, constant matrix) with nothing fused, a as input 0 taken row by row.
bool row_projection(const ir::Node* n, const ir::Value* a) {
  if (!n || n->op != "MatrixMultiply" || n->inputs.size() != 2 || n->inputs[0] != a || pinned(n)) return false;
  if (n->attrs.i("op_a", 0) != 0 || ir::fused_activation(n->attrs) != -1) return false;
  const HostTensor* w = ir::constant_value(n->inputs[1]);
  const int64_t op_b = n->attrs.i("op_b", 0);
  return w && w->shape().size() == 2 && (op_b == 0 || op_b == 1);
}

// The value after an optional bias: y's sole user when it adds a constant along the last dim, else y.
ir::Value* after_bias(const Uses& u, ir::Value* y) {
  ir::Node* add = sole_user(u, y);
  return add && fusion::column_bias(*add, y) ? add->outputs[0] : y;
}

bool rewrite_one(ir::Graph& g) {
  Uses u(g);
  for (auto& np : g.nodes()) {
    ir::Node* fa = np.get();
    if (fa->op != "FusedAttention" || pinned(fa) || fa->inputs.size() < 3) continue;
    const ir::AttentionFormat f = ir::attention_format(fa->attrs);
    ir::Value* p = fa->inputs[0];
    if (fa->inputs[1] != p || fa->inputs[2] != p || f.out_layout != ir::kAttnSeqFirstTokens || f.k_transposed) continue;
    bool seq_first = true;
    for (int t = 0; t < 3; ++t) seq_first = seq_first && f.layout[t] == ir::kAttnSeqFirstPacked;
    if (!seq_first || p->shape.size() != 5 || p->is_output) continue;
    const int64_t S = p->shape[0], N = p->shape[2], H = p->shape[3], D = p->shape[4];
    if (S <= 0 || N <= 0 || H <= 0 || D <= 0) continue;
    // Up from the packed tensor: reshapes only (each read by the next alone; p by this node's three inputs),
    // the bias, in_proj, the transpose of x.
    if (u.num_uses(p) != 3) continue;
    ir::Value* y = p;
    while (y->producer && reshape_only(y->producer) && !pinned(y->producer)) {
      ir::Value* in = y->producer->inputs[0];
      if (in->is_output || u.num_uses(in) != 1) break;
      y = in;
    }
    // y: in_proj's result [S, B, N * H * D], its bias add's output or the MatMul's.
    ir::Node* yp = y->producer;
    // [S, B, N*H*D] -> [S, B, N, H, D]: the volumes make the one unknown dim B in both.
    if (!yp || y == p || y->shape.size() != 3 || y->shape[0] != S || y->shape[2] != N * H * D || y->shape[1] != p->shape[1])
      continue;
    ir::Node* mm = yp;
    if (fusion::is_elementwise(*yp, fusion::kSum)) {
      ir::Value* m = nullptr;
      for (ir::Value* in : yp->inputs)
        if (in && in->producer && in->producer->op == "MatrixMultiply") m = in;
      if (!m || after_bias(u, m) != y || pinned(yp)) continue;
      mm = m->producer;
    }
    ir::Value* xt = mm->inputs.empty() ? nullptr : mm->inputs[0];
    if (!xt || !row_projection(mm, xt) || xt->is_output || mm->outputs[0]->is_output) continue;
    // Besides in_proj, only Shape layers may read the transposed x (torch reads the batch size there).
    std::vector<ir::Node*> shape_reads;
    bool only_shapes = true;
    for (ir::Node* n : u.users.at(xt)) {
      if (n == mm) continue;
      const bool whole_shape = n->op == "Shape" && !n->attrs.has("start") && !n->attrs.has("end");
      only_shapes = only_shapes && whole_shape;
      shape_reads.push_back(n);
    }
    if (!only_shapes) continue;
    ir::Node* t1 = xt->producer;
    if (!t1 || pinned(t1) || pure_transpose(t1) != kSwap01) continue;
    ir::Value* x = t1->inputs[0];
    if (x->shape.size() != 3 || x->shape[1] != S) continue;
    // Down from the attention: the reshape to token rows, out_proj (+ bias), the reshape back, the transpose.
    ir::Value* o = fa->outputs[0];
    ir::Node* r9 = sole_user(u, o);
    if (!r9 || !reshape_only(r9) || r9->outputs[0]->shape.size() != 2 || r9->outputs[0]->shape[1] != H * o->shape.back())
      continue;
    ir::Value* rows = r9->outputs[0];
    ir::Node* proj = sole_user(u, rows);
    if (!row_projection(proj, rows) || proj->outputs[0]->is_output) continue;
    ir::Value* z = after_bias(u, proj->outputs[0]);
    const int64_t E = z->shape.size() == 2 ? z->shape[1] : -1;
    ir::Node* r10 = sole_user(u, z);
    if (E <= 0 || !r10 || !reshape_only(r10) || r10->outputs[0]->is_output) continue;
    const Dims& back = r10->outputs[0]->shape;
    if (back.size() != 3 || back[0] != S || back[2] != E) continue;
    ir::Node* t7 = sole_user(u, r10->outputs[0]);
    if (!t7 || pure_transpose(t7) != kSwap01) continue;

    // Rewrite: in_proj reads x; attention reads [B, S, N, H, D] and writes [B, S, H, D]; the rows reshape back
    // to [B, S, E]; both transposes go.
    mm->inputs[0] = x;
    for (ir::Node* sh : shape_reads) {  // Shape(x^T) = Shape(x) gathered by the permutation
      ir::Value* dims = sh->outputs[0];
      ir::Node* of_x = g.add_node("Shape", g.unique_name(sh->name + "/batch_first"), {x}, 1);
      of_x->outputs[0]->dtype = dims->dtype;
      of_x->outputs[0]->shape = dims->shape;
      ir::Node* perm = g.add_constant(g.unique_name(sh->name + "/perm"), HostTensor::from_i64(kSwap01));
      ir::Node* pick = g.add_node("Gather", g.unique_name(sh->name + "/permuted"), {of_x->outputs[0], perm->outputs[0]}, 1);
      pick->attrs.set("axis", int64_t{0});
      pick->outputs[0]->dtype = dims->dtype;
      pick->outputs[0]->shape = dims->shape;
      replace_value(g, dims, pick->outputs[0]);
    }
    ir::Value* packed = views::add_reshape(g, fusion::fresh_name(g, p->name + "/batch_first"), y, {0, S, N, H, D}, {x->shape[0], S, N, H, D});
    ir::AttentionFormat bf = f;
    for (int t = 0; t < 3; ++t) bf.layout[t] = ir::kAttnPacked;
    bf.out_layout = ir::kAttnTokensMajor;
    ir::set_attention_format(fa->attrs, bf);
    for (int t = 0; t < 3; ++t) fa->inputs[t] = packed;
    ir::Value* unbatched = views::add_reshape(g, fusion::fresh_name(g, r10->name + "/batch_first"), z, {-1, S, E}, {x->shape[0], S, E});
    replace_value(g, t7->outputs[0], unbatched);
    EliminateDeadNodes().run(g);
    g.topo_sort();
    infer_graph_inplace(g);
    return true;
  }
  return false;
}

}  // namespace

bool BatchFirstAttention::run(ir::Graph& g) {
  bool changed = false;
  while (rewrite_one(g)) changed = true;
  return changed;
}

}  // namespace kiln::passes
