// Kernels that use more than 48 KiB of dynamic shared memory must raise their limit first
// (cudaFuncSetAttribute, per kernel and device). allow_dynamic_smem does it once per device and kernel: the
// first, eager run of a node makes the call, so later runs captured into CUDA graphs make none.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>

#include "backends/cuda/cuda_check.h"

namespace kiln::cuda::kern {

constexpr int kMaxSmemDevices = 64;

// `raised` holds the limit set so far per device ordinal: one static array per kernel instantiation.
template <class Kernel>
void allow_dynamic_smem(Kernel kernel, size_t bytes, int device, std::atomic<int> (&raised)[kMaxSmemDevices]) {
  if (bytes <= 48 * 1024) return;
  const int b = static_cast<int>(bytes);
  const bool tracked = device >= 0 && device < kMaxSmemDevices;
  if (tracked && raised[device].load() >= b) return;
  KILN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, b));
  if (tracked) {
    int cur = raised[device].load();
    while (cur < b && !raised[device].compare_exchange_weak(cur, b)) {
    }
  }
}

}  // namespace kiln::cuda::kern
