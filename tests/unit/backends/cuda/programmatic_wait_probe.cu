#include "backends/cuda/programmatic_wait_probe.h"

#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"

namespace kiln::cudatest {
namespace {

__device__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void k_late_writer(int* flag, int spin_us) {
  cuda::kern::allow_next_kernel_to_start();
  const unsigned long long end = now_ns() + 1000ull * static_cast<unsigned long long>(spin_us);
  while (now_ns() < end) {
  }
  *reinterpret_cast<volatile int*>(flag) = 1;
}

__global__ void k_reader_that_never_waits(const int* flag, int* seen) {
  *seen = *reinterpret_cast<const volatile int*>(flag);
}

}  // namespace

cudaError_t enqueue_late_write_then_read(cudaStream_t stream, int* flag, int* seen, bool absorb, int spin_us) {
  cudaError_t e = cudaMemsetAsync(flag, 0, sizeof(int), stream);
  if (e != cudaSuccess) return e;
  k_late_writer<<<1, 1, 0, stream>>>(flag, spin_us);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  if (absorb) cuda::absorb_early_start(stream);  // throws on a launch error
  return cuda::launch_maybe_programmatic(k_reader_that_never_waits, dim3(1), dim3(1), 0, stream, true,
                                         static_cast<const int*>(flag), seen);
}

}  // namespace kiln::cudatest
