// The backend-independent half of running a graph for known shapes, shared by the CPU and CUDA executors:
// which engine I/O tensor each graph value is (IoMap), and, once shapes are inferred, where every value
// lives, which nodes run, and the activation arena's layout (StaticPlan). Backends add only what is theirs:
// the kernel for each step and how a location becomes an address.
//
// View layers (runtime/view_layers.h: reshapes that keep the bytes, and block views such as a Gather of
// one index on a leading axis) run no kernel: their outputs take the storage of the value they read
// (through chains of views, the first value that is not a view's output: the group's root), block views'
// at a byte offset into it (summed along chains), and that storage lives until the last step reading
// any value of the group, or to the end when a view in it is copied out as a network output.
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
    // The value whose storage this is: the value itself, or for a view layer's output the root value it
    // aliases. kConstant data is found by this id (a view's output is no constant itself).
    int value = -1;
    // Bytes from the start of that storage to this value's first byte: non-zero for block views, always a
    // multiple of kViewOffsetAlignment (runtime/block_views.h), so a view is as aligned as its root.
    int64_t offset = 0;
  };
  std::vector<Location> loc;           // by value id
  std::vector<const ir::Node*> steps;  // nodes that run, in order (not constants, not host-computed ones,
                                       // not view layers)
  std::vector<const ir::Node*> views;  // view layers: no kernel, their outputs alias their input
  // Outputs whose storage is not their own buffer (host-computed, constants, passed-through inputs, a value
  // that is two outputs, a view's output whose group lives elsewhere): (io index, value id), copied into
  // the output buffer after the steps.
  std::vector<std::pair<size_t, int>> output_copies;
  MemoryPlan memory;
};

// `shapes` must have every value's shape known. Host-computed network outputs keep their host copy as
// storage, so layers that read them never see the caller's not-yet-written output buffer.
//
// Views and network outputs: a group that a step writes and that holds a network output lives in that
// output's buffer (the producer writes it there, readers read it there) when that output is the root's
// bytes exactly (offset 0, same size); other outputs of the group (block views among them), and outputs
// whose group is a network input or a constant, are output_copies. A view of a host-computed
// value stays a step: the CUDA executor finds host values by their own id, and shape analysis computes
// such views on the host anyway unless the CPU cannot evaluate them.
//
// held: steps whose arena buffers (what they read and write) must stay alive over [from, to] (steps that run on
// a second stream beside those steps: runtime/side_branches.h), so no step in that window shares their bytes.
struct StepWindow {
  int step = -1, from = 0, to = 0;
};
StaticPlan plan_static(const EngineData& engine, const IoMap& io, const ShapeAnalysis& shapes,
                       const std::vector<StepWindow>& held = {});

}  // namespace kiln
