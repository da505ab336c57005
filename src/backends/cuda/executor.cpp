#include "backends/cuda/executor.h"

#include <cuda_runtime.h>

#include <cstring>

#include "backends/cuda/cuda_check.h"

namespace kiln::cuda {

Executor::Executor(std::shared_ptr<const EngineData> engine, std::shared_ptr<const DeviceWeights> weights)
    : engine_(std::move(engine)), weights_(std::move(weights)) {
  const ir::Graph& g = *engine_->graph;
  value_io_.assign(g.values().size(), -1);
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    ir::Value* v = g.find_value(engine_->io[i].name);
    if (!v) throw Error("engine I/O tensor '" + engine_->io[i].name + "' is missing from its graph");
    io_value_ids_.push_back(v->id);
    if (value_io_[v->id] < 0) value_io_[v->id] = static_cast<int>(i);
  }
}

const Dims& Executor::io_shape(size_t io_index) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  return io_shapes_.at(io_index);
}

std::vector<std::string> Executor::fallback_nodes() const {
  std::vector<std::string> names;
  for (auto& s : steps_)
    if (!s.kernel) names.push_back(s.node->name + " (" + s.node->op + ")");
  return names;
}

void Executor::prepare(const std::vector<Dims>& input_shapes) {
  prepared_ = false;
  const ir::Graph& g = *engine_->graph;
  std::vector<Dims> graph_shapes(g.inputs().size());
  size_t k = 0;
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    if (!engine_->io[i].is_input) continue;
    if (k >= input_shapes.size()) throw Error("execution context: missing input shapes");
    for (size_t gi = 0; gi < g.inputs().size(); ++gi)
      if (g.inputs()[gi]->id == io_value_ids_[i]) graph_shapes[gi] = input_shapes[k];
    ++k;
  }
  shapes_ = analyze_shapes(g, graph_shapes, true);
  io_shapes_.clear();
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    const Dims& s = shapes_.info[io_value_ids_[i]].shape;
    if (!dims_known(s))
      throw Error("output '" + engine_->io[i].name + "' has a data-dependent shape " + dims_str(s) +
                  ", which the CUDA runtime does not support yet");
    io_shapes_.push_back(s);
  }

  // Host-computed values that device steps may read: packed into one upload.
  loc_.assign(g.values().size(), Location{});
  int64_t host_bytes = 0;
  for (size_t v = 0; v < loc_.size(); ++v) {
    // A network output the host computed (shape arithmetic) keeps its host copy as its storage: layers
    // that read it must not see the caller's output buffer before the final copy fills it.
    bool host_output = value_io_[v] >= 0 && !engine_->io[value_io_[v]].is_input && !shapes_.values[v].empty();
    if (value_io_[v] >= 0 && !host_output) loc_[v] = {Where::kIO, value_io_[v]};
    else if (!shapes_.values[v].empty()) {
      loc_[v] = {Where::kHost, host_bytes};
      host_bytes += (static_cast<int64_t>(shapes_.values[v].nbytes()) + kArenaAlignment - 1) / kArenaAlignment *
                    kArenaAlignment;
    }
  }
  steps_.clear();
  num_fallback_ = 0;
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
    if (all_host) continue;
    std::vector<ir::TensorInfo> ins;
    for (auto* in : n->inputs) ins.push_back(in ? shapes_.info[in->id] : ir::TensorInfo{false});
    Step step{n, nullptr, nullptr};
    if (supports(*n, ins)) step.kernel = find_kernel(n->op);
    if (!step.kernel) {
      step.host_kernel = cpu::find_kernel(n->op);
      if (!step.host_kernel) throw Error("layer '" + n->name + "': no CUDA or CPU kernel for op '" + n->op + "'");
      ++num_fallback_;
    }
    int idx = static_cast<int>(steps_.size());
    steps_.push_back(step);
    for (auto* in : n->inputs)
      if (in) last[in->id] = idx;
    for (auto* o : n->outputs) {
      if (!dims_known(shapes_.info[o->id].shape))
        throw Error("layer '" + n->name + "': output '" + o->name + "' has unknown shape " +
                    dims_str(shapes_.info[o->id].shape) + " for these input shapes");
      if (first[o->id] < 0) first[o->id] = idx;
      if (last[o->id] < idx) last[o->id] = idx;
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

  if (host_bytes > 0) {
    std::vector<uint8_t> staging(static_cast<size_t>(host_bytes), 0);
    for (size_t v = 0; v < loc_.size(); ++v)
      if (loc_[v].where == Where::kHost)
        std::memcpy(staging.data() + loc_[v].index, shapes_.values[v].raw(), shapes_.values[v].nbytes());
    if (host_values_.size() < staging.size()) host_values_ = DeviceBuffer(staging.size());
    // Synchronous: the upload must be complete before any captured or enqueued work reads it.
    KILN_CUDA_CHECK(cudaMemcpy(host_values_.get(), staging.data(), staging.size(), cudaMemcpyHostToDevice));
  }
  prepared_ = true;
}

void* Executor::address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const {
  const Location& l = loc_[value_id];
  switch (l.where) {
    case Where::kIO: return io_ptrs[l.index];
    case Where::kArena: return static_cast<uint8_t*>(arena) + l.index;
    case Where::kHost: return static_cast<uint8_t*>(host_values_.get()) + l.index;
    case Where::kConstant: return weights_->address(value_id);
    case Where::kNone: break;
  }
  throw Error("internal: tensor '" + engine_->graph->values()[value_id]->name + "' has no storage");
}

const void* Executor::host_address(int value_id) const {
  const Location& l = loc_[value_id];
  if (l.where == Where::kHost) return shapes_.values[value_id].raw();
  if (l.where == Where::kConstant) return ir::constant_value(engine_->graph->values()[value_id].get())->raw();
  return nullptr;
}

void Executor::run_on_host(const Step& s, const std::vector<void*>& io_ptrs, void* arena, Resources& res) const {
  const ir::Node& n = *s.node;
  std::vector<std::vector<uint8_t>> staging;
  staging.reserve(n.inputs.size() + n.outputs.size());
  cpu::KernelContext ctx{n, {}, {}, &cpu::default_thread_pool()};
  for (auto* in : n.inputs) {
    cpu::TensorRef r;
    if (in) {
      const auto& info = shapes_.info[in->id];
      r = cpu::TensorRef{true, info.dtype, info.shape, nullptr};
      if (const void* h = host_address(in->id)) {
        r.data = const_cast<void*>(h);
      } else {
        staging.emplace_back(r.nbytes());
        r.data = staging.back().data();
        KILN_CUDA_CHECK(cudaMemcpyAsync(r.data, address(in->id, io_ptrs, arena), r.nbytes(), cudaMemcpyDeviceToHost,
                                        res.stream));
      }
    }
    ctx.in.push_back(std::move(r));
  }
  for (auto* o : n.outputs) {
    const auto& info = shapes_.info[o->id];
    cpu::TensorRef r{true, info.dtype, info.shape, nullptr};
    staging.emplace_back(r.nbytes());
    r.data = staging.back().data();
    ctx.out.push_back(r);
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(res.stream));
  s.host_kernel(ctx);
  for (size_t i = 0; i < n.outputs.size(); ++i)
    KILN_CUDA_CHECK(cudaMemcpyAsync(address(n.outputs[i]->id, io_ptrs, arena), ctx.out[i].data, ctx.out[i].nbytes(),
                                    cudaMemcpyHostToDevice, res.stream));
  // The staging vectors die here: wait until the copies have read them.
  KILN_CUDA_CHECK(cudaStreamSynchronize(res.stream));
}

void Executor::enqueue(const std::vector<void*>& io_ptrs, void* arena, Resources& res) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  const ir::Graph& g = *engine_->graph;
  for (const Step& s : steps_) {
    if (!s.kernel) {
      run_on_host(s, io_ptrs, arena, res);
      continue;
    }
    const ir::Node& n = *s.node;
    KernelContext ctx{n, {}, {}, res};
    ctx.in.reserve(n.inputs.size());
    for (auto* in : n.inputs) {
      TensorRef r;
      if (in) {
        const auto& info = shapes_.info[in->id];
        r = TensorRef{true, info.dtype, info.shape, address(in->id, io_ptrs, arena), host_address(in->id)};
      }
      ctx.in.push_back(std::move(r));
    }
    for (auto* o : n.outputs) {
      const auto& info = shapes_.info[o->id];
      ctx.out.push_back(TensorRef{true, info.dtype, info.shape, address(o->id, io_ptrs, arena), nullptr});
    }
    s.kernel(ctx);
  }
  // Outputs no step wrote: host-computed tensors, constants, inputs passed through.
  for (size_t i = 0; i < engine_->io.size(); ++i) {
    if (engine_->io[i].is_input) continue;
    int vid = io_value_ids_[i];
    const Location& l = loc_[vid];
    if (l.where == Where::kArena || (l.where == Where::kIO && l.index == static_cast<int64_t>(i))) continue;
    bool written_by_step = false;
    for (const Step& s : steps_)
      for (auto* o : s.node->outputs) written_by_step |= o->id == vid;
    if (written_by_step) continue;
    void* src = address(vid, io_ptrs, arena);
    size_t bytes = static_cast<size_t>(volume(io_shapes_[i])) * dtype_size(shapes_.info[vid].dtype);
    if (src != io_ptrs[i] && bytes)
      KILN_CUDA_CHECK(cudaMemcpyAsync(io_ptrs[i], src, bytes, cudaMemcpyDeviceToDevice, res.stream));
  }
  (void)g;
}

}  // namespace kiln::cuda
