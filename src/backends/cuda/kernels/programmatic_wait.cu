// A kernel that only waits for the kernel before it (programmatic_launch.h, absorb_early_start): the end of a
// chain the executor expected to continue with one of Kiln's kernels launched programmatically, where the node
// ran a library's kernel instead this time.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels/programmatic_launch.cuh"
#include "backends/cuda/programmatic_launch.h"

namespace kiln::cuda {
namespace {

// Launched programmatically, it may start as soon as the kernel before it lets it; it ends only once that kernel
// has, and lets nothing start early itself: what follows it starts after it exits, as after any kernel.
__global__ void k_wait_for_prior_kernels() { kern::wait_for_prior_kernels(); }

}  // namespace

void absorb_early_start(cudaStream_t stream) {
  KILN_CUDA_CHECK(launch_maybe_programmatic(k_wait_for_prior_kernels, dim3(1), dim3(1), 0, stream, true));
}

}  // namespace kiln::cuda
