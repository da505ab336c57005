// ONNX Attention (opset 23/24) composed of MatrixMultiply, SoftMax, ElementWise, Activation, Shuffle,
// Expand, Pad, Select, Reduce and Concatenation:
//   3-D inputs [B, S, heads*D] are split into heads ([B, heads, S, D]); past_key/past_value are
//   concatenated in front of K/V (the present outputs); K/V heads are repeated for grouped-query
//   attention; scores = (Q @ K^T) * scale, softcap*tanh(scores/softcap) when softcap > 0, plus the
//   attention bias (attn_mask: bool -> 0 / -inf, float additive, padded with -inf to the key length;
//   is_causal: key j visible to query i when j <= i + past length); softmax over keys (rows whose bias is
//   all -inf give 0); Y = P @ V (back to [B, S, heads*Dv] for 3-D inputs).
#include <cmath>
#include <limits>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

ir::Value* matmul(ImportContext& ctx, ir::Value* a, ir::Value* b, bool transpose_b) {
  ir::Attrs at;
  at.set("op_a", int64_t{0});
  at.set("op_b", transpose_b ? int64_t{1} : int64_t{0});
  return ctx.add1("MatrixMultiply", {a, b}, std::move(at));
}

// [B, S, heads*D] -> [B, heads, S, D].
ir::Value* split_heads(ImportContext& ctx, ir::Value* x, int64_t heads, const char* what) {
  int64_t hidden = x->shape[2];
  if (hidden < 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, std::string("Attention: ") + what + " needs a static hidden size");
  if (heads <= 0 || hidden % heads != 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE, std::string("Attention: ") + what + " hidden size " + std::to_string(hidden) +
                                                 " does not split into " + std::to_string(heads) + " heads");
  return ctx.transpose(ctx.reshape(x, {0, 0, heads, hidden / heads}, true), {0, 2, 1, 3});
}

// A [S, L] bias: 0 where key j is visible to query i (j <= i + offset), -inf elsewhere.
ir::Value* causal_bias(ImportContext& ctx, kiln::DataType dt, int64_t s, int64_t l, int64_t offset) {
  HostTensor t(kiln::DataType::kFLOAT, {s, l});
  float* p = t.mutable_data<float>();
  for (int64_t i = 0; i < s; ++i)
    for (int64_t j = 0; j < l; ++j) p[i * l + j] = j <= i + offset ? 0.0f : -std::numeric_limits<float>::infinity();
  ir::Value* c = ctx.constant(std::move(t));
  return dt == kiln::DataType::kFLOAT ? c : ctx.cast(c, dt);
}

Values import_attention(ImportContext& ctx) {
  ir::Value* q = ctx.required_input(0);
  ir::Value* k = ctx.required_input(1);
  ir::Value* v = ctx.required_input(2);
  ir::Value* mask = ctx.input(3);
  ir::Value* past_k = ctx.input(4);
  ir::Value* past_v = ctx.input(5);
  if (ctx.input(6))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "Attention: input 6 (nonpad_kv_seqlen) is not supported");
  if ((past_k == nullptr) != (past_v == nullptr))
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: past_key and past_value must be given together");
  const int64_t mode = ctx.attr_i("qk_matmul_output_mode", 0);
  if (mode != 0 && mode != 3)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
             "Attention: qk_matmul_output_mode " + std::to_string(mode) + " is not supported (0 and 3 are)");
  if (ctx.attr_i("left_window_size", -1) >= 0 || ctx.attr_i("right_window_size", -1) >= 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Attention: sliding windows are not supported");
  if (q->dtype != kiln::DataType::kFLOAT && q->dtype != kiln::DataType::kDOUBLE)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, std::string("Attention: inputs of type ") + dtype_name(q->dtype) +
                                                     " are not supported (float32, double)");
  if (ctx.has_attr("softmax_precision")) {
    const int64_t sp = ctx.attr_i("softmax_precision", 1);
    const bool same = (sp == 1 && q->dtype == kiln::DataType::kFLOAT) || (sp == 11 && q->dtype == kiln::DataType::kDOUBLE);
    if (!same)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
               "Attention: softmax_precision " + std::to_string(sp) + " differs from the input type (not supported)");
  }
  const int64_t r = ImportContext::rank(q);
  if (r != 3 && r != 4)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: Q must be 3-D or 4-D, got " + dims_str(q->shape));
  if (ImportContext::rank(k) != r || ImportContext::rank(v) != r)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: Q, K and V must have the same rank");
  if (r == 3) {
    int64_t qh = ctx.req_attr_i("q_num_heads"), kvh = ctx.req_attr_i("kv_num_heads");
    q = split_heads(ctx, q, qh, "Q");
    k = split_heads(ctx, k, kvh, "K");
    v = split_heads(ctx, v, kvh, "V");
  }
  if (past_k) {
    k = ctx.concat({past_k, k}, 2);
    v = ctx.concat({past_v, v}, 2);
  }
  ir::Value* present_k = k;
  ir::Value* present_v = v;
  const int64_t qh = q->shape[1], kvh = k->shape[1], d = q->shape[3];
  const int64_t s = q->shape[2], l = k->shape[2];
  if (qh < 0 || kvh < 0 || d < 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "Attention needs static head counts and head size, got Q " +
                                                             dims_str(q->shape) + ", K " + dims_str(k->shape));
  if (v->shape[1] != kvh || qh % kvh != 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: " + std::to_string(qh) + " query heads do not group over " +
                                                 std::to_string(kvh) + " key/value heads");
  if (qh != kvh) {  // repeat each K/V head qh/kvh times: [h0, h0, h1, h1, ...]
    const int64_t rep = qh / kvh;
    auto repeat = [&](ir::Value* x) {
      const int64_t hd = x->shape[3];
      if (hd < 0) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "Attention: grouped heads need a static head size");
      ir::Value* wide = ctx.add1("Expand", {ctx.unsqueeze(x, {2}), ctx.const_i64({1, 1, rep, 1, 1})});
      return ctx.reshape(wide, {0, qh, -1, hd}, true);
    };
    k = repeat(k);
    v = repeat(v);
  }
  const kiln::DataType dt = q->dtype;
  const double scale = ctx.has_attr("scale") ? static_cast<double>(ctx.attr_f("scale", 1.0f)) : 1.0 / std::sqrt(double(d));
  ir::Value* qk = ctx.elementwise(matmul(ctx, q, k, true), ctx.const_scalar(dt, scale), kProd);
  const double softcap = ctx.attr_f("softcap", 0.0f);
  if (softcap > 0) {
    ir::Attrs at;
    at.set("type", int64_t{10});  // SCALED_TANH: alpha * tanh(beta * x)
    at.set("alpha", softcap);
    at.set("beta", 1.0 / softcap);
    qk = ctx.add1("Activation", {qk}, std::move(at));
  }
  ir::Value* qk_out = qk;
  // The additive bias (nullptr: none).
  ir::Value* bias = nullptr;
  const double ninf = -std::numeric_limits<double>::infinity();
  if (mask) {
    if (mask->dtype == kiln::DataType::kBOOL) {
      mask = ctx.add1("Select", {mask, ctx.const_scalar(dt, 0.0), ctx.const_scalar(dt, ninf)});
    } else if (mask->dtype != dt) {
      ctx.fail(ParserErrorCode::kINVALID_NODE, std::string("Attention: attn_mask must be bool or ") + dtype_name(dt) +
                                                   ", got " + dtype_name(mask->dtype));
    }
    const int64_t ml = mask->shape.empty() ? -1 : mask->shape.back();
    if (ml < 0 || l < 0) {
      if (ml != l)
        ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "Attention: attn_mask and key lengths must be static");
    } else if (ml < l) {  // pad the key axis with -inf
      const int64_t mr = ImportContext::rank(mask);
      Ints pads(static_cast<size_t>(2 * mr), 0);
      pads[static_cast<size_t>(2 * mr - 1)] = l - ml;
      ir::Attrs at;
      at.set("pads", pads);
      at.set("mode", std::string("constant"));
      at.set("value", ninf);
      mask = ctx.add1("Pad", {mask}, std::move(at));
    } else if (ml > l) {
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: attn_mask is longer (" + std::to_string(ml) +
                                                   ") than the key sequence (" + std::to_string(l) + ")");
    }
    bias = mask;
  }
  if (ctx.attr_i("is_causal", 0)) {
    if (s < 0 || l < 0)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "Attention: is_causal needs static sequence lengths");
    const int64_t offset = past_k ? past_k->shape[2] : 0;
    if (offset < 0) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "Attention: is_causal needs a static past length");
    ir::Value* c = causal_bias(ctx, dt, s, l, offset);
    bias = bias ? ctx.elementwise(bias, c, kSum) : c;
  }
  ir::Value* logits = bias ? ctx.elementwise(qk, bias, kSum) : qk;
  ir::Attrs sm;
  sm.set("axis", int64_t{-1});
  sm.set("log", int64_t{0});
  ir::Value* p = ctx.add1("SoftMax", {logits}, std::move(sm));
  if (bias) {  // rows with no visible key give 0 (the bias decides, as ONNX's reference does)
    ir::Attrs at;
    at.set("op", int64_t{kRMax});
    at.set("axes", Ints{-1});
    at.set("keep_dims", int64_t{1});
    ir::Value* row_max = ctx.add1("Reduce", {bias}, std::move(at));
    ir::Value* dead = ctx.elementwise(row_max, ctx.const_scalar(dt, ninf), kEqual);
    p = ctx.add1("Select", {dead, ctx.const_scalar(dt, 0.0), p});
  }
  if (mode == 3) qk_out = p;
  ir::Value* y = matmul(ctx, p, v, false);
  if (r == 3) y = ctx.reshape(ctx.transpose(y, {0, 2, 1, 3}), {0, 0, -1}, true);
  return {y, present_k, present_v, qk_out};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "Attention", import_attention);

}  // namespace kiln::onnx
