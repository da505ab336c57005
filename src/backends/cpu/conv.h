// Convolution for the CPU backend (float32, NCHW / NC<spatial...>), built on sgemm.
//  - 1x1, stride 1, no padding: one GEMM per image and group, no im2col.
//  - depthwise (one input channel per group, e.g. groups == C == K): direct loops vectorized over the
//    output width.
//  - everything else: im2col into a bounded per-thread buffer, tiled over output rows, then sgemm.
// Parameters are computed by the caller; inconsistent ones throw std::invalid_argument.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/thread_pool.h"

namespace kiln::cpu {

struct Conv2dParams {
  int64_t N, C, H, W;  // input NCHW
  int64_t K;           // output channels
  int64_t R, S;        // kernel h, w
  int64_t stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w, groups;
  int64_t P, Q;  // output h, w (caller computes)
};

// y[N,K,P,Q] = conv(x[N,C,H,W], w[K, C/groups, R, S]) + bias[K] (bias may be null).
void conv2d_nchw(const Conv2dParams&, const float* x, const float* w, const float* bias, float* y, ThreadPool*);

// General N-d (0-d to 3-d and beyond) spatial convolution: x[N,C,in...], w[K, C/groups, kernel...] ->
// y[N,K,out...]. All vectors have one entry per spatial dim.
struct ConvNdParams {
  int64_t N, C, K, groups;
  std::vector<int64_t> in_spatial, kernel, stride, pad_begin, pad_end, dilation, out_spatial;
};
void conv_nd_nchw(const ConvNdParams&, const float* x, const float* w, const float* bias, float* y, ThreadPool*);

// Transposed convolution (deconvolution): x[N,C,in...], w[C, K/groups, kernel...] -> y[N,K,out...],
// out = (in-1)*stride - pad_begin - pad_end + dilation*(kernel-1) + 1 + output_padding (caller computes
// out_spatial; output positions that no input reaches hold the bias).
void conv_transpose_nd_nchw(const ConvNdParams&, const float* x, const float* w, const float* bias, float* y,
                            ThreadPool*);

}  // namespace kiln::cpu
