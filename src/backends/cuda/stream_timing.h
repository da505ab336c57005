// Timing library candidates on a context's stream (cuDNN convolution paths, cuBLASLt algorithms): CUDA
// events around repeated calls. Used on a context's first, eager run for a shape; never inside a capture.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>

#include "backends/cuda/cuda_check.h"

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

// Milliseconds one call of `once` takes on the stream: one untimed call first (lazy module loading; a
// candidate that fails shows up there), then the best of a few timed rounds. Negative when a call fails.
template <class F>
float time_ms(cudaStream_t stream, F&& once) {
  constexpr int kRounds = 3, kReps = 4;
  if (!once()) return -1;
  EventPair ev;
  float best = std::numeric_limits<float>::infinity();
  for (int r = 0; r < kRounds; ++r) {
    KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
    for (int i = 0; i < kReps; ++i)
      if (!once()) return -1;
    KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
    KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
    best = std::min(best, ms / kReps);
  }
  return best;
}

}  // namespace kiln::cuda
