#include "backends/cuda/conv_epilogue_inputs.h"

namespace kiln::cuda {

const char* conv_epilogue_inputs_refusal(const KernelContext& ctx, DataType dt, int64_t K) {
  if (ctx.has_input(2) && (ctx.in[2].dtype != dt || ctx.in[2].numel() != K)) return "bias not [K] of y's dtype";
  if (ctx.has_input(3) && (ctx.in[3].dtype != dt || ctx.out.empty() || ctx.in[3].shape != ctx.out[0].shape))
    return "residual not of y's shape and dtype";
  return nullptr;
}

}  // namespace kiln::cuda
