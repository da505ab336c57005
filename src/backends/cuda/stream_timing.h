// Timing library candidates on a context's stream (cuDNN convolution paths, cuBLASLt algorithms): CUDA
// events around repeated calls. Used on a context's first, eager run for a shape; never inside a capture.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>

#include "backends/cuda/cuda_check.h"
#include "runtime/env_switch.h"

namespace kiln::cuda {

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    KILN_CUDA_CHECK(cudaEventCreate(&start));
    KILN_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};

// Enqueues a kernel that keeps `stream` busy for `us` microseconds (kernels/stream_hold.cu), so the calls
// enqueued behind it wait on the device and then run back to back.
void hold_stream(cudaStream_t stream, double us);

// Milliseconds one call of `once` takes on the GPU: one untimed call first (lazy module loading; a candidate
// that fails shows up there), then the best of a few timed rounds. Negative when a call fails.
//
// Each round is enqueued behind hold_stream, long enough for the host to enqueue the whole round: the events
// then bracket the calls' device time alone. Without the hold, a call whose host side takes longer than its
// kernels (a cuDNN graph-API execution or a cuBLASLt call at batch 1: ~5-20 us of host time around a ~5 us
// kernel) was timed at the host's pace. Kiln replays CUDA graphs, where that host time is not spent, so such
// a time ranked candidates by noise: two builds of one model differed by up to 11% at batch 1 (bench/NOTES.md,
// seventh session). A round whose enqueue outlasted its hold is timed again behind a hold four times longer,
// up to kMaxHoldUs: a call still slower than that waits for the device itself (a synchronizing free, a blocking
// library call), so no hold can run ahead of it, and its rounds are timed without one. (With holds up to
// 50 ms such a candidate cost ~0.2 s; the suspected cause of EfficientNet-B0's FP16 build taking 15.3 s, not 7.9.)
// KILN_TIMING_HOLD=0 times without the hold, as Kiln did before (to compare builds both ways);
// KILN_TIMING_HOLD_LOG=1 says on stderr which calls the hold could not run ahead of.
template <class F>
float time_ms(cudaStream_t stream, F&& once) {
  constexpr int kRounds = 3, kReps = 4;
  constexpr double kFirstHoldUs = 200, kMaxHoldUs = 3200;
  if (!once()) return -1;
  EventPair ev;
  float best = std::numeric_limits<float>::infinity();
  bool held = !env_is("KILN_TIMING_HOLD", "0");
  double hold_us = kFirstHoldUs;
  for (int r = 0; r < kRounds; ++r) {
    if (held) hold_stream(stream, hold_us);
    const auto t0 = std::chrono::steady_clock::now();
    KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
    for (int i = 0; i < kReps; ++i)
      if (!once()) return -1;
    KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
    const double host_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
    if (held && host_us > 0.8 * hold_us) {  // the device may have waited for the host: time the round again
      if (hold_us < kMaxHoldUs) {
        hold_us *= 4;
      } else {
        held = false;
        if (env_is("KILN_TIMING_HOLD_LOG", "1"))
          std::fprintf(stderr, "kiln: tactic timing: a call's enqueue took %.0f us behind a %.0f us hold; timed without\n",
                       host_us / kReps, hold_us);
      }
      --r;
      continue;
    }
    best = std::min(best, ms / kReps);
  }
  return best;
}

}  // namespace kiln::cuda
