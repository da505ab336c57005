#include "backends/cuda/conv_epilogue_inputs.h"

namespace kiln::cuda {

const char* conv_epilogue_inputs_refusal(const KernelContext& ctx, DataType dt, int64_t K) {
  if (ctx.has_input(2) && (ctx.in[2].dtype != dt || ctx.in[2].numel() != K)) return "bias not [K] of y's dtype";
  if (ctx.has_input(3) && (ctx.in[3].dtype != dt || ctx.out.empty() || ctx.in[3].shape != ctx.out[0].shape))
    return "residual not of y's shape and dtype";
  return nullptr;
}

const char* half_channels_last_conv_refusal(const KernelContext& ctx) {
  const ir::Node& n = ctx.node;
  if (n.op != "Convolution" || n.attrs.i("channels_last", 0) == 0) return "not channels-last";
  if (n.attrs.i("groups", 1) != 1) return "grouped";
  if (ctx.in.size() < 2 || !ctx.in[0].present || !ctx.in[1].present || ctx.out.size() != 1) return "no x and w";
  const TensorRef &x = ctx.in[0], &w = ctx.in[1], &y = ctx.out[0];
  const DataType dt = x.dtype;
  if (dt != DataType::kHALF && dt != DataType::kBF16) return "not float16 or bfloat16";
  if (w.dtype != dt || y.dtype != dt) return "mixed dtypes";
  if (x.shape.size() != 4 || w.shape.size() != 4 || y.shape.size() != 4) return "not 2-D";
  return nullptr;
}

ConvTensors conv_tensors(const KernelContext& ctx) {
  return ConvTensors{ctx.in[0].data, ctx.in[1].data, ctx.has_input(2) ? ctx.in[2].data : nullptr,
                     ctx.has_input(3) ? ctx.in[3].data : nullptr, ctx.out[0].data};
}

bool conv_tensors_aligned(const KernelContext& ctx, int bias_bytes) {
  return conv_tensors_aligned(conv_tensors(ctx), bias_bytes);
}

bool conv_tensors_aligned(const ConvTensors& t, int bias_bytes) {
  return aligned_to(t.x, 16) && aligned_to(t.w, 16) && aligned_to(t.y, 16) && (!t.bias || aligned_to(t.bias, bias_bytes)) &&
         (!t.residual || aligned_to(t.residual, 16));
}

}  // namespace kiln::cuda
