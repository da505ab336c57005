#include "passes/fuse_gemm.h"

#include <optional>
#include <vector>

#include "passes/fusion_match.h"
#include "passes/view_ops.h"

namespace kiln::passes {

namespace {

using fusion::Uses;

// A MatrixMultiply with nothing fused yet, float, whose output ends in a known N from a matrix B.
bool plain_matmul(const ir::Node& n) {
  if (n.op != "MatrixMultiply" || n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1] || n.outputs.size() != 1)
    return false;
  for (size_t i = 2; i < n.inputs.size(); ++i)
    if (n.inputs[i]) return false;
  if (ir::fused_activation(n.attrs) != -1) return false;
  return fusion::is_float(n.outputs[0]->dtype) && !n.outputs[0]->shape.empty();
}

// B is a matrix (the output's last dim is N, not a batch dim of a vector product).
bool b_is_matrix(const ir::Node& n) { return n.attrs.i("op_b", 0) != 2 && n.inputs[1]->shape.size() >= 2; }


// The bias operand of a SUM u on y: a constant that broadcasts along the last dim only (rebuilt as a [N]
// constant), or a 1-D [N] tensor used as it is. nullptr when u is not a bias add.
ir::Value* bias_operand(ir::Graph& g, const ir::Node& mm, const ir::Node& u, const ir::Value* y) {
  const int64_t N = y->shape.back();
  if (N <= 0 || !b_is_matrix(mm)) return nullptr;
  ir::Value* other = fusion::other_operand(u, y);
  if (!other || other->dtype != y->dtype) return nullptr;
  if (ir::constant_value(other)) {
    const HostTensor* c = fusion::column_bias(u, y);
    if (!c) return nullptr;
    if (c->shape() == Dims{N}) return other;
    ir::Node* k = g.add_constant(fusion::fresh_name(g, mm.name + "_bias"), c->reshaped({N}));
    return k->outputs[0];
  }
  if (other->shape == Dims{N} && y->shape.size() >= 1) return other;
  return nullptr;
}

// A Shuffle that only reshapes (no transposes) its one data input.
bool plain_reshape(const ir::Node& n) {
  return n.op == "Shuffle" && !n.inputs.empty() && n.inputs[0] && n.outputs.size() == 1 &&
         n.attrs.ints("first_transpose").empty() && n.attrs.ints("second_transpose").empty();
}

// Puts `op` (y's reshape r's only user, which has taken y in place of r's output as its input already) between y
// and r: op's old output (what later layers read) becomes r's output, and r's old output value, now y's shape,
// becomes op's, so every value keeps its role for the rest of the graph.
void swap_above_reshape(fusion::Uses& uses, ir::Value* y, ir::Node* r, ir::Node* op) {
  ir::Value* reshaped = r->outputs[0];
  ir::Value* result = op->outputs[0];
  op->outputs[0] = reshaped;
  reshaped->producer = op;
  reshaped->shape = y->shape;
  r->inputs[0] = reshaped;
  r->outputs[0] = result;
  result->producer = r;
  uses.users[y] = {op};
  uses.users[reshaped] = {r};
}

// y -> reshape -> activation becomes y -> activation -> reshape, so the activation reaches the GEMM's
// epilogue: exporters flatten a 3-D MatMul into [M, K] x [K, N] and reshape back before the activation (GPT-2's
// MLP: Gemm, Reshape, GELU), and an activation is the same on either side of a reshape. Values keep their roles
// (swap_above_reshape). False when the pattern is not there (or is shared: each value has its one user).
bool hoist_activation_over_reshape(fusion::Uses& uses, const ir::Node& mm, ir::Value* y) {
  ir::Node* r = uses.only_user(y);
  if (!r || !plain_reshape(*r) || r->inputs[0] != y || !fusion::same_constraints(mm, *r)) return false;
  ir::Value* reshaped = r->outputs[0];
  ir::Node* act = uses.only_user(reshaped);
  if (!act || !fusion::fusable_activation(*act) || !fusion::same_constraints(mm, *act)) return false;
  for (size_t i = 1; i < r->inputs.size(); ++i)  // the shape input must not be the activation's work
    if (r->inputs[i] == reshaped) return false;
  act->inputs[0] = y;
  swap_above_reshape(uses, y, r, act);
  return true;
}

// y's shape as static reshape dims for a residual that will be read in y's place: at most one unknown dim
// (the reshape infers it), no empty dims (a -1 next to a 0 could not be inferred). Nothing when that cannot be.
std::optional<std::vector<int64_t>> reshape_target(const Dims& shape) {
  int unknown = 0;
  for (int64_t d : shape) {
    if (d == 0) return std::nullopt;
    unknown += d < 0;
  }
  if (unknown > 1) return std::nullopt;
  return std::vector<int64_t>(shape.begin(), shape.end());
}

// y -> reshape -> SUM(., res) becomes y -> SUM(., reshape(res to y's shape)) -> reshape, so the SUM is y's user
// and fuses as the GEMM's residual: GPT-2's Conv1D layers flatten to [M, K], Gemm, reshape back to 3-D and only
// then add the residual stream. A sum is the same on either side of a reshape when res has exactly the
// reshape output's shape (no broadcasting; unknown dims count as equal only when both are unknown, as for the
// residual itself: run-time shape inference checks the real shapes). Values keep their roles
// (swap_above_reshape). Only for a non-constant res and a GEMM
// without a residual yet, so the rewrite is done only when the residual fuses right after it; a constant
// after the reshape is bias-like and stays where it is. False when the pattern is not there.
bool hoist_residual_over_reshape(ir::Graph& g, fusion::Uses& uses, const ir::Node& mm, ir::Value* y) {
  ir::Node* r = uses.only_user(y);
  if (!r || !plain_reshape(*r) || r->inputs[0] != y || !fusion::same_constraints(mm, *r)) return false;
  ir::Value* reshaped = r->outputs[0];
  ir::Node* sum = uses.only_user(reshaped);
  if (!sum || !fusion::is_elementwise(*sum, fusion::kSum) || sum->outputs.size() != 1 ||
      !fusion::same_constraints(mm, *sum))
    return false;
  ir::Value* res = fusion::other_operand(*sum, reshaped);
  if (!res || ir::constant_value(res) || res->dtype != y->dtype || res->shape != reshaped->shape) return false;
  const std::optional<std::vector<int64_t>> target = reshape_target(y->shape);
  if (!target) return false;
  // y's dims as they are (no 0 placeholders: never copies of res's dims).
  ir::Node* view = views::add_reshape(g, fusion::fresh_name(g, sum->name + "_residual_reshape"), res, *target, y->shape,
                                      false)->producer;
  view->precision = r->precision;
  view->output_types = r->output_types;
  for (ir::Value*& in : sum->inputs) in = in == reshaped ? y : view->outputs[0];  // operand order kept
  swap_above_reshape(uses, y, r, sum);
  uses.users[view->outputs[0]] = {sum};
  for (ir::Node*& n : uses.users[res])  // res is read by the new reshape now, not by the sum
    if (n == sum) n = view;
  return true;
}

}  // namespace

bool FuseGemmEpilogue::run(ir::Graph& g) {
  Uses uses(g);
  std::vector<ir::Node*> mms;
  for (auto& n : g.nodes())
    if (plain_matmul(*n)) mms.push_back(n.get());
  bool changed = false;
  for (ir::Node* mm : mms) {
    for (;;) {
      ir::Value* y = mm->outputs[0];
      ir::Node* u = uses.only_user(y);
      if (!u || !fusion::same_constraints(*mm, *u) || u->outputs.size() != 1) break;
      const bool has_bias = mm->inputs.size() > 2 && mm->inputs[2];
      const bool has_residual = mm->inputs.size() > 3 && mm->inputs[3];
      if (fusion::is_elementwise(*u, fusion::kSum)) {
        ir::Value* other = fusion::other_operand(*u, y);
        if (!other || other->dtype != y->dtype) break;
        ir::Value* bias = has_bias ? nullptr : bias_operand(g, *mm, *u, y);
        if (bias) {
          mm->inputs.resize(4, nullptr);
          mm->inputs[2] = bias;
        } else if (!has_residual && other->shape == y->shape) {
          // Unknown dims (a dynamic batch) count as equal when both are unknown: in networks they come from
          // the same input; run-time shape inference checks the real shapes and names the layer otherwise.
          mm->inputs.resize(4, nullptr);
          mm->inputs[3] = other;
        } else {
          break;
        }
      } else if (fusion::fusable_activation(*u) && u->inputs[0] == y) {
        fusion::absorb_activation(*mm, *u);
      } else if (hoist_activation_over_reshape(uses, *mm, y)) {
        changed = true;
        continue;  // the activation is y's user now
      } else if (!has_residual && hoist_residual_over_reshape(g, uses, *mm, y)) {
        changed = true;
        continue;  // the residual sum is y's user now
      } else {
        break;
      }
      fusion::record_fused(*mm, *u);
      fusion::take_output(*mm, *u);
      uses.removed.insert(u);
      changed = true;
      if (u->op == "Activation") break;  // the activation ends the epilogue
    }
    // Trailing absent inputs are dropped (a node with only a residual keeps a null bias slot).
    while (mm->inputs.size() > 2 && !mm->inputs.back()) mm->inputs.pop_back();
  }
  if (changed) {
    g.remove_nodes_if([&](const ir::Node* n) { return uses.removed.count(n) > 0; });
    g.topo_sort();
  }
  return changed;
}

}  // namespace kiln::passes
