// What the CUDA Gather kernels (gather.cu) and the fused-addend row kernel (gather_addend.cu) share, so the two
// read indices, treat a bad index and cut rows into warp chunks the same way.
#pragma once
#include <cstdint>

namespace kiln::cuda::kern::gather_rows {

// The indices as the kernels read them: int32 or int64.
struct Idx {
  const void* p;
  bool i64;
  __device__ __forceinline__ int64_t operator[](int64_t i) const {
    return i64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
  }
};

// v wrapped into [0, n), or -1 when outside [-n, n).
__host__ __device__ __forceinline__ int64_t wrap_or_bad(int64_t v, int64_t n) {
  if (v < -n || v >= n) return -1;
  return v < 0 ? v + n : v;
}

// The row kernels' geometry: blockDim (32, kRowsPerBlock), a warp per row and chunk of kRowChunk units
// (kRowUnroll per lane).
constexpr int kRowUnroll = 4;
constexpr int kRowsPerBlock = 8;
constexpr int64_t kRowChunk = 32 * kRowUnroll;  // units per warp and row

}  // namespace kiln::cuda::kern::gather_rows
