#include "backends/cuda/executor.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/host_parameters.h"
#include "backends/cuda/programmatic_launch.h"
#include "runtime/env_switch.h"
#include "runtime/layer_cost.h"

namespace kiln::cuda {

namespace {

// A step of at most this many FLOPs and bytes may leave the main stream: 1 GFLOP is about 1.3 us of the
// H200's dense FP16 peak and 20 MB about 4 us of its memory bandwidth, sizes at which one kernel fills a
// fraction of the SMs. Larger steps fill the GPU by themselves, so running them beside others only
// interleaves them.
constexpr double kSideStepMaxFlops = 1e9;
constexpr double kSideStepMaxBytes = 2e7;

}  // namespace

Executor::Executor(std::shared_ptr<const EngineData> engine, std::shared_ptr<const DeviceWeights> weights)
    : engine_(std::move(engine)), weights_(std::move(weights)), io_(*engine_) {
  const std::vector<bool> feeds = values_feeding_host_parameters(*engine_->graph);
  for (size_t i = 0; i < engine_->io.size(); ++i)
    if (engine_->io[i].is_input && feeds[io_.io_value_ids[i]]) host_parameter_inputs_.push_back(i);
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

// As the CPU executor decides its dynamic mode: a value some step computes, or an io tensor, whose shape
// is known only once a node has run.
bool Executor::has_data_dependent_shapes() const {
  for (auto& np : engine_->graph->nodes())
    for (auto* o : np->outputs)
      if (np->op != "Constant" && shapes_.values[o->id].empty() && !dims_known(shapes_.info[o->id].shape)) return true;
  for (const Dims& s : io_shapes_)
    if (!dims_known(s)) return true;
  return false;
}

// Every input the node's CUDA kernel reads on the host has a host copy (or is empty).
bool Executor::host_parameters_known(const ir::Node& n) const {
  for (int slot : host_parameter_slots(n.op)) {
    const ir::Value* v = slot < static_cast<int>(n.inputs.size()) ? n.inputs[slot] : nullptr;
    if (v && volume(shapes_.info[v->id].shape) != 0 && !host_address(v->id)) return false;
  }
  return true;
}

void Executor::prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& input_values) {
  prepared_ = false;
  const ir::Graph& g = *engine_->graph;
  std::vector<HostTensor> graph_values(g.inputs().size());
  for (size_t i = 0; i < engine_->io.size() && i < input_values.size(); ++i) {
    if (!engine_->io[i].is_input || input_values[i].empty()) continue;
    for (size_t gi = 0; gi < g.inputs().size(); ++gi)
      if (g.inputs()[gi]->id == io_.io_value_ids[i]) graph_values[gi] = input_values[i];
  }
  shapes_ = analyze_shapes(g, io_.graph_input_shapes(*engine_, input_shapes), true, graph_values);
  io_shapes_.clear();
  for (size_t i = 0; i < engine_->io.size(); ++i) io_shapes_.push_back(shapes_.info[io_.io_value_ids[i]].shape);
  plan_ = StaticPlan{};
  steps_.clear();
  num_fallback_ = 0;
  dynamic_ = has_data_dependent_shapes();
  if (dynamic_) {  // run_dynamic() plans node by node
    prepared_ = true;
    return;
  }
  plan_ = plan_static(*engine_, io_, shapes_);

  for (const ir::Node* n : plan_.steps) {
    std::vector<ir::TensorInfo> ins;
    for (auto* in : n->inputs) ins.push_back(in ? shapes_.info[in->id] : ir::TensorInfo::absent());
    Step step{n, nullptr, nullptr};
    if (supports(*n, ins) && host_parameters_known(*n)) step.kernel = find_kernel(n->op);
    if (!step.kernel) {
      step.host_kernel = cpu::find_kernel(n->op);
      if (!step.host_kernel) throw Error("layer '" + n->name + "': no CUDA or CPU kernel for op '" + n->op + "'");
      ++num_fallback_;
    }
    steps_.push_back(step);
  }
  side_.clear();
  side_steps_.assign(steps_.size(), SideStep{});
  // Off unless asked for: with the cuDNN graph API's convolutions on the auxiliary stream, captured graphs
  // gave ResNet-50 wrong results in some contexts (bench/NOTES.md, seventh session, calls 3-4). Two more values
  // take the feature apart to find which part is wrong: "plan" lays the arena out for the branches but runs
  // every step on the main stream; "serial" runs them on the auxiliary stream but joins each at once, so no
  // two steps run at the same time.
  trigger_policy_ = trigger_policy();
  const char* mode = std::getenv("KILN_SIDE_STREAMS");
  const std::string side_mode = mode ? mode : "";
  serial_side_ = side_mode == "serial";
  if (num_fallback_ == 0 && (side_mode == "1" || side_mode == "plan" || serial_side_)) {
    plan_side_branches();
    if (side_mode == "plan") side_.clear();
  }
  for (size_t b = 0; b < side_.size(); ++b) {  // per step, what enqueue does about the branches
    side_steps_[side_[b].step].branch = static_cast<int>(b);
    side_steps_[side_[b].join].joins.push_back(static_cast<int>(b));
    if (side_[b].fork >= 0) side_steps_[side_[b].fork].forks.push_back(static_cast<int>(b));
  }

  // Host-computed values that device steps may read: packed into one upload.
  host_offset_.assign(g.values().size(), -1);
  int64_t host_bytes = 0;
  for (size_t v = 0; v < plan_.loc.size(); ++v) {
    if (plan_.loc[v].where != StaticPlan::Where::kHost) continue;
    host_offset_[v] = host_bytes;
    host_bytes += (static_cast<int64_t>(shapes_.values[v].nbytes()) + kArenaAlignment - 1) / kArenaAlignment *
                  kArenaAlignment;
  }
  if (host_bytes > 0) {
    std::vector<uint8_t> staging(static_cast<size_t>(host_bytes), 0);
    for (size_t v = 0; v < host_offset_.size(); ++v)
      if (host_offset_[v] >= 0)
        std::memcpy(staging.data() + host_offset_[v], shapes_.values[v].raw(), shapes_.values[v].nbytes());
    if (host_values_.size() < staging.size()) host_values_ = DeviceBuffer(staging.size());
    // Synchronous: the upload must be complete before any captured or enqueued work reads it.
    KILN_CUDA_CHECK(cudaMemcpy(host_values_.get(), staging.data(), staging.size(), cudaMemcpyHostToDevice));
  }
  prepared_ = true;
}

void Executor::plan_side_branches() {
  using Where = StaticPlan::Where;
  const size_t n = steps_.size();
  std::vector<std::vector<int>> reads(n), writes(n);
  std::vector<bool> eligible(n, false);
  // Storage a step can share with another: arena buffers and the caller's I/O buffers (by the value owning
  // them); constants and host-uploaded values are only read.
  auto storage = [&](const ir::Value* v) {
    const StaticPlan::Location& l = plan_.loc[v->id];
    if (l.where == Where::kArena) return l.value;
    if (l.where == Where::kIO) return -2 - static_cast<int>(l.index);
    return -1;
  };
  const std::vector<LayerTiming> costs = step_costs();
  for (size_t k = 0; k < n; ++k) {
    for (auto* in : steps_[k].node->inputs)
      if (in && storage(in) != -1) reads[k].push_back(storage(in));
    for (auto* o : steps_[k].node->outputs)
      if (storage(o) != -1) writes[k].push_back(storage(o));
    eligible[k] = steps_[k].kernel && costs[k].flops <= kSideStepMaxFlops && costs[k].bytes <= kSideStepMaxBytes;
  }
  side_ = find_side_branches(reads, writes, eligible);
  if (env_is("KILN_SIDE_STREAMS_LOG", "1"))
    for (const SideBranch& b : side_)
      std::fprintf(stderr, "kiln: side stream: layer '%s' after '%s', joined by '%s' (%.3g GFLOP)\n",
                   steps_[b.step].node->name.c_str(), b.fork >= 0 ? steps_[b.fork].node->name.c_str() : "(start)",
                   steps_[b.join].node->name.c_str(), costs[b.step].flops / 1e9);
  if (side_.empty()) return;
  std::vector<StepWindow> held;
  for (const SideBranch& b : side_) held.push_back(StepWindow{b.step, b.fork + 1, b.join});
  plan_ = plan_static(*engine_, io_, shapes_, held);
}

void* Executor::address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const {
  using Where = StaticPlan::Where;
  const StaticPlan::Location& l = plan_.loc[value_id];
  // l.offset: where a view layer's output starts in the storage it aliases.
  switch (l.where) {
    case Where::kIO: return static_cast<uint8_t*>(io_ptrs[l.index]) + l.offset;
    case Where::kArena: return static_cast<uint8_t*>(arena) + l.index + l.offset;
    case Where::kHost: return static_cast<uint8_t*>(host_values_.get()) + host_offset_[value_id];  // never a view's
    case Where::kConstant:  // a view's output: the constant it aliases
      return static_cast<uint8_t*>(weights_->address(l.value)) + l.offset;
    case Where::kNone: break;
  }
  throw Error("internal: tensor '" + engine_->graph->values()[value_id]->name + "' has no storage");
}

const void* Executor::host_address(int value_id) const {
  using Where = StaticPlan::Where;
  const StaticPlan::Location& l = plan_.loc[value_id];
  // Host-computed values, and shape-tensor inputs whose contents the runtime read (their storage is the
  // caller's buffer, but shape analysis holds a copy).
  if (!shapes_.values[value_id].empty()) return shapes_.values[value_id].raw();
  if (l.where == Where::kConstant)
    return static_cast<const uint8_t*>(ir::constant_value(engine_->graph->values()[l.value].get())->raw()) + l.offset;
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

void Executor::run_dynamic(const std::vector<void*>& io_ptrs, OutputSink& sink) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  if (!dynamic_) throw Error("internal: run_dynamic on a graph whose shapes are all known");
  kiln::run_dynamic(*engine_, shapes_, io_.io_value_ids, io_ptrs, &cpu::default_thread_pool(), sink);
}

std::vector<LayerTiming> Executor::step_costs() const {
  std::vector<LayerTiming> out;
  for (const Step& s : steps_) {
    std::vector<ir::TensorInfo> ins, outs;
    for (auto* in : s.node->inputs) ins.push_back(in ? shapes_.info[in->id] : ir::TensorInfo::absent());
    for (auto* o : s.node->outputs) outs.push_back(shapes_.info[o->id]);
    LayerTiming t = layer_timing(*s.node, ins, outs);
    t.on_host = !s.kernel;
    out.push_back(std::move(t));
  }
  return out;
}

void Executor::launch(const Step& s, const std::vector<void*>& io_ptrs, void* arena, Resources& res) const {
  const ir::Node& n = *s.node;
  res.programmatic_nodes.erase(&n);  // the kernel notes itself again if it launches programmatically
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

bool Executor::next_kernel_waits(size_t k, const Resources& res, bool branched, bool marked) const {
  if (trigger_policy_ == TriggerPolicy::kNone || marked) return false;  // a profile's events part the kernels
  if (trigger_policy_ == TriggerPolicy::kAll) return true;
  if (k + 1 >= steps_.size() || !steps_[k + 1].kernel) return false;  // the output copies, a host step
  // An event between the two (a fork after step k, a join before step k + 1), or step k + 1 on the
  // auxiliary stream: the next kernel on this stream is then not step k + 1's, or waits for more than it.
  if (branched && (!side_steps_[k].forks.empty() || !side_steps_[k + 1].joins.empty() || side_steps_[k + 1].branch >= 0))
    return false;
  return res.programmatic_nodes.count(steps_[k + 1].node) != 0;
}

void Executor::enqueue(const std::vector<void*>& io_ptrs, void* arena, Resources& res, const cudaEvent_t* marks,
                       const SideStreams* side) const {
  if (!prepared_) throw Error("execution context: input shapes are not set");
  if (dynamic_) throw Error("internal: a graph with data-dependent shapes runs through run_dynamic");
  // Side branches (side_steps_ says what each step does about them). A profile runs every step in order on one
  // stream, so its marks time one step each.
  const bool branched = side && !marks && !side_.empty();
  if (branched && (side->forked.size() != side_.size() || side->done.size() != side_.size() || !side->res))
    throw Error("internal: the auxiliary stream's events do not match the side branches");
  if (branched)
    for (size_t b = 0; b < side_.size(); ++b)
      if (side_[b].fork < 0) KILN_CUDA_CHECK(cudaEventRecord(side->forked[b], res.stream));
  bool told_next = false;  // the last kernel on the main stream was told it may let the next start early
  for (size_t k = 0; k < steps_.size(); ++k) {
    const Step& s = steps_[k];
    const SideStep& at = side_steps_[k];
    if (marks) KILN_CUDA_CHECK(cudaEventRecord(marks[k], res.stream));
    if (branched)
      for (int b : at.joins) KILN_CUDA_CHECK(cudaStreamWaitEvent(res.stream, side->done[b], 0));
    if (!s.kernel) {
      run_on_host(s, io_ptrs, arena, res);
      told_next = false;
    } else if (branched && at.branch >= 0) {
      KILN_CUDA_CHECK(cudaStreamWaitEvent(side->res->stream, side->forked[at.branch], 0));
      side->res->next_kernel_may_start = false;
      side->res->started_early = false;
      launch(s, io_ptrs, arena, *side->res);
      KILN_CUDA_CHECK(cudaEventRecord(side->done[at.branch], side->res->stream));
      if (serial_side_) KILN_CUDA_CHECK(cudaStreamWaitEvent(res.stream, side->done[at.branch], 0));
    } else {
      res.started_early = told_next;
      res.next_kernel_may_start = next_kernel_waits(k, res, branched, marks != nullptr);
      launch(s, io_ptrs, arena, res);
      // KILN_PDL_TRIGGER=all holds nothing back (absorb_early_start): that switch is there to show the hazard.
      told_next = res.next_kernel_may_start && trigger_policy_ == TriggerPolicy::kWaitingSuccessor;
    }
    if (branched)
      for (int b : at.forks) KILN_CUDA_CHECK(cudaEventRecord(side->forked[b], res.stream));
  }
  if (marks) KILN_CUDA_CHECK(cudaEventRecord(marks[steps_.size()], res.stream));
  // Outputs not written in place: host-computed tensors, constants, inputs passed through.
  for (auto [i, vid] : plan_.output_copies) {
    void* src = address(vid, io_ptrs, arena);
    size_t bytes = static_cast<size_t>(volume(io_shapes_[i])) * dtype_size(shapes_.info[vid].dtype);
    if (src != io_ptrs[i] && bytes)
      KILN_CUDA_CHECK(cudaMemcpyAsync(io_ptrs[i], src, bytes, cudaMemcpyDeviceToDevice, res.stream));
  }
}

}  // namespace kiln::cuda
