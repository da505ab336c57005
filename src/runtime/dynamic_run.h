// The executor's dynamic mode: for graphs where some shapes are known only after a node has run (outputs of
// NonZero/Unique/..., or of ops fed by such values). Nodes run in order; before each, its output shapes are
// inferred from its inputs' actual shapes and contents (all of them live in host memory here), and its
// outputs are allocated then and freed after their last use. Graphs whose shapes are all known up front
// never come here: they keep the pre-planned arena (Executor's static path).
#pragma once
#include <vector>

#include "backends/cpu/kernel.h"
#include "runtime/engine_data.h"
#include "runtime/shape_analysis.h"

namespace kiln {

// Where graph outputs go once their shapes are known.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // Memory of at least `bytes` bytes for io tensor `io_index` (an output) of `shape`; throws kiln::Error to
  // stop the run. Called once per output per run, after every node has run.
  virtual void* output_memory(size_t io_index, const Dims& shape, size_t bytes) = 0;
};

// Runs `engine`'s graph. `pre`: the analysis for the current input shapes (its host-computed values are
// reused); io_value_ids: the value id of each io tensor; io_ptrs: the inputs' addresses (outputs' entries
// are ignored: outputs are delivered through `sink`). Throws kiln::Error naming the layer at fault.
void run_dynamic(const EngineData& engine, const ShapeAnalysis& pre, const std::vector<int>& io_value_ids,
                 const std::vector<void*>& io_ptrs, cpu::ThreadPool* pool, OutputSink& sink);

}  // namespace kiln
