#include "builder/memory_planner.h"

#include <algorithm>
#include <numeric>

namespace kiln {

MemoryPlan plan_memory(const std::vector<BufferLifetime>& buffers, int64_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  auto aligned = [&](int64_t s) { return (s + alignment - 1) / alignment * alignment; };

  int steps = 0;
  for (auto& b : buffers) steps = std::max(steps, b.last + 1);
  std::vector<int64_t> live(steps + 1, 0);
  for (auto& b : buffers)
    for (int t = b.first; t <= b.last; ++t) live[t] += aligned(b.size);
  plan.lower_bound = live.empty() ? 0 : *std::max_element(live.begin(), live.end());

  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (buffers[a].size != buffers[b].size) return buffers[a].size > buffers[b].size;
    return buffers[a].first < buffers[b].first;
  });
  std::vector<size_t> placed;
  for (size_t idx : order) {
    const auto& b = buffers[idx];
    int64_t need = aligned(b.size);
    // Ranges already taken by buffers alive at the same time, sorted by offset.
    std::vector<std::pair<int64_t, int64_t>> taken;
    for (size_t p : placed) {
      const auto& o = buffers[p];
      if (o.last < b.first || b.last < o.first) continue;
      taken.emplace_back(plan.offsets[p], plan.offsets[p] + aligned(o.size));
    }
    std::sort(taken.begin(), taken.end());
    // Best fit: the smallest gap that holds the buffer; else after the last taken range.
    int64_t best = -1, best_gap = INT64_MAX, cursor = 0;
    for (auto& [lo, hi] : taken) {
      if (lo - cursor >= need && lo - cursor < best_gap) {
        best = cursor;
        best_gap = lo - cursor;
      }
      cursor = std::max(cursor, hi);
    }
    if (best < 0) best = cursor;
    plan.offsets[idx] = best;
    plan.arena_size = std::max(plan.arena_size, best + need);
    placed.push_back(idx);
  }
  return plan;
}

}  // namespace kiln
