#include "passes/recognize_activations.h"

#include <cmath>

#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

using fusion::Uses;

enum Act : int64_t { kSigmoid = 1, kTanh = 2, kHardSigmoid = 9, kGeluErf = 12, kGeluTanh = 13, kHardSwish = 64, kSilu = 65 };
constexpr int64_t kErf = 19;  // UnaryOperation ERF

// v is a constant holding one value close to `want` (relative 1e-3).
bool is_scalar(const ir::Value* v, double want) {
  const HostTensor* t = v ? ir::constant_value(v) : nullptr;
  if (!t || t->numel() != 1 || !fusion::is_float(t->dtype())) return false;
  const double x = t->get_f64(0);
  return std::fabs(x - want) <= 1e-3 * std::fabs(want);
}

// n is the binary op `op` with one operand a constant close to `c`; returns the other operand.
ir::Value* with_scalar(const ir::Node* n, int64_t op, double c) {
  if (!n || !fusion::is_elementwise(*n, op)) return nullptr;
  if (is_scalar(n->inputs[1], c)) return n->inputs[0];
  if (op != fusion::kDiv && op != fusion::kSub && op != fusion::kPow && is_scalar(n->inputs[0], c)) return n->inputs[1];
  return nullptr;
}

bool is_activation(const ir::Node* n, int64_t type) {
  return n && n->op == "Activation" && n->inputs.size() == 1 && n->inputs[0] && n->attrs.i("type", -1) == type;
}

// Users of v that are `op` with a constant close to c: their outputs.
std::vector<ir::Node*> users_with_scalar(const Uses& uses, const ir::Value* v, int64_t op, double c) {
  std::vector<ir::Node*> r;
  auto it = uses.users.find(v);
  if (it == uses.users.end()) return r;
  for (ir::Node* u : it->second)
    if (!uses.removed.count(u) && with_scalar(u, op, c) == v) r.push_back(u);
  return r;
}

// The node computing 0.5 * x * p, for p a value (1 + erf or 1 + tanh), in the forms exporters write.
ir::Node* half_x_times(const Uses& uses, const ir::Value* p, const ir::Value* x) {
  auto it = uses.users.find(p);
  if (it == uses.users.end()) return nullptr;
  for (ir::Node* m1 : it->second) {
    if (uses.removed.count(m1) || !fusion::is_elementwise(*m1, fusion::kProd)) continue;
    ir::Value* o = fusion::other_operand(*m1, p);
    if (!o) continue;
    if (o == x) {  // (x * p) * 0.5
      for (ir::Node* m2 : users_with_scalar(uses, m1->outputs[0], fusion::kProd, 0.5)) return m2;
    } else if (is_scalar(o, 0.5)) {  // (p * 0.5) * x
      auto jt = uses.users.find(m1->outputs[0]);
      if (jt == uses.users.end()) continue;
      for (ir::Node* m2 : jt->second)
        if (!uses.removed.count(m2) && fusion::is_elementwise(*m2, fusion::kProd) &&
            fusion::other_operand(*m2, m1->outputs[0]) == x)
          return m2;
    } else if (with_scalar(o->producer, fusion::kProd, 0.5) == x) {  // (x * 0.5) * p
      return m1;
    }
  }
  return nullptr;
}

// x^3 as Pow(x, 3), (x * x) * x or x * (x * x).
bool is_cube_of(const ir::Value* v, const ir::Value* x) {
  const ir::Node* n = v ? v->producer : nullptr;
  if (!n) return false;
  if (fusion::is_elementwise(*n, fusion::kPow)) return n->inputs[0] == x && is_scalar(n->inputs[1], 3.0);
  if (!fusion::is_elementwise(*n, fusion::kProd)) return false;
  auto square = [&](const ir::Value* s) {
    const ir::Node* m = s->producer;
    return m && fusion::is_elementwise(*m, fusion::kProd) && m->inputs[0] == x && m->inputs[1] == x;
  };
  return (n->inputs[0] == x && square(n->inputs[1])) || (n->inputs[1] == x && square(n->inputs[0]));
}

// GELU (erf): from an Erf node, the x it is applied to and the final node, or nullptr.
ir::Node* match_gelu_erf(const Uses& uses, const ir::Node& erf, ir::Value** x) {
  const ir::Node* d = erf.inputs[0]->producer;
  ir::Value* xv = with_scalar(d, fusion::kDiv, std::sqrt(2.0));
  if (!xv) xv = with_scalar(d, fusion::kProd, std::sqrt(0.5));
  if (!xv) return nullptr;
  for (ir::Node* add : users_with_scalar(uses, erf.outputs[0], fusion::kSum, 1.0))
    if (ir::Node* f = half_x_times(uses, add->outputs[0], xv)) {
      *x = xv;
      return f;
    }
  return nullptr;
}

// GELU (tanh): from a Tanh activation.
ir::Node* match_gelu_tanh(const Uses& uses, const ir::Node& tanh, ir::Value** x) {
  ir::Value* s = with_scalar(tanh.inputs[0]->producer, fusion::kProd, 0.7978845608028654 /* sqrt(2/pi) */);
  const ir::Node* sum = s ? s->producer : nullptr;
  if (!sum || !fusion::is_elementwise(*sum, fusion::kSum)) return nullptr;
  for (int i = 0; i < 2; ++i) {
    ir::Value* xv = sum->inputs[i];
    ir::Value* c = sum->inputs[1 - i];
    if (!is_cube_of(with_scalar(c->producer, fusion::kProd, 0.044715), xv)) continue;
    for (ir::Node* add : users_with_scalar(uses, tanh.outputs[0], fusion::kSum, 1.0))
      if (ir::Node* f = half_x_times(uses, add->outputs[0], xv)) {
        *x = xv;
        return f;
      }
  }
  return nullptr;
}

// x * act(x) for a gate activation `gate` (Sigmoid, HardSigmoid(1/6, 0.5)).
ir::Value* gated_input(const ir::Node& mul, int64_t gate) {
  if (!fusion::is_elementwise(mul, fusion::kProd)) return nullptr;
  for (int i = 0; i < 2; ++i) {
    ir::Value* a = mul.inputs[i];
    const ir::Node* g = mul.inputs[1 - i]->producer;
    if (!is_activation(g, gate) || g->inputs[0] != a) continue;
    if (gate == kHardSigmoid && (std::fabs(g->attrs.f("alpha", 0.2) - 1.0 / 6.0) > 1e-6 ||
                                 std::fabs(g->attrs.f("beta", 0.5) - 0.5) > 1e-6))
      continue;
    return a;
  }
  return nullptr;
}

// Turns node f into Activation(x) of `type`, when the result keeps x's dtype and shape.
bool rewrite(ir::Node& f, ir::Value* x, int64_t type) {
  if (f.outputs.size() != 1 || f.outputs[0]->dtype != x->dtype || f.outputs[0]->shape != x->shape ||
      !fusion::is_float(x->dtype))
    return false;
  f.op = "Activation";
  f.inputs = {x};
  f.attrs = ir::Attrs();
  f.attrs.set("type", type);
  return true;
}

}  // namespace

bool RecognizeActivations::run(ir::Graph& g) {
  Uses uses(g);
  std::vector<ir::Node*> nodes;
  for (auto& n : g.nodes()) nodes.push_back(n.get());
  std::vector<ir::Value*> released;  // values the rewritten nodes no longer read
  for (ir::Node* n : nodes) {
    if (n->inputs.empty() || !n->inputs[0] || uses.removed.count(n)) continue;
    ir::Value* x = nullptr;
    ir::Node* f = nullptr;
    int64_t type = -1;
    if (n->op == "Unary" && n->attrs.i("op", -1) == kErf) {
      f = match_gelu_erf(uses, *n, &x);
      type = kGeluErf;
    } else if (is_activation(n, kTanh)) {
      f = match_gelu_tanh(uses, *n, &x);
      type = kGeluTanh;
    } else if (ir::Value* a = gated_input(*n, kSigmoid)) {
      f = n, x = a, type = kSilu;
    } else if (ir::Value* b = gated_input(*n, kHardSigmoid)) {
      f = n, x = b, type = kHardSwish;
    }
    if (!f || uses.removed.count(f)) continue;
    std::vector<ir::Value*> old_inputs = f->inputs;
    if (!rewrite(*f, x, type)) continue;
    uses.removed.insert(f);  // rewritten: not matched again in this run
    released.insert(released.end(), old_inputs.begin(), old_inputs.end());
  }
  if (released.empty()) return false;
  // Remove the pattern's nodes that nothing reads any more, walking up from what the rewritten nodes read.
  std::unordered_map<const ir::Value*, int> use_count;
  for (auto& n : g.nodes())
    for (ir::Value* in : n->inputs)
      if (in) ++use_count[in];
  std::unordered_set<const ir::Node*> dead;
  std::vector<ir::Value*> work = released;
  while (!work.empty()) {
    ir::Value* v = work.back();
    work.pop_back();
    ir::Node* p = v ? v->producer : nullptr;
    if (!p || dead.count(p)) continue;
    bool used = false;
    for (ir::Value* o : p->outputs) used = used || o->is_output || use_count[o] > 0;
    if (used) continue;
    dead.insert(p);
    for (ir::Value* in : p->inputs)
      if (in) {
        --use_count[in];
        work.push_back(in);
      }
  }
  if (!dead.empty()) g.remove_nodes_if([&](const ir::Node* n) { return dead.count(n) > 0; });
  g.topo_sort();
  return true;
}

}  // namespace kiln::passes
