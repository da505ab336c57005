// What a plan holds, in memory: the optimized graph, the I/O table, the optimization profiles and the
// memory plan. The builder produces it, plan/ writes and reads it, the runtime executes it.
#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/timing_cache.h"

namespace kiln {

// One network input's shapes for one optimization profile.
struct ProfileShapes {
  Dims min, opt, max;
};

struct IOTensorInfo {
  std::string name;
  bool is_input = true;
  DataType dtype = DataType::kFLOAT;
  Dims shape;                          // -1 where dynamic
  std::vector<ProfileShapes> profiles;  // inputs only: one entry per optimization profile
};

struct EngineData {
  std::string name;
  std::string target = "cpu";          // "cpu" or "cuda:sm_90" ...
  std::string kiln_version;
  std::unique_ptr<ir::Graph> graph;    // topologically sorted, shapes inferred for the profile's opt shapes
  std::vector<IOTensorInfo> io;        // inputs first, then outputs, in network order
  int num_profiles = 1;
  uint64_t device_memory_size = 0;     // activation arena bytes, enough for every profile's max shapes
  uint64_t workspace_limit = 0;
  uint64_t weights_bytes = 0;
  std::string target_libraries;        // GPU plans: "cudart 13000, cublasLt ..., cudnn ..." at build time
  // GPU plans: the tactics the build timed for its layers. Contexts look theirs up here before timing, and
  // record what they time for new shapes (shared by every context of the engine; thread-safe).
  std::shared_ptr<TimingCache> tactics = std::make_shared<TimingCache>();

  // A backend's per-engine state (the CUDA backend's: backends/cuda/engine_state.h), made on first use and
  // shared by every context of the engine. Not part of the plan.
  struct BackendState {
    std::mutex mutex;
    std::shared_ptr<void> state;
  };
  std::shared_ptr<BackendState> backend = std::make_shared<BackendState>();
};

}  // namespace kiln
