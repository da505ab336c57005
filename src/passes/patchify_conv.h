// Patch-embedding convolutions as one GEMM. A 2-D convolution whose kernel equals its stride, with no
// padding, no dilation and one group (ViT's and Swin's patch embedding: 16x16 / 4x4 stride 16 / 4) reads
// every input pixel exactly once: it is a matrix product of the image cut into patches, [N*OH*OW, C*kh*kw],
// with the weights [K, C*kh*kw] transposed. Cutting into patches is one transpose (a Shuffle), so the
// convolution becomes Shuffle -> MatrixMultiply (bias and activation kept in its fused epilogue) -> Shuffle
// back to [N, K, OH, OW]. cuDNN ran ViT-B/16's patch embedding at 25 TFLOP/s on an H200 at batch 128
// (1.2 ms, 5% of the model); as a cuBLASLt GEMM it is ~30 GFLOP at several hundred TFLOP/s plus two
// copies of ~40-80 MB.
//
// Applies to float convolutions with the input's C, H, W known at build time (N may be dynamic), H and W
// whole multiples of the kernel, weights constant, and no fused residual (its layout is the convolution's,
// not the GEMM's). Others keep their convolution.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class PatchifyConvolution : public Pass {
 public:
  std::string name() const override { return "patchify-convolution"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
