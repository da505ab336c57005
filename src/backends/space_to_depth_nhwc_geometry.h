// A SpaceToDepthNhwc node's geometry (ir/OPS.md), read and checked once for the CPU and CUDA kernels: the block,
// the begin padding, and the shapes x [N, C, H, W] and y [N, T, U, C_out] the kernels index. Shape inference
// refuses malformed nodes at build time; this guards hand-made graphs and plans with the same messages.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/attrs.h"
#include "kiln/types.h"

namespace kiln {

struct SpaceToDepthGeometry {
  int64_t N = 0, C = 0, H = 0, W = 0;  // x
  int64_t T = 0, U = 0, C_out = 0;     // y
  int64_t s = 0, pre_h = 0, pre_w = 0;
};

// The geometry for these shapes and dtypes, or the text of what is wrong (an empty string when nothing is). The
// kernels move elements of any dtype, and convert only float32 to float16 or bfloat16.
inline std::string space_to_depth_geometry(const ir::Attrs& attrs, const Dims& x, DataType x_dtype, const Dims& y,
                                           DataType y_dtype, SpaceToDepthGeometry* g) {
  const int64_t s = attrs.i("block", 0);
  const std::vector<int64_t> pre = attrs.ints("pre_padding");
  if (x.size() != 4 || y.size() != 4 || s < 1 || pre.size() != 2)
    return "expected a 4-D input and output, 'block' >= 1 and 2 'pre_padding' values";
  if (y[3] < x[1] * s * s)
    return "output channels " + std::to_string(y[3]) + " cannot hold the " + std::to_string(x[1] * s * s) +
           " of the blocks";
  if (x_dtype != y_dtype && !(x_dtype == DataType::kFLOAT && (y_dtype == DataType::kHALF || y_dtype == DataType::kBF16)))
    return std::string("cannot convert ") + dtype_name(x_dtype) + " to " + dtype_name(y_dtype) +
           " (only float32 -> float16/bfloat16)";
  *g = SpaceToDepthGeometry{x[0], x[1], x[2], x[3], y[1], y[2], y[3], s, pre[0], pre[1]};
  return {};
}

}  // namespace kiln
