#include "passes/lower_quantization.h"

namespace kiln::passes {

namespace {

bool int8ish(DataType t) { return t == DataType::kINT8 || t == DataType::kUINT8; }

ir::Value* node1(ir::Graph& g, const std::string& op, const std::string& base, std::vector<ir::Value*> ins,
                 DataType dt, const Dims& shape) {
  ir::Node* n = g.add_node(op, g.unique_name(base), std::move(ins), 1);
  n->outputs[0]->dtype = dt;
  n->outputs[0]->shape = shape;
  return n->outputs[0];
}

ir::Value* cast(ir::Graph& g, const std::string& base, ir::Value* x, DataType to) {
  ir::Value* y = node1(g, "Cast", base, {x}, to, x->shape);
  y->producer->attrs.set("to", static_cast<int64_t>(to));
  return y;
}

ir::Value* binary(ir::Graph& g, const std::string& base, int64_t op, ir::Value* a, ir::Value* b, const Dims& shape) {
  ir::Value* y = node1(g, "ElementWise", base, {a, b}, a->dtype, shape);
  y->producer->attrs.set("op", op);
  return y;
}

// A scale or zero point of one element (per tensor) or of x.shape[axis] elements (per axis), made to
// broadcast against x: [1, .., len, .., 1]. nullptr when it is neither.
ir::Value* broadcastable(ir::Graph& g, const std::string& base, ir::Value* p, const ir::Node& n, const Dims& x) {
  if (!dims_known(p->shape)) return nullptr;
  const int64_t count = volume(p->shape);
  if (count == 1) return p;  // broadcasts as it is (rank <= x's: one element)
  const int64_t rank = static_cast<int64_t>(x.size());
  int64_t axis = n.attrs.i("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank || p->shape.size() != 1 || x[axis] < 0 || count != x[axis]) return nullptr;
  Dims shape(x.size(), 1);
  shape[axis] = count;
  if (const HostTensor* c = ir::constant_value(p))  // a constant is reshaped at build time
    return g.add_constant(g.unique_name(base), c->reshaped(shape))->outputs[0];
  ir::Value* y = node1(g, "Shuffle", base, {p}, p->dtype, shape);
  y->producer->attrs.set("has_reshape", int64_t{1});
  y->producer->attrs.set("reshape_dims", std::vector<int64_t>(shape));
  y->producer->attrs.set("zero_is_placeholder", int64_t{0});
  return y;
}

bool lowerable(const ir::Node& n) {
  if (n.attrs.i("block_size", 0) > 0 || n.outputs.size() != 1 || n.inputs.size() < 2) return false;
  const ir::Value* x = n.inputs[0];
  const ir::Value* scale = n.inputs[1];
  const ir::Value* zp = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
  if (!x || !scale || scale->dtype != DataType::kFLOAT) return false;
  if (zp && !int8ish(zp->dtype)) return false;
  if (n.op == "DequantizeLinear") return int8ish(x->dtype) && n.outputs[0]->dtype == DataType::kFLOAT;
  return x->dtype == DataType::kFLOAT && int8ish(n.outputs[0]->dtype);
}

// The value replacing n's output, or nullptr.
ir::Value* lower(ir::Graph& g, const ir::Node& n) {
  if (!lowerable(n)) return nullptr;
  ir::Value* x = n.inputs[0];
  ir::Value* zp = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
  const std::string base = n.name;
  ir::Value* scale = broadcastable(g, base + "_scale", n.inputs[1], n, x->shape);
  ir::Value* zpb = zp ? broadcastable(g, base + "_zero_point", zp, n, x->shape) : nullptr;
  if (!scale || (zp && !zpb)) return nullptr;
  ir::Value* zpf = zpb ? cast(g, base + "_zero_point_float", zpb, DataType::kFLOAT) : nullptr;
  constexpr int64_t kSum = 0, kProd = 1, kSub = 4, kDiv = 5;
  if (n.op == "DequantizeLinear") {
    ir::Value* xf = cast(g, base + "_float", x, DataType::kFLOAT);
    if (zpf) xf = binary(g, base + "_shift", kSub, xf, zpf, x->shape);
    return binary(g, base + "_scale_mul", kProd, xf, scale, x->shape);
  }
  ir::Value* q = binary(g, base + "_div", kDiv, x, scale, x->shape);
  q = node1(g, "Unary", base + "_round", {q}, DataType::kFLOAT, x->shape);
  q->producer->attrs.set("op", int64_t{22});  // ROUND: half to even
  if (zpf) q = binary(g, base + "_shift", kSum, q, zpf, x->shape);
  const DataType to = n.outputs[0]->dtype;
  ir::Value* c = node1(g, "Activation", base + "_saturate", {q}, DataType::kFLOAT, x->shape);
  c->producer->attrs.set("type", int64_t{8});  // CLIP to the integer type's range
  c->producer->attrs.set("alpha", to == DataType::kINT8 ? -128.0 : 0.0);
  c->producer->attrs.set("beta", to == DataType::kINT8 ? 127.0 : 255.0);
  return cast(g, base + "_to_int", c, to);
}

}  // namespace

bool LowerQuantization::run(ir::Graph& g) {
  return lower_nodes(g, {"QuantizeLinear", "DequantizeLinear"}, lower);
}

}  // namespace kiln::passes
