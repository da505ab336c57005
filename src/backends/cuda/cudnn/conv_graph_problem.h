// A forward convolution as the cuDNN graph path describes it (conv_graph.h builds plans for it), in Kiln's
// own terms: no cuDNN header is needed here, so the timing-cache key text below is testable, and includable,
// wherever Kiln builds (the kernel tests do not see cuDNN's include directory).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln::cuda {

// Which epilogue steps the graph itself computes (the rest is Kiln's epilogue kernel's).
struct ConvGraphEpilogue {
  bool bias = false, residual = false, relu = false;
  // With relu: clip above this value too when it is > 0 (ReLU6, MobileNet's activation: Clip(0, 6)), so
  // the graph computes it instead of a separate pass of Kiln's epilogue kernel over the output.
  float relu_upper = 0;
  bool any() const { return bias || residual || relu; }
  std::string str() const;  // "conv+bias+residual+relu" ("relu<=6" with an upper clip)
};

// Tensors of the graph; the index is also each one's position in ConvGraphProblem::align.
enum ConvGraphTensor { kGraphX = 0, kGraphW, kGraphY, kGraphBias, kGraphResidual, kGraphTensorCount };

// A forward convolution in the graph API's terms: dims in NCHW order (N, C, spatial...; weights K, C/groups,
// kernel...) with the memory layout carried by the strides (channels-last: C has stride 1). Two or three
// spatial dims: a 1-D convolution is described with a unit height first.
struct ConvGraphProblem {
  DataType io_type = DataType::kFLOAT;  // x, w, y, bias, residual: float32, float16 or bfloat16
  bool allow_tf32 = false;              // float32 I/O: tensor-core (TF32) engines allowed
  std::vector<int64_t> x_dims, x_strides, w_dims, w_strides, y_dims, y_strides, bias_dims, bias_strides;
  std::vector<int64_t> pre_pad, post_pad, stride, dilation;  // one per spatial dim
  // The byte alignment promised for each tensor's base address (16 at most): engines may rely on it, so a
  // plan runs only on addresses that keep the promise (ConvGraphPlan::aligned).
  int64_t align[kGraphTensorCount] = {16, 16, 16, 16, 16};
};

// The largest power of two (16 at most) dividing the address; 16 for null.
int64_t address_alignment(const void* p);

// The problem part of the "cudnn-graph" timing-cache key: everything that decides which path and plan a
// convolution takes (every field of the problem; the node's whole epilogue `full`, which the fused plans
// compute; Kiln's activation `activation`, whose kernel runs after the others and so is part of their
// timed cost; the workspace plans must fit in). GPU model and cuDNN version are tactic_key's.
std::string conv_graph_problem_text(const ConvGraphProblem& p, const ConvGraphEpilogue& full, int64_t activation,
                                    uint64_t workspace_bytes);

}  // namespace kiln::cuda
