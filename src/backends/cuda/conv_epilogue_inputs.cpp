#include "backends/cuda/conv_epilogue_inputs.h"

namespace kiln::cuda {

const char* conv_epilogue_inputs_refusal(const KernelContext& ctx, DataType dt, int64_t K) {
  if (ctx.has_input(2) && (ctx.in[2].dtype != dt || ctx.in[2].numel() != K)) return "bias not [K] of y's dtype";
  if (ctx.has_input(3) && (ctx.in[3].dtype != dt || ctx.out.empty() || ctx.in[3].shape != ctx.out[0].shape))
    return "residual not of y's shape and dtype";
  return nullptr;
}

ConvTensors conv_tensors(const KernelContext& ctx) {
  return ConvTensors{ctx.in[0].data, ctx.in[1].data, ctx.has_input(2) ? ctx.in[2].data : nullptr,
                     ctx.has_input(3) ? ctx.in[3].data : nullptr, ctx.out[0].data};
}

bool conv_tensors_aligned(const KernelContext& ctx, int bias_bytes) {
  const ConvTensors t = conv_tensors(ctx);
  return aligned_to(t.x, 16) && aligned_to(t.w, 16) && aligned_to(t.y, 16) && (!t.bias || aligned_to(t.bias, bias_bytes)) &&
         (!t.residual || aligned_to(t.residual, 16));
}

}  // namespace kiln::cuda
