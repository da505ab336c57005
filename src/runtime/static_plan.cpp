#include "runtime/static_plan.h"

namespace kiln {

IoMap::IoMap(const EngineData& engine) {
  const ir::Graph& g = *engine.graph;
  value_io.assign(g.values().size(), -1);
  for (size_t i = 0; i < engine.io.size(); ++i) {
    ir::Value* v = g.find_value(engine.io[i].name);
    if (!v) throw Error("engine I/O tensor '" + engine.io[i].name + "' is missing from its graph");
    io_value_ids.push_back(v->id);
    if (value_io[v->id] < 0) value_io[v->id] = static_cast<int>(i);
  }
}

std::vector<Dims> IoMap::graph_input_shapes(const EngineData& engine, const std::vector<Dims>& input_shapes) const {
  const ir::Graph& g = *engine.graph;
  std::vector<Dims> out(g.inputs().size());
  size_t k = 0;
  for (size_t i = 0; i < engine.io.size(); ++i) {
    if (!engine.io[i].is_input) continue;
    if (k >= input_shapes.size()) throw Error("execution context: missing input shapes");
    for (size_t gi = 0; gi < g.inputs().size(); ++gi)
      if (g.inputs()[gi]->id == io_value_ids[i]) out[gi] = input_shapes[k];
    ++k;
  }
  return out;
}

StaticPlan plan_static(const EngineData& engine, const IoMap& io, const ShapeAnalysis& shapes) {
  using Where = StaticPlan::Where;
  const ir::Graph& g = *engine.graph;
  StaticPlan p;
  p.loc.assign(g.values().size(), StaticPlan::Location{});
  for (size_t v = 0; v < p.loc.size(); ++v) {
    int i = io.value_io[v];
    bool host = !shapes.values[v].empty();
    bool constant = ir::constant_value(g.values()[v].get()) != nullptr;
    // Outputs that no step writes (host-computed, constants) keep their own storage and are copied out.
    bool own_storage = i >= 0 && !engine.io[i].is_input && (host || constant);
    if (i >= 0 && !own_storage) p.loc[v] = {Where::kIO, i};
    else if (host) p.loc[v] = {Where::kHost, 0};
    else if (constant) p.loc[v] = {Where::kConstant, 0};
  }
  std::vector<int> first(g.values().size(), -1), last(g.values().size(), -1);
  for (auto& np : g.nodes()) {
    const ir::Node* n = np.get();
    if (n->op == "Constant") {
      if (p.loc[n->outputs[0]->id].where == Where::kNone) p.loc[n->outputs[0]->id] = {Where::kConstant, 0};
      continue;  // its value lives in the plan
    }
    bool all_host = true;
    for (auto* o : n->outputs)
      if (shapes.values[o->id].empty()) all_host = false;
    if (all_host) continue;  // computed during shape analysis
    int step = static_cast<int>(p.steps.size());
    p.steps.push_back(n);
    for (auto* in : n->inputs)
      if (in) last[in->id] = step;
    for (auto* o : n->outputs) {
      if (!dims_known(shapes.info[o->id].shape))
        throw Error("layer '" + n->name + "': output '" + o->name + "' has unknown shape " +
                    dims_str(shapes.info[o->id].shape) + " for these input shapes");
      if (first[o->id] < 0) first[o->id] = step;
      if (last[o->id] < step) last[o->id] = step;
    }
  }
  std::vector<BufferLifetime> buffers;
  std::vector<int> buffer_value;
  for (size_t v = 0; v < p.loc.size(); ++v) {
    if (p.loc[v].where != Where::kNone || first[v] < 0) continue;
    const auto& info = shapes.info[v];
    buffers.push_back(BufferLifetime{volume(info.shape) * static_cast<int64_t>(dtype_size(info.dtype)), first[v],
                                     std::max(first[v], last[v])});
    buffer_value.push_back(static_cast<int>(v));
  }
  p.memory = plan_memory(buffers);
  for (size_t b = 0; b < buffers.size(); ++b) p.loc[buffer_value[b]] = {Where::kArena, p.memory.offsets[b]};
  for (size_t i = 0; i < engine.io.size(); ++i) {
    if (engine.io[i].is_input) continue;
    int vid = io.io_value_ids[i];
    const auto& l = p.loc[vid];
    if (!(l.where == Where::kIO && l.index == static_cast<int64_t>(i))) p.output_copies.emplace_back(i, vid);
  }
  return p;
}

}  // namespace kiln
