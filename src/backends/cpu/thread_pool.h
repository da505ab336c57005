// A small fork-join thread pool for the CPU backend's kernels.
//
// parallel_for(n, grain, fn) splits [0, n) into chunks of at least `grain` items and runs fn(begin, end)
// on the pool's worker threads plus the calling thread; it returns when every chunk is done.
//  - num_threads() counts the caller: a pool of N threads starts N-1 workers; ThreadPool(1) is serial.
//  - Calls from inside a task (on any pool) run serially on the calling thread, so nesting never
//    deadlocks. A call that would make a single chunk runs inline and does not count as "inside a task",
//    so an outer loop of one item leaves the pool free for the inner loop.
//  - Whole parallel_for calls from different threads are serialized by a mutex: concurrent callers are
//    correct (no lost work), they take turns.
//  - The first exception thrown by fn is rethrown in the caller; chunks not yet started are skipped.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

namespace kiln::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads = 0);  // 0 = std::thread::hardware_concurrency()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const;

  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Process-wide pool, created on first use with hardware_concurrency() threads, or KILN_NUM_THREADS
// when that environment variable holds a positive number. Never destroyed (safe during static teardown).
ThreadPool& default_thread_pool();

// True while the calling thread runs a parallel_for chunk of some pool (nested calls run serially).
bool in_parallel_region();

}  // namespace kiln::cpu
