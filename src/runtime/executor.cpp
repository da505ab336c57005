#include "runtime/executor.h"

#include <cstring>

#include "runtime/shape_inputs.h"

namespace kiln {

Executor::Executor(std::shared_ptr<const EngineData> engine) : engine_(std::move(engine)) {
  const ir::Graph& g = *engine_->graph;
  value_io_.assign(g.values().size(), -1);
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    ir::Value* v = g.find_value(engine_->io[i].name);
    if (!v) throw Error("engine I/O tensor '" + engine_->io[i].name + "' is missing from its graph");
    io_value_ids_.push_back(v->id);
    // An output that is also an input keeps the input's binding; the copy is made at the end of run().
    if (value_io_[v->id] < 0) value_io_[v->id] = static_cast<int>(i);
  }
  // Shape tensors: found once on the declared shapes; where an input's size is dynamic, its profile-0 max
  // size decides whether it is small enough to read on the host.
  std::vector<Dims> declared;
  std::vector<int64_t> max_sizes;
  for (auto* in : g.inputs()) {
    declared.push_back(in->shape);
    int64_t n = -1;
    for (auto& io : engine_->io)
      if (io.is_input && io.name == in->name && !io.profiles.empty()) n = volume(io.profiles[0].max);
    max_sizes.push_back(n);
  }
  std::vector<bool> by_input(g.inputs().size(), false);
  try {
    by_input = find_shape_inputs(g, analyze_shapes(g, declared, true), max_sizes);
  } catch (const Error&) {
    // Declared shapes too open to analyze (inference needs some dim): no input is read as a shape tensor.
  }
  shape_input_.assign(engine_->io.size(), false);
  for (size_t i = 0; i < engine_->io.size(); ++i)
    for (size_t gi = 0; gi < g.inputs().size(); ++gi)
      if (engine_->io[i].is_input && g.inputs()[gi]->id == io_value_ids_[i]) shape_input_[i] = by_input[gi];
}

bool Executor::has_shape_inputs() const {
  for (bool b : shape_input_)
    if (b) return true;
  return false;
}

const Dims& Executor::io_shape(size_t io_index) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  return io_shapes_.at(io_index);
}

void Executor::prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& shape_values) {
  prepared_ = false;
  const ir::Graph& g = *engine_->graph;
  // Graph inputs in graph order from io order.
  std::vector<Dims> graph_shapes(g.inputs().size());
  std::vector<HostTensor> graph_values(g.inputs().size());
  size_t k = 0;
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    if (!engine_->io[i].is_input) continue;
    if (k >= input_shapes.size()) throw Error("execution context: missing input shapes");
    for (size_t gi = 0; gi < g.inputs().size(); ++gi) {
      if (g.inputs()[gi]->id != io_value_ids_[i]) continue;
      graph_shapes[gi] = input_shapes[k];
      if (i < shape_values.size() && shape_input_[i]) graph_values[gi] = shape_values[i];
    }
    ++k;
  }
  shapes_ = analyze_shapes(g, graph_shapes, true, graph_values);
  io_shapes_.clear();
  for (size_t i = 0; i < engine_->io.size(); ++i) io_shapes_.push_back(shapes_.info[io_value_ids_[i]].shape);
  // Dynamic mode when a value some kernel needs has a shape known only while running.
  dynamic_ = false;
  for (auto& np : g.nodes())
    for (auto* o : np->outputs)
      if (np->op != "Constant" && shapes_.values[o->id].empty() && !dims_known(shapes_.info[o->id].shape))
        dynamic_ = true;
  for (size_t i = 0; i < engine_->io.size(); ++i)
    if (!dims_known(io_shapes_[i])) dynamic_ = true;
  steps_.clear();
  plan_ = MemoryPlan{};
  if (!dynamic_) plan_static();
  prepared_ = true;
}

void Executor::plan_static() {
  const ir::Graph& g = *engine_->graph;
  loc_.assign(g.values().size(), Location{});
  for (size_t v = 0; v < loc_.size(); ++v) {
    // A network output the host computed (shape arithmetic) keeps its host copy as its storage: layers
    // that read it must not see the caller's output buffer before the final copy fills it.
    bool host_output = value_io_[v] >= 0 && !engine_->io[value_io_[v]].is_input && !shapes_.values[v].empty();
    if (value_io_[v] >= 0 && !host_output) loc_[v] = {Where::kIO, value_io_[v]};
    else if (!shapes_.values[v].empty()) loc_[v] = {Where::kHost, 0};
  }
  std::vector<int> first(g.values().size(), -1), last(g.values().size(), -1);
  for (auto& np : g.nodes()) {
    const ir::Node* n = np.get();
    if (n->op == "Constant") {
      if (loc_[n->outputs[0]->id].where == Where::kNone) loc_[n->outputs[0]->id] = {Where::kConstant, 0};
      continue;
    }
    bool all_host = true;
    for (auto* o : n->outputs)
      if (shapes_.values[o->id].empty()) all_host = false;
    if (all_host) continue;  // computed during shape analysis
    int step = static_cast<int>(steps_.size());
    cpu::KernelFn fn = cpu::find_kernel(n->op);
    if (!fn) throw Error("layer '" + n->name + "': no CPU kernel for op '" + n->op + "'");
    steps_.push_back(Step{n, fn});
    for (auto* in : n->inputs)
      if (in) last[in->id] = step;
    for (auto* o : n->outputs) {
      if (first[o->id] < 0) first[o->id] = step;
      if (last[o->id] < step) last[o->id] = step;
    }
  }
  std::vector<BufferLifetime> buffers;
  std::vector<int> buffer_value;
  for (size_t v = 0; v < loc_.size(); ++v) {
    if (loc_[v].where != Where::kNone || first[v] < 0) continue;
    const auto& info = shapes_.info[v];
    buffers.push_back(BufferLifetime{volume(info.shape) * static_cast<int64_t>(dtype_size(info.dtype)), first[v],
                                     std::max(first[v], last[v])});
    buffer_value.push_back(static_cast<int>(v));
  }
  plan_ = plan_memory(buffers);
  for (size_t b = 0; b < buffers.size(); ++b) loc_[buffer_value[b]] = {Where::kArena, plan_.offsets[b]};
}

void* Executor::address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const {
  const Location& l = loc_[value_id];
  switch (l.where) {
    case Where::kIO: return io_ptrs[l.index];
    case Where::kArena: return static_cast<uint8_t*>(arena) + l.index;
    case Where::kHost: return const_cast<void*>(shapes_.values[value_id].raw());
    case Where::kConstant: {
      const ir::Value* v = engine_->graph->values()[value_id].get();
      return const_cast<void*>(ir::constant_value(v)->raw());
    }
    case Where::kNone: break;
  }
  throw Error("internal: tensor '" + engine_->graph->values()[value_id]->name + "' has no storage");
}

void Executor::run(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool, OutputSink* sink) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  if (!dynamic_) return run_static(io_ptrs, arena, pool);
  if (!sink) throw Error("internal: a graph with data-dependent shapes needs an output sink to run");
  run_dynamic(*engine_, shapes_, io_value_ids_, io_ptrs, pool, *sink);
}

void Executor::run_static(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool) const {
  const ir::Graph& g = *engine_->graph;
  for (const Step& s : steps_) {
    const ir::Node& n = *s.node;
    cpu::KernelContext ctx{n, {}, {}, pool};
    ctx.in.reserve(n.inputs.size());
    for (auto* in : n.inputs) {
      cpu::TensorRef r;
      if (in) {
        const auto& info = shapes_.info[in->id];
        r = cpu::TensorRef{true, info.dtype, info.shape, address(in->id, io_ptrs, arena)};
      }
      ctx.in.push_back(std::move(r));
    }
    for (auto* o : n.outputs) {
      const auto& info = shapes_.info[o->id];
      ctx.out.push_back(cpu::TensorRef{true, info.dtype, info.shape, address(o->id, io_ptrs, arena)});
    }
    s.kernel(ctx);
  }
  // Outputs not written by a step: host-computed shape tensors, constants, and inputs passed through.
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    if (engine_->io[i].is_input) continue;
    int vid = io_value_ids_[i];
    const ir::Value* v = g.values()[vid].get();
    const void* src = nullptr;
    if (!shapes_.values[vid].empty()) src = shapes_.values[vid].raw();
    else if (const HostTensor* c = ir::constant_value(v)) src = c->raw();
    else if (value_io_[vid] != static_cast<int>(i)) src = io_ptrs[value_io_[vid]];
    if (src && src != io_ptrs[i]) {
      size_t bytes = static_cast<size_t>(volume(io_shapes_[i])) * dtype_size(shapes_.info[vid].dtype);
      std::memmove(io_ptrs[i], src, bytes);
    }
  }
}

}  // namespace kiln
