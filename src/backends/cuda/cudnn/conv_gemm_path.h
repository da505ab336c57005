// A 1x1 channels-last convolution as one cuBLASLt GEMM: the convolution kernel's fourth candidate path
// (conv_kernel.cpp times it against cuDNN's paths and records the winner as "gemm", conv_graph_record.h).
//
// Why: a 1x1, stride-1, unpadded NHWC convolution reads each input pixel's C channels once and writes its K
// outputs once, which is exactly Y[N*H*W, K] = X[N*H*W, C] * W[K, C]^T. cuDNN runs those memory-bound layers
// well below the H200's bandwidth (ResNet-50's layer1 conv3: 2.15 TB/s; MobileNetV2's pointwise layers:
// 0.9-2.2 TB/s); cuBLASLt does the product with the node's whole epilogue (bias over K, the residual as its
// C with beta = 1, ReLU) in one call (cublaslt/lt_gemm.h), its algorithm timed and recorded there.
//
// Eligible: forward, channels_last, groups 1, 2-D, kernel 1x1, stride 1, dilation 1, no padding, float16 /
// bfloat16 / float32 (float32 on TF32 tensor cores only when the node allows TF32, as every float32 path),
// activation none or ReLU (cuBLASLt's epilogues have no clip: ReLU6 and the rest stay with cuDNN), an
// optional bias [K] and an optional residual of y's shape.
#pragma once
#include <string>
#include <vector>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/cublaslt/lt_gemm.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// KILN_CONV_GEMM (candidate_mode.h): the GEMM path is one more timed candidate for eligible convolutions
// (with KILN_CUDNN_GRAPH unset or 1, the timed choice; its other values leave it out), never, or forced:
// taken whenever the node is eligible, whatever KILN_CUDNN_GRAPH says, without timing the other paths or
// reading or writing their record (tests; ineligible nodes, ReLU6 among them, take the usual choice, and a
// GEMM cuBLASLt cannot run is an error).
using ConvGemmMode = CandidateMode;
inline ConvGemmMode conv_gemm_mode() { return candidate_mode("KILN_CONV_GEMM"); }

// The convolution's window per spatial dim, as the kernel computed it from the node and its shapes.
struct ConvWindow {
  std::vector<int> pad, stride, dilation;
  // No padding, stride 1, no dilation: the window of a 1x1 GEMM and of the narrow-input kernel.
  bool unit() const;
};

// The GEMM computing this node on its current tensors (alignment from their addresses); false, with the
// reason in *why, when the node is not eligible (see the top of the file).
bool conv_gemm_shape(const KernelContext& ctx, const ConvWindow& window, GemmShape* shape, std::string* why);

// Whether the current tensors' addresses are at least as aligned as `shape` promised cuBLASLt.
bool conv_gemm_aligned(const KernelContext& ctx, const GemmShape& shape);

// Enqueues the node as the GEMM `shape` (from conv_gemm_shape for these tensor shapes) on ctx's stream with
// ctx.res's workspace. False, with cuBLASLt's refusal in *why and nothing left pending, when it cannot run.
// The caller checks conv_gemm_aligned first.
bool run_conv_gemm(KernelContext& ctx, LtGemm& gemm, const GemmShape& shape, std::string* why);

}  // namespace kiln::cuda
