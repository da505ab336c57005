#include "backends/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_CPU_RELAX() _mm_pause()
#else
#define KILN_CPU_RELAX() std::this_thread::yield()
#endif

namespace kiln::cpu {

namespace {

// Sleeping and waking a thread costs tens of microseconds (much more in a VM), about as long as a whole
// small kernel; so workers and the caller spin this long before they block. Back-to-back parallel
// regions (one per op) then find the workers awake.
constexpr auto kSpin = std::chrono::microseconds(100);

template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    KILN_CPU_RELAX();
    if ((i & 63) == 63) {
      if (std::chrono::steady_clock::now() > deadline) return pred();
      std::this_thread::yield();  // on an oversubscribed machine, let the thread we wait for run
    }
  }
}

thread_local bool t_in_task = false;

// Restores t_in_task on scope exit (also when fn throws).
struct InTaskScope {
  bool saved;
  InTaskScope() : saved(t_in_task) { t_in_task = true; }
  ~InTaskScope() { t_in_task = saved; }
};

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t num_chunks = 0;  // chunk c is [c * n / num_chunks, (c + 1) * n / num_chunks)
  std::atomic<int64_t> next{0};
  std::mutex error_mu;
  std::exception_ptr error;

  // Claims and runs chunks until none are left.
  void run() {
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= num_chunks) return;
      const int64_t begin = c * n / num_chunks;
      const int64_t end = (c + 1) * n / num_chunks;
      try {
        (*fn)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mu);
        if (!error) error = std::current_exception();
        next.store(num_chunks, std::memory_order_relaxed);  // skip what has not started
      }
    }
  }
};

}  // namespace

// Protocol. The caller publishes the job pointer, bumps `generation` and runs chunks itself; workers see
// the new generation (spinning, or woken through work_cv), announce themselves in `active`, then load the
// job pointer. The caller retracts the pointer when no chunk is left and waits for `active` to reach 0.
// Announcing before loading, and retracting before checking (all seq_cst), means a worker that got the
// pointer is always waited for, and one that comes later finds null: the job (on the caller's stack) is
// never touched after parallel_for returns. The mutex only guards sleeping and waking.
struct ThreadPool::Impl {
  int num_threads = 1;
  std::vector<std::thread> workers;

  std::mutex call_mu;  // one parallel_for at a time

  std::mutex mu;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::atomic<Job*> job{nullptr};
  std::atomic<uint64_t> generation{0};  // bumped (under mu) when a job is posted, and at stop
  std::atomic<int> active{0};           // workers between announcing themselves and leaving a job
  std::atomic<bool> stop{false};

  void worker_loop() {
    t_in_task = true;  // everything a worker runs is a task
    uint64_t seen = 0;
    for (;;) {
      if (!spin_until([&] { return generation.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lk(mu);
        work_cv.wait(lk, [&] { return generation.load(std::memory_order_relaxed) != seen; });
      }
      // Generation first, then stop: the destructor sets stop before it bumps the generation, so either
      // this load sees that bump and the stop check below sees stop, or a later wait sees the bump. (The
      // other order lost the stop signal when it landed between the two loads: a worker then slept forever
      // and the pool's destructor hung in join, seen on an oversubscribed machine.)
      seen = generation.load(std::memory_order_acquire);
      if (stop.load()) return;
      active.fetch_add(1);
      if (Job* j = job.load()) j->run();
      if (active.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lk(mu);
        done_cv.notify_all();
      }
    }
  }
};

ThreadPool::ThreadPool(int num_threads) : impl_(std::make_unique<Impl>()) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (num_threads <= 0) num_threads = 1;
  impl_->num_threads = num_threads;
  impl_->workers.reserve(static_cast<size_t>(num_threads - 1));
  for (int i = 1; i < num_threads; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
}

ThreadPool::~ThreadPool() {
  impl_->stop.store(true);
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->generation.fetch_add(1);
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

int ThreadPool::num_threads() const { return impl_->num_threads; }

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t threads = impl_->num_threads;
  // Up to 4 chunks per thread so that uneven chunks balance; equal sizes, never smaller than grain.
  const int64_t max_chunks = std::max<int64_t>(1, n / grain);
  const int64_t want_chunks = std::min<int64_t>(max_chunks, threads * 4);
  if (t_in_task) {  // nested: serial, still inside a task
    fn(0, n);
    return;
  }
  if (threads <= 1 || want_chunks <= 1) {  // one chunk: run inline, outside any task
    fn(0, n);
    return;
  }

  std::lock_guard<std::mutex> call_lock(impl_->call_mu);
  Job job;
  job.fn = &fn;
  job.n = n;
  job.num_chunks = want_chunks;
  impl_->job.store(&job);
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->generation.fetch_add(1);
  }
  impl_->work_cv.notify_all();
  {
    InTaskScope scope;
    job.run();
  }
  // Every chunk is claimed now: retract the job, then wait for the workers still inside it.
  impl_->job.store(nullptr);
  if (!spin_until([&] { return impl_->active.load() == 0; })) {
    std::unique_lock<std::mutex> lk(impl_->mu);
    impl_->done_cv.wait(lk, [&] { return impl_->active.load() == 0; });
  }
  if (job.error) std::rethrow_exception(job.error);
}

ThreadPool& default_thread_pool() {
  static ThreadPool* pool = [] {
    int n = 0;
    if (const char* env = std::getenv("KILN_NUM_THREADS")) n = std::atoi(env);
    return new ThreadPool(n > 0 ? n : 0);
  }();
  return *pool;
}

bool in_parallel_region() { return t_in_task; }

}  // namespace kiln::cpu
