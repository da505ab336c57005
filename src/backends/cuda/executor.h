// Runs an engine's graph on the CUDA backend for one set of input shapes: the GPU twin of
// runtime/executor.h. prepare() infers every shape with the shared run-time shape analysis (small shape
// tensors computed on the host and uploaded once), checks that each node has a CUDA kernel or a CPU
// fallback, and lays out the activation arena; enqueue() launches the kernels on a stream.
//
// Nodes without a CUDA kernel for their dtypes run on the CPU backend: their inputs are copied to the
// host, the stream is synchronized, and the outputs are copied back. That keeps every model runnable
// while kernels are added, but it synchronizes, so an executor with such steps is not capturable into a
// CUDA graph; the builder logs each fallback node. So does a node whose kernel reads a parameter on the host
// (host_parameters.h) that is computed on the device.
//
// Data-dependent shapes (NonZero, Unique, Compress, NonMaxSuppression, and what they feed): when some shape
// is known only while running, the executor is `dynamic()` and the whole graph runs on the CPU backend's
// dynamic mode (runtime/dynamic_run) through run_dynamic(), on host copies of the I/O that CudaExecution
// makes; the builder warns about it.
#pragma once
#include <memory>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/device_weights.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/programmatic_launch.h"
#include "builder/memory_planner.h"
#include "kiln/runtime.h"
#include "runtime/dynamic_run.h"
#include "runtime/engine_data.h"
#include "runtime/shape_analysis.h"
#include "runtime/side_branches.h"
#include "runtime/static_plan.h"

namespace kiln::cuda {

// The auxiliary stream that side branches (runtime/side_branches.h) run on: its own library handles and
// workspace (two kernels at once cannot share scratch), and one fork and one done event per branch.
struct SideStreams {
  Resources* res = nullptr;
  std::vector<cudaEvent_t> forked, done;  // by index in Executor::side_branches()
};

class Executor {
 public:
  Executor(std::shared_ptr<const EngineData> engine, std::shared_ptr<const DeviceWeights> weights);

  // input_values: per io tensor, the contents of inputs known on the host (shape tensors, host parameters;
  // an empty HostTensor where unknown).
  void prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& input_values = {});
  bool prepared() const { return prepared_; }
  // Some shape is known only while running: run_dynamic() runs the graph, enqueue() may not.
  bool dynamic() const { return dynamic_; }
  // Io indices of the inputs whose values kernels read on the host although no shape depends on them
  // (host_parameters.h): the caller reads them before each run and prepares again when they change.
  const std::vector<size_t>& host_parameter_inputs() const { return host_parameter_inputs_; }
  int64_t arena_bytes() const { return plan_.memory.arena_size; }
  int64_t arena_lower_bound() const { return plan_.memory.lower_bound; }
  const Dims& io_shape(size_t io_index) const;
  // No step falls back to the CPU: the whole enqueue can be captured into a CUDA graph.
  bool capturable() const { return num_fallback_ == 0; }
  size_t num_fallback_steps() const { return num_fallback_; }

  // io_ptrs: one device address per io tensor; arena: arena_bytes() of device memory, 256-byte aligned.
  // marks: nullptr, or steps()+1 events; mark k is recorded before step k and the last after all steps
  // (the per-layer profile).
  // side: where side_branches() run (nullptr, or a profile's marks: every step on `res`'s stream, in order).
  void enqueue(const std::vector<void*>& io_ptrs, void* arena, Resources& res, const cudaEvent_t* marks = nullptr,
               const SideStreams* side = nullptr) const;
  // Steps that may run on an auxiliary stream beside the main chain, for the current shapes: only where each
  // is small enough to leave most SMs idle (kSideStepMaxFlops), and never in a graph with CPU fallback
  // steps. Only with KILN_SIDE_STREAMS=1 or =serial (off by default, and =plan finds none but lays the arena out
  // for them: see executor.cpp); KILN_SIDE_STREAMS_LOG=1 prints each branch found (stderr).
  const std::vector<SideBranch>& side_branches() const { return side_; }
  size_t num_steps() const { return steps_.size(); }
  // Dynamic mode: runs the whole graph on the CPU backend. io_ptrs: host addresses of the inputs (outputs'
  // entries are ignored); outputs are delivered through `sink` in host memory.
  void run_dynamic(const std::vector<void*>& io_ptrs, OutputSink& sink) const;
  // One entry per step (name, op, estimated flops and bytes, whether it falls back to the CPU); ms unset.
  std::vector<LayerTiming> step_costs() const;

  // Names of the nodes that would run on the CPU, for the builder's log.
  std::vector<std::string> fallback_nodes() const;

 private:
  struct Step {
    const ir::Node* node;
    KernelFn kernel;           // CUDA kernel, or nullptr when the step falls back to the CPU
    cpu::KernelFn host_kernel;
  };

  std::shared_ptr<const EngineData> engine_;
  std::shared_ptr<const DeviceWeights> weights_;
  IoMap io_;
  ShapeAnalysis shapes_;
  StaticPlan plan_;
  std::vector<Step> steps_;              // one per plan_.steps entry
  std::vector<SideBranch> side_;
  // Per step (steps_'s order), the side branch it is (-1: none), the branches it joins (waits for) and the
  // branches forking after it: side_ indexed by step once at prepare, so enqueue does not search it.
  struct SideStep {
    int branch = -1;
    std::vector<int> joins, forks;
  };
  std::vector<SideStep> side_steps_;
  bool serial_side_ = false;  // KILN_SIDE_STREAMS=serial: each side step joined as soon as it is enqueued
  TriggerPolicy trigger_policy_ = TriggerPolicy::kWaitingSuccessor;  // KILN_PDL_TRIGGER, read at prepare
  std::vector<int64_t> host_offset_;     // by value id: offset of a host-computed value in host_values_
  size_t num_fallback_ = 0;
  std::vector<Dims> io_shapes_;
  std::vector<size_t> host_parameter_inputs_;
  DeviceBuffer host_values_;  // device copies of host-computed tensors, uploaded in prepare()
  bool prepared_ = false;
  bool dynamic_ = false;

  bool has_data_dependent_shapes() const;
  bool host_parameters_known(const ir::Node& n) const;

  void* address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const;
  const void* host_address(int value_id) const;
  void run_on_host(const Step& s, const std::vector<void*>& io_ptrs, void* arena, Resources& res) const;
  void launch(const Step& s, const std::vector<void*>& io_ptrs, void* arena, Resources& res) const;
  // Whether step k's kernel, on the main stream, may let the next kernel start early (programmatic_launch.h):
  // the next step runs right after it on the same stream and launched its kernel programmatically last time.
  bool next_kernel_waits(size_t k, const Resources& res, bool branched, bool marked) const;
  // Finds side_ and lays the arena out again with their buffers held over their windows.
  void plan_side_branches();
};

}  // namespace kiln::cuda
