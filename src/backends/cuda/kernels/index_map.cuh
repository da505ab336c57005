// The engine behind Slice (every mode), DynamicSlice, Expand, Tile and Pad: out[i_0, .., i_{r-1}] =
// in[sum_d map_d(i_d) * in_stride_d], where each axis maps its output index through start + i*step and
// then a mode (no check, wrap, clamp, fill, reflect, modulo). An axis that says "fill" makes the element
// the fill value. Up to kMaxDims dims; one kernel per element size. Plus the small host helpers these ops
// share for reading parameter tensors.
#pragma once
#include "backends/cuda/kernels/common.cuh"

namespace kiln::cuda::kern {

enum AxisMode : int { kAxisAffine = 0, kAxisWrap = 1, kAxisClamp = 2, kAxisFill = 3, kAxisReflect = 4, kAxisTile = 5 };

struct AxisMap {
  int64_t out_dim = 1, in_dim = 1, in_stride = 0, start = 0, step = 1;
  int mode = kAxisAffine;
};

struct IndexMap {
  int rank = 0;
  AxisMap ax[kMaxDims];
  uint64_t fill_bits = 0;             // the fill value's bytes (low bytes used)
  const void* fill_ptr = nullptr;     // or a device pointer to it (same dtype as the data)
};

// Reflect without repeating the edge (ONNX "reflect", TensorRT REFLECT).
__host__ __device__ __forceinline__ int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t p = 2 * (n - 1);
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - i;
}
__host__ __device__ __forceinline__ int64_t wrap_index(int64_t i, int64_t n) {
  i %= n;
  return i < 0 ? i + n : i;
}

// Input index of output index i on one axis, or -1 for "fill".
__device__ __forceinline__ int64_t map_axis(const AxisMap& a, int64_t i) {
  int64_t idx = a.start + i * a.step;
  switch (a.mode) {
    case kAxisTile: return i % a.in_dim;
    case kAxisAffine: return idx;
    default: break;
  }
  if (idx >= 0 && idx < a.in_dim) return idx;
  switch (a.mode) {
    case kAxisWrap: return wrap_index(idx, a.in_dim);
    case kAxisClamp: return idx < 0 ? 0 : a.in_dim - 1;
    case kAxisReflect: return reflect_index(idx, a.in_dim);
    default: return -1;  // kAxisFill
  }
}

template <class T>
__global__ void k_index_map(const T* __restrict__ x, T* __restrict__ y, int64_t n, IndexMap m) {
  const T fill = m.fill_ptr ? *static_cast<const T*>(m.fill_ptr) : static_cast<T>(m.fill_bits);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    int64_t rem = e, off = 0;
    bool filled = false;
    for (int d = m.rank - 1; d >= 0; --d) {
      const AxisMap& a = m.ax[d];
      const int64_t q = d > 0 ? rem / a.out_dim : 0;
      const int64_t i = rem - q * a.out_dim;
      rem = q;
      const int64_t idx = map_axis(a, i);
      filled |= idx < 0;
      off += idx * a.in_stride;
    }
    y[e] = filled ? fill : x[off];
  }
}

// Runs the map for data of element size `es`; fails naming the layer when the rank is too high.
void launch_index_map(const KernelContext& ctx, const void* x, void* y, int64_t n, size_t es, const IndexMap& m);

// An IndexMap over `out_shape` with every axis affine (start 0, step 1) on an input of `in_shape`.
IndexMap identity_map(const KernelContext& ctx, const Dims& in_shape, const Dims& out_shape);

// The integer values of parameter input i (its host copy), failing with the layer's name when there is none.
std::vector<int64_t> host_ints(const KernelContext& ctx, size_t i);

// The bytes of the scalar input i converted to dtype `dt` into *bits when its host copy exists (true), or
// false when only device memory holds it.
bool host_scalar_bits(const KernelContext& ctx, size_t i, DataType dt, uint64_t* bits);
// A double converted to dtype dt's bytes (as the CPU kernels' store_scalar).
uint64_t scalar_bits(const KernelContext& ctx, double v, DataType dt);

}  // namespace kiln::cuda::kern
