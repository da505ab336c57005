// hold_stream (stream_timing.h): one thread spinning on the GPU's global nanosecond timer, so the work
// enqueued behind it waits on the device while the host enqueues more.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/stream_timing.h"

namespace kiln::cuda {
namespace {

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void k_hold(unsigned long long ns) {
  const unsigned long long start = global_ns();
  while (global_ns() - start < ns) __nanosleep(500);
}

}  // namespace

void hold_stream(cudaStream_t stream, double us) {
  k_hold<<<1, 1, 0, stream>>>(static_cast<unsigned long long>(us * 1000.0));
  KILN_CUDA_LAUNCH_CHECK();
}

}  // namespace kiln::cuda
