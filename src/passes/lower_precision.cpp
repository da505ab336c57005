#include "passes/lower_precision.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace kiln::passes {

namespace {

// Ops whose float output is not an arithmetic result of float inputs: their dtype follows their
// consumers, and lowering them buys nothing.
bool is_structural(const std::string& op) { return op == "Constant" || op == "Cast" || op == "Shape"; }

// Finite values beyond the target's range saturate at its largest finite value instead of becoming
// infinities: exported attention masks use float32's lowest value (-3.4e38) as "minus infinity", and 0 * inf
// would be NaN where the mask is off. float16's limit is 65504; bfloat16 has float32's exponent but rounds
// float32's largest values (above 3.3895e38) up to infinity. The saturated value still drives softmax
// weights to zero.
HostTensor convert_tensor(const HostTensor& t, DataType to) {
  constexpr float kHalfMax = 65504.f;
  constexpr float kBf16Max = 3.38953139e38f;  // 0x7F7F
  HostTensor out(to, t.shape());
  const float* src = t.data<float>();
  auto* dst = out.mutable_data<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v = src[i];
    const float lim = to == DataType::kHALF ? kHalfMax : kBf16Max;
    if (std::isfinite(v)) v = std::min(std::max(v, -lim), lim);
    dst[i] = to == DataType::kHALF ? float_to_half(v) : float_to_bf16(v);
  }
  return out;
}

}  // namespace

bool LowerPrecision::run(ir::Graph& g) {
  // Idempotence: a graph that already has low-precision values was lowered before.
  for (auto& v : g.values())
    if (v->dtype == low_) return false;

  // 1. Decide which layers run in low precision.
  std::unordered_set<const ir::Node*> lowered;
  for (auto& np : g.nodes()) {
    ir::Node* n = np.get();
    if (is_structural(n->op)) continue;
    // Lowered: layers reading float32 whose float outputs are all float32 (not float64 or already low).
    bool reads_float32 = false, outputs_ok = true;
    for (auto* in : n->inputs)
      if (in && in->dtype == DataType::kFLOAT) reads_float32 = true;
    for (auto* o : n->outputs)
      if (o->dtype != DataType::kFLOAT && dtype_is_float(o->dtype)) outputs_ok = false;
    if (!reads_float32 || !outputs_ok) continue;
    if (obey_) {
      if (n->precision && *n->precision == DataType::kFLOAT) continue;
      bool pinned = false;
      for (auto& t : n->output_types) pinned |= t && *t == DataType::kFLOAT;
      if (pinned) continue;
    }
    std::vector<ir::TensorInfo> ins;
    for (auto* in : n->inputs) {
      if (!in) {
        ins.push_back(ir::TensorInfo::absent());
        continue;
      }
      ir::TensorInfo ti{true, in->dtype == DataType::kFLOAT ? low_ : in->dtype, in->shape, nullptr};
      ins.push_back(ti);
    }
    if (!supported_(*n, ins)) continue;
    lowered.insert(n);
  }
  if (lowered.empty()) return false;

  // 2. Consumers of each value, to convert weights used only by lowered layers in place.
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> consumers;
  for (auto& np : g.nodes())
    for (auto* in : np->inputs)
      if (in) consumers[in].push_back(np.get());

  std::unordered_map<const ir::Value*, ir::Value*> as_low, as_float;  // cast caches
  auto cast_to = [&](ir::Value* v, DataType to, std::unordered_map<const ir::Value*, ir::Value*>& cache) {
    auto it = cache.find(v);
    if (it != cache.end()) return it->second;
    ir::Node* c = g.add_node("Cast", v->name + (to == DataType::kFLOAT ? "__to_float" : "__to_low"), {v}, 1);
    c->attrs.set("to", static_cast<int64_t>(to));
    c->outputs[0]->dtype = to;
    c->outputs[0]->shape = v->shape;
    cache[v] = c->outputs[0];
    return c->outputs[0];
  };

  // 3. Weights: float32 constants read only by lowered layers become low-precision constants.
  for (auto& np : g.nodes()) {
    ir::Node* n = np.get();
    if (n->op != "Constant" || n->outputs[0]->dtype != DataType::kFLOAT || n->outputs[0]->is_output) continue;
    auto& users = consumers[n->outputs[0]];
    bool all_lowered = !users.empty();
    for (auto* u : users) all_lowered = all_lowered && lowered.count(u);
    if (!all_lowered) continue;
    n->attrs.set("value", convert_tensor(n->attrs.tensor("value"), low_));
    n->outputs[0]->dtype = low_;
  }

  // 4. Lowered layers: float32 inputs through a Cast, float32 outputs become low precision.
  std::vector<ir::Node*> order;
  for (auto& np : g.nodes()) order.push_back(np.get());
  for (ir::Node* n : order) {
    if (!lowered.count(n)) continue;
    for (auto*& in : n->inputs)
      if (in && in->dtype == DataType::kFLOAT) in = cast_to(in, low_, as_low);
    for (auto* o : n->outputs)
      if (o->dtype == DataType::kFLOAT) o->dtype = low_;
  }
  // 5. Everything else reads float32: a Cast back where a low-precision value meets it.
  for (ir::Node* n : order) {
    if (lowered.count(n)) continue;
    // A Cast takes any input type, and a Shape reads only the shape: a Cast to float32 there would convert
    // a whole tensor for nothing (GPT-2's exported MatMul reshapes read Shape of every activation: 62 such
    // Casts took 17% of its batch-64 time).
    if (n->op == "Cast" || n->op == "Shape") continue;
    for (auto*& in : n->inputs)
      if (in && in->dtype == low_)
        in = cast_to(in, DataType::kFLOAT, as_float);
  }
  // 6. Network outputs keep their declared float32: the Cast's output takes the output's name.
  for (auto*& out : g.mutable_outputs()) {
    if (out->dtype != low_) continue;
    ir::Value* low_value = out;
    ir::Value* f = cast_to(low_value, DataType::kFLOAT, as_float);
    std::string name = low_value->name;
    low_value->name = name + "__low";
    f->name = name;
    low_value->is_output = false;
    f->is_output = true;
    out = f;
  }
  g.topo_sort();
  return true;
}

}  // namespace kiln::passes
