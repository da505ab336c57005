// Runs an engine's graph on the CPU backend for one set of input shapes. prepare() infers every
// shape (computing small shape tensors on the host) and lays out the activation arena; run() executes
// the kernels in order. One Executor belongs to one execution context: it is not shared.
#pragma once
#include <memory>
#include <vector>

#include "backends/cpu/kernel.h"
#include "builder/memory_planner.h"
#include "runtime/engine_data.h"
#include "runtime/shape_analysis.h"

namespace kiln {

class Executor {
 public:
  explicit Executor(std::shared_ptr<const EngineData> engine);

  // input_shapes: one per engine input, in io order. Throws kiln::Error naming what is wrong.
  void prepare(const std::vector<Dims>& input_shapes);
  bool prepared() const { return prepared_; }
  int64_t arena_bytes() const { return plan_.arena_size; }
  int64_t arena_lower_bound() const { return plan_.lower_bound; }
  // Shape of io tensor i for the prepared input shapes.
  const Dims& io_shape(size_t io_index) const;

  // io_ptrs: one address per io tensor (io order); arena: at least arena_bytes(), 256-byte aligned.
  void run(const std::vector<void*>& io_ptrs, void* arena, cpu::ThreadPool* pool) const;

 private:
  struct Step {
    const ir::Node* node;
    cpu::KernelFn kernel;  // looked up once in prepare(), not on every run
  };
  enum class Where : uint8_t { kNone, kIO, kConstant, kHost, kArena };
  struct Location {
    Where where = Where::kNone;
    int64_t index = 0;  // io index, or arena offset
  };

  std::shared_ptr<const EngineData> engine_;
  std::vector<int> io_value_ids_;   // value id of each io tensor
  std::vector<int> value_io_;       // io index by value id, -1 if none
  ShapeAnalysis shapes_;
  std::vector<Step> steps_;
  std::vector<Location> loc_;       // by value id
  std::vector<Dims> io_shapes_;
  MemoryPlan plan_;
  bool prepared_ = false;

  void* address(int value_id, const std::vector<void*>& io_ptrs, void* arena) const;
};

}  // namespace kiln
