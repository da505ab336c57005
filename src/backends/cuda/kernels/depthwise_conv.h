// A direct CUDA kernel for channels-last depthwise convolution (one filter per channel: groups == C == K),
// with the Convolution node's whole epilogue: y = act(conv(x, w) + bias + residual).
//
// Why Kiln's own: MobileNet-style networks spend most of their time in depthwise layers, which do ~9
// multiply-adds per element moved and are bound by memory bandwidth, yet cuDNN's depthwise engines for
// NHWC fp16 run far from it (MobileNetV2 at batch 128 was 2-3x slower than PyTorch on an H200, 98% in
// convolutions). The convolution kernel times this one against cuDNN's choices and keeps the faster.
//
// Layout: x [N, H, W, C], w [C, kh, kw, 1] (channels-last weights), y [N, OH, OW, C], bias [C], residual y's
// shape. Each thread computes one output pixel for one 16-byte vector of channels; a block's filter taps live
// in shared memory, transposed to [tap][channel] so the per-tap weights of a vector are contiguous. Float32
// accumulation; float32, float16 and bfloat16.
#pragma once
#include <cstdint>

#include "backends/cuda/kernel.h"

namespace kiln::cuda {

struct DepthwiseGeometry {
  int64_t N = 0, H = 0, W = 0, C = 0, OH = 0, OW = 0;
  int kh = 0, kw = 0, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
};

// Whether the direct kernel can run this node for its current shapes and dtypes, filling in the shape fields
// of *g; the window fields (stride, leading pad, dilation) are the caller's, from the geometry it computed
// for cuDNN (the trailing pads only bound the output, whose size is given). It applies to a channels-last
// 2-D Convolution with groups == C == K (multiplier 1), matching float dtypes, C a whole number of 16-byte
// vectors, and an activation the epilogue knows. The addresses are checked apart (depthwise_conv_aligned):
// they may change from run to run, the shapes only with a new setup.
bool depthwise_conv_geometry(const KernelContext& ctx, DepthwiseGeometry* g);

// Whether x, y and the residual are 16-byte aligned, as the kernel's vector loads and stores need.
bool depthwise_conv_aligned(const KernelContext& ctx);

// Enqueues the convolution and its epilogue on ctx.stream(). Never synchronizes or allocates.
void enqueue_depthwise_conv(KernelContext& ctx, const DepthwiseGeometry& g);

}  // namespace kiln::cuda
