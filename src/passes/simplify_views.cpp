// SimplifyViews: see simplify_views.h for the rules. Each rule is tried on every node of a snapshot of the
// graph; between rules the graph is re-sorted, re-inferred and swept of dead layers, so the next rule sees
// true shapes and use counts (a replaced transpose would otherwise still count as a reader of its input).
#include "passes/simplify_views.h"

#include <algorithm>
#include <set>

#include "passes/fusion_match.h"
#include "passes/view_ops.h"
#include "runtime/shape_analysis.h"

namespace kiln::passes {
namespace {

using fusion::Uses;
using views::pinned;
using views::pure_transpose;
using views::reshape_only;

// The axes of a Squeeze / Unsqueeze (attribute or constant input 1), normalized for a tensor of `rank` dims
// (the Unsqueeze's output rank, the Squeeze's input rank).
bool axes_of(const ir::Node& n, int64_t rank, std::vector<int64_t>* out) {
  std::vector<int64_t> axes = n.attrs.ints("axes");
  if (n.inputs.size() > 1 && n.inputs[1]) {
    const HostTensor* c = ir::constant_value(n.inputs[1]);
    if (!c || (c->dtype() != DataType::kINT64 && c->dtype() != DataType::kINT32)) return false;
    axes = c->to_i64();
  }
  if (axes.empty()) return false;
  std::set<int64_t> seen;
  for (int64_t& a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank || !seen.insert(a).second) return false;
  }
  *out = axes;
  return true;
}

// Reshape dims for x's shape `xs` with dim `at` split into (a, b) (-1 where unknown): dims before the split
// that are unknown copy x's (0 placeholders keep their index); dims after it must be known (their index
// moves). False when that cannot be written (an unknown after the split, two unknowns among a and b, or a
// known 0 that a placeholder would misread).
bool split_target(const Dims& xs, size_t at, int64_t a, int64_t b, std::vector<int64_t>* target) {
  if (a == 0 || b == 0 || (a < 0 && b < 0)) return false;
  target->clear();
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i] == 0) return false;
    if (i == at) {
      target->push_back(a < 0 ? -1 : a);
      target->push_back(b < 0 ? -1 : b);
    } else if (i < at) {
      target->push_back(xs[i] < 0 ? 0 : xs[i]);
    } else {
      if (xs[i] < 0) return false;
      target->push_back(xs[i]);
    }
  }
  return true;
}

void make_transpose(ir::Node* n, ir::Value* x, const std::vector<int64_t>& perm) {
  n->op = "Shuffle";
  n->inputs = {x};
  n->attrs = ir::Attrs();
  n->attrs.set("first_transpose", perm);
}

// Squeeze(Transpose_p(Unsqueeze(x))) removing exactly the added dims -> Transpose(x).
bool unit_transpose(ir::Graph&, const Uses& u, ir::Node* sq) {
  if (sq->op != "Squeeze" || pinned(sq) || sq->inputs.empty() || !sq->inputs[0]) return false;
  ir::Value* tv = sq->inputs[0];
  ir::Node* t = tv->producer;
  const std::vector<int64_t> p = pure_transpose(t);
  if (p.empty() || pinned(t) || u.only_user(tv) != sq) return false;
  ir::Value* uv = t->inputs[0];
  ir::Node* un = uv->producer;
  if (!un || un->op != "Unsqueeze" || pinned(un) || u.only_user(uv) != t || !un->inputs[0]) return false;
  const int64_t r = static_cast<int64_t>(p.size());
  std::vector<int64_t> added, squeezed;
  if (!axes_of(*un, r, &added) || !axes_of(*sq, r, &squeezed) || added.size() != squeezed.size()) return false;
  const std::set<int64_t> added_set(added.begin(), added.end()), squeezed_set(squeezed.begin(), squeezed.end());
  std::set<int64_t> squeezed_sources;
  for (int64_t j : squeezed) squeezed_sources.insert(p[j]);
  if (squeezed_sources != added_set) return false;
  std::vector<int64_t> renumber(r, -1);  // x's dims, without the added ones
  for (int64_t i = 0, k = 0; i < r; ++i)
    if (!added_set.count(i)) renumber[i] = k++;
  std::vector<int64_t> perm;
  for (int64_t j = 0; j < r; ++j)
    if (!squeezed_set.count(j)) perm.push_back(renumber[p[j]]);
  make_transpose(sq, un->inputs[0], perm);
  return true;
}

// Reshape(Transpose_p(x)) splitting one dim of the transposed tensor -> Transpose_p'(Reshape(x)).
bool split_first(ir::Graph& g, const Uses& u, ir::Node* r) {
  if (!reshape_only(r) || pinned(r)) return false;
  ir::Value* tv = r->inputs[0];
  ir::Node* t = tv->producer;
  const std::vector<int64_t> p = pure_transpose(t);
  if (p.empty() || pinned(t) || u.only_user(tv) != r) return false;
  const Dims& in = tv->shape;
  const Dims& out = r->outputs[0]->shape;
  if (out.size() != in.size() + 1) return false;
  for (size_t j = 0; j < in.size(); ++j) {
    bool rest_equal = true;
    for (size_t i = 0; i < in.size() && rest_equal; ++i)
      if (i != j) rest_equal = in[i] >= 0 && in[i] == out[i < j ? i : i + 1];
    if (!rest_equal) continue;
    const int64_t a = out[j], b = out[j + 1];
    if (in[j] >= 0 && a >= 0 && b >= 0 && a * b != in[j]) return false;
    ir::Value* x = t->inputs[0];
    const size_t src = static_cast<size_t>(p[j]);
    std::vector<int64_t> target;
    if (!split_target(x->shape, src, a, b, &target)) return false;
    Dims split_shape;
    for (size_t i = 0; i < x->shape.size(); ++i) {
      if (i == src) {
        split_shape.push_back(a);
        split_shape.push_back(b);
      } else {
        split_shape.push_back(x->shape[i]);
      }
    }
    ir::Value* xs = views::add_reshape(g, fusion::fresh_name(g, r->name + "/split"), x, target, split_shape);
    auto moved = [&](int64_t k) { return k < static_cast<int64_t>(src) ? k : k + 1; };
    std::vector<int64_t> perm;
    for (size_t i = 0; i < p.size(); ++i) {
      if (i == j) {
        perm.push_back(static_cast<int64_t>(src));
        perm.push_back(static_cast<int64_t>(src) + 1);
      } else {
        perm.push_back(moved(p[i]));
      }
    }
    make_transpose(r, xs, perm);
    return true;
  }
  return false;
}

// Reshape(Reshape(x)) -> Reshape(x) when the outer target is static, without 0 placeholders, one -1 at most.
bool merge_reshapes(ir::Graph&, const Uses& u, ir::Node* r2) {
  if (!reshape_only(r2) || pinned(r2) || (r2->inputs.size() > 1 && r2->inputs[1])) return false;
  if (r2->attrs.i("has_reshape", r2->attrs.has("reshape_dims") ? 1 : 0) == 0) return false;
  const std::vector<int64_t> dims = r2->attrs.ints("reshape_dims");
  const bool zero_ph = r2->attrs.i("zero_is_placeholder", 1) != 0;
  if (std::count(dims.begin(), dims.end(), int64_t{-1}) > 1) return false;
  if (zero_ph && std::count(dims.begin(), dims.end(), int64_t{0}) > 0) return false;
  ir::Value* v1 = r2->inputs[0];
  ir::Node* r1 = v1->producer;
  if (!reshape_only(r1) || pinned(r1) || u.only_user(v1) != r2) return false;
  r2->inputs[0] = r1->inputs[0];
  return true;
}

// Reshape_k(Gather_k(Transpose_p(x))), every user of the transpose a Gather whose one user splits the last dim
// the same way -> the split on x, the transpose with one more dim, the Gathers' outputs in the reshapes' place.
bool split_last(ir::Graph& g, const Uses& u, ir::Node* t) {
  const std::vector<int64_t> p = pure_transpose(t);
  const size_t r = p.size();
  if (r < 2 || pinned(t) || p[r - 1] != static_cast<int64_t>(r - 1)) return false;
  ir::Value* tv = t->outputs[0];
  auto it = u.users.find(tv);
  if (tv->is_output || it == u.users.end() || it->second.empty()) return false;
  int64_t h = -1, d = -1;
  std::vector<std::pair<ir::Node*, ir::Node*>> pairs;  // (Gather, Reshape)
  for (ir::Node* gk : it->second) {
    int64_t axis;
    const HostTensor* idx = views::constant_gather(gk, &axis);
    if (!idx || pinned(gk) || gk->inputs[0] != tv || axis >= static_cast<int64_t>(r) - 1 || !idx->shape().empty())
      return false;
    ir::Value* gv = gk->outputs[0];
    ir::Node* rk = u.only_user(gv);
    if (!reshape_only(rk) || pinned(rk)) return false;
    const Dims& gi = gv->shape;
    const Dims& ro = rk->outputs[0]->shape;
    if (gi.empty() || ro.size() != gi.size() + 1) return false;
    // The leading dims equal: known and the same, or the one unknown dim in both places (volumes agree).
    const int64_t unknown = std::count_if(gi.begin(), gi.end() - 1, [](int64_t x) { return x < 0; });
    for (size_t i = 0; i + 1 < gi.size(); ++i)
      if (!(gi[i] >= 0 ? gi[i] == ro[i] : (unknown == 1 && ro[i] < 0))) return false;
    const int64_t rh = ro[ro.size() - 2], rd = ro.back();
    if (rh <= 0 || rd <= 0 || gi.back() != rh * rd || (h >= 0 && (rh != h || rd != d))) return false;
    h = rh;
    d = rd;
    pairs.emplace_back(gk, rk);
  }
  ir::Value* x = t->inputs[0];
  std::vector<int64_t> target;
  if (x->shape.back() != h * d || !split_target(x->shape, r - 1, h, d, &target)) return false;
  Dims split_shape(x->shape.begin(), x->shape.end() - 1);
  split_shape.push_back(h);
  split_shape.push_back(d);
  ir::Value* xs = views::add_reshape(g, fusion::fresh_name(g, t->name + "/split"), x, target, split_shape);
  std::vector<int64_t> perm = p;
  perm.push_back(static_cast<int64_t>(r));
  make_transpose(t, xs, perm);
  Dims transposed;
  for (int64_t k : perm) transposed.push_back(split_shape[static_cast<size_t>(k)]);
  tv->shape = transposed;  // the later rewrites of this sweep read shapes before the re-inference
  for (auto& [gk, rk] : pairs) {
    gk->outputs[0]->shape = rk->outputs[0]->shape;
    replace_value(g, rk->outputs[0], gk->outputs[0]);
  }
  return true;
}

// Shape(s) with s an output of a Split along axis a, every reader a Gather (axis 0) of constant entries other
// than a -> Shape of the Split's input, which has the same entries there. The Shape then no longer reads s,
// so s can have the one reader FuseAttention needs to read it packed (GPT-2 in newer transformers reshapes
// v with the batch and sequence read from k's Shape).
bool split_shape(ir::Graph&, const Uses& u, ir::Node* sh) {
  if (sh->op != "Shape" || pinned(sh) || sh->inputs.size() != 1 || !sh->inputs[0] || sh->attrs.has("start") ||
      sh->attrs.has("end") || sh->outputs[0]->is_output)
    return false;
  ir::Value* s = sh->inputs[0];
  ir::Node* sp = s->producer;
  if (!sp || sp->op != "Split" || sp->inputs.empty() || !sp->inputs[0]) return false;
  const int64_t rank = static_cast<int64_t>(s->shape.size());
  if (rank == 0 || static_cast<int64_t>(sp->inputs[0]->shape.size()) != rank) return false;
  int64_t axis = sp->attrs.i("axis", 0);
  if (axis < 0) axis += rank;
  auto readers = u.users.find(sh->outputs[0]);
  if (readers == u.users.end() || readers->second.empty()) return false;
  for (const ir::Node* reader : readers->second) {
    int64_t gather_axis;
    const HostTensor* idx = views::constant_gather(reader, &gather_axis);
    if (!idx || gather_axis != 0 || reader->inputs[0] != sh->outputs[0]) return false;
    for (int64_t i : idx->to_i64())
      if ((i < 0 ? i + rank : i) == axis || i < -rank || i >= rank) return false;
  }
  sh->inputs[0] = sp->inputs[0];
  return true;
}

using Rule = bool (*)(ir::Graph&, const Uses&, ir::Node*);

// One rule over a snapshot of the nodes; the use counts are rebuilt after each rewrite.
bool apply(ir::Graph& g, Rule rule) {
  std::vector<ir::Node*> nodes;
  for (auto& n : g.nodes()) nodes.push_back(n.get());
  bool changed = false;
  Uses u(g);
  for (ir::Node* n : nodes) {
    if (!rule(g, u, n)) continue;
    changed = true;
    u = Uses(g);
  }
  if (changed) {
    EliminateDeadNodes().run(g);
    g.topo_sort();
    infer_graph_inplace(g);
  }
  return changed;
}

}  // namespace

bool SimplifyViews::run(ir::Graph& g) {
  bool changed = false;
  for (int round = 0; round < 8; ++round) {
    bool any = false;
    for (Rule rule : {&unit_transpose, &split_first, &merge_reshapes, &split_last, &split_shape})
      any = apply(g, rule) || any;
    if (!any) break;
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
