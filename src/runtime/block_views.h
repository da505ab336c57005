// Block views: layers whose every output is one contiguous run of its data input's bytes, such as ViT's
// Gather(qkv, 0/1/2) on a packed [3, B, H, S, D] projection, ONNX Slice or TensorRT Slice with unit steps,
// and Split, when every dim before the cut is 1 (or picked down to one element) at the run-time shapes.
// The static plan gives each output its input's storage at a byte offset and runs no kernel for them
// (runtime/view_layers.h), so taking such a slice costs no copy.
#pragma once
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "runtime/shape_analysis.h"

namespace kiln {

// A block view's offset must be a multiple of this many bytes: a view's address is then as aligned as
// its root's storage (the arena and the CUDA weights keep 256), which vectorized kernels, cuBLASLt and
// cuDNN plans (built for 16-byte aligned operands) rely on.
inline constexpr int64_t kViewOffsetAlignment = 256;

// For Gather (default mode, one index, no fused addend), Slice, DynamicSlice and Split: the byte offset in
// the data input (input 0) at which each output starts, when every output is a contiguous block of it for
// these shapes, its parameters are known on the host (constants or host-computed values), and every offset is
// a multiple of kViewOffsetAlignment. nullopt otherwise (the layer then runs its kernel, which also
// reports out-of-range indices).
std::optional<std::vector<int64_t>> block_view_offsets(const ir::Node& n, const ShapeAnalysis& shapes);

}  // namespace kiln
