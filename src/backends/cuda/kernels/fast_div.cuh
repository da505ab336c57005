// Division by a divisor the host fixes once, for kernels (host code may use it too: host unit tests check it).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda::kern {

// Division by a divisor fixed on the host, as a multiply-high, an add and a shift (the round-up method of
// Granlund and Montgomery). A 64-bit division is a long software routine on the GPU and even a 32-bit one
// costs ~20 instructions: enough to make a copy kernel that splits a flat index into coordinates for every
// element compute-bound (transpose.cu), or to put a few hundred instructions between a kernel's wait for its
// predecessor and its first load (splitk_conv_mma.cu). Exact for dividends below 2^31 and divisors in
// [1, 2^31).
struct FastDivU32 {
  using Index = uint32_t;
  uint32_t divisor = 1, magic = 1, shift = 0;

  FastDivU32() = default;
  explicit FastDivU32(uint32_t d) : divisor(d) {
    while ((uint64_t{1} << shift) < d) ++shift;  // the smallest shift with 2^shift >= d
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  __host__ __device__ __forceinline__ uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, magic);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * magic) >> 32);
#endif
    return (hi + n) >> shift;  // no overflow: hi <= n < 2^31
  }
};

}  // namespace kiln::cuda::kern
