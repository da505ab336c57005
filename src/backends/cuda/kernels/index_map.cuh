// The engine behind Slice (every mode), DynamicSlice, Expand, Tile and Pad (the map itself: index_map.h). An
// axis that says "fill" makes the element the fill value. Up to kMaxDims dims; one kernel per element size and
// index width (32-bit where every index fits, see index_map_fits_int32). Plus the small host helpers these
// ops share for reading parameter tensors.
#pragma once
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/index_map.h"

namespace kiln::cuda::kern {

static_assert(kIndexMapMaxDims == kMaxDims, "the IndexMap holds as many axes as a tensor has dims");

// Reflect without repeating the edge (ONNX "reflect", TensorRT REFLECT).
template <class I>
__host__ __device__ __forceinline__ I reflect_index(I i, I n) {
  if (n == 1) return 0;
  const I p = 2 * (n - 1);
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - i;
}
template <class I>
__host__ __device__ __forceinline__ I wrap_index(I i, I n) {
  i %= n;
  return i < 0 ? i + n : i;
}

// Input index of output index i on one axis, or -1 for "fill"; in the index type I.
template <class I>
__device__ __forceinline__ I map_axis(const AxisMap& a, I i) {
  const I in_dim = static_cast<I>(a.in_dim);
  I idx = static_cast<I>(a.start) + i * static_cast<I>(a.step);
  switch (a.mode) {
    case kAxisTile: return i % in_dim;
    case kAxisAffine: return idx;
    default: break;
  }
  if (idx >= 0 && idx < in_dim) return idx;
  switch (a.mode) {
    case kAxisWrap: return wrap_index(idx, in_dim);
    case kAxisClamp: return idx < 0 ? 0 : in_dim - 1;
    case kAxisReflect: return reflect_index(idx, in_dim);
    default: return -1;  // kAxisFill
  }
}

template <class T, class I>
__global__ void k_index_map(const T* __restrict__ x, T* __restrict__ y, int64_t n, IndexMap m) {
  const T fill = m.fill_ptr ? *static_cast<const T*>(m.fill_ptr) : static_cast<T>(m.fill_bits);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    I rem = static_cast<I>(e), off = 0;
    bool filled = false;
    for (int d = m.rank - 1; d >= 0; --d) {
      const AxisMap& a = m.ax[d];
      const I out_dim = static_cast<I>(a.out_dim);
      const I q = d > 0 ? rem / out_dim : 0;
      const I i = rem - q * out_dim;
      rem = q;
      const I idx = map_axis<I>(a, i);
      filled |= idx < 0;
      off += idx * static_cast<I>(a.in_stride);
    }
    y[e] = filled ? fill : x[off];
  }
}

// Runs the map for data of element size `es` (its axes collapsed first); fails naming the layer when the rank
// is too high.
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
