#include "runtime/executor.h"

#include <chrono>
#include <cstring>

#include "runtime/layer_cost.h"
#include "runtime/shape_inputs.h"

namespace kiln {

Executor::Executor(std::shared_ptr<const EngineData> engine) : engine_(std::move(engine)), io_(*engine_) {
  const ir::Graph& g = *engine_->graph;
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
      if (engine_->io[i].is_input && g.inputs()[gi]->id == io_.io_value_ids[i]) shape_input_[i] = by_input[gi];
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
  std::vector<Dims> graph_shapes = io_.graph_input_shapes(*engine_, input_shapes);
  // Contents of shape-tensor inputs, by graph input.
  std::vector<HostTensor> graph_values(g.inputs().size());
  for (size_t i = 0; i < engine_->io.size() && i < shape_values.size(); ++i) {
    if (!engine_->io[i].is_input || !shape_input_[i]) continue;
    for (size_t gi = 0; gi < g.inputs().size(); ++gi)
      if (g.inputs()[gi]->id == io_.io_value_ids[i]) graph_values[gi] = shape_values[i];
  }
  shapes_ = analyze_shapes(g, graph_shapes, true, graph_values);
  io_shapes_.clear();
  for (size_t i = 0; i < engine_->io.size(); ++i) io_shapes_.push_back(shapes_.info[io_.io_value_ids[i]].shape);
  // Dynamic mode when a value some kernel needs has a shape known only while running.
  dynamic_ = false;
  for (auto& np : g.nodes())
    for (auto* o : np->outputs)
      if (np->op != "Constant" && shapes_.values[o->id].empty() && !dims_known(shapes_.info[o->id].shape))
        dynamic_ = true;
  for (size_t i = 0; i < engine_->io.size(); ++i)
    if (!dims_known(io_shapes_[i])) dynamic_ = true;
  plan_ = StaticPlan{};
  kernels_.clear();
  if (!dynamic_) {
    plan_ = plan_static(*engine_, io_, shapes_);
    for (const ir::Node* n : plan_.steps) {
      cpu::KernelFn fn = cpu::find_kernel(n->op);
      if (!fn) throw Error("layer '" + n->name + "': no CPU kernel for op '" + n->op + "'");
      kernels_.push_back(fn);
    }
  }
  prepared_ = true;
}

void* Executor::address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const {
  using Where = StaticPlan::Where;
  const StaticPlan::Location& l = plan_.loc[value_id];
  // l.offset: where a view layer's output starts in the storage it aliases.
  switch (l.where) {
    case Where::kIO: return static_cast<uint8_t*>(io_ptrs[l.index]) + l.offset;
    case Where::kArena: return static_cast<uint8_t*>(arena) + l.index + l.offset;
    case Where::kHost: return const_cast<void*>(shapes_.values[l.value].raw());  // never a view's
    case Where::kConstant: {  // by l.value: a view layer's output reads the constant it aliases
      const ir::Value* v = engine_->graph->values()[l.value].get();
      return static_cast<uint8_t*>(const_cast<void*>(ir::constant_value(v)->raw())) + l.offset;
    }
    case Where::kNone: break;
  }
  throw Error("internal: tensor '" + engine_->graph->values()[value_id]->name + "' has no storage");
}

void Executor::run(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool, OutputSink* sink,
                   std::vector<LayerTiming>* profile) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  if (!dynamic_) return run_static(io_ptrs, arena, pool, profile);
  if (!sink) throw Error("internal: a graph with data-dependent shapes needs an output sink to run");
  run_dynamic(*engine_, shapes_, io_.io_value_ids, io_ptrs, pool, *sink);
}

void Executor::run_static(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool,
                          std::vector<LayerTiming>* profile) const {
  for (size_t k = 0; k < plan_.steps.size(); ++k) {
    const ir::Node& n = *plan_.steps[k];
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
    if (!profile) {
      kernels_[k](ctx);
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    kernels_[k](ctx);
    std::vector<ir::TensorInfo> ins, outs;
    for (auto& r : ctx.in)
      ins.push_back(r.present ? ir::TensorInfo{true, r.dtype, r.shape, nullptr} : ir::TensorInfo::absent());
    for (auto& r : ctx.out) outs.push_back(ir::TensorInfo{true, r.dtype, r.shape, nullptr});
    LayerTiming t = layer_timing(n, ins, outs);
    t.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    profile->push_back(std::move(t));
  }
  // Outputs not written in place: host-computed shape tensors, constants, inputs passed through.
  for (auto [i, vid] : plan_.output_copies) {
    const void* src = address(vid, io_ptrs, arena);
    size_t bytes = static_cast<size_t>(volume(io_shapes_[i])) * dtype_size(shapes_.info[vid].dtype);
    if (src != io_ptrs[i] && bytes) std::memmove(io_ptrs[i], src, bytes);
  }
}

}  // namespace kiln
