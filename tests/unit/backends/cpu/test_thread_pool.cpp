#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backends/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

// Every index of [0, n) is visited exactly once, in chunks of at least `grain` (or one chunk when n < grain).
void check_cover(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int64_t> short_chunks{0};
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    ASSERT_LE(0, b);
    ASSERT_LT(b, e);
    ASSERT_LE(e, n);
    if (e - b < grain && !(b == 0 && e == n)) short_chunks++;
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i;
  EXPECT_EQ(short_chunks.load(), 0);
}

TEST(ThreadPool, NumThreads) {
  EXPECT_EQ(ThreadPool(3).num_threads(), 3);
  EXPECT_EQ(ThreadPool(1).num_threads(), 1);
  EXPECT_GE(ThreadPool(0).num_threads(), 1);
  EXPECT_GE(default_thread_pool().num_threads(), 1);
  EXPECT_EQ(&default_thread_pool(), &default_thread_pool());
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 3, 7, 17, 64, 1000, 100003})
      for (int64_t grain : {1, 3, 16, 1000}) check_cover(pool, n, grain);
  }
}

TEST(ThreadPool, EmptyAndBadGrain) {
  ThreadPool pool(4);
  int calls = 0;
  pool.parallel_for(0, 1, [&](int64_t, int64_t) { ++calls; });
  pool.parallel_for(-5, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  check_cover(pool, 100, 0);
  check_cover(pool, 100, -3);
}

TEST(ThreadPool, UsesWorkers) {
  ThreadPool pool(4);
  std::atomic<int> distinct{0};
  std::vector<std::thread::id> ids(64);
  // Each chunk sleeps a little so that workers get a share even on a busy machine.
  pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ids[static_cast<size_t>(i)] = std::this_thread::get_id();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  });
  std::sort(ids.begin(), ids.end());
  distinct = static_cast<int>(std::unique(ids.begin(), ids.end()) - ids.begin());
  EXPECT_GE(distinct.load(), 2);
}

TEST(ThreadPool, ExceptionPropagates) {
  ThreadPool pool(4);
  for (int rep = 0; rep < 20; ++rep) {
    EXPECT_THROW(pool.parallel_for(1000, 1,
                                   [&](int64_t b, int64_t e) {
                                     for (int64_t i = b; i < e; ++i)
                                       if (i == 637) throw std::runtime_error("boom");
                                   }),
                 std::runtime_error);
    // The pool stays usable afterwards.
    check_cover(pool, 1000, 7);
  }
  // Every chunk throws: exactly one exception comes out.
  try {
    pool.parallel_for(100, 1, [](int64_t, int64_t) { throw std::logic_error("all"); });
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "all");
  }
  // Single-chunk (inline) calls propagate too.
  EXPECT_THROW(pool.parallel_for(1, 1, [](int64_t, int64_t) { throw std::runtime_error("one"); }),
               std::runtime_error);
}

TEST(ThreadPool, NestedCallsRunSerially) {
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(16, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      EXPECT_TRUE(in_parallel_region());
      pool.parallel_for(100, 1, [&](int64_t ib, int64_t ie) {
        for (int64_t j = ib; j < ie; ++j) sum += j;
        // Third level, on another pool.
        default_thread_pool().parallel_for(3, 1, [&](int64_t kb, int64_t ke) { sum += ke - kb; });
      });
    }
  });
  EXPECT_EQ(sum.load(), 16 * (4950 + 3));
  EXPECT_FALSE(in_parallel_region());
}

TEST(ThreadPool, ConcurrentCallers) {
  ThreadPool pool(3);
  constexpr int kCallers = 4, kRounds = 200;
  std::vector<int64_t> totals(kCallers, 0);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        std::atomic<int64_t> sum{0};
        const int64_t n = 1000 + 37 * c + r;
        pool.parallel_for(n, 13, [&](int64_t b, int64_t e) {
          int64_t s = 0;
          for (int64_t i = b; i < e; ++i) s += i;
          sum += s;
        });
        if (sum.load() == n * (n - 1) / 2) totals[static_cast<size_t>(c)]++;
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(totals[static_cast<size_t>(c)], kRounds) << "caller " << c;
}

TEST(ThreadPool, ConcurrentCallersWithExceptionsAndNesting) {
  ThreadPool pool(2);
  std::atomic<int> caught{0}, ok{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int r = 0; r < 50; ++r) {
        try {
          pool.parallel_for(64, 2, [&](int64_t b, int64_t e) {
            pool.parallel_for(8, 1, [](int64_t, int64_t) {});
            if ((c + r) % 3 == 0 && b <= 40 && 40 < e) throw std::runtime_error("x");
          });
          ok++;
        } catch (const std::runtime_error&) {
          caught++;
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(caught.load() + ok.load(), 200);
  EXPECT_EQ(caught.load(), 67);  // (c + r) % 3 == 0 for 67 of the 200 (c, r) pairs
}

TEST(ThreadPool, ManyPoolsCreatedAndDestroyed) {
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(1 + i % 4);
    check_cover(pool, 50, 1);
  }
}

}  // namespace
}  // namespace kiln::cpu
