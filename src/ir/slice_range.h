// ONNX Slice's rule for one axis (negative indices count from the end, then clamping, negative steps run
// backwards), shared by DynamicSlice's shape inference and its CPU and CUDA kernels so all three agree.
#pragma once
#include <algorithm>
#include <cstdint>

namespace kiln::ir {

struct SliceRange {
  int64_t start = 0;  // first element taken
  int64_t length = 0; // number of elements taken
};

// step must not be 0 (callers report that with the axis).
inline SliceRange onnx_slice_range(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (dim == 0) return {0, 0};
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end > start ? (end - start + step - 1) / step : 0};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  return {start, start > end ? (start - end - step - 1) / (-step) : 0};
}

}  // namespace kiln::ir
