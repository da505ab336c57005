// Shape/type inference for the recurrent ops RNN, GRU and LSTM (ONNX semantics, sequence-major layout).
// Contract: ir/OPS.md. Inputs X [T, B, I], W [D, G*H, I], R [D, G*H, H], optional B [D, 2*G*H],
// sequence_lens [B] (int32/int64), initial_h [D, B, H]; LSTM also initial_c [D, B, H] and P [D, 3*H].
// Outputs Y [T, D, B, H], Y_h [D, B, H] (and Y_c for LSTM). G = 1 (RNN), 3 (GRU), 4 (LSTM); D = 2 when
// `direction` is bidirectional (2), else 1.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

int64_t gates_of(const std::string& op) { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }

// Number of activation functions per direction.
int64_t activations_of(const std::string& op) { return op == "LSTM" ? 3 : op == "GRU" ? 2 : 1; }

size_t count_names(const std::string& list) {
  if (list.empty()) return 0;
  size_t n = 1;
  for (char c : list) n += c == ',';
  return n;
}

// Checks one dim against what it must be (unknown dims pass; known ones must agree).
void expect_dim(const InferContext& ctx, const TensorInfo& t, size_t d, int64_t want, const char* what) {
  if (want >= 0 && t.shape[d] >= 0 && t.shape[d] != want)
    ctx.fail(std::string(what) + " " + dims_str(t.shape) + ": dim " + std::to_string(d) + " must be " +
             std::to_string(want));
}

void expect_rank(const InferContext& ctx, const TensorInfo& t, size_t r, const char* what) {
  if (t.shape.size() != r)
    ctx.fail(std::string(what) + " must be " + std::to_string(r) + "-D, got " + dims_str(t.shape));
}

void expect_float(const InferContext& ctx, const TensorInfo& t, const char* what) {
  if (t.dtype != DataType::kFLOAT) ctx.fail(std::string(what) + " must be float32, got " + dtype_name(t.dtype));
}

void infer_recurrent(InferContext& ctx) {
  const std::string& op = ctx.node().op;
  const Attrs& a = ctx.attrs();
  const int64_t h = a.i("hidden_size", 0);
  if (h <= 0) ctx.fail("attribute 'hidden_size' must be positive, got " + std::to_string(h));
  const int64_t dir = a.i("direction", 0);
  if (dir < 0 || dir > 2) ctx.fail("attribute 'direction' must be 0 (forward), 1 (reverse) or 2 (bidirectional)");
  const int64_t d = dir == 2 ? 2 : 1;
  const int64_t g = gates_of(op);
  const std::string acts = a.s("activations", "");
  const size_t n_acts = count_names(acts);
  if (n_acts != static_cast<size_t>(activations_of(op) * d))
    ctx.fail("attribute 'activations' must name " + std::to_string(activations_of(op) * d) +
             " functions (comma-separated), got '" + acts + "'");
  if (a.floats("activation_alpha").size() != n_acts || a.floats("activation_beta").size() != n_acts)
    ctx.fail("attributes 'activation_alpha' and 'activation_beta' must hold one value per activation");

  const TensorInfo& x = ctx.in(0);
  const TensorInfo& w = ctx.in(1);
  const TensorInfo& r = ctx.in(2);
  expect_float(ctx, x, "X");
  expect_float(ctx, w, "W");
  expect_float(ctx, r, "R");
  expect_rank(ctx, x, 3, "X");
  expect_rank(ctx, w, 3, "W");
  expect_rank(ctx, r, 3, "R");
  const int64_t t = x.shape[0], b = x.shape[1], in = x.shape[2];
  expect_dim(ctx, w, 0, d, "W");
  expect_dim(ctx, w, 1, g * h, "W");
  expect_dim(ctx, w, 2, in, "W");
  expect_dim(ctx, r, 0, d, "R");
  expect_dim(ctx, r, 1, g * h, "R");
  expect_dim(ctx, r, 2, h, "R");
  if (ctx.has_input(3)) {
    const TensorInfo& bias = ctx.in(3);
    expect_float(ctx, bias, "B");
    expect_rank(ctx, bias, 2, "B");
    expect_dim(ctx, bias, 0, d, "B");
    expect_dim(ctx, bias, 1, 2 * g * h, "B");
  }
  if (ctx.has_input(4)) {
    const TensorInfo& lens = ctx.in(4);
    if (lens.dtype != DataType::kINT32 && lens.dtype != DataType::kINT64)
      ctx.fail(std::string("sequence_lens must be int32 or int64, got ") + dtype_name(lens.dtype));
    expect_rank(ctx, lens, 1, "sequence_lens");
    expect_dim(ctx, lens, 0, b, "sequence_lens");
  }
  const size_t n_state = op == "LSTM" ? 2 : 1;  // initial_h (and initial_c)
  for (size_t i = 0; i < n_state; ++i) {
    if (!ctx.has_input(5 + i)) continue;
    const TensorInfo& s = ctx.in(5 + i);
    const char* what = i == 0 ? "initial_h" : "initial_c";
    expect_float(ctx, s, what);
    expect_rank(ctx, s, 3, what);
    expect_dim(ctx, s, 0, d, what);
    expect_dim(ctx, s, 1, b, what);
    expect_dim(ctx, s, 2, h, what);
  }
  if (op == "LSTM" && ctx.has_input(7)) {
    const TensorInfo& p = ctx.in(7);
    expect_float(ctx, p, "P");
    expect_rank(ctx, p, 2, "P");
    expect_dim(ctx, p, 0, d, "P");
    expect_dim(ctx, p, 1, 3 * h, "P");
  }
  if (op != "LSTM" && ctx.num_inputs() > 6) ctx.fail("takes at most 6 inputs");
  ctx.set_out(0, DataType::kFLOAT, {t, d, b, h});
  for (size_t i = 1; i < ctx.outputs().size(); ++i) ctx.set_out(i, DataType::kFLOAT, {d, b, h});
}

}  // namespace

KILN_REGISTER_OP(OpDef{"RNN", 3, 6, 2, &infer_recurrent});
KILN_REGISTER_OP(OpDef{"GRU", 3, 6, 2, &infer_recurrent});
KILN_REGISTER_OP(OpDef{"LSTM", 3, 8, 3, &infer_recurrent});

}  // namespace kiln::ir
