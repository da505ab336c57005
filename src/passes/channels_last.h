// Layout planning for the GPU: 2-D convolutions run channels-last (NHWC), where cuDNN's tensor-core
// kernels are fastest, and the layout changes only at the edges of convolution regions.
//
// Each 4-D Convolution with constant weights becomes transpose(NCHW->NHWC) -> Convolution(channels_last)
// -> transpose(NHWC->NCHW), its weights stored [K, kh, kw, C/g]. The NHWC->NCHW transposes are then
// pushed down through layout-agnostic consumers (activations, unary ops, casts, element-wise ops whose
// other operands are channels-last too or constants, Select, Scale, channel Concatenation, global
// pooling) and through 2-D Pooling, which becomes channels-last itself (attr channels_last, like the
// convolutions); a transpose that meets its inverse cancels. What is left are the transposes where the
// network's layout really changes: at its inputs and outputs and around ops without a channels-last form.
// The logical shapes the user sees never change: only values inside a region are stored NHWC.
//
// stem_space_to_depth (on for float16/bfloat16 engines; KILN_STEM_SPACE_TO_DEPTH=0 turns it off): a
// convolution with stride s >= 2 (both axes), a window larger than the stride on both axes, groups 1,
// dilation 1, constant weights, a static C, H, W and C*s*s <= 16 (ResNet's 7x7/2 and MobileNet's or
// EfficientNet's 3x3/2 stem on RGB) runs as a stride-1 convolution of kernel ceil(k/s) on the input's space-to-depth form: one SpaceToDepthNhwc op reads
// the NCHW input and writes [N, T_h, T_w, C*s*s rounded up to 8] NHWC, spatially zero-padded (the
// convolution's padding) and channel-padded, in place of the NCHW->NHWC transpose (0.055 ms at batch 128);
// the weights are rearranged to match at build time (plan_space_to_depth in the .cpp derives it). Zero taps
// in front of the kernel round the begin padding up to a multiple of s where that adds no stride-1 tap
// (ResNet's padding 3 becomes 4), so the op's kernel reads each block row as one aligned s-element vector. The
// convolution then reads 16 channels, so cuDNN's tensor-core kernels apply at 4x4x16 = 256 multiply-adds an
// output against 7x7x3 = 147; a 3x3/2 stem becomes 2x2x16 = 64 against 27, more arithmetic but on tensor
// cores, where the 3-channel strided window ran at under 1 TB/s (MobileNetV2's, 0.168 ms at batch 128,
// ninth session). It keeps the layer's name and epilogue. (Padding the stem's NHWC input to 8
// channels with a Pad of its own was measured before and lost: the padded 7x7/2 convolution took 0.624 ms,
// 392 multiply-adds an output, and the Pad 0.263 ms; bench/NOTES.md, sixth session.)
#pragma once
#include <cstdint>

#include "passes/pass.h"

namespace kiln::passes {

class ChannelsLast : public Pass {
 public:
  // align_stem_padding: round the stem's begin padding up to its stride where that adds no tap (the .cpp's
  // aligning_shift); off, the op keeps the convolution's padding.
  explicit ChannelsLast(bool stem_space_to_depth = false, bool align_stem_padding = true)
      : stem_space_to_depth_(stem_space_to_depth), align_stem_padding_(align_stem_padding) {}
  std::string name() const override { return "channels-last"; }
  bool run(ir::Graph& g) override;

 private:
  bool stem_space_to_depth_;
  bool align_stem_padding_;
};

}  // namespace kiln::passes
