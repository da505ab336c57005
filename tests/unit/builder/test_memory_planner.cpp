#include <gtest/gtest.h>

#include <random>

#include "builder/memory_planner.h"

using kiln::BufferLifetime;
using kiln::plan_memory;

namespace {
// No two buffers alive at the same step may overlap in memory.
void expect_valid(const std::vector<BufferLifetime>& b, const kiln::MemoryPlan& p) {
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(p.offsets[i] % kiln::kArenaAlignment, 0);
    EXPECT_LE(p.offsets[i] + b[i].size, p.arena_size);
    for (size_t j = i + 1; j < b.size(); ++j) {
      bool time_overlap = !(b[i].last < b[j].first || b[j].last < b[i].first);
      bool mem_overlap = p.offsets[i] < p.offsets[j] + b[j].size && p.offsets[j] < p.offsets[i] + b[i].size;
      EXPECT_FALSE(time_overlap && mem_overlap) << "buffers " << i << " and " << j;
    }
  }
}
}  // namespace

TEST(MemoryPlanner, ChainReusesMemory) {
  // A chain a->b->c->d: each buffer lives two steps, so two slots suffice.
  std::vector<BufferLifetime> b{{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  auto p = plan_memory(b);
  expect_valid(b, p);
  EXPECT_EQ(p.arena_size, 2 * 1024);
  EXPECT_EQ(p.lower_bound, 2 * 1024);
}

TEST(MemoryPlanner, EmptyAndSingle) {
  EXPECT_EQ(plan_memory({}).arena_size, 0);
  auto p = plan_memory({{10, 0, 0}});
  EXPECT_EQ(p.arena_size, 256);
  EXPECT_EQ(p.offsets[0], 0);
}

TEST(MemoryPlanner, RandomLifetimesStayValidAndNearTheBound) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferLifetime> b;
    int n = 1 + rng() % 60;
    for (int i = 0; i < n; ++i) {
      int first = rng() % 50, len = rng() % 8;
      b.push_back({static_cast<int64_t>(1 + rng() % 100000), first, first + len});
    }
    auto p = plan_memory(b);
    expect_valid(b, p);
    EXPECT_GE(p.arena_size, p.lower_bound);
    EXPECT_LE(p.arena_size, p.lower_bound * 2) << "trial " << trial;
  }
}
