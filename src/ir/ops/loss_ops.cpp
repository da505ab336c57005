// Shape/type inference for the loss ops: NLLLoss (ONNX NegativeLogLikelihoodLoss; SoftmaxCrossEntropyLoss
// imports as SoftMax(log) followed by NLLLoss). Semantics in ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

// Inputs: log-probabilities x [N, C, d1..dk], target [N, d1..dk] (int32/int64), optional weight [C].
// Output: the per-element losses (target's shape) for reduction "none", else a scalar.
void infer_nll_loss(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& t = ctx.in(1);
  if (x.dtype != DataType::kFLOAT && x.dtype != DataType::kDOUBLE)
    ctx.fail(std::string("input 0 must be float32 or float64, got ") + dtype_name(x.dtype));
  if (t.dtype != DataType::kINT32 && t.dtype != DataType::kINT64)
    ctx.fail(std::string("the target (input 1) must be int32 or int64, got ") + dtype_name(t.dtype));
  if (x.shape.size() < 2) ctx.fail("input 0 must be [N, C, d1..dk] (rank >= 2), got " + dims_str(x.shape));
  if (t.shape.size() + 1 != x.shape.size())
    ctx.fail("the target " + dims_str(t.shape) + " must be the input " + dims_str(x.shape) + " without dim 1");
  auto same = [](int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; };
  for (size_t d = 0; d < t.shape.size(); ++d) {
    int64_t xd = x.shape[d == 0 ? 0 : d + 1];
    if (!same(t.shape[d], xd))
      ctx.fail("the target " + dims_str(t.shape) + " must be the input " + dims_str(x.shape) + " without dim 1");
  }
  if (ctx.has_input(2)) {
    const TensorInfo& w = ctx.in(2);
    if (w.dtype != x.dtype)
      ctx.fail(std::string("the weight (input 2) must have input 0's dtype ") + dtype_name(x.dtype) + ", got " +
               dtype_name(w.dtype));
    if (w.shape.size() != 1 || !same(w.shape[0], x.shape[1]))
      ctx.fail("the weight (input 2) must be [C] = [" + std::to_string(x.shape[1]) + "], got " + dims_str(w.shape));
  }
  std::string red = ctx.attrs().s("reduction", "mean");
  if (red == "none") ctx.set_out(0, x.dtype, t.shape);
  else if (red == "sum" || red == "mean") ctx.set_out(0, x.dtype, {});
  else ctx.fail("unknown reduction '" + red + "' (expected none, sum or mean)");
}

}  // namespace

KILN_REGISTER_OP(OpDef{"NLLLoss", 2, 3, 1, &infer_nll_loss});

}  // namespace kiln::ir
