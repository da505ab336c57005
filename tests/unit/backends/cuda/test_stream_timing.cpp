// Tactic timing (backends/cuda/stream_timing.h): hold_stream keeps a stream busy for at least the time asked,
// and time_ms reports the device time of a call whose host side is slower than its device side (a cuDNN
// graph-API or cuBLASLt call at batch 1), not the host's pace. The bounds are wide (3x) and one-sided where
// the device's own timer decides: these check what is measured, not how fast anything runs.
#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "backends/cuda/cuda_op_harness.h"  // KILN_REQUIRE_CUDA_DEVICE, ScopedEnv
#include "backends/cuda/stream_timing.h"

namespace kiln {
namespace {

float elapsed_ms(cudaStream_t s, double hold_us) {
  cuda::EventPair ev;
  EXPECT_EQ(cudaEventRecord(ev.start, s), cudaSuccess);
  cuda::hold_stream(s, hold_us);
  EXPECT_EQ(cudaEventRecord(ev.stop, s), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(ev.stop), cudaSuccess);
  float ms = 0;
  EXPECT_EQ(cudaEventElapsedTime(&ms, ev.start, ev.stop), cudaSuccess);
  return ms;
}

TEST(StreamTiming, HoldKeepsTheStreamBusyAtLeastAsLongAsAsked) {
  KILN_REQUIRE_CUDA_DEVICE();
  cudaStream_t s = cudatest::test_stream();
  elapsed_ms(s, 10);  // module loading
  for (double us : {50.0, 500.0, 2000.0}) EXPECT_GE(elapsed_ms(s, us), 0.95 * us / 1000.0) << us << " us";
}

// A call that spends 100 us on the host and enqueues 20 us of device work: timed at the host's pace it would
// take >= 0.1 ms per call; its device time is 0.02 ms.
TEST(StreamTiming, TimesTheDeviceNotTheHost) {
  KILN_REQUIRE_CUDA_DEVICE();
  cudaStream_t s = cudatest::test_stream();
  auto slow_host_call = [&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
    while (std::chrono::steady_clock::now() < until) {
    }
    cuda::hold_stream(s, 20);
    return true;
  };
  const float ms = cuda::time_ms(s, slow_host_call);
  EXPECT_GE(ms, 0.019f);
  EXPECT_LT(ms, 0.06f) << "timed at the host's pace";
  EXPECT_LT(cuda::time_ms(s, [] { return false; }), 0.0f) << "a failing call";
  // A call that waits for the device itself: no hold runs ahead of it, so its rounds go without one.
  auto blocking_call = [&] {
    cuda::hold_stream(s, 20);
    return cudaStreamSynchronize(s) == cudaSuccess;
  };
  // (What giving up on the hold saves is build time, which the benchmark's build column shows, not a test.)
  EXPECT_GE(cuda::time_ms(s, blocking_call), 0.019f);
  // KILN_TIMING_HOLD=0, the timing before the hold: the events then bracket the host's 100 us per call too.
  cudatest::ScopedEnv old("KILN_TIMING_HOLD", "0");
  EXPECT_GE(cuda::time_ms(s, slow_host_call), 0.095f);
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
