#include "passes/fuse_conv1x1_pair.h"

#include <string>
#include <unordered_set>

#include "ir/ops/conv1x1_pair.h"
#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

ir::Value* input_at(const ir::Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : nullptr; }

// A per-spatial-dim attribute that is absent (Convolution's default) or `want` for both spatial dims.
bool spatial_is(const ir::Attrs& a, const char* key, int64_t want) {
  const std::vector<int64_t> v = a.ints(key);
  return v.empty() || v == std::vector<int64_t>{want, want};
}

// A Convolution the pair can stand for either half of: channels-last 1x1, stride 1, dilation 1, no padding,
// one group, constant weights, a constant bias or none, one float dtype for x, weights, bias, residual and y.
// Any padding mode: with a 1x1 window, stride 1 and no padding, all four give out = in and no padding.
bool pairable_conv(const ir::Node& n) {
  if (n.op != "Convolution" || n.outputs.size() != 1 || n.inputs.size() < 2 || n.inputs.size() > 4) return false;
  const ir::Value* x = n.inputs[0];
  const ir::Value* w = n.inputs[1];
  const ir::Value* y = n.outputs[0];
  if (!x || !w || !ir::constant_value(w)) return false;
  const ir::Attrs& a = n.attrs;
  if (a.i("channels_last", 0) != 1 || a.i("groups", 1) != 1) return false;
  const int64_t mode = a.i("padding_mode", 0);
  if (mode < 0 || mode > 3) return false;
  if (!spatial_is(a, "kernel", 1) || !spatial_is(a, "stride", 1) || !spatial_is(a, "dilation", 1) ||
      !spatial_is(a, "pre_padding", 0) || !spatial_is(a, "post_padding", 0))
    return false;
  if (x->shape.size() != 4 || w->shape.size() != 4 || w->shape[1] != 1 || w->shape[2] != 1) return false;
  if (!fusion::is_float(y->dtype) || x->dtype != y->dtype || w->dtype != y->dtype) return false;
  if (const ir::Value* b = input_at(n, 2); b && (!ir::constant_value(b) || b->dtype != y->dtype)) return false;
  if (const ir::Value* r = input_at(n, 3); r && r->dtype != y->dtype) return false;
  return true;
}

// B of a pair with A: reads A's output as its x, has no residual, and was not pinned differently by the user.
bool second_of(const ir::Node& a, const ir::Node& b) {
  return &a != &b && pairable_conv(b) && b.inputs[0] == a.outputs[0] && !input_at(b, 3) &&
         fusion::same_constraints(a, b);
}

// Copies attribute `from` of `src` to `to` of `dst` when src has it (absent ones keep their defaults).
void copy_attr(const ir::Attrs& src, const char* from, ir::Attrs& dst, const char* to) {
  if (src.has(from)) dst.set_value(to, src.all().at(from));
}

// "conv_a,<what conv_a had absorbed>,conv_b,<what conv_b had absorbed>": every layer the pair stands for.
std::string fused_list(const ir::Node& a, const ir::Node& b) {
  std::string s;
  for (const ir::Node* n : {&a, &b}) {
    s += (s.empty() ? "" : ",") + n->name;
    const std::string f = n->attrs.s("fused", "");
    if (!f.empty()) s += "," + f;
  }
  return s;
}

// The pair node for (a, b), standing alone: the predicate sees it before the graph changes. Its outputs are a's
// and b's values (their dtypes and shapes are what a backend's predicate may read).
ir::Node candidate(const ir::Graph& g, const ir::Node& a, const ir::Node& b) {
  ir::Node p;
  p.op = "Conv1x1Pair";
  p.name = fusion::fresh_name(g, "pair(" + a.name + ", " + b.name + ")");
  p.inputs = {a.inputs[0], a.inputs[1], input_at(a, 2), input_at(a, 3), b.inputs[1], input_at(b, 2)};
  p.outputs = {a.outputs[0], b.outputs[0]};
  ir::Attrs& o = p.attrs;
  copy_attr(a.attrs, "activation", o, "activation");
  copy_attr(a.attrs, "act_alpha", o, "act_alpha");
  copy_attr(a.attrs, "act_beta", o, "act_beta");
  copy_attr(b.attrs, "activation", o, "activation2");
  copy_attr(b.attrs, "act_alpha", o, "act2_alpha");
  copy_attr(b.attrs, "act_beta", o, "act2_beta");
  o.set("first_name", a.name);
  o.set("second_name", b.name);
  copy_attr(a.attrs, "fused", o, "first_fused");
  copy_attr(b.attrs, "fused", o, "second_fused");
  o.set("fused", fused_list(a, b));
  // same_constraints held: one layer precision, and each output keeps its layer's user type.
  p.precision = a.precision;
  auto type_of = [](const ir::Node& n) { return n.output_types.empty() ? std::nullopt : n.output_types[0]; };
  p.output_types = {type_of(a), type_of(b)};
  return p;
}

std::vector<ir::TensorInfo> input_infos(const ir::Node& n) {
  std::vector<ir::TensorInfo> v;
  for (const ir::Value* in : n.inputs)
    v.push_back(in ? ir::TensorInfo{true, in->dtype, in->shape, ir::constant_value(in)} : ir::TensorInfo::absent());
  return v;
}

// The pair takes over output `i`'s value from `conv` (name, readers, network-output mark all stay with the value),
// and conv keeps the pair's fresh one, so removing conv leaves no dangling use.
void take_value(ir::Node& pair, size_t i, ir::Node& conv) {
  std::swap(pair.outputs[i], conv.outputs[0]);
  pair.outputs[i]->producer = &pair;
  conv.outputs[0]->producer = &conv;
}

}  // namespace

bool FuseConv1x1Pair::run(ir::Graph& g) {
  fusion::Uses uses(g);
  std::vector<ir::Node*> order;
  for (auto& n : g.nodes()) order.push_back(n.get());
  std::unordered_set<const ir::Node*> paired;
  for (ir::Node* a : order) {
    if (paired.count(a) || !pairable_conv(*a)) continue;
    auto it = uses.users.find(a->outputs[0]);
    if (it == uses.users.end()) continue;
    for (ir::Node* b : it->second) {  // readers in node (topological) order
      if (paired.count(b) || !second_of(*a, *b)) continue;
      ir::Node cand = candidate(g, *a, *b);
      if (supported_ && !supported_(cand, input_infos(cand))) continue;
      ir::Node* p = g.add_node("Conv1x1Pair", cand.name, cand.inputs, 2);
      p->attrs = std::move(cand.attrs);
      p->precision = cand.precision;
      p->output_types = std::move(cand.output_types);
      take_value(*p, 0, *a);
      take_value(*p, 1, *b);
      paired.insert(a);
      paired.insert(b);
      break;
    }
  }
  if (paired.empty()) return false;
  g.remove_nodes_if([&](const ir::Node* n) { return paired.count(n) > 0; });
  g.topo_sort();
  return true;
}

}  // namespace kiln::passes
