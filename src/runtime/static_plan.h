// The backend-independent half of running a graph for known shapes, shared by the CPU and CUDA executors:
// which engine I/O tensor each graph value is (IoMap), and, once shapes are inferred, where every value
// lives, which nodes run, and the activation arena's layout (StaticPlan). Backends add only what is theirs:
// the kernel for each step and how a location becomes an address.
#pragma once
#include <vector>

#include "builder/memory_planner.h"
#include "runtime/engine_data.h"
#include "runtime/shape_analysis.h"

namespace kiln {

// Engine I/O tensors <-> graph values.
struct IoMap {
  std::vector<int> io_value_ids;  // value id of each io tensor
  std::vector<int> value_io;      // io index by value id, -1 if none (an output that is also an input keeps
                                  // the input's index: it is copied at the end of a run)

  explicit IoMap(const EngineData& engine);  // throws when an io tensor is missing from the graph
  // Shapes by graph input (graph order) from shapes of the engine's inputs (io order).
  std::vector<Dims> graph_input_shapes(const EngineData& engine, const std::vector<Dims>& input_shapes) const;
};

struct StaticPlan {
  enum class Where : uint8_t { kNone, kIO, kConstant, kHost, kArena };
  struct Location {
    Where where = Where::kNone;
    int64_t index = 0;  // io index (kIO) or arena offset (kArena)
  };
  std::vector<Location> loc;           // by value id
  std::vector<const ir::Node*> steps;  // nodes that run, in order (not constants, not host-computed ones)
  // Outputs whose storage is not their own buffer (host-computed, constants, passed-through inputs, a value
  // that is two outputs): (io index, value id), copied into the output buffer after the steps.
  std::vector<std::pair<size_t, int>> output_copies;
  MemoryPlan memory;
};

// `shapes` must have every value's shape known. Host-computed network outputs keep their host copy as
// storage, so layers that read them never see the caller's not-yet-written output buffer.
StaticPlan plan_static(const EngineData& engine, const IoMap& io, const ShapeAnalysis& shapes);

}  // namespace kiln
