#include "runtime/static_plan.h"

#include <algorithm>
#include <optional>

#include "runtime/view_layers.h"

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

StaticPlan plan_static(const EngineData& engine, const IoMap& io, const ShapeAnalysis& shapes,
                       const std::vector<StepWindow>& held) {
  using Where = StaticPlan::Where;
  const ir::Graph& g = *engine.graph;
  const size_t num_values = g.values().size();
  StaticPlan p;
  p.loc.assign(num_values, StaticPlan::Location{});
  for (size_t v = 0; v < num_values; ++v) {
    const int vid = static_cast<int>(v);
    int i = io.value_io[v];
    bool host = !shapes.values[v].empty();
    bool constant = ir::constant_value(g.values()[v].get()) != nullptr;
    // Outputs that no step writes (host-computed, constants) keep their own storage and are copied out.
    bool own_storage = i >= 0 && !engine.io[i].is_input && (host || constant);
    if (i >= 0 && !own_storage) p.loc[v] = {Where::kIO, i, vid};
    else if (host) p.loc[v] = {Where::kHost, 0, vid};
    else if (constant) p.loc[v] = {Where::kConstant, 0, vid};
  }
  // root[v]: the value whose storage v shares (v itself unless v is a view layer's output), and
  // offset[v]: the byte where v starts in it.
  std::vector<int> root(num_values);
  for (size_t v = 0; v < num_values; ++v) root[v] = static_cast<int>(v);
  std::vector<int64_t> offset(num_values, 0);
  auto bytes = [&](int v) {
    return volume(shapes.info[v].shape) * static_cast<int64_t>(dtype_size(shapes.info[v].dtype));
  };
  // Live ranges in steps, kept for roots only: a read of a view's output is a read of its root.
  std::vector<int> first(num_values, -1), last(num_values, -1);
  for (auto& np : g.nodes()) {
    const ir::Node* n = np.get();
    if (n->op == "Constant") {
      const int vid = n->outputs[0]->id;
      if (p.loc[vid].where == Where::kNone) p.loc[vid] = {Where::kConstant, 0, vid};
      continue;  // its value lives in the plan
    }
    bool all_host = true;
    for (auto* o : n->outputs)
      if (shapes.values[o->id].empty()) all_host = false;
    if (all_host) continue;  // computed during shape analysis
    if (!n->inputs.empty() && n->inputs[0] && p.loc[root[n->inputs[0]->id]].where != Where::kHost) {
      if (std::optional<std::vector<int64_t>> offsets = view_offsets(*n, shapes)) {
        const int in = n->inputs[0]->id;
        for (size_t k = 0; k < n->outputs.size(); ++k) {
          root[n->outputs[k]->id] = root[in];
          offset[n->outputs[k]->id] = offset[in] + (*offsets)[k];
        }
        p.views.push_back(n);
        continue;
      }
    }
    int step = static_cast<int>(p.steps.size());
    p.steps.push_back(n);
    for (auto* in : n->inputs)
      if (in) last[root[in->id]] = step;
    for (auto* o : n->outputs) {
      if (!dims_known(shapes.info[o->id].shape))
        throw Error("layer '" + n->name + "': output '" + o->name + "' has unknown shape " +
                    dims_str(shapes.info[o->id].shape) + " for these input shapes");
      if (first[o->id] < 0) first[o->id] = step;
      if (last[o->id] < step) last[o->id] = step;
    }
  }
  // A group that a step writes and that holds a network output lives in that output's buffer: the step
  // writes the caller's buffer directly, as it would without the views. The first such output in value
  // order that is the root's bytes exactly takes it (a block of them could not hold the root); the
  // group's other outputs become output copies below.
  for (size_t v = 0; v < num_values; ++v) {
    const int r = root[v];
    if (r == static_cast<int>(v) || p.loc[v].where != Where::kIO || p.loc[r].where != Where::kNone) continue;
    if (engine.io[p.loc[v].index].is_input) continue;  // a view's output is never a network input
    if (offset[v] != 0 || bytes(static_cast<int>(v)) != bytes(r)) continue;
    p.loc[r] = {Where::kIO, p.loc[v].index, r};
  }
  // A network output copied out of a group the arena holds is read after the last step: the root's bytes
  // must outlive every step.
  const int last_step = static_cast<int>(p.steps.size()) - 1;
  for (size_t i = 0; i < engine.io.size(); ++i) {
    const int r = root[io.io_value_ids[i]];
    if (!engine.io[i].is_input && p.loc[r].where == Where::kNone && first[r] >= 0) last[r] = last_step;
  }
  for (const StepWindow& w : held) {
    if (w.step < 0 || w.step > last_step || w.from > w.to) throw Error("internal: a held step window is out of range");
    const ir::Node* n = p.steps[w.step];
    auto hold = [&](const ir::Value* v) {
      if (!v) return;
      const int r = root[v->id];
      if (first[r] < 0) return;  // not a step's output: no arena buffer
      first[r] = std::min(first[r], w.from);
      last[r] = std::max(last[r], w.to);
    };
    for (auto* in : n->inputs) hold(in);
    for (auto* o : n->outputs) hold(o);
  }
  std::vector<BufferLifetime> buffers;
  std::vector<int> buffer_value;
  for (size_t v = 0; v < num_values; ++v) {
    if (root[v] != static_cast<int>(v) || p.loc[v].where != Where::kNone || first[v] < 0) continue;
    const auto& info = shapes.info[v];
    buffers.push_back(BufferLifetime{volume(info.shape) * static_cast<int64_t>(dtype_size(info.dtype)), first[v],
                                     std::max(first[v], last[v])});
    buffer_value.push_back(static_cast<int>(v));
  }
  p.memory = plan_memory(buffers);
  for (size_t b = 0; b < buffers.size(); ++b)
    p.loc[buffer_value[b]] = {Where::kArena, p.memory.offsets[b], buffer_value[b]};
  // Views' outputs take their root's location (a network output among them too: nothing writes its own
  // buffer now, so it is copied out unless it is the one its group lives in).
  for (size_t v = 0; v < num_values; ++v)
    if (root[v] != static_cast<int>(v)) {
      p.loc[v] = p.loc[root[v]];
      p.loc[v].offset = offset[v];
    }
  for (size_t i = 0; i < engine.io.size(); ++i) {
    if (engine.io[i].is_input) continue;
    int vid = io.io_value_ids[i];
    const auto& l = p.loc[vid];
    if (!(l.where == Where::kIO && l.index == static_cast<int64_t>(i))) p.output_copies.emplace_back(i, vid);
  }
  return p;
}

}  // namespace kiln
