// Shared by the runtime tests (CPU and CUDA): an engine around a hand-built graph (its inputs' declared
// shapes as the only profile), the plan for given input shapes, a CPU run over a NaN-poisoned arena, and a
// logger that keeps the errors it is given.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"
#include "runtime/static_plan.h"

namespace kiln::test {

// Keeps every error message logged (the last one explains a failed execute()).
struct CollectingLogger : ILogger {
  std::vector<std::string> errors;
  void log(Severity s, const char* msg) noexcept override {
    if (s <= Severity::kERROR) errors.emplace_back(msg);
  }
  std::string last() const { return errors.empty() ? "" : errors.back(); }
};

inline std::shared_ptr<EngineData> engine_of(std::unique_ptr<ir::Graph> g) {
  auto ed = std::make_shared<EngineData>();
  g->topo_sort();
  infer_graph_inplace(*g);
  for (auto* in : g->inputs())
    ed->io.push_back(
        IOTensorInfo{in->name, true, in->dtype, in->shape, {ProfileShapes{in->shape, in->shape, in->shape}}});
  for (auto* o : g->outputs()) ed->io.push_back(IOTensorInfo{o->name, false, o->dtype, o->shape, {}});
  ed->graph = std::move(g);
  return ed;
}

// Layers for test graphs, each output named after its layer.
inline ir::Node* relu(ir::Graph& g, ir::Value* x, const std::string& name) {
  auto* n = g.add_node("Activation", name, {x}, 1);
  n->attrs.set("type", int64_t{0});
  n->outputs[0]->name = name;
  return n;
}

inline ir::Node* negate(ir::Graph& g, ir::Value* x, const std::string& name) {
  auto* n = g.add_node("Unary", name, {x}, 1);
  n->attrs.set("op", int64_t{5});
  n->outputs[0]->name = name;
  return n;
}

inline ir::Node* unsqueeze(ir::Graph& g, ir::Value* x, const std::string& name) {
  auto* n = g.add_node("Unsqueeze", name, {x}, 1);
  n->attrs.set("axes", std::vector<int64_t>{0});
  n->outputs[0]->name = name;
  return n;
}

inline ir::Node* reshape(ir::Graph& g, ir::Value* x, std::vector<int64_t> dims, const std::string& name) {
  auto* n = g.add_node("Shuffle", name, {x}, 1);
  n->attrs.set("has_reshape", int64_t{1});
  n->attrs.set("reshape_dims", std::move(dims));
  n->outputs[0]->name = name;
  return n;
}

inline StaticPlan plan_for(const EngineData& ed, const std::vector<Dims>& input_shapes) {
  IoMap io(ed);
  ShapeAnalysis shapes = analyze_shapes(*ed.graph, io.graph_input_shapes(ed, input_shapes), true);
  return plan_static(ed, io, shapes);
}

inline std::vector<std::string> names(const std::vector<const ir::Node*>& nodes) {
  std::vector<std::string> out;
  for (auto* n : nodes) out.push_back(n->name);
  return out;
}

inline std::vector<std::string> copied_outputs(const EngineData& ed, const StaticPlan& p) {
  std::vector<std::string> out;
  for (auto [i, vid] : p.output_copies) out.push_back(ed.io[i].name);
  return out;
}

inline std::vector<float> ramp(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i) * 0.25f;
  return v;
}

// Runs the CPU executor over an arena full of NaN, so a layer reading memory nobody wrote shows.
inline void run_cpu(const std::shared_ptr<EngineData>& ed, const std::vector<Dims>& input_shapes,
                    std::vector<void*> ptrs) {
  Executor ex(ed);
  ex.prepare(input_shapes);
  std::vector<float> arena(static_cast<size_t>(ex.arena_bytes()) / sizeof(float) + 64, std::nanf(""));
  void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(arena.data()) + 255) / 256 * 256);
  ex.run(ptrs, aligned, &cpu::default_thread_pool());
}

}  // namespace kiln::test
