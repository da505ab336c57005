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
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class ChannelsLast : public Pass {
 public:
  std::string name() const override { return "channels-last"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
