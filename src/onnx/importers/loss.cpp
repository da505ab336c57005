// Loss ops: NegativeLogLikelihoodLoss -> IR NLLLoss; SoftmaxCrossEntropyLoss -> SoftMax(axis 1, log) then
// NLLLoss, the log-softmax being the optional second output (log_prob). The decomposition is exact: ONNX
// defines SoftmaxCrossEntropyLoss as NegativeLogLikelihoodLoss of LogSoftmax over the class axis.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

ir::Attrs loss_attrs(ImportContext& ctx) {
  std::string red = ctx.attr_s("reduction", "mean");
  if (red != "none" && red != "sum" && red != "mean")
    ctx.fail(ParserErrorCode::kINVALID_NODE,
             ctx.op_type() + ": unknown reduction '" + red + "' (expected none, sum or mean)");
  ir::Attrs at;
  at.set("reduction", red);
  if (ctx.has_attr("ignore_index")) at.set("ignore_index", ctx.attr_i("ignore_index", 0));
  return at;
}

ir::Value* nll(ImportContext& ctx, ir::Value* log_prob) {
  ir::Value* target = ctx.required_input(1);
  if (ImportContext::rank(log_prob) < 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE,
             ctx.op_type() + ": input 0 must be [N, C, d1..dk] (rank >= 2), got " + dims_str(log_prob->shape));
  std::vector<ir::Value*> ins = {log_prob, target};
  if (ctx.has_input(2)) ins.push_back(ctx.input(2));
  return ctx.add1("NLLLoss", std::move(ins), loss_attrs(ctx));
}

Values import_nll_loss(ImportContext& ctx) { return {nll(ctx, ctx.required_input(0))}; }

Values import_softmax_cross_entropy(ImportContext& ctx) {
  ir::Value* scores = ctx.required_input(0);
  if (ImportContext::rank(scores) < 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "SoftmaxCrossEntropyLoss: scores must be [N, C, d1..dk] (rank >= 2), got " +
                                                 dims_str(scores->shape));
  ir::Attrs at;
  at.set("axis", int64_t{1});
  at.set("log", int64_t{1});
  ir::Value* log_prob = ctx.add1("SoftMax", {scores}, std::move(at));
  return {nll(ctx, log_prob), log_prob};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "NegativeLogLikelihoodLoss", import_nll_loss);
KILN_REGISTER_IMPORTER("", "SoftmaxCrossEntropyLoss", import_softmax_cross_entropy);

}  // namespace kiln::onnx
