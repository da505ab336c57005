// Activation memory planning: every intermediate tensor gets an offset in one arena; tensors whose
// lifetimes do not overlap share bytes. Greedy by size (largest first), each placed at the lowest
// offset that does not collide with an already placed tensor alive at the same time.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln {

struct BufferLifetime {
  int64_t size = 0;   // bytes
  int first = 0;      // index of the step that writes it
  int last = 0;       // index of the last step that reads it (>= first)
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // one per buffer
  int64_t arena_size = 0;
  int64_t lower_bound = 0;       // the largest sum of sizes alive at one step: no plan can be smaller
};

inline constexpr int64_t kArenaAlignment = 256;

MemoryPlan plan_memory(const std::vector<BufferLifetime>& buffers, int64_t alignment = kArenaAlignment);

}  // namespace kiln
