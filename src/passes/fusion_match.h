// Pattern-matching helpers shared by the fusion passes (fuse_conv, fuse_gemm, recognize_activations): who
// uses a value, whether two layers may be merged (same user precision constraints), and how a fused node
// takes over the output of the last node it absorbs (so graph outputs and downstream names are kept).
#pragma once
#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "ir/ops/fused_epilogue.h"

namespace kiln::passes::fusion {

// ElementWiseOperation codes (ir/OPS.md).
enum Ew : int64_t { kSum = 0, kProd = 1, kSub = 4, kDiv = 5, kPow = 6 };

// Every use of every value (a node reading a value twice is listed twice), built once per pass run. Nodes a
// pass removes are recorded in `removed`; a value whose user was removed is never matched again in that run.
struct Uses {
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> users;
  std::unordered_set<const ir::Node*> removed;

  explicit Uses(const ir::Graph& g) {
    for (auto& n : g.nodes())
      for (ir::Value* in : n->inputs)
        if (in) users[in].push_back(n.get());
  }
  // The node that is v's only use, when v is not a graph output and that node is still there; else nullptr.
  ir::Node* only_user(const ir::Value* v) const {
    if (!v || v->is_output) return nullptr;
    auto it = users.find(v);
    if (it == users.end() || it->second.size() != 1) return nullptr;
    ir::Node* u = it->second[0];
    return removed.count(u) ? nullptr : u;
  }
  size_t num_uses(const ir::Value* v) const {
    auto it = users.find(v);
    return it == users.end() ? 0 : it->second.size();
  }
};

inline bool is_float(DataType t) {
  return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16 || t == DataType::kDOUBLE;
}

// float16 or bfloat16: what LowerPrecision lowers to, and what a Cast fold widens from or narrows to.
inline bool is_half_type(DataType t) { return t == DataType::kHALF || t == DataType::kBF16; }

// Layers may be fused only when the user pinned neither differently: the same layer precision and the same
// output-type constraints (unset entries count as unset).
inline bool same_constraints(const ir::Node& a, const ir::Node& b) {
  if (a.precision != b.precision) return false;
  auto type_at = [](const ir::Node& n, size_t i) {  // -1: unset
    return i < n.output_types.size() && n.output_types[i] ? static_cast<int>(*n.output_types[i]) : -1;
  };
  const size_t n = std::max(a.output_types.size(), b.output_types.size());
  for (size_t i = 0; i < n; ++i)
    if (type_at(a, i) != type_at(b, i)) return false;
  return true;
}

inline bool is_elementwise(const ir::Node& n, int64_t op) {
  return n.op == "ElementWise" && n.inputs.size() == 2 && n.inputs[0] && n.inputs[1] && n.attrs.i("op", -1) == op;
}

// For a binary node reading v once: its other operand (nullptr when v is not an operand or is both).
inline ir::Value* other_operand(const ir::Node& n, const ir::Value* v) {
  if (n.inputs.size() != 2) return nullptr;
  if (n.inputs[0] == v && n.inputs[1] != v) return n.inputs[1];
  if (n.inputs[1] == v && n.inputs[0] != v) return n.inputs[0];
  return nullptr;
}

// An Activation node the fused epilogues can take (any ActivationType the Activation op knows, on floats).
inline bool fusable_activation(const ir::Node& n) {
  return n.op == "Activation" && n.inputs.size() == 1 && n.inputs[0] && n.outputs.size() == 1 &&
         ir::known_activation_type(n.attrs.i("type", -1)) && is_float(n.outputs[0]->dtype);
}

// The fused node takes the activation: `activation` = type, `act_alpha` / `act_beta` where the layer set them
// (absent ones keep the Activation op's defaults).
inline void absorb_activation(ir::Node& fused, const ir::Node& act) {
  fused.attrs.set("activation", act.attrs.i("type", -1));
  if (act.attrs.has("alpha")) fused.attrs.set("act_alpha", act.attrs.f("alpha", 0));
  if (act.attrs.has("beta")) fused.attrs.set("act_beta", act.attrs.f("beta", 0));
}

// Appends an absorbed layer's name to the fused node's `fused` attribute (comma separated).
inline void record_fused(ir::Node& fused, const ir::Node& absorbed) {
  std::string s = fused.attrs.s("fused", "");
  fused.attrs.set("fused", s.empty() ? absorbed.name : s + "," + absorbed.name);
}

// `fused` now computes what `last` produced: it takes last's output value (name, graph-output mark, users),
// and last keeps fused's old output, so removing the absorbed nodes leaves no dangling use.
inline void take_output(ir::Node& fused, ir::Node& last) {
  ir::Value* old_out = fused.outputs[0];
  ir::Value* new_out = last.outputs[0];
  fused.outputs[0] = new_out;
  new_out->producer = &fused;
  last.outputs[0] = old_out;
  old_out->producer = &last;
}

// Right-aligns a constant's shape against an output of rank `rank`: true when every dim is 1 except the one
// at output axis `axis`, which is `len` or 1 (so the operand broadcasts along that axis only, never grows
// the output). A rank above the output's is refused.
inline bool broadcasts_along(const Dims& c, size_t rank, size_t axis, int64_t len) {
  if (c.size() > rank) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    const size_t p = rank - c.size() + i;
    if (c[i] == 1) continue;
    if (p != axis || c[i] != len) return false;
  }
  return true;
}

// The values of a constant that broadcasts along one axis, as `len` doubles (a single value repeated).
inline std::vector<double> per_axis_values(const HostTensor& t, int64_t len) {
  std::vector<double> v(static_cast<size_t>(len));
  const bool one = t.numel() == 1;
  for (int64_t i = 0; i < len; ++i) v[static_cast<size_t>(i)] = t.get_f64(one ? 0 : i);
  return v;
}

// A tensor of float dtype dt and `shape` holding v (each double rounded once to dt).
inline HostTensor make_tensor(DataType dt, const std::vector<double>& v, Dims shape) {
  HostTensor t(dt, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dt) {
      case DataType::kDOUBLE: t.mutable_data<double>()[i] = v[i]; break;
      case DataType::kHALF: t.mutable_data<uint16_t>()[i] = float_to_half(static_cast<float>(v[i])); break;
      case DataType::kBF16: t.mutable_data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v[i])); break;
      default: t.mutable_data<float>()[i] = static_cast<float>(v[i]); break;
    }
  }
  return t;
}

// `base`, or base_1, base_2, ... when a node already has that name (names stay readable in `kiln inspect`).
inline std::string fresh_name(const ir::Graph& g, const std::string& base) {
  if (!g.find_node(base)) return base;
  for (int i = 1;; ++i) {
    std::string n = base + "_" + std::to_string(i);
    if (!g.find_node(n)) return n;
  }
}

// The constant a SUM node n adds to y along y's last dim only (a GEMM's bias: N values as [N] or
// [1, .., 1, N], y's dtype), or nullptr when n is no such bias add.
inline const HostTensor* column_bias(const ir::Node& n, const ir::Value* y) {
  if (!is_elementwise(n, kSum) || y->shape.empty()) return nullptr;
  const ir::Value* other = other_operand(n, y);
  const HostTensor* c = other ? ir::constant_value(other) : nullptr;
  const int64_t len = y->shape.back();
  if (!c || c->dtype() != y->dtype || len <= 0 || c->numel() != len ||
      !broadcasts_along(c->shape(), y->shape.size(), y->shape.size() - 1, len))
    return nullptr;
  return c;
}

}  // namespace kiln::passes::fusion
