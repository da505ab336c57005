#include "passes/fuse_conv.h"

#include <cmath>

#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

using fusion::Uses;

// A Convolution with nothing fused after it yet (no residual, no activation), float, with known K.
bool plain_conv(const ir::Node& n) {
  if (n.op != "Convolution" || n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1] || n.outputs.size() != 1) return false;
  if (n.inputs.size() > 3 && n.inputs[3]) return false;
  if (ir::fused_activation(n.attrs) != -1) return false;
  const ir::Value* y = n.outputs[0];
  return fusion::is_float(y->dtype) && y->shape.size() >= 3 && !n.inputs[1]->shape.empty() && n.inputs[1]->shape[0] > 0;
}

int64_t out_channels(const ir::Node& conv) { return conv.inputs[1]->shape[0]; }

ir::Value* conv_bias(const ir::Node& conv) { return conv.inputs.size() > 2 ? conv.inputs[2] : nullptr; }


// A per-output-channel constant operand of `u` (the other side of v): K values, or false.
bool channel_constant(const ir::Node& u, const ir::Value* v, int64_t K, std::vector<double>* out) {
  ir::Value* other = fusion::other_operand(u, v);
  const HostTensor* c = other ? ir::constant_value(other) : nullptr;
  if (!c || other->dtype != v->dtype) return false;
  if (!fusion::broadcasts_along(c->shape(), v->shape.size(), 1, K)) return false;
  *out = fusion::per_axis_values(*c, K);
  return true;
}

// y -> y * scale + shift per output channel (empty vectors: identity).
struct Affine {
  std::vector<double> scale, shift;
};

bool all_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// u (the only use of the convolution's output v) as a per-channel affine map.
bool match_affine(const ir::Node& u, const ir::Value* v, int64_t K, Affine* a) {
  if (u.outputs.size() != 1 || u.outputs[0]->dtype != v->dtype) return false;
  if (u.op == "Scale") {
    if (u.inputs.empty() || u.inputs[0] != v) return false;
    const int64_t mode = u.attrs.i("mode", 0);
    const int64_t rank = static_cast<int64_t>(v->shape.size());
    int64_t axis = u.attrs.i("channel_axis", 1);
    if (axis < 0) axis += rank;
    if (!(mode == 0 || (mode == 1 && axis == 1))) return false;
    const int64_t count = mode == 0 ? 1 : K;
    std::vector<double>* dst[2] = {&a->shift, &a->scale};
    for (size_t i = 1; i < u.inputs.size(); ++i) {
      if (!u.inputs[i]) continue;
      const HostTensor* t = ir::constant_value(u.inputs[i]);
      if (!t || t->numel() != count) return false;
      std::vector<double> vals = fusion::per_axis_values(*t, K);
      if (i == 3) {  // power: only an identity power folds
        for (double p : vals)
          if (p != 1.0) return false;
        continue;
      }
      *dst[i - 1] = std::move(vals);
    }
    return all_finite(a->scale) && all_finite(a->shift);
  }
  std::vector<double> c;
  if (fusion::is_elementwise(u, fusion::kProd)) {
    if (!channel_constant(u, v, K, &c)) return false;
    a->scale = c;
  } else if (fusion::is_elementwise(u, fusion::kSum)) {
    if (!channel_constant(u, v, K, &c)) return false;
    a->shift = c;
  } else if (fusion::is_elementwise(u, fusion::kDiv)) {  // conv / c
    if (u.inputs[0] != v || !channel_constant(u, v, K, &c)) return false;
    for (double& x : c) {
      if (x == 0) return false;
      x = 1.0 / x;
    }
    a->scale = c;
  } else if (fusion::is_elementwise(u, fusion::kSub)) {  // conv - c
    if (u.inputs[0] != v || !channel_constant(u, v, K, &c)) return false;
    for (double& x : c) x = -x;
    a->shift = c;
  } else {
    return false;
  }
  return all_finite(a->scale) && all_finite(a->shift);
}

// Rewrites conv's weights/bias for y*scale + shift. False (nothing changed) when the weights are needed but
// not constant, or the bias is not constant.
bool fold_affine(ir::Graph& g, ir::Node& conv, const Affine& a, int64_t K) {
  ir::Value* wv = conv.inputs[1];
  ir::Value* bv = conv_bias(conv);
  const HostTensor* w = ir::constant_value(wv);
  const HostTensor* b = bv ? ir::constant_value(bv) : nullptr;
  if (bv && (!b || b->numel() != K || !fusion::is_float(b->dtype()))) return false;
  if (!a.scale.empty() && (!w || !fusion::is_float(w->dtype()) || w->numel() % K != 0)) return false;
  // Bias: b * scale + shift.
  std::vector<double> nb(static_cast<size_t>(K), 0.0);
  for (int64_t k = 0; k < K; ++k) {
    double x = b ? b->get_f64(k) : 0.0;
    if (!a.scale.empty()) x *= a.scale[k];
    if (!a.shift.empty()) x += a.shift[k];
    nb[k] = x;
  }
  if (!a.scale.empty()) {
    const int64_t per = w->numel() / K;
    std::vector<double> nw(static_cast<size_t>(w->numel()));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < per; ++i) nw[k * per + i] = w->get_f64(k * per + i) * a.scale[k];
    ir::Node* c = g.add_constant(fusion::fresh_name(g, conv.name + "_folded_weights"), fusion::make_tensor(w->dtype(), nw, w->shape()));
    conv.inputs[1] = c->outputs[0];
  }
  const DataType bdt = b ? b->dtype() : conv.outputs[0]->dtype;
  ir::Node* c = g.add_constant(fusion::fresh_name(g, conv.name + "_folded_bias"), fusion::make_tensor(bdt, nb, {K}));
  if (conv.inputs.size() < 3) conv.inputs.resize(3, nullptr);
  conv.inputs[2] = c->outputs[0];
  return true;
}

}  // namespace

bool FoldBatchNormIntoConv::run(ir::Graph& g) {
  Uses uses(g);
  std::vector<ir::Node*> convs;
  for (auto& n : g.nodes())
    if (plain_conv(*n)) convs.push_back(n.get());
  bool changed = false;
  for (ir::Node* conv : convs) {
    const int64_t K = out_channels(*conv);
    for (;;) {  // a chain of affine maps (Mul then Add) folds one after the other
      ir::Node* u = uses.only_user(conv->outputs[0]);
      if (!u || !fusion::same_constraints(*conv, *u)) break;
      Affine a;
      if (!match_affine(*u, conv->outputs[0], K, &a) || !fold_affine(g, *conv, a, K)) break;
      fusion::record_fused(*conv, *u);
      fusion::take_output(*conv, *u);
      uses.removed.insert(u);
      changed = true;
    }
  }
  if (changed) {
    g.remove_nodes_if([&](const ir::Node* n) { return uses.removed.count(n) > 0; });
    g.topo_sort();
  }
  return changed;
}

bool FuseConvEpilogue::run(ir::Graph& g) {
  Uses uses(g);
  std::vector<ir::Node*> convs;
  for (auto& n : g.nodes())
    if (plain_conv(*n)) convs.push_back(n.get());
  bool changed = false;
  for (ir::Node* conv : convs) {
    if (uses.removed.count(conv)) continue;
    const int64_t K = out_channels(*conv);
    for (;;) {
      ir::Value* y = conv->outputs[0];
      ir::Node* u = uses.only_user(y);
      if (!u || !fusion::same_constraints(*conv, *u) || u->outputs.size() != 1) break;
      const bool has_residual = conv->inputs.size() > 3 && conv->inputs[3];
      std::vector<double> bias;
      if (fusion::is_elementwise(*u, fusion::kSum)) {
        ir::Value* other = fusion::other_operand(*u, y);
        if (!other || other->dtype != y->dtype) break;
        if (!conv_bias(*conv) && channel_constant(*u, y, K, &bias)) {
          ir::Node* c = g.add_constant(fusion::fresh_name(g, conv->name + "_bias"), fusion::make_tensor(y->dtype, bias, {K}));
          if (conv->inputs.size() < 3) conv->inputs.resize(3, nullptr);
          conv->inputs[2] = c->outputs[0];
        } else if (!has_residual && other->shape == y->shape) {
          // Unknown dims (a dynamic batch) count as equal when both are unknown: in networks they come from
          // the same input; run-time shape inference checks the real shapes and names the layer otherwise.
          conv->inputs.resize(4, nullptr);
          conv->inputs[3] = other;
        } else {
          break;
        }
      } else if (fusion::fusable_activation(*u) && u->inputs[0] == y) {
        fusion::absorb_activation(*conv, *u);
      } else {
        break;
      }
      fusion::record_fused(*conv, *u);
      fusion::take_output(*conv, *u);
      uses.removed.insert(u);
      changed = true;
      if (u->op == "Activation") break;  // the activation ends the epilogue
    }
  }
  if (changed) {
    g.remove_nodes_if([&](const ir::Node* n) { return uses.removed.count(n) > 0; });
    g.topo_sort();
  }
  return changed;
}

}  // namespace kiln::passes
