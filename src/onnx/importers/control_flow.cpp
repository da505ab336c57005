// ONNX control flow (If, Loop, Scan), lowered at import time into the flat IR graph where that is exact.
// Kiln's IR has no subgraphs and plans serialize flat graphs, so:
//   If    with a condition known at build time imports only the taken branch; with a run-time condition
//         it imports both branches and picks each output with Select (so both run; their outputs must
//         agree in dtype and rank, and in every dim known at build time).
//   Loop  is unrolled when the trip count and the condition are known at build time step by step (the
//         body's cond output must be computable on the host at each step: ONNX Runtime and ONNX's reference
//         stop on it even without a cond input); the loop-carried values are threaded from step to step
//         and the scan outputs stacked on a new axis 0.
//   Scan  is unrolled over its scan axis, whose length must be static; opset 8's batched form is unrolled
//         over the batch as well.
// Unrolling stops with a clear error beyond kMaxUnroll steps. Bodies are imported by
// ImportContext::import_subgraph (subgraph.cpp), one scope per step.
#include <algorithm>
#include <optional>
#include <string>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

// Unrolled steps beyond which Loop/Scan are refused: each step copies the whole body into the network.
constexpr int64_t kMaxUnroll = 1024;

const GraphProto& graph_attr(const ImportContext& ctx, const std::string& name) {
  const AttributeProto* a = ctx.attr(name);
  if (!a) ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": missing the required graph attribute '" + name + "'");
  if (a->type != AttributeType::kGraph || !a->g)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": attribute '" + name + "' must hold a graph");
  return *a->g;
}

// The value of a one-element condition when it is known at import time, else nullopt.
std::optional<bool> known_bool(const ImportContext& ctx, const ir::Value* v, const std::string& what) {
  if (volume(v->shape) >= 0 && volume(v->shape) != 1)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": " + what + " must hold one element, got shape " +
                                                 dims_str(v->shape));
  const HostTensor* h = ctx.value_of(v);
  if (!h) return std::nullopt;
  return h->get_f64(0) != 0.0;
}

ir::Value* bool_scalar(ImportContext& ctx, bool b) { return ctx.const_scalar(kiln::DataType::kBOOL, b ? 1.0 : 0.0); }

// Stacks equally shaped values on a new axis (numbered in the output's rank; negative counts from the end).
ir::Value* stack(ImportContext& ctx, const Values& xs, int64_t axis, const std::string& what) {
  const int64_t r = ImportContext::rank(xs.at(0)) + 1;
  const int64_t a = ctx.axis(axis, r, what);
  Values parts;
  for (ir::Value* x : xs) parts.push_back(ctx.unsqueeze(x, {a}));
  return ctx.concat(parts, a);
}

// ---- If -------------------------------------------------------------------------------------------------
Values import_if(ImportContext& ctx) {
  ir::Value* cond = ctx.required_input(0);
  const GraphProto& then_g = graph_attr(ctx, "then_branch");
  const GraphProto& else_g = graph_attr(ctx, "else_branch");
  if (then_g.output.size() != else_g.output.size())
    ctx.fail(ParserErrorCode::kINVALID_GRAPH, "If: then_branch has " + std::to_string(then_g.output.size()) +
                                                  " outputs, else_branch " + std::to_string(else_g.output.size()));
  if (auto c = known_bool(ctx, cond, "the condition")) return ctx.import_subgraph(*c ? then_g : else_g, {}, *c ? "then" : "else");

  // A run-time condition: both branches run, Select picks. Exact only when their outputs agree in form.
  if (cond->dtype != kiln::DataType::kBOOL)
    ctx.fail(ParserErrorCode::kINVALID_NODE, std::string("If: the condition must be bool, got ") + dtype_name(cond->dtype));
  Values t = ctx.import_subgraph(then_g, {}, "then");
  Values e = ctx.import_subgraph(else_g, {}, "else");
  ir::Value* c = ImportContext::rank(cond) == 0 ? cond : ctx.reshape(cond, {}, false);  // a scalar broadcasts
  Values outs;
  for (size_t i = 0; i < t.size(); ++i) {
    const std::string name(then_g.output[i].name);
    if (t[i] == e[i]) {
      outs.push_back(t[i]);
      continue;
    }
    if (t[i]->dtype != e[i]->dtype)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE,
               "If: output " + std::to_string(i) + " is " + dtype_name(t[i]->dtype) + " in then_branch but " +
                   dtype_name(e[i]->dtype) + " in else_branch; with a condition known only at run time Kiln "
                   "runs both branches and selects, which needs one dtype");
    bool same = t[i]->shape.size() == e[i]->shape.size();
    for (size_t d = 0; same && d < t[i]->shape.size(); ++d)
      same = t[i]->shape[d] < 0 || e[i]->shape[d] < 0 || t[i]->shape[d] == e[i]->shape[d];
    if (!same)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               "If: output " + std::to_string(i) + " has shape " + dims_str(t[i]->shape) + " in then_branch but " +
                   dims_str(e[i]->shape) + " in else_branch; with a condition known only at run time the output "
                   "shape would depend on run-time data, which Kiln does not support");
    outs.push_back(ctx.add1("Select", {c, t[i], e[i]}));
  }
  return outs;
}

// ---- Loop -----------------------------------------------------------------------------------------------
Values import_loop(ImportContext& ctx) {
  const GraphProto& body = graph_attr(ctx, "body");
  if (ctx.num_inputs() < 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Loop needs inputs M and cond (either may be empty), got " +
                                                 std::to_string(ctx.num_inputs()));
  const size_t n = ctx.num_inputs() - 2;  // loop-carried values
  if (body.input.size() != n + 2)
    ctx.fail(ParserErrorCode::kINVALID_GRAPH, "Loop: the body must take 2 + " + std::to_string(n) +
                                                  " inputs (iteration, cond, carried values), it declares " +
                                                  std::to_string(body.input.size()));
  if (body.output.size() < n + 1)
    ctx.fail(ParserErrorCode::kINVALID_GRAPH, "Loop: the body must return cond and " + std::to_string(n) +
                                                  " carried values, it returns " + std::to_string(body.output.size()));
  const size_t k = body.output.size() - 1 - n;  // scan outputs

  std::optional<int64_t> trip;
  if (ir::Value* m = ctx.input(0)) {
    auto v = ctx.ints_of(m, "Loop trip count M");
    if (!v || v->size() != 1)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               "Loop: the trip count M must be known at build time (Kiln unrolls loops; it is computed from "
               "run-time data here)");
    trip = (*v)[0];
  }
  ir::Value* cond = ctx.input(1);
  bool running = true;
  if (cond) {
    auto c = known_bool(ctx, cond, "the initial condition");
    if (!c)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               "Loop: the initial condition must be known at build time (Kiln unrolls loops)");
    running = *c;
  } else {
    cond = bool_scalar(ctx, true);
  }
  if (!ctx.input(0) && !ctx.input(1))
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Loop has neither a trip count nor a condition (it never ends)");

  Values state;
  for (size_t i = 0; i < n; ++i) state.push_back(ctx.required_input(2 + i));
  std::vector<Values> scans(k);
  int64_t step = 0;
  for (; running && (!trip || step < *trip); ++step) {
    if (step >= kMaxUnroll)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE,
               "Loop runs more than " + std::to_string(kMaxUnroll) +
                   " iterations; Kiln unrolls loops at build time and refuses longer ones");
    Values ins = {ctx.const_i64_scalar(step), cond};
    ins.insert(ins.end(), state.begin(), state.end());
    Values outs = ctx.import_subgraph(body, ins, "iter" + std::to_string(step));
    cond = outs[0];
    auto c = known_bool(ctx, cond, "the body's condition output");
    if (!c)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               "Loop: the body's condition output depends on run-time data (iteration " + std::to_string(step) +
                   "); Kiln unrolls loops at build time and needs it computable then");
    running = *c;
    for (size_t i = 0; i < n; ++i) state[i] = outs[1 + i];
    for (size_t j = 0; j < k; ++j) scans[j].push_back(outs[1 + n + j]);
  }

  Values result = state;
  for (size_t j = 0; j < k; ++j) {
    if (!scans[j].empty()) {
      result.push_back(stack(ctx, scans[j], 0, "Loop scan output axis"));
      continue;
    }
    // No iteration ran: an empty [0, ...] tensor whose element shape one (unused) import of the body tells.
    Values ins = {ctx.const_i64_scalar(0), cond};
    ins.insert(ins.end(), state.begin(), state.end());
    ir::Value* probe = ctx.import_subgraph(body, ins, "shape_probe")[1 + n + j];
    if (!dims_known(probe->shape))
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               "Loop runs no iteration and scan output " + std::to_string(j) + " has no static element shape");
    Dims d = probe->shape;
    d.insert(d.begin(), 0);
    result.push_back(ctx.constant(HostTensor(probe->dtype, d)));
  }
  return result;
}

// ---- Scan -----------------------------------------------------------------------------------------------
struct ScanResult {
  Values state;
  std::vector<Values> steps;  // per scan output: its value at each step, in step order
};

// Runs the body over `xs` (scan axis `axes[j]`, reversed where dirs[j] = 1), threading `state`.
ScanResult unroll_scan(ImportContext& ctx, const GraphProto& body, Values state, const Values& xs, const Ints& axes,
                       const Ints& dirs, const std::string& scope) {
  if (xs.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan needs at least one scan input (num_scan_inputs >= 1)");
  int64_t len = -1;
  Ints ax(xs.size());
  for (size_t j = 0; j < xs.size(); ++j) {
    ax[j] = ctx.axis(axes[j], ImportContext::rank(xs[j]), "scan_input_axes[" + std::to_string(j) + "]");
    const int64_t l = xs[j]->shape[ax[j]];
    if (l < 0)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               "Scan: scan input " + std::to_string(j) + " " + dims_str(xs[j]->shape) +
                   " has no static length on its scan axis; Kiln unrolls Scan at build time");
    if (len >= 0 && l != len)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan: scan inputs differ in length (" + std::to_string(len) + " and " +
                                                   std::to_string(l) + ")");
    len = l;
  }
  if (len == 0) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "Scan over a sequence of length 0 is not supported");
  if (len > kMaxUnroll)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "Scan over " + std::to_string(len) + " steps; Kiln unrolls Scan at build "
                                                 "time and refuses more than " + std::to_string(kMaxUnroll));
  const size_t n = state.size();
  const size_t k = body.output.size() - n;
  ScanResult r{std::move(state), std::vector<Values>(k)};
  for (int64_t t = 0; t < len; ++t) {
    Values ins = r.state;
    for (size_t j = 0; j < xs.size(); ++j) {
      ir::Attrs at;
      at.set("axis", ax[j]);
      at.set("mode", int64_t{0});
      ins.push_back(ctx.add1("Gather", {xs[j], ctx.const_i64_scalar(dirs[j] ? len - 1 - t : t)}, std::move(at)));
    }
    Values outs = ctx.import_subgraph(body, ins, scope + "step" + std::to_string(t));
    for (size_t i = 0; i < n; ++i) r.state[i] = outs[i];
    for (size_t i = 0; i < k; ++i) r.steps[i].push_back(outs[n + i]);
  }
  return r;
}

Ints per_input(const ImportContext& ctx, const std::string& name, size_t count) {
  Ints v = ctx.attr_ints(name, Ints(count, 0));
  if (v.size() != count)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan: attribute '" + name + "' has " + std::to_string(v.size()) +
                                                 " entries, expected " + std::to_string(count));
  for (int64_t x : v)
    if (name.find("direction") != std::string::npos && x != 0 && x != 1)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan: attribute '" + name + "' entries must be 0 or 1");
  return v;
}

// Opset 9+: inputs = N states, then M scan inputs.
Values import_scan9(ImportContext& ctx, const GraphProto& body, int64_t m) {
  const size_t total = ctx.num_inputs();
  if (m < 1 || static_cast<size_t>(m) > total)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan: num_scan_inputs " + std::to_string(m) + " does not fit " +
                                                 std::to_string(total) + " inputs");
  const size_t n = total - static_cast<size_t>(m);
  if (body.input.size() != total || body.output.size() < n)
    ctx.fail(ParserErrorCode::kINVALID_GRAPH, "Scan: the body must take " + std::to_string(total) +
                                                  " inputs and return at least " + std::to_string(n) + " values");
  Values state, xs;
  for (size_t i = 0; i < n; ++i) state.push_back(ctx.required_input(i));
  for (size_t i = n; i < total; ++i) xs.push_back(ctx.required_input(i));
  const size_t k = body.output.size() - n;
  Ints in_axes = per_input(ctx, "scan_input_axes", xs.size());
  Ints in_dirs = per_input(ctx, "scan_input_directions", xs.size());
  Ints out_axes = per_input(ctx, "scan_output_axes", k);
  Ints out_dirs = per_input(ctx, "scan_output_directions", k);
  ScanResult r = unroll_scan(ctx, body, state, xs, in_axes, in_dirs, "");
  Values result = r.state;
  for (size_t i = 0; i < k; ++i) {
    Values steps = r.steps[i];
    if (out_dirs[i]) std::reverse(steps.begin(), steps.end());  // "prepend": the last step comes first
    result.push_back(stack(ctx, steps, out_axes[i], "scan_output_axes[" + std::to_string(i) + "]"));
  }
  return result;
}

// Opset 8: inputs = optional sequence_lens, N states [B, ...], M scan inputs [B, T, ...]; the body sees one
// batch element at a time. Unrolled over the batch and the sequence; sequence_lens must be absent or all T.
Values import_scan8(ImportContext& ctx, const GraphProto& body, int64_t m) {
  const size_t total = ctx.num_inputs();
  if (total < 1 || m < 1 || static_cast<size_t>(m) > total - 1)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan (opset 8): num_scan_inputs " + std::to_string(m) +
                                                 " does not fit " + std::to_string(total) + " inputs");
  const size_t n = total - 1 - static_cast<size_t>(m);
  if (body.input.size() != total - 1 || body.output.size() < n)
    ctx.fail(ParserErrorCode::kINVALID_GRAPH, "Scan (opset 8): the body must take " + std::to_string(total - 1) +
                                                  " inputs and return at least " + std::to_string(n) + " values");
  Values state, xs;
  for (size_t i = 0; i < n; ++i) state.push_back(ctx.required_input(1 + i));
  for (size_t i = 1 + n; i < total; ++i) xs.push_back(ctx.required_input(i));
  for (ir::Value* x : xs)
    if (ImportContext::rank(x) < 2)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Scan (opset 8): scan inputs must be [batch, sequence, ...], got " +
                                                   dims_str(x->shape));
  const int64_t batch = xs[0]->shape[0], len = xs[0]->shape[1];
  if (batch < 0 || len < 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
             "Scan (opset 8): the batch and sequence sizes must be static, got " + dims_str(xs[0]->shape));
  if (ir::Value* lens = ctx.input(0)) {
    auto v = ctx.ints_of(lens, "Scan sequence_lens");
    bool all_full = v.has_value();
    for (size_t i = 0; all_full && i < v->size(); ++i) all_full = (*v)[i] == len;
    if (!all_full)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE,
               "Scan (opset 8): sequence_lens must be absent or a constant equal to the full length " +
                   std::to_string(len) + " for every batch element");
  }
  if (batch * len > kMaxUnroll)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "Scan (opset 8) over " + std::to_string(batch) + " x " +
                                                 std::to_string(len) + " steps; Kiln unrolls at most " +
                                                 std::to_string(kMaxUnroll));
  const Ints dirs = per_input(ctx, "directions", xs.size());
  const size_t k = body.output.size() - n;
  auto pick = [&](ir::Value* x, int64_t b) {
    ir::Attrs at;
    at.set("axis", int64_t{0});
    at.set("mode", int64_t{0});
    return ctx.add1("Gather", {x, ctx.const_i64_scalar(b)}, std::move(at));
  };
  std::vector<Values> states_b(n), outs_b(k);
  for (int64_t b = 0; b < batch; ++b) {
    Values st, xb;
    for (ir::Value* s : state) st.push_back(pick(s, b));
    for (ir::Value* x : xs) xb.push_back(pick(x, b));
    ScanResult r = unroll_scan(ctx, body, st, xb, Ints(xs.size(), 0), dirs, "batch" + std::to_string(b) + "_");
    for (size_t i = 0; i < n; ++i) states_b[i].push_back(r.state[i]);
    for (size_t i = 0; i < k; ++i) outs_b[i].push_back(stack(ctx, r.steps[i], 0, "scan output axis"));
  }
  Values result;
  for (size_t i = 0; i < n; ++i) result.push_back(stack(ctx, states_b[i], 0, "batch axis"));
  for (size_t i = 0; i < k; ++i) result.push_back(stack(ctx, outs_b[i], 0, "batch axis"));
  return result;
}

Values import_scan(ImportContext& ctx) {
  const GraphProto& body = graph_attr(ctx, "body");
  const int64_t m = ctx.req_attr_i("num_scan_inputs");
  return ctx.opset() < 9 ? import_scan8(ctx, body, m) : import_scan9(ctx, body, m);
}

}  // namespace

KILN_REGISTER_IMPORTER("", "If", import_if);
KILN_REGISTER_IMPORTER("", "Loop", import_loop);
KILN_REGISTER_IMPORTER("", "Scan", import_scan);

}  // namespace kiln::onnx
