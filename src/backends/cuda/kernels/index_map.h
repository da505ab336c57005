// The description an IndexMap kernel runs (index_map.cuh), kept free of CUDA so that the host-side planning of a
// map (collapsing axes, choosing the index width) is compiled and tested everywhere.
//
// out[i_0, .., i_{r-1}] = in[sum_d map_d(i_d) * in_stride_d], where each axis maps its output index through
// start + i*step and then a mode (no check, wrap, clamp, fill, reflect, tile).
#pragma once
#include <cstdint>

namespace kiln::cuda::kern {

constexpr int kIndexMapMaxDims = 8;

enum AxisMode : int { kAxisAffine = 0, kAxisWrap = 1, kAxisClamp = 2, kAxisFill = 3, kAxisReflect = 4, kAxisTile = 5 };

struct AxisMap {
  int64_t out_dim = 1, in_dim = 1, in_stride = 0, start = 0, step = 1;
  int mode = kAxisAffine;
};

struct IndexMap {
  int rank = 0;
  AxisMap ax[kIndexMapMaxDims];
  uint64_t fill_bits = 0;             // the fill value's bytes (low bytes used)
  const void* fill_ptr = nullptr;     // or a device pointer to it (same dtype as the data)
};

// The same map with fewer axes: axes of one output element that read index 0 go, and each run of neighbouring
// axes that copy their input whole and in order (affine, start 0, step 1, as long as the input, strides nested)
// becomes one axis. Pad's [N, H, W, C] -> [N, H, W, C'] becomes [N*H*W, C -> C'], so the kernel divides once
// per element instead of four times.
IndexMap collapse_identity_axes(const IndexMap& m);

// Whether every index the map's kernel computes for n output elements fits in int32 (the kernel then runs with
// 32-bit arithmetic: a 64-bit division is a long instruction sequence on the GPU).
bool index_map_fits_int32(const IndexMap& m, int64_t n);

// Tests only: run every map with 64-bit indices, so that kernel is checked on small tensors too.
void set_index_map_force_64bit_index(bool on);

}  // namespace kiln::cuda::kern
