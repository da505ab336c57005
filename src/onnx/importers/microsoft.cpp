// com.microsoft ops of ONNX Runtime's transformer optimizer (optimized Hugging Face exports), composed of
// IR ops so every backend runs them: the GELU family (Gelu, FastGelu, BiasGelu, QuickGelu), BiasAdd,
// FusedMatMul, and the fused normalizations SkipLayerNormalization, SkipSimplifiedLayerNormalization,
// SimplifiedLayerNormalization (registered in the default domain too, where ONNX Runtime puts it) and
// EmbedLayerNormalization. Attention-like ops are in microsoft_attention.cpp. Semantics follow ONNX
// Runtime's contrib op documentation and CPU kernels (the tests compare against them).
#include <string>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

enum Act : int64_t { kSigmoid = 1, kGeluErf = 12, kGeluTanh = 13 };

ir::Value* activation(ImportContext& ctx, ir::Value* x, int64_t type) {
  ir::Attrs at;
  at.set("type", type);
  at.set("alpha", 0.0);
  at.set("beta", 0.0);
  return ctx.add1("Activation", {x}, std::move(at));
}

// The statistics of these ops are computed in float32, as ONNX Runtime's kernels do.
void require_float(ImportContext& ctx, const ir::Value* x) {
  if (x->dtype != kiln::DataType::kFLOAT)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
             ctx.op_type() + ": input of type " + std::string(dtype_name(x->dtype)) + " is not supported (float32)");
}

ir::Value* reduce_last(ImportContext& ctx, ir::Value* x, int64_t op, const Ints& axes) {
  ir::Attrs at;
  at.set("op", op);
  at.set("axes", axes);
  at.set("keep_dims", int64_t{1});
  return ctx.add1("Reduce", {x}, std::move(at));
}

Ints axes_from(int64_t axis, int64_t rank) {
  Ints a;
  for (int64_t d = axis; d < rank; ++d) a.push_back(d);
  return a;
}

// LayerNorm over the last axis: Normalization(x, gamma, beta or 0).
ir::Value* layer_norm(ImportContext& ctx, ir::Value* x, ir::Value* gamma, ir::Value* beta, double eps) {
  if (!beta) beta = ctx.constant(HostTensor(gamma->dtype, gamma->shape));
  if (!dims_known(gamma->shape))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, ctx.op_type() + ": gamma needs a static shape");
  ir::Attrs at;
  at.set("axes", Ints{ImportContext::rank(x) - 1});
  at.set("epsilon", eps);
  at.set("num_groups", int64_t{1});
  return ctx.add1("Normalization", {x, gamma, beta}, std::move(at));
}

// 1 / sqrt(mean(x^2 over axes) + eps), dims of `axes` kept as 1.
ir::Value* inv_rms(ImportContext& ctx, ir::Value* x, const Ints& axes, double eps) {
  ir::Value* ms = reduce_last(ctx, ctx.elementwise(x, x, kProd), kRAvg, axes);
  return ctx.unary(ctx.unary(ctx.elementwise(ms, ctx.const_scalar(x->dtype, eps), kSum), kSqrt), kRecip);
}

// ---- GELU family, BiasAdd, FusedMatMul -----------------------------------------------------------------
Values import_gelu(ImportContext& ctx) { return {activation(ctx, ctx.required_input(0), kGeluErf)}; }

Values import_bias_gelu(ImportContext& ctx) {
  return {activation(ctx, ctx.elementwise(ctx.required_input(0), ctx.required_input(1), kSum), kGeluErf)};
}

// FastGelu is the tanh approximation, of x + bias when a bias is given.
Values import_fast_gelu(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ir::Value* b = ctx.input(1)) x = ctx.elementwise(x, b, kSum);
  return {activation(ctx, x, kGeluTanh)};
}

// QuickGelu: x * sigmoid(alpha * x).
Values import_quick_gelu(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  const double alpha = ctx.attr_f("alpha", 1.702f);
  ir::Value* ax = alpha == 1.0 ? x : ctx.elementwise(x, ctx.const_scalar(x->dtype, alpha), kProd);
  return {ctx.elementwise(x, activation(ctx, ax, kSigmoid), kProd)};
}

// BiasAdd: X + bias + skip.
Values import_bias_add(ImportContext& ctx) {
  ir::Value* x = ctx.elementwise(ctx.required_input(0), ctx.required_input(1), kSum);
  return {ctx.elementwise(x, ctx.required_input(2), kSum)};
}

// FusedMatMul: alpha * op(A) @ op(B), op = transpose of the last two dims when transA/transB.
Values import_fused_matmul(ImportContext& ctx) {
  if (ctx.attr_i("transBatchA", 0) || ctx.attr_i("transBatchB", 0))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "FusedMatMul: transBatchA/transBatchB are not supported");
  ir::Value* a = ctx.required_input(0);
  ir::Value* b = ctx.required_input(1);
  const bool ta = ctx.attr_i("transA", 0) != 0, tb = ctx.attr_i("transB", 0) != 0;
  if ((ta && ImportContext::rank(a) < 2) || (tb && ImportContext::rank(b) < 2))
    ctx.fail(ParserErrorCode::kINVALID_NODE, "FusedMatMul: a transposed operand must be at least 2-D");
  ir::Attrs at;
  at.set("op_a", int64_t{ta ? 1 : 0});
  at.set("op_b", int64_t{tb ? 1 : 0});
  ir::Value* y = ctx.add1("MatrixMultiply", {a, b}, std::move(at));
  const double alpha = ctx.attr_f("alpha", 1.0f);
  if (alpha != 1.0) y = ctx.elementwise(y, ctx.const_scalar(y->dtype, alpha), kProd);
  return {y};
}

// ---- fused normalizations ------------------------------------------------------------------------------
// input + skip (+ bias): the sum the Skip*Normalization ops normalize and may return (output 3).
ir::Value* skip_sum(ImportContext& ctx, ir::Value* x, size_t bias_input) {
  ir::Value* skip = ctx.required_input(1);
  if (ImportContext::rank(x) != 3)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": input must be 3-D [batch, sequence, hidden], got " +
                                                 dims_str(x->shape));
  ir::Value* s = ctx.elementwise(x, skip, kSum);
  if (ir::Value* b = ctx.input(bias_input)) s = ctx.elementwise(s, b, kSum);
  return s;
}

// SkipLayerNormalization: LayerNorm(input + skip + bias) * gamma + beta over the hidden axis; optional
// outputs mean, inv_std_var ([B, S, 1]) and the sum itself.
Values import_skip_layer_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  require_float(ctx, x);
  ir::Value* s = skip_sum(ctx, x, 4);
  const double eps = ctx.attr_f("epsilon", 1e-12f);
  Values outs{layer_norm(ctx, s, ctx.required_input(2), ctx.input(3), eps), nullptr, nullptr, s};
  if (ctx.output_used(1) || ctx.output_used(2)) {
    const Ints axes{2};
    ir::Value* mean = reduce_last(ctx, s, kRAvg, axes);
    ir::Value* d = ctx.elementwise(s, mean, kSub);
    ir::Value* var = reduce_last(ctx, ctx.elementwise(d, d, kProd), kRAvg, axes);
    outs[1] = mean;
    outs[2] = ctx.unary(ctx.unary(ctx.elementwise(var, ctx.const_scalar(s->dtype, eps), kSum), kSqrt), kRecip);
  }
  return outs;
}

// SkipSimplifiedLayerNormalization: RMSNorm(input + skip + bias) * gamma; optional inv_std_var and sum.
Values import_skip_simplified_layer_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  require_float(ctx, x);
  ir::Value* s = skip_sum(ctx, x, 3);
  ir::Value* inv = inv_rms(ctx, s, {2}, ctx.attr_f("epsilon", 1e-12f));
  ir::Value* y = ctx.elementwise(ctx.elementwise(s, inv, kProd), ctx.required_input(2), kProd);
  return {y, nullptr, inv, s};
}

// SimplifiedLayerNormalization: x / sqrt(mean(x^2 over [axis, rank)) + eps) * scale; optional inv_std_var.
Values import_simplified_layer_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  require_float(ctx, x);
  if (ctx.attr_i("stash_type", 1) != 1)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "SimplifiedLayerNormalization: only stash_type 1 (float32) is supported");
  const int64_t r = ImportContext::rank(x);
  ir::Value* inv = inv_rms(ctx, x, axes_from(ctx.axis(ctx.attr_i("axis", -1), r), r), ctx.attr_f("epsilon", 1e-5f));
  return {ctx.elementwise(ctx.elementwise(x, inv, kProd), ctx.required_input(1), kProd), inv};
}

// EmbedLayerNormalization: LayerNorm(word[input_ids] + position[position_ids or 0..S-1] + segment[segment_ids])
// with gamma/beta; mask_index = the number of mask entries per batch row (int32; zeros without a mask).
Values import_embed_layer_norm(ImportContext& ctx) {
  ir::Value* ids = ctx.required_input(0);
  ir::Value* seg_ids = ctx.input(1);
  ir::Value* word = ctx.required_input(2);
  ir::Value* pos = ctx.required_input(3);
  ir::Value* seg = ctx.input(4);
  ir::Value* gamma = ctx.required_input(5);
  ir::Value* beta = ctx.required_input(6);
  ir::Value* mask = ctx.input(7);
  ir::Value* pos_ids = ctx.input(8);
  require_float(ctx, word);
  if (ImportContext::rank(ids) != 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "EmbedLayerNormalization: input_ids must be [batch, sequence], got " +
                                                 dims_str(ids->shape));
  if ((seg_ids == nullptr) != (seg == nullptr))
    ctx.fail(ParserErrorCode::kINVALID_NODE,
             "EmbedLayerNormalization: segment_ids and segment_embedding must be given together");
  auto gather = [&](ir::Value* table, ir::Value* idx) {
    ir::Attrs at;
    at.set("axis", int64_t{0});
    at.set("mode", int64_t{0});
    return ctx.add1("Gather", {table, idx}, std::move(at));
  };
  ir::Value* sum = gather(word, ids);  // [B, S, H]
  ir::Value* p;
  if (pos_ids) {
    p = gather(pos, pos_ids);  // [B, S, H] or [1, S, H]
  } else {
    const int64_t s = ids->shape[1];
    if (s < 0) {
      ir::Attrs at;
      at.set("axis", int64_t{0});
      at.set("mode", int64_t{0});
      ir::Value* len = ctx.add1("Gather", {ctx.shape_of(ids), ctx.const_i64_scalar(1)}, std::move(at));
      p = gather(pos, ctx.add1("Range", {ctx.const_i64_scalar(0), len, ctx.const_i64_scalar(1)}));
    } else {
      Ints r(static_cast<size_t>(s));
      for (int64_t i = 0; i < s; ++i) r[i] = i;
      p = gather(pos, ctx.const_i64(r));  // [S, H] broadcasts over the batch
    }
  }
  sum = ctx.elementwise(sum, p, kSum);
  if (seg) sum = ctx.elementwise(sum, gather(seg, seg_ids), kSum);
  ir::Value* y = layer_norm(ctx, sum, gamma, beta, ctx.attr_f("epsilon", 1e-12f));
  ir::Value* mask_index = nullptr;
  if (ctx.output_used(1)) {
    if (mask) {
      ir::Value* m = mask->dtype == kiln::DataType::kINT32 ? mask : ctx.cast(mask, kiln::DataType::kINT32);
      ir::Attrs at;
      at.set("op", int64_t{kRSum});
      at.set("axes", Ints{1});
      at.set("keep_dims", int64_t{0});
      mask_index = ctx.add1("Reduce", {m}, std::move(at));
    } else {
      ir::Attrs at;
      at.set("value", HostTensor(kiln::DataType::kINT32, {1}));
      mask_index = ctx.add1("ConstantOfShape", {ctx.dims_slice(ids, 0, 1)}, std::move(at));
    }
  }
  return {y, mask_index, sum};
}

}  // namespace

KILN_REGISTER_IMPORTER("com.microsoft", "Gelu", import_gelu);
KILN_REGISTER_IMPORTER("com.microsoft", "BiasGelu", import_bias_gelu);
KILN_REGISTER_IMPORTER("com.microsoft", "FastGelu", import_fast_gelu);
KILN_REGISTER_IMPORTER("com.microsoft", "QuickGelu", import_quick_gelu);
KILN_REGISTER_IMPORTER("com.microsoft", "BiasAdd", import_bias_add);
KILN_REGISTER_IMPORTER("com.microsoft", "FusedMatMul", import_fused_matmul);
KILN_REGISTER_IMPORTER("com.microsoft", "SkipLayerNormalization", import_skip_layer_norm);
KILN_REGISTER_IMPORTER("com.microsoft", "SkipSimplifiedLayerNormalization", import_skip_simplified_layer_norm);
KILN_REGISTER_IMPORTER("com.microsoft", "SimplifiedLayerNormalization", import_simplified_layer_norm);
KILN_REGISTER_IMPORTER("", "SimplifiedLayerNormalization", import_simplified_layer_norm);
KILN_REGISTER_IMPORTER("com.microsoft", "EmbedLayerNormalization", import_embed_layer_norm);

}  // namespace kiln::onnx
