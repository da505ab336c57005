#include "passes/lower_einsum.h"

#include <algorithm>
#include <map>

#include "ir/ops/einsum_equation.h"

namespace kiln::passes {

namespace {

using Labels = std::vector<int>;

bool has(const Labels& l, int x) { return std::find(l.begin(), l.end(), x) != l.end(); }
int64_t index_of(const Labels& l, int x) { return std::find(l.begin(), l.end(), x) - l.begin(); }

ir::Value* shuffle(ir::Graph& g, const std::string& base, ir::Value* x, const std::vector<int64_t>& first,
                   const Dims* reshape, const std::vector<int64_t>& second, const Dims& out_shape) {
  ir::Node* n = g.add_node("Shuffle", g.unique_name(base), {x}, 1);
  if (!first.empty()) n->attrs.set("first_transpose", first);
  n->attrs.set("has_reshape", int64_t{reshape ? 1 : 0});
  if (reshape) {
    n->attrs.set("reshape_dims", std::vector<int64_t>(*reshape));
    n->attrs.set("zero_is_placeholder", int64_t{0});
  }
  if (!second.empty()) n->attrs.set("second_transpose", second);
  n->outputs[0]->dtype = x->dtype;
  n->outputs[0]->shape = out_shape;
  return n->outputs[0];
}

// Sums operand `x` (labels `l`) over the labels in `drop`; returns the reduced value and its labels.
ir::Value* sum_out(ir::Graph& g, const std::string& base, ir::Value* x, Labels* l, const Labels& drop) {
  if (drop.empty()) return x;
  std::vector<int64_t> axes;
  Labels kept;
  Dims shape;
  for (size_t i = 0; i < l->size(); ++i) {
    if (has(drop, (*l)[i])) {
      axes.push_back(static_cast<int64_t>(i));
    } else {
      kept.push_back((*l)[i]);
      shape.push_back(x->shape[i]);
    }
  }
  ir::Node* n = g.add_node("Reduce", g.unique_name(base + "_sum"), {x}, 1);
  n->attrs.set("op", int64_t{0});  // SUM
  n->attrs.set("axes", axes);
  n->attrs.set("keep_dims", int64_t{0});
  n->outputs[0]->dtype = x->dtype;
  n->outputs[0]->shape = shape;
  *l = kept;
  return n->outputs[0];
}

// Every label has one size everywhere (no size-1 broadcasting between operands), no label repeats within
// an operand, and every dim is known.
bool plain(const ir::EinsumSpec& spec, const std::vector<const ir::Value*>& ins, std::map<int, int64_t>* size) {
  size->clear();
  for (size_t i = 0; i < ins.size(); ++i) {
    const Labels& l = spec.inputs[i];
    if (l.size() != ins[i]->shape.size() || !dims_known(ins[i]->shape)) return false;
    for (size_t k = 0; k < l.size(); ++k) {
      if (std::count(l.begin(), l.end(), l[k]) > 1) return false;
      auto [it, fresh] = size->emplace(l[k], ins[i]->shape[k]);
      if (!fresh && it->second != ins[i]->shape[k]) return false;
    }
  }
  return true;
}

// The Einsum node `n` rewritten; returns the value that replaces its output, or nullptr to keep it.
ir::Value* lower(ir::Graph& g, const ir::Node& n) {
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs.size() > 2) return nullptr;
  std::vector<const ir::Value*> ins;
  std::vector<size_t> ranks;
  for (const ir::Value* v : n.inputs) {
    if (!v || v->dtype != DataType::kFLOAT) return nullptr;
    ins.push_back(v);
    ranks.push_back(v->shape.size());
  }
  ir::EinsumSpec spec;
  if (!ir::parse_einsum(n.attrs.s("equation", ""), ranks, &spec).empty()) return nullptr;
  std::map<int, int64_t> size;
  if (!plain(spec, ins, &size)) return nullptr;
  const Labels& out = spec.output;
  Dims out_shape;
  for (int l : out) out_shape.push_back(size.at(l));
  const std::string base = n.name;

  if (ins.size() == 1) {  // a permutation, after summing what the output drops
    Labels a = spec.inputs[0];
    Labels drop;
    for (int l : a)
      if (!has(out, l)) drop.push_back(l);
    ir::Value* x = sum_out(g, base, n.inputs[0], &a, drop);
    std::vector<int64_t> perm;
    for (int l : out) perm.push_back(index_of(a, l));
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i) identity &= perm[i] == static_cast<int64_t>(i);
    if (identity && x != n.inputs[0]) return x;
    return shuffle(g, base + "_transpose", x, perm, nullptr, {}, out_shape);
  }

  Labels a = spec.inputs[0], b = spec.inputs[1];
  Labels drop_a, drop_b;
  for (int l : a)
    if (!has(b, l) && !has(out, l)) drop_a.push_back(l);
  for (int l : b)
    if (!has(a, l) && !has(out, l)) drop_b.push_back(l);
  ir::Value* xa = sum_out(g, base + "_a", n.inputs[0], &a, drop_a);
  ir::Value* xb = sum_out(g, base + "_b", n.inputs[1], &b, drop_b);
  // batch: in both operands and the output; M: A and the output; N: B and the output; K: summed over.
  Labels batch, m, nn, k;
  for (int l : out) {
    if (has(a, l) && has(b, l)) batch.push_back(l);
    else if (has(a, l)) m.push_back(l);
    else nn.push_back(l);
  }
  for (int l : a)
    if (has(b, l) && !has(out, l)) k.push_back(l);
  auto prod = [&](const Labels& ls) {
    int64_t p = 1;
    for (int l : ls) p *= size.at(l);
    return p;
  };
  auto operand = [&](ir::Value* x, const Labels& have, const Labels& g1, const Labels& g2, const Labels& g3,
                     const std::string& tag) {
    std::vector<int64_t> perm;
    for (const Labels* grp : {&g1, &g2, &g3})
      for (int l : *grp) perm.push_back(index_of(have, l));
    Dims r{prod(batch), prod(g2), prod(g3)};
    return shuffle(g, base + tag, x, perm, &r, {}, r);
  };
  ir::Value* a3 = operand(xa, a, batch, m, k, "_lhs");  // [batch, M, K]
  ir::Value* b3 = operand(xb, b, batch, k, nn, "_rhs");  // [batch, K, N]
  ir::Node* mm = g.add_node("MatrixMultiply", g.unique_name(base + "_matmul"), {a3, b3}, 1);
  mm->attrs.set("op_a", int64_t{0});
  mm->attrs.set("op_b", int64_t{0});
  mm->precision = n.precision;
  mm->outputs[0]->dtype = DataType::kFLOAT;
  mm->outputs[0]->shape = {prod(batch), prod(m), prod(nn)};
  // [batch, M, N] -> the labels' own dims -> the output's order.
  Labels grouped;
  Dims full;
  for (const Labels* grp : {&batch, &m, &nn})
    for (int l : *grp) {
      grouped.push_back(l);
      full.push_back(size.at(l));
    }
  std::vector<int64_t> perm;
  for (int l : out) perm.push_back(index_of(grouped, l));
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity &= perm[i] == static_cast<int64_t>(i);
  return shuffle(g, base + "_out", mm->outputs[0], {}, &full, identity ? std::vector<int64_t>{} : perm, out_shape);
}

}  // namespace

bool LowerEinsum::run(ir::Graph& g) { return lower_nodes(g, {"Einsum"}, lower); }

}  // namespace kiln::passes
