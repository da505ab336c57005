// QuantizeLinear / DequantizeLinear as the pointwise layers every GPU kernel set has, so quantize-dequantize
// (QDQ) networks run on the GPU without CPU fallbacks (the CUDA backend has no quantization kernels):
//   DequantizeLinear: y = (float(x) - float(zero_point)) * scale
//   QuantizeLinear:   y = int(clip(round_half_even(x / scale) + float(zero_point), qmin, qmax))
// for int8/uint8 data, float32 scales, per-tensor or per-axis (the scale and zero point reshaped to broadcast
// along the axis), exactly the ops' float32 definitions (ir/OPS.md). Blocked scales, other data types and
// float8/int4 keep the original layer. Weights' dequantization folds to constants before this runs.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class LowerQuantization : public Pass {
 public:
  std::string name() const override { return "lower-quantization"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
