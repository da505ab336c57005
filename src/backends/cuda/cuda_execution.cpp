// The CUDA backend's side of an execution context: the executor for the current shapes, the context's
// own activation arena and library handles, and the CUDA graph that replays a static-shape enqueue.
//
// CUDA graphs: the first enqueue for a set of shapes and addresses runs eagerly (libraries initialize
// lazily, which capture forbids); later ones are captured once on a private stream and replayed on the
// caller's stream with cudaGraphLaunch, which removes the per-kernel launch cost. A change of I/O
// addresses updates the captured graph in place where CUDA allows (cudaGraphExecUpdate), else it is
// captured again. KILN_CUDA_GRAPHS=0 turns graphs off.
//
// Host parameters that are network inputs (a CumSum axis fed at run time, host_parameters.h) are read from
// the caller's buffers before each run; a new value prepares the executor again. Graphs with data-dependent
// shapes run on the CPU (Executor::run_dynamic) between host copies of their inputs and outputs.
//
// Side branches (Executor::side_branches: small independent steps such as ResNet's downsample convolutions at
// batch 1) run on an auxiliary stream of the context's own, forked from and joined to the run's stream by
// events; a captured graph holds them as parallel nodes. Off unless KILN_SIDE_STREAMS=1.
#include <cublasLt.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>

#include "backends/cuda/chain_tactics.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/device.h"
#include "backends/cuda/engine_state.h"
#include "backends/cuda/executor.h"
#include "backends/cuda/library_checks.h"
#include "backends/cuda/library_handles.h"
#include "runtime/device_execution.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

namespace {

// cuBLASLt and cuDNN scratch: the builder's workspace limit when set, else 64 MiB.
size_t workspace_size(const EngineData& e) {
  constexpr size_t kDefault = 64ull << 20;
  if (e.workspace_limit == 0) return kDefault;
  return std::min<size_t>(kDefault, e.workspace_limit);
}

bool graphs_enabled() { return !env_is("KILN_CUDA_GRAPHS", "0"); }

// Plain (unregistered) host memory, as opposed to device, managed or pinned memory.
bool is_host_memory(const void* p) {
  if (!p) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    return true;
  }
  return attr.type == cudaMemoryTypeUnregistered;
}

// The outputs of a dynamic run (computed in host memory): where the context's sink hands out memory the
// host cannot write (device memory from an output allocator), the run writes a host staging buffer that
// copy_out() copies there.
class StagedOutputs final : public OutputSink {
 public:
  explicit StagedOutputs(OutputSink& to) : to_(to) {}

  void* output_memory(size_t io_index, const Dims& shape, size_t bytes) override {
    void* dst = to_.output_memory(io_index, shape, bytes);
    if (bytes == 0 || is_host_memory(dst)) return dst;
    pending_.push_back(Pending{dst, HostTensor(DataType::kUINT8, {static_cast<int64_t>(bytes)})});
    return pending_.back().staging.mutable_raw();
  }

  // Copies on `stream` (later work there sees the outputs) and waits: the staging dies with this object.
  void copy_out(cudaStream_t stream) {
    for (const Pending& p : pending_)
      KILN_CUDA_CHECK(cudaMemcpyAsync(p.dst, p.staging.raw(), p.staging.nbytes(), cudaMemcpyDefault, stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

 private:
  struct Pending {
    void* dst;
    HostTensor staging;
  };
  OutputSink& to_;
  std::vector<Pending> pending_;
};

class CudaExecution final : public DeviceExecution {
 public:
  explicit CudaExecution(std::shared_ptr<const EngineData> engine, TacticTies* ties = nullptr)
      : engine_(engine), exec_(engine, device_weights(*engine)), conv_plans_(conv_plan_cache(*engine)) {
    res_.ties = ties;  // the build's timing run with chain timing on (tactic_ties.h); null in every context
    res_.device = &current_device();
    KILN_CUBLAS_CHECK(cublasLtCreate(&res_.cublaslt));
    KILN_CUDNN_CHECK(cudnnCreate(&res_.cudnn));
    workspace_ = DeviceBuffer(workspace_size(*engine));
    res_.workspace = workspace_.get();
    res_.workspace_bytes = workspace_.size();
    res_.tactics = engine_->tactics.get();  // the plan's tactics; what this context times goes there too
    res_.conv_plans = conv_plans_.get();    // the engine's shared cuDNN plans (null: this context's own)
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&capture_stream_, cudaStreamNonBlocking));
  }

  ~CudaExecution() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    if (capture_stream_) cudaStreamDestroy(capture_stream_);
    release_side_streams();
    res_.node_state.clear();  // kernels' library state (cuDNN execution plans refer to the handle) goes first
    if (res_.cudnn) cudnnDestroy(res_.cudnn);
    if (res_.cublaslt) cublasLtDestroy(res_.cublaslt);
  }

  void prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& shape_values) override {
    input_shapes_ = input_shapes;
    input_values_ = shape_values;
    input_values_.resize(engine_->io.size());
    from_context_.assign(engine_->io.size(), false);
    for (size_t i = 0; i < input_values_.size(); ++i) from_context_[i] = !input_values_[i].empty();
    prepare_executor();
  }
  bool prepared() const override { return exec_.prepared(); }
  bool dynamic() const override { return exec_.dynamic(); }
  const Dims& io_shape(size_t i) const override { return exec_.io_shape(i); }
  int64_t activation_bytes() const override { return exec_.arena_bytes(); }

  void enqueue(const std::vector<void*>& user_ptrs, void* stream_ptr) override {
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    read_host_parameters(user_ptrs, stream);
    run(stage_host_inputs(user_ptrs, stream), stream);
    copy_host_outputs(user_ptrs, stream);
  }

  void run_dynamic(const std::vector<void*>& user_ptrs, void* stream_ptr, OutputSink& sink) override {
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    const auto& io = engine_->io;
    // The caller's work on the inputs first; then host copies of those in device memory.
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<HostTensor> copies(io.size());
    std::vector<void*> host_ptrs(io.size(), nullptr);
    for (size_t i = 0; i < io.size(); ++i) {
      if (!io[i].is_input) continue;
      if (is_host_memory(user_ptrs[i])) {
        host_ptrs[i] = user_ptrs[i];
        continue;
      }
      copies[i] = HostTensor(io[i].dtype, exec_.io_shape(i));
      read(copies[i].mutable_raw(), user_ptrs[i], copies[i].nbytes());
      host_ptrs[i] = copies[i].mutable_raw();
    }
    StagedOutputs staged(sink);
    exec_.run_dynamic(host_ptrs, staged);
    staged.copy_out(stream);
  }

  // The network on device addresses: a CUDA-graph replay where possible, else the kernels one by one.
  void run(const std::vector<void*>& io_ptrs, cudaStream_t stream) {
    bool use_graph = graphs_ && exec_.capturable() && !graph_failed_;
    if (use_graph && eager_runs_ > 0) {
      if (!graph_exec_ || io_ptrs != graph_ptrs_) use_graph = recapture(io_ptrs);
      if (use_graph) {
        KILN_CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream));
        return;
      }
    }
    res_.stream = stream;
    exec_.enqueue(io_ptrs, arena_.get(), res_, nullptr, side_streams());
    ++eager_runs_;
  }

  // Host memory (a numpy array, a plain host pointer) is accepted too: cudaPointerGetAttributes tells it
  // apart from device memory, and such tensors go through device staging buffers. Convenient, not fast.
  const std::vector<void*>& stage_host_inputs(const std::vector<void*>& user, cudaStream_t stream) {
    const auto& io = engine_->io;
    if (host_.size() != io.size()) {
      host_.assign(io.size(), HostCheck{});
      staging_.resize(io.size());
    }
    any_host_ = false;
    for (size_t i = 0; i < io.size(); ++i) {
      if (host_[i].ptr != user[i]) host_[i] = HostCheck{user[i], is_host_memory(user[i])};
      any_host_ |= host_[i].host;
    }
    if (!any_host_) return user;
    staged_ptrs_ = user;
    for (size_t i = 0; i < io.size(); ++i) {
      if (!host_[i].host) continue;
      size_t bytes = static_cast<size_t>(volume(exec_.io_shape(i))) * dtype_size(io[i].dtype);
      if (staging_[i].size() < bytes) staging_[i] = DeviceBuffer(bytes);
      staged_ptrs_[i] = staging_[i].get();
      if (io[i].is_input && bytes)
        KILN_CUDA_CHECK(cudaMemcpyAsync(staging_[i].get(), user[i], bytes, cudaMemcpyHostToDevice, stream));
    }
    return staged_ptrs_;
  }

  void copy_host_outputs(const std::vector<void*>& user, cudaStream_t stream) {
    if (!any_host_) return;
    const auto& io = engine_->io;
    for (size_t i = 0; i < io.size(); ++i) {
      if (io[i].is_input || !host_[i].host) continue;
      size_t bytes = static_cast<size_t>(volume(exec_.io_shape(i))) * dtype_size(io[i].dtype);
      if (bytes) KILN_CUDA_CHECK(cudaMemcpyAsync(user[i], staging_[i].get(), bytes, cudaMemcpyDeviceToHost, stream));
    }
    // Host outputs must hold their values when the call returns, whatever the stream.
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  std::vector<LayerTiming> profile(const std::vector<void*>& user_ptrs, void* stream_ptr) override {
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    read_host_parameters(user_ptrs, stream);
    const std::vector<void*>& ptrs = stage_host_inputs(user_ptrs, stream);
    std::vector<cudaEvent_t> marks(exec_.num_steps() + 1, nullptr);
    std::vector<LayerTiming> layers;
    try {
      for (auto& e : marks) KILN_CUDA_CHECK(cudaEventCreate(&e));
      res_.stream = stream;
      exec_.enqueue(ptrs, arena_.get(), res_, marks.data());
      copy_host_outputs(user_ptrs, stream);
      KILN_CUDA_CHECK(cudaEventSynchronize(marks.back()));
      layers = exec_.step_costs();
      for (size_t k = 0; k < layers.size(); ++k) {
        float ms = 0;
        KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, marks[k], marks[k + 1]));
        layers[k].ms = ms;
      }
    } catch (...) {
      for (auto e : marks)
        if (e) cudaEventDestroy(e);
      throw;
    }
    for (auto e : marks) cudaEventDestroy(e);
    return layers;
  }

  void read(void* dst, const void* src, size_t bytes) override {
    // cudaMemcpyDefault: unified addressing tells host from device memory (unregistered host memory too).
    if (bytes) KILN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
  }

  void synchronize(void* stream) override { KILN_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

 private:
  std::shared_ptr<const EngineData> engine_;
  Executor exec_;
  std::shared_ptr<ConvPlanCache> conv_plans_;  // before res_, whose kernels' state may hold plans from it
  const bool graphs_ = graphs_enabled();  // read once: the environment is not consulted per enqueue
  Resources res_;
  DeviceBuffer arena_, workspace_;
  cudaStream_t capture_stream_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  std::vector<void*> graph_ptrs_;
  int eager_runs_ = 0;
  bool graph_failed_ = false;  // capture failed once for these shapes: run eagerly
  struct HostCheck {
    void* ptr = nullptr;
    bool host = false;
  };
  std::vector<HostCheck> host_;           // per io tensor: the last address seen and whether it is host memory
  std::vector<DeviceBuffer> staging_;     // per io tensor: device copies of host buffers
  std::vector<void*> staged_ptrs_;
  bool any_host_ = false;
  // What the executor was prepared with: the context's input shapes and shape-tensor values, plus the
  // host parameters read since (per io tensor; from_context_: the context supplied that value).
  std::vector<Dims> input_shapes_;
  std::vector<HostTensor> input_values_;
  std::vector<bool> from_context_;

  // The auxiliary stream of side branches (Executor::side_branches), made when a prepare first finds some:
  // its own cuBLASLt/cuDNN handles and workspace, and one fork and one done event per branch.
  Resources aux_res_;
  std::unique_ptr<LibraryHandles> aux_libraries_;
  SideStreams side_;

  const SideStreams* side_streams() const { return exec_.side_branches().empty() ? nullptr : &side_; }

  void make_side_streams() {
    const size_t n = exec_.side_branches().size();
    if (n == 0) return;
    if (!aux_res_.stream) {
      aux_res_.device = res_.device;
      aux_res_.tactics = res_.tactics;
      aux_res_.ties = res_.ties;
      aux_res_.conv_plans = res_.conv_plans;
      aux_libraries_ = std::make_unique<LibraryHandles>(workspace_size(*engine_));
      aux_libraries_->attach(aux_res_);
      KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&aux_res_.stream, cudaStreamNonBlocking));
      side_.res = &aux_res_;
    }
    // Events made stay until the context goes (a later prepare may find fewer branches, then more again).
    while (made_forked_.size() < n) {
      cudaEvent_t f = nullptr, d = nullptr;
      KILN_CUDA_CHECK(cudaEventCreateWithFlags(&f, cudaEventDisableTiming));
      made_forked_.push_back(f);
      KILN_CUDA_CHECK(cudaEventCreateWithFlags(&d, cudaEventDisableTiming));
      made_done_.push_back(d);
    }
    side_.forked.assign(made_forked_.begin(), made_forked_.begin() + static_cast<std::ptrdiff_t>(n));
    side_.done.assign(made_done_.begin(), made_done_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  std::vector<cudaEvent_t> made_forked_, made_done_;

  void release_side_streams() {
    for (auto e : made_forked_) cudaEventDestroy(e);
    for (auto e : made_done_) cudaEventDestroy(e);
    aux_res_.node_state.clear();  // before the handles: cuDNN execution plans refer to them
    aux_libraries_.reset();
    if (aux_res_.stream) cudaStreamDestroy(aux_res_.stream);
  }

  void prepare_executor() {
    exec_.prepare(input_shapes_, input_values_);
    // New shapes may change which kernels the nodes choose: the first run lets nothing start early again.
    res_.programmatic_nodes.clear();
    aux_res_.programmatic_nodes.clear();
    make_side_streams();
    size_t need = static_cast<size_t>(exec_.arena_bytes());
    if (need > arena_.size()) {
      // Work already enqueued may still use the old arena: cudaFree waits for the device.
      arena_ = DeviceBuffer();
      arena_ = DeviceBuffer(need);
    }
    drop_graph();
  }

  // Network inputs whose values kernels read on the host (Executor::host_parameter_inputs) are read before
  // each run, once the work already on `stream` (which may write them) is done, as the context reads shape
  // tensors. A new value prepares the executor again: kernels take it at launch, a captured graph holds the
  // old one. Inputs larger than shape analysis computes on the host stay unread (their nodes run on the CPU).
  void read_host_parameters(const std::vector<void*>& user, cudaStream_t stream) {
    bool synced = false, changed = false;
    for (size_t i : exec_.host_parameter_inputs()) {
      const int64_t n = volume(exec_.io_shape(i));
      if (from_context_[i] || !user[i] || n < 0 || n > kMaxHostValueElements) continue;
      if (!synced) {
        KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
        synced = true;
      }
      HostTensor now(engine_->io[i].dtype, exec_.io_shape(i));
      read(now.mutable_raw(), user[i], now.nbytes());
      if (!input_values_[i].empty() && input_values_[i].same_bytes(now)) continue;
      input_values_[i] = std::move(now);
      changed = true;
    }
    if (changed) prepare_executor();
  }

  void drop_graph() {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    graph_exec_ = nullptr;
    eager_runs_ = 0;
    graph_failed_ = false;
    graph_ptrs_.clear();
  }

  // Captures the enqueue for these addresses; false (graphs then stay off for them) when capture fails.
  bool recapture(const std::vector<void*>& io_ptrs) {
    cudaGraph_t graph = nullptr;
    res_.stream = capture_stream_;
    KILN_CUDA_CHECK(cudaStreamBeginCapture(capture_stream_, cudaStreamCaptureModeThreadLocal));
    try {
      exec_.enqueue(io_ptrs, arena_.get(), res_, nullptr, side_streams());
    } catch (...) {
      cudaStreamEndCapture(capture_stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      throw;
    }
    if (cudaStreamEndCapture(capture_stream_, &graph) != cudaSuccess || !graph) {
      cudaGetLastError();
      graph_failed_ = true;
      return false;
    }
    bool ok = false;
    if (graph_exec_) {
      cudaGraphExecUpdateResultInfo info{};
      if (cudaGraphExecUpdate(graph_exec_, graph, &info) == cudaSuccess) ok = true;
      else {
        cudaGetLastError();
        cudaGraphExecDestroy(graph_exec_);
        graph_exec_ = nullptr;
      }
    }
    if (!ok) {
      cudaError_t e = cudaGraphInstantiate(&graph_exec_, graph, 0);
      if (e != cudaSuccess) {
        cudaGetLastError();
        graph_exec_ = nullptr;
      }
      ok = e == cudaSuccess;
    }
    cudaGraphDestroy(graph);
    if (ok) graph_ptrs_ = io_ptrs;
    else graph_failed_ = true;
    return ok;
  }
};

}  // namespace

std::unique_ptr<DeviceExecution> make_cuda_execution_with_ties(std::shared_ptr<const EngineData> engine,
                                                               TacticTies* ties) {
  return std::make_unique<CudaExecution>(std::move(engine), ties);
}

}  // namespace kiln::cuda

namespace kiln {

std::unique_ptr<DeviceExecution> make_cuda_execution(std::shared_ptr<const EngineData> engine) {
  return std::make_unique<cuda::CudaExecution>(std::move(engine));
}

}  // namespace kiln
