// The fused epilogue of Convolution and MatrixMultiply (ir/OPS.md): y = act(op(...) + bias + residual).
// Shared by their shape inference: the `activation` attribute (an ActivationType, absent or -1 = none, with
// `act_alpha` / `act_beta`) and the optional residual input (the output's dtype and shape).
#pragma once
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {

// ActivationType codes the Activation op knows (TensorRT's 0..13, Kiln's 64..68).
inline bool known_activation_type(int64_t t) { return (t >= 0 && t <= 13) || (t >= 64 && t <= 68); }

// The node's fused activation: -1 when none.
inline int64_t fused_activation(const Attrs& a) { return a.i("activation", -1); }

// Checks the fused activation attribute and the residual (input `residual_index`) against the output.
inline void check_fused_epilogue(const InferContext& ctx, size_t residual_index, DataType out_dtype, const Dims& out) {
  const int64_t act = fused_activation(ctx.attrs());
  if (act != -1) {
    if (!known_activation_type(act))
      ctx.fail("unknown fused activation " + std::to_string(act) + " (expected an ActivationType, or -1 for none)");
    if (out_dtype != DataType::kFLOAT && out_dtype != DataType::kHALF && out_dtype != DataType::kBF16 &&
        out_dtype != DataType::kDOUBLE)
      ctx.fail(std::string("a fused activation needs a float output, got ") + dtype_name(out_dtype));
  }
  if (!ctx.has_input(residual_index)) return;
  const TensorInfo& r = ctx.in(residual_index);
  if (r.dtype != out_dtype)
    ctx.fail("the residual (input " + std::to_string(residual_index) + ") is " + dtype_name(r.dtype) +
             ", expected the output's " + dtype_name(out_dtype));
  bool ok = r.shape.size() == out.size();
  for (size_t i = 0; ok && i < out.size(); ++i) ok = r.shape[i] < 0 || out[i] < 0 || r.shape[i] == out[i];
  if (!ok)
    ctx.fail("the residual (input " + std::to_string(residual_index) + ") has shape " + dims_str(r.shape) +
             ", expected the output's shape " + dims_str(out));
}

}  // namespace kiln::ir
