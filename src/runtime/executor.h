// Runs an engine's graph on the CPU backend for one set of input shapes. prepare() infers every
// shape (computing small shape tensors on the host, with the contents of shape-tensor inputs when given) and
// lays out the activation arena; run() executes the kernels in order. One Executor belongs to one execution
// context: it is not shared.
//
// Two modes. Static (the usual one): every shape is known after prepare(), the kernels write into one
// pre-planned arena. Dynamic: some shape is known only once a node has run (data-dependent outputs such as
// NonZero's); run() then infers and allocates node by node (runtime/dynamic_run) and hands the outputs to an
// OutputSink.
#pragma once
#include <memory>
#include <vector>

#include "backends/cpu/kernel.h"
#include "builder/memory_planner.h"
#include "kiln/runtime.h"
#include "runtime/dynamic_run.h"
#include "runtime/engine_data.h"
#include "runtime/shape_analysis.h"
#include "runtime/static_plan.h"

namespace kiln {

class Executor {
 public:
  explicit Executor(std::shared_ptr<const EngineData> engine);

  // Whether io tensor i is an input whose contents shape inference needs (a shape tensor).
  bool is_shape_input(size_t io_index) const { return io_index < shape_input_.size() && shape_input_[io_index]; }
  bool has_shape_inputs() const;

  // input_shapes: one per engine input, in io order. shape_values: empty, or one per io tensor (io order)
  // holding the contents of shape-tensor inputs (an empty HostTensor where unknown or not a shape input).
  // Throws kiln::Error naming what is wrong.
  void prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& shape_values = {});
  bool prepared() const { return prepared_; }
  // True when some shape is known only while running: run() then needs an OutputSink.
  bool dynamic() const { return dynamic_; }
  int64_t arena_bytes() const { return plan_.memory.arena_size; }
  int64_t arena_lower_bound() const { return plan_.memory.lower_bound; }
  // Shape of io tensor i for the prepared input shapes (-1 dims for data-dependent output shapes).
  const Dims& io_shape(size_t io_index) const;

  // io_ptrs: one address per io tensor (io order); arena: at least arena_bytes(), 256-byte aligned.
  // In dynamic mode outputs go through `sink` (their io_ptrs entries are ignored); in static mode `sink` is
  // not used.
  // profile: when given (static mode), each layer's wall time is appended to it.
  void run(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool, OutputSink* sink = nullptr,
           std::vector<LayerTiming>* profile = nullptr) const;

 private:
  std::shared_ptr<const EngineData> engine_;
  IoMap io_;
  std::vector<bool> shape_input_;   // by io index
  ShapeAnalysis shapes_;
  StaticPlan plan_;
  std::vector<cpu::KernelFn> kernels_;  // one per plan_.steps entry, looked up once in prepare()
  std::vector<Dims> io_shapes_;
  bool prepared_ = false;
  bool dynamic_ = false;

  void* address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const;
  void run_static(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool,
                  std::vector<LayerTiming>* profile) const;
};

}  // namespace kiln
