// The device side of programmatic dependent launch (backends/cuda/programmatic_launch.h says why and when).
#pragma once

namespace kiln::cuda::kern {

// Waits until the kernels this one may have started beside have finished and their writes are visible. Every
// read of another kernel's output, and every write, comes after it. A no-op for a kernel launched without
// programmatic serialization, and below sm_90.
__device__ __forceinline__ void wait_for_prior_kernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream start now, if it was launched with programmatic serialization: it still
// waits for this one to finish before it reads anything this one writes (wait_for_prior_kernels).
__device__ __forceinline__ void allow_next_kernel_to_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// 16 bytes of a weight (memory no kernel writes) loaded before wait_for_prior_kernels(), where the load's
// trip to memory overlaps the kernel before. A plain load through a const __restrict__ pointer becomes a
// non-coherent load (LDG.CONSTANT), which ptxas moved past the wait (LayerNorm's scale and bias, SASS,
// seventeenth session); a volatile coherent load keeps its place before it.
__device__ __forceinline__ uint4 load_weight_16(const void* p) {
  uint4 v;
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

}  // namespace kiln::cuda::kern
