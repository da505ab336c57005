// Two ai.onnx.ml ops that are plain tensor ops:
//   Binarizer(x)                 = x > threshold ? 1 : 0, in x's dtype
//   ArrayFeatureExtractor(x, i)  = x[..., flatten(i)] (a 1-D x is read as one row: the output is [1, n]),
//                                  as ONNX Runtime and the ONNX reference define it.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;

Values import_binarizer(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* above = ctx.elementwise(x, ctx.const_scalar(x->dtype, ctx.attr_f("threshold", 0.0f)), kGreater);
  return {ctx.cast(above, x->dtype)};
}

Values import_array_feature_extractor(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* idx = ctx.required_input(1);
  if (ImportContext::rank(x) == 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "ArrayFeatureExtractor: the input must have rank >= 1");
  if (ImportContext::rank(x) == 1) x = ctx.reshape(x, {1, -1});
  if (ImportContext::rank(idx) != 1) idx = ctx.reshape(idx, {-1});
  ir::Attrs at;
  at.set("axis", int64_t{-1});
  return {ctx.add1("Gather", {x, idx}, std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("ai.onnx.ml", "Binarizer", import_binarizer);
KILN_REGISTER_IMPORTER("ai.onnx.ml", "ArrayFeatureExtractor", import_array_feature_extractor);

}  // namespace kiln::onnx
