// ONNX RNN, GRU and LSTM (opsets 7-22) onto the IR ops of the same names (ir/OPS.md), whose kernels run
// the sequence-major layout in float32. The importer resolves what ONNX leaves implicit so that the IR
// node is self-contained: the activation list (defaults per op, one direction's list repeated for
// bidirectional), each activation's alpha/beta (taken in order by the functions that use them, ONNX's
// defaults otherwise), hidden_size (from R when absent), layout = 1 (batch-major; transposed around the
// node) and float16/bfloat16/double inputs (computed in float32, cast back).
#include <algorithm>
#include <cctype>
#include <string>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

struct ActSpec {
  const char* name;
  int uses;  // 0: no parameter, 1: alpha, 2: alpha and beta
  double alpha, beta;  // defaults
};

// ONNX's activation functions for the recurrent ops, with the defaults of the ONNX ops they are named after.
constexpr ActSpec kActs[] = {
    {"Relu", 0, 0, 0},        {"Tanh", 0, 0, 0},       {"Sigmoid", 0, 0, 0},          {"Affine", 2, 1.0, 0.0},
    {"LeakyRelu", 1, 0.01, 0}, {"ThresholdedRelu", 1, 1.0, 0}, {"ScaledTanh", 2, 1.0, 1.0},
    {"HardSigmoid", 2, 0.2, 0.5}, {"Elu", 1, 1.0, 0},   {"Softsign", 0, 0, 0},          {"Softplus", 0, 0, 0}};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const ActSpec& find_act(const ImportContext& ctx, const std::string& name) {
  for (const ActSpec& a : kActs)
    if (lower(a.name) == lower(name)) return a;
  ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
           ctx.op_type() + ": activation '" + name +
               "' is not supported (Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, "
               "HardSigmoid, Elu, Softsign, Softplus)");
}

// Reads the `activations` (as strings) attribute; nullptr-safe for absent.
std::vector<std::string> activation_names(const ImportContext& ctx) {
  const AttributeProto* a = ctx.attr("activations");
  std::vector<std::string> v;
  if (!a) return v;
  if (a->type != AttributeType::kStrings)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": attribute 'activations' must be a list of strings");
  for (auto s : a->strings) v.emplace_back(s);
  return v;
}

Values import_recurrent(ImportContext& ctx) {
  const std::string op = ctx.op_type();
  const int64_t per_dir = op == "LSTM" ? 3 : op == "GRU" ? 2 : 1;
  const int64_t gates = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1;
  ir::Value* x = ctx.required_input(0);
  ir::Value* w = ctx.required_input(1);
  ir::Value* r = ctx.required_input(2);

  const std::string dir_s = ctx.attr_s("direction", "forward");
  int64_t direction = 0;
  if (dir_s == "forward") direction = 0;
  else if (dir_s == "reverse") direction = 1;
  else if (dir_s == "bidirectional") direction = 2;
  else ctx.fail(ParserErrorCode::kINVALID_NODE, op + ": direction must be forward, reverse or bidirectional, got '" + dir_s + "'");
  const int64_t dirs = direction == 2 ? 2 : 1;

  int64_t hidden = ctx.attr_i("hidden_size", -1);
  if (hidden < 0) {
    if (ImportContext::rank(r) != 3 || r->shape[2] < 0)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_SHAPE, op + ": no hidden_size attribute and R " + dims_str(r->shape) +
                                                             " does not tell it");
    hidden = r->shape[2];
  }

  // Activations: defaults, or one direction's list repeated for the second direction.
  std::vector<std::string> names = activation_names(ctx);
  if (names.empty()) {
    if (op == "LSTM") names = {"Sigmoid", "Tanh", "Tanh"};
    else if (op == "GRU") names = {"Sigmoid", "Tanh"};
    else names = {"Tanh"};
  }
  if (dirs == 2 && static_cast<int64_t>(names.size()) == per_dir) {
    const std::vector<std::string> one = names;
    names.insert(names.end(), one.begin(), one.end());
  }
  if (static_cast<int64_t>(names.size()) != per_dir * dirs)
    ctx.fail(ParserErrorCode::kINVALID_NODE, op + ": 'activations' names " + std::to_string(names.size()) +
                                                 " functions; " + std::to_string(per_dir * dirs) + " are needed");
  const std::vector<float> alphas = ctx.attr_floats("activation_alpha");
  const std::vector<float> betas = ctx.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::string list;
  std::vector<double> alpha, beta;
  for (const std::string& n : names) {
    const ActSpec& s = find_act(ctx, n);
    double a = s.alpha, b = s.beta;
    if (s.uses >= 1 && ai < alphas.size()) a = alphas[ai++];
    if (s.uses >= 2 && bi < betas.size()) b = betas[bi++];
    list += (list.empty() ? "" : ",") + std::string(s.name);
    alpha.push_back(a);
    beta.push_back(b);
  }

  ir::Attrs at;
  at.set("hidden_size", hidden);
  at.set("direction", direction);
  at.set("activations", list);
  at.set("activation_alpha", alpha);
  at.set("activation_beta", beta);
  if (ctx.has_attr("clip")) {
    const float clip = ctx.attr_f("clip", 0.0f);
    if (!(clip > 0.0f)) ctx.fail(ParserErrorCode::kINVALID_NODE, op + ": clip must be positive, got " + std::to_string(clip));
    at.set("clip", clip);
  }
  if (op == "GRU") at.set("linear_before_reset", ctx.attr_i("linear_before_reset", 0));
  if (op == "LSTM") at.set("input_forget", ctx.attr_i("input_forget", 0));

  const int64_t layout = ctx.attr_i("layout", 0);
  if (layout != 0 && layout != 1) ctx.fail(ParserErrorCode::kINVALID_NODE, op + ": layout must be 0 or 1");
  if (ImportContext::rank(x) != 3)
    ctx.fail(ParserErrorCode::kINVALID_NODE, op + ": X must be 3-D, got " + dims_str(x->shape));

  // Float inputs of other precisions run in float32.
  const kiln::DataType dt = x->dtype;
  if (dt != kiln::DataType::kFLOAT && dt != kiln::DataType::kHALF && dt != kiln::DataType::kBF16 &&
      dt != kiln::DataType::kDOUBLE)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, op + ": X of type " + std::string(dtype_name(dt)) +
                                                              " is not supported (float32, float16, bfloat16, double)");
  auto f32 = [&](ir::Value* v) { return v && v->dtype != kiln::DataType::kFLOAT ? ctx.cast(v, kiln::DataType::kFLOAT) : v; };
  auto back = [&](ir::Value* v) { return dt != kiln::DataType::kFLOAT ? ctx.cast(v, dt) : v; };

  const size_t n_in = op == "LSTM" ? 8 : 6;
  if (ctx.num_inputs() > n_in)
    ctx.fail(ParserErrorCode::kINVALID_NODE, op + " takes at most " + std::to_string(n_in) + " inputs, got " +
                                                 std::to_string(ctx.num_inputs()));
  Values ins(n_in, nullptr);
  ins[0] = f32(layout == 1 ? ctx.transpose(x, {1, 0, 2}) : x);  // [B, T, I] -> [T, B, I]
  ins[1] = f32(w);
  ins[2] = f32(r);
  ins[3] = f32(ctx.input(3));
  ins[4] = ctx.input(4);
  for (size_t i = 5; i < n_in; ++i) {
    ir::Value* v = ctx.input(i);
    if (v && layout == 1 && i <= 6) v = ctx.transpose(v, {1, 0, 2});  // initial_h/c [B, D, H] -> [D, B, H]
    ins[i] = f32(v);
  }
  // The kernel needs the gate count to match the weights: a clear message beats a shape error later.
  if (ImportContext::rank(w) == 3 && w->shape[1] >= 0 && w->shape[1] != gates * hidden)
    ctx.fail(ParserErrorCode::kINVALID_NODE, op + ": W " + dims_str(w->shape) + " must have " +
                                                 std::to_string(gates) + " x hidden_size (" + std::to_string(hidden) +
                                                 ") rows per direction");
  ir::Node* n = ctx.add(op, ins, std::move(at), op == "LSTM" ? 3 : 2);
  ir::Value* y = n->outputs[0];
  Values outs;
  outs.push_back(back(layout == 1 ? ctx.transpose(y, {2, 0, 1, 3}) : y));  // [T, D, B, H] -> [B, T, D, H]
  for (size_t i = 1; i < n->outputs.size(); ++i) {
    ir::Value* s = n->outputs[i];
    outs.push_back(back(layout == 1 ? ctx.transpose(s, {1, 0, 2}) : s));  // [D, B, H] -> [B, D, H]
  }
  return outs;
}

}  // namespace

KILN_REGISTER_IMPORTER("", "RNN", import_recurrent);
KILN_REGISTER_IMPORTER("", "GRU", import_recurrent);
KILN_REGISTER_IMPORTER("", "LSTM", import_recurrent);

}  // namespace kiln::onnx
