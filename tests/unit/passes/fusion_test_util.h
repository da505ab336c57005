// Helpers for the fusion pass tests: build small graphs, evaluate a whole graph on the CPU backend, and check
// that a pass leaves the graph's outputs numerically unchanged on random inputs.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/eval.h"
#include "backends/cpu/math_kernel_test_util.h"
#include "passes/pass.h"
#include "runtime/shape_analysis.h"

namespace kiln::fusetest {

// Evaluates every node in topological order with the CPU kernels; returns the graph outputs.
inline std::vector<HostTensor> eval_graph(ir::Graph& g, const std::vector<HostTensor>& inputs) {
  g.topo_sort();
  std::unordered_map<const ir::Value*, HostTensor> vals;
  for (size_t i = 0; i < g.inputs().size(); ++i) vals[g.inputs()[i]] = inputs.at(i);
  for (auto& n : g.nodes()) {
    std::vector<const HostTensor*> ins;
    for (ir::Value* v : n->inputs) ins.push_back(v ? &vals.at(v) : nullptr);
    std::vector<HostTensor> outs = cpu::eval_node(*n, ins, mtest::test_pool());
    for (size_t i = 0; i < outs.size(); ++i) vals[n->outputs[i]] = outs[i];
  }
  std::vector<HostTensor> r;
  for (ir::Value* o : g.outputs()) r.push_back(vals.at(o));
  return r;
}

// Random inputs for every graph input (its declared shape and dtype).
inline std::vector<HostTensor> random_inputs(const ir::Graph& g) {
  std::vector<HostTensor> r;
  for (ir::Value* v : g.inputs()) r.push_back(mtest::rand_float(v->shape, v->dtype, 0.1, 2.0));
  return r;
}

inline size_t count_op(const ir::Graph& g, const std::string& op) {
  size_t c = 0;
  for (auto& n : g.nodes()) c += n->op == op;
  return c;
}

// Non-constant nodes.
inline size_t count_layers(const ir::Graph& g) { return g.num_nodes() - count_op(g, "Constant"); }

// Runs `pass` on g (until it reports no change, at most 4 times, as the builder does), checks it is then
// idempotent, that shape inference still accepts the graph, and that the outputs on random inputs match the
// graph before within rtol (relative to each output's max |value|).
inline ::testing::AssertionResult run_and_compare(ir::Graph& g, passes::Pass& pass, double rtol = 1e-5,
                                                  bool* changed = nullptr) {
  std::unique_ptr<ir::Graph> before = g.clone();
  const std::vector<HostTensor> inputs = random_inputs(g);
  const std::vector<HostTensor> want = eval_graph(*before, inputs);
  bool any = false;
  for (int i = 0; i < 4 && pass.run(g); ++i) any = true;
  if (changed) *changed = any;
  if (pass.run(g)) return ::testing::AssertionFailure() << pass.name() << " is not idempotent";
  try {
    infer_graph_inplace(g);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "shape inference fails after the pass: " << e.what() << "\n" << g.to_string();
  }
  const std::vector<HostTensor> got = eval_graph(g, inputs);
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "output count changed";
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].shape() != want[i].shape())
      return ::testing::AssertionFailure() << "output " << i << " shape " << dims_str(got[i].shape()) << " vs "
                                           << dims_str(want[i].shape());
    double maxref = 0;
    for (int64_t k = 0; k < want[i].numel(); ++k) maxref = std::max(maxref, std::fabs(want[i].get_f64(k)));
    ::testing::AssertionResult r = mtest::close(got[i], mtest::to_f64(want[i]), 0, rtol * std::max(maxref, 1e-30));
    if (!r) return ::testing::AssertionFailure() << "output " << i << ": " << r.message() << "\n" << g.to_string();
  }
  return ::testing::AssertionSuccess();
}

// Builds test graphs node by node; values get their shapes from infer() (call it before running a pass).
struct Builder {
  ir::Graph g;
  int next = 0;

  std::string fresh(const std::string& base) { return base + std::to_string(next++); }
  ir::Value* input(Dims shape, DataType dt = DataType::kFLOAT) {
    return g.add_input(fresh("x"), dt, std::move(shape));
  }
  ir::Value* cst(HostTensor t) { return g.add_constant(fresh("c"), std::move(t))->outputs[0]; }
  ir::Value* rand_cst(Dims shape, double lo = 0.1, double hi = 2.0) { return cst(mtest::rand_float(std::move(shape), DataType::kFLOAT, lo, hi)); }
  ir::Value* scalar(double v) { return cst(mtest::scalar_of(DataType::kFLOAT, v, {})); }
  ir::Node* node(const std::string& op, std::vector<ir::Value*> ins, const std::string& name = "") {
    return g.add_node(op, name.empty() ? fresh(op) : name, std::move(ins), 1);
  }
  ir::Value* ew(ir::Value* a, ir::Value* b, int64_t op, const std::string& name = "") {
    ir::Node* n = node("ElementWise", {a, b}, name);
    n->attrs.set("op", op);
    return n->outputs[0];
  }
  ir::Value* add(ir::Value* a, ir::Value* b, const std::string& name = "") { return ew(a, b, 0, name); }
  ir::Value* mul(ir::Value* a, ir::Value* b, const std::string& name = "") { return ew(a, b, 1, name); }
  ir::Value* act(ir::Value* x, int64_t type, const std::string& name = "") {
    ir::Node* n = node("Activation", {x}, name);
    n->attrs.set("type", type);
    return n->outputs[0];
  }
  ir::Value* unary(ir::Value* x, int64_t op) {
    ir::Node* n = node("Unary", {x});
    n->attrs.set("op", op);
    return n->outputs[0];
  }
  // 3x3 (or 3 / 3x3x3) convolution with padding 1: same spatial size.
  ir::Value* conv(ir::Value* x, ir::Value* w, ir::Value* b, const std::string& name = "conv") {
    std::vector<ir::Value*> ins = {x, w};
    if (b) ins.push_back(b);
    ir::Node* n = node("Convolution", ins, name);
    const size_t nsp = x->shape.size() - 2;
    n->attrs.set("pre_padding", std::vector<int64_t>(nsp, 1));
    n->attrs.set("post_padding", std::vector<int64_t>(nsp, 1));
    return n->outputs[0];
  }
  ir::Value* matmul(ir::Value* a, ir::Value* b, const std::string& name = "mm") {
    return node("MatrixMultiply", {a, b}, name)->outputs[0];
  }
  void output(ir::Value* v) { g.mark_output(v); }
  void infer() { infer_graph_inplace(g); }
};

// run_and_compare, and the pass must have left the graph as it was (a pattern it must not rewrite).
inline ::testing::AssertionResult unchanged_by(ir::Graph& g, passes::Pass& pass, double rtol = 1e-5) {
  bool changed = true;
  ::testing::AssertionResult r = run_and_compare(g, pass, rtol, &changed);
  if (!r) return r;
  if (changed) return ::testing::AssertionFailure() << pass.name() << " changed the graph\n" << g.to_string();
  return ::testing::AssertionSuccess();
}

// The pass says it changed nothing and the graph reads exactly as before: for refusals on graphs the CPU
// cannot evaluate (half-precision layers it has no kernel for), where unchanged_by's run does not apply.
inline ::testing::AssertionResult not_rewritten_by(ir::Graph& g, passes::Pass& pass) {
  const std::string before = g.to_string();
  if (pass.run(g)) return ::testing::AssertionFailure() << pass.name() << " rewrote:\n" << g.to_string();
  if (g.to_string() != before)
    return ::testing::AssertionFailure() << pass.name() << " changed the graph without saying so";
  return ::testing::AssertionSuccess();
}

// A rewrite that leaves a layer dead behind it, as fusions do: on its first run it adds a Shape of `v` that
// nothing reads (GPT-2's export reads its token embedding's Shape for a mask that fused attention drops).
class LeavesADeadShape : public passes::Pass {
 public:
  explicit LeavesADeadShape(ir::Value* v) : v_(v) {}
  std::string name() const override { return "leaves-a-dead-shape"; }
  bool run(ir::Graph& g) override {
    if (done_) return false;
    done_ = true;
    g.add_node("Shape", "dead_shape", {v_}, 1);
    return true;
  }

 private:
  ir::Value* v_;
  bool done_ = false;
};

}  // namespace kiln::fusetest
