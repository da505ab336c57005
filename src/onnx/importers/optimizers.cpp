// The training optimizers of the ai.onnx.preview.training domain, Adagrad, Momentum (standard and
// Nesterov) and Adam, decomposed into IR ElementWise / Unary / Select ops. Each takes a learning rate R and
// an iteration count T (scalars), then n tensors X, n gradients G and n (Adagrad, Momentum) or 2n (Adam)
// state tensors, and returns the n updated X, then the updated states. The formulas are ONNX's:
//   Adagrad:  r = R / (1 + T*decay); G' = norm*X + G; H' = H + G'^2; X' = X - r * G' / (sqrt(H') + eps)
//   Momentum: G' = norm*X + G; b = T > 0 ? beta : 1; V' = alpha*V + b*G';
//             X' = X - R*V' (standard) or X - R*(G' + alpha*V') (nesterov)
//   Adam:     G' = norm*X + G; V' = alpha*V + (1-alpha)*G'; H' = beta*H + (1-beta)*G'^2;
//             r = T > 0 ? R * sqrt(1 - beta^T) / (1 - alpha^T) : R; X' = (1 - norm_post) * (X - r * V' / (sqrt(H') + eps))
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;

struct Opt {
  ImportContext& ctx;
  kiln::DataType dt;
  ir::Value* c(double v) { return ctx.const_scalar(dt, v); }
  ir::Value* add(ir::Value* a, ir::Value* b) { return ctx.elementwise(a, b, kSum); }
  ir::Value* sub(ir::Value* a, ir::Value* b) { return ctx.elementwise(a, b, kSub); }
  ir::Value* mul(ir::Value* a, ir::Value* b) { return ctx.elementwise(a, b, kProd); }
  ir::Value* div(ir::Value* a, ir::Value* b) { return ctx.elementwise(a, b, kDiv); }
  ir::Value* scalar_input(size_t i) {  // R or T as a scalar of the update dtype
    ir::Value* v = ctx.required_input(i);
    if (volume(v->shape) != 1)
      ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": input " + std::to_string(i) + " must be a scalar, got " +
                                                   dims_str(v->shape));
    v = ctx.reshape(v, {});
    return v->dtype == dt ? v : ctx.cast(v, dt);
  }
  ir::Value* positive_t() {  // T > 0, as bool
    ir::Value* t = ctx.reshape(ctx.required_input(1), {});
    return ctx.elementwise(t, ctx.const_scalar(t->dtype, 0), kGreater);
  }
  ir::Value* select(ir::Value* cond, ir::Value* a, ir::Value* b) { return ctx.add1("Select", {cond, a, b}); }
  ir::Value* regularized(ir::Value* x, ir::Value* g, float norm) { return norm == 0.0f ? g : add(mul(c(norm), x), g); }
};

// n = the number of optimized tensors, given `groups` tensor inputs per tensor after R and T.
size_t tensor_count(ImportContext& ctx, size_t groups) {
  const size_t n = ctx.num_inputs() >= 2 ? (ctx.num_inputs() - 2) / groups : 0;
  if (n == 0 || ctx.num_inputs() != 2 + groups * n)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": expected R, T and " + std::to_string(groups) +
                                                 " groups of n tensors, got " + std::to_string(ctx.num_inputs()) + " inputs");
  return n;
}

Opt make_opt(ImportContext& ctx) {
  kiln::DataType dt = ctx.required_input(2)->dtype;
  if (dt != kiln::DataType::kFLOAT && dt != kiln::DataType::kDOUBLE)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, ctx.op_type() + ": the tensors must be float or double");
  return Opt{ctx, dt};
}

Values import_adagrad(ImportContext& ctx) {
  const size_t n = tensor_count(ctx, 3);
  Opt o = make_opt(ctx);
  const float decay = ctx.attr_f("decay_factor", 0.0f), eps = ctx.attr_f("epsilon", 1e-6f);
  const float norm = ctx.attr_f("norm_coefficient", 0.0f);
  ir::Value* r = o.div(o.scalar_input(0), o.add(o.c(1.0), o.mul(o.scalar_input(1), o.c(decay))));
  Values xs, hs;
  for (size_t i = 0; i < n; ++i) {
    ir::Value* x = ctx.required_input(2 + i);
    ir::Value* g = o.regularized(x, ctx.required_input(2 + n + i), norm);
    ir::Value* h = o.add(ctx.required_input(2 + 2 * n + i), o.mul(g, g));
    ir::Value* denom = o.add(ctx.unary(h, kSqrt), o.c(eps));
    xs.push_back(o.sub(x, o.div(o.mul(r, g), denom)));
    hs.push_back(h);
  }
  xs.insert(xs.end(), hs.begin(), hs.end());
  return xs;
}

Values import_momentum(ImportContext& ctx) {
  const size_t n = tensor_count(ctx, 3);
  Opt o = make_opt(ctx);
  const float alpha = ctx.attr_f("alpha", 0.0f), beta = ctx.attr_f("beta", 0.0f);
  const float norm = ctx.attr_f("norm_coefficient", 0.0f);
  const std::string mode = ctx.attr_s("mode", "standard");
  if (mode != "standard" && mode != "nesterov")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Momentum: unknown mode '" + mode + "' (expected standard or nesterov)");
  ir::Value* r = o.scalar_input(0);
  ir::Value* b = o.select(o.positive_t(), o.c(beta), o.c(1.0));
  Values xs, vs;
  for (size_t i = 0; i < n; ++i) {
    ir::Value* x = ctx.required_input(2 + i);
    ir::Value* g = o.regularized(x, ctx.required_input(2 + n + i), norm);
    ir::Value* v = o.add(o.mul(o.c(alpha), ctx.required_input(2 + 2 * n + i)), o.mul(b, g));
    ir::Value* step = mode == "standard" ? v : o.add(g, o.mul(o.c(alpha), v));
    xs.push_back(o.sub(x, o.mul(r, step)));
    vs.push_back(v);
  }
  xs.insert(xs.end(), vs.begin(), vs.end());
  return xs;
}

Values import_adam(ImportContext& ctx) {
  const size_t n = tensor_count(ctx, 4);
  Opt o = make_opt(ctx);
  const float alpha = ctx.attr_f("alpha", 0.9f), beta = ctx.attr_f("beta", 0.999f), eps = ctx.attr_f("epsilon", 1e-6f);
  const float norm = ctx.attr_f("norm_coefficient", 0.0f), norm_post = ctx.attr_f("norm_coefficient_post", 0.0f);
  ir::Value* r = o.scalar_input(0);
  ir::Value* t = o.scalar_input(1);
  // (At T = 0 the bias-corrected rate divides 0 by 0; the Select keeps R then, as ONNX specifies.)
  ir::Value* corr = o.div(ctx.unary(o.sub(o.c(1.0), ctx.elementwise(o.c(beta), t, kPow)), kSqrt),
                          o.sub(o.c(1.0), ctx.elementwise(o.c(alpha), t, kPow)));
  ir::Value* rate = o.select(o.positive_t(), o.mul(r, corr), r);
  Values xs, vs, hs;
  for (size_t i = 0; i < n; ++i) {
    ir::Value* x = ctx.required_input(2 + i);
    ir::Value* g = o.regularized(x, ctx.required_input(2 + n + i), norm);
    ir::Value* v = o.add(o.mul(o.c(alpha), ctx.required_input(2 + 2 * n + i)), o.mul(o.c(1.0 - alpha), g));
    ir::Value* h = o.add(o.mul(o.c(beta), ctx.required_input(2 + 3 * n + i)), o.mul(o.c(1.0 - beta), o.mul(g, g)));
    ir::Value* x_new = o.sub(x, o.mul(rate, o.div(v, o.add(ctx.unary(h, kSqrt), o.c(eps)))));
    xs.push_back(norm_post == 0.0f ? x_new : o.mul(o.c(1.0 - norm_post), x_new));
    vs.push_back(v);
    hs.push_back(h);
  }
  xs.insert(xs.end(), vs.begin(), vs.end());
  xs.insert(xs.end(), hs.begin(), hs.end());
  return xs;
}

}  // namespace

KILN_REGISTER_IMPORTER("ai.onnx.preview.training", "Adagrad", import_adagrad);
KILN_REGISTER_IMPORTER("ai.onnx.preview.training", "Momentum", import_momentum);
KILN_REGISTER_IMPORTER("ai.onnx.preview.training", "Adam", import_adam);

}  // namespace kiln::onnx
