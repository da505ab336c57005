#include "ir/op_registry.h"

#include <map>
#include <mutex>

namespace kiln::ir {

namespace {
std::map<std::string, OpDef>& table() {
  static std::map<std::string, OpDef> t;
  return t;
}
}  // namespace

void register_op(OpDef def) {
  auto& t = table();
  if (t.count(def.name)) throw Error("op '" + def.name + "' registered twice");
  t.emplace(def.name, std::move(def));
}

const OpDef* find_op(const std::string& name) {
  auto& t = table();
  auto it = t.find(name);
  return it == t.end() ? nullptr : &it->second;
}

std::vector<std::string> registered_ops() {
  std::vector<std::string> v;
  for (auto& [k, d] : table()) v.push_back(k);
  return v;
}

const TensorInfo& InferContext::in(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is required but missing");
  return in_[i];
}

void InferContext::set_out(size_t i, DataType dt, Dims shape) {
  out_.at(i).present = true;
  out_[i].dtype = dt;
  out_[i].shape = std::move(shape);
}

void InferContext::fail(const std::string& msg) const {
  throw Error("layer '" + node_.name + "' (" + node_.op + "): " + msg);
}

std::vector<TensorInfo> infer_node(const Node& node, std::vector<TensorInfo> inputs) {
  const OpDef* def = find_op(node.op);
  if (!def) throw Error("layer '" + node.name + "': unknown op '" + node.op + "'");
  InferContext ctx(node, std::move(inputs));
  int n = static_cast<int>(ctx.num_inputs());
  if (n < def->min_inputs || (def->max_inputs >= 0 && n > def->max_inputs))
    ctx.fail("takes " + std::to_string(def->min_inputs) +
             (def->max_inputs < 0 ? " or more" : (" to " + std::to_string(def->max_inputs))) + " inputs, got " +
             std::to_string(n));
  for (int i = 0; i < def->min_inputs; ++i) ctx.in(i);  // required inputs present
  if (def->num_outputs >= 0 && static_cast<int>(node.outputs.size()) != def->num_outputs)
    ctx.fail("must have " + std::to_string(def->num_outputs) + " outputs, has " + std::to_string(node.outputs.size()));
  def->infer(ctx);
  for (size_t i = 0; i < ctx.outputs().size(); ++i) {
    auto& o = ctx.out(i);
    if (node.output_types.size() > i && node.output_types[i]) o.dtype = *node.output_types[i];
  }
  return std::move(ctx.outputs());
}

int64_t normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for a " + std::to_string(rank) + "-D tensor");
  return a;
}

Dims broadcast_shapes(const InferContext& ctx, const Dims& a, const Dims& b) {
  size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == 1) out[i] = db;
    else if (db == 1) out[i] = da;
    else if (da == -1) out[i] = db;  // unknown vs N: must be N (or 1) at run time
    else if (db == -1) out[i] = da;
    else if (da == db) out[i] = da;
    else ctx.fail("cannot broadcast shapes " + dims_str(a) + " and " + dims_str(b));
  }
  return out;
}

}  // namespace kiln::ir
