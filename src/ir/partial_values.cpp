#include "ir/partial_values.h"

#include <algorithm>

#include "ir/slice_range.h"

namespace kiln::ir {

namespace {

constexpr int kMaxDepth = 24;  // shape arithmetic chains are short; this bounds the walk on odd graphs

bool is_index_type(DataType t) { return t == DataType::kINT32 || t == DataType::kINT64; }

// The constant integer values of v (any rank), or false.
bool constant_ints(const Value* v, std::vector<int64_t>* out) {
  if (!v) return false;
  const HostTensor* t = constant_value(v);
  if (!t || !is_index_type(t->dtype())) return false;
  *out = t->to_i64();
  return true;
}

// A known element count for v (its shape fully known).
bool known_count(const Value* v, int64_t* n) {
  for (int64_t d : v->shape)
    if (d < 0) return false;
  *n = volume(v->shape);
  return true;
}

bool walk(const Value* v, PartialEntries* out, int depth);

// The one data input of a node that only reorders nothing (Unsqueeze, Squeeze, reshape-only Shuffle, integer
// Cast, Identity): the values pass through in order.
bool pass_through(const Node& n) {
  if (n.op == "Unsqueeze" || n.op == "Squeeze" || n.op == "Identity") return true;
  if (n.op == "Cast") return is_index_type(n.outputs[0]->dtype) && n.inputs[0] && is_index_type(n.inputs[0]->dtype);
  if (n.op == "Shuffle")
    return n.attrs.ints("first_transpose").empty() && n.attrs.ints("second_transpose").empty();
  return false;
}

bool walk_gather(const Node& n, PartialEntries* out, int depth) {
  if (n.inputs.size() != 2 || n.attrs.i("mode", 0) != 0 || n.attrs.i("axis", 0) != 0) return false;
  std::vector<int64_t> idx;
  PartialEntries data;
  if (!constant_ints(n.inputs[1], &idx) || !walk(n.inputs[0], &data, depth + 1)) return false;
  if (n.inputs[0]->shape.size() != 1) return false;
  const int64_t len = static_cast<int64_t>(data.size());
  out->clear();
  for (int64_t i : idx) {
    if (i < 0) i += len;
    if (i < 0 || i >= len) return false;  // out of range: the run-time check reports it
    out->push_back(data[static_cast<size_t>(i)]);
  }
  return true;
}

// A 1-D Slice in mode 0 (default) with its start/size/stride constant (attributes or inputs 1-3).
bool walk_slice(const Node& n, PartialEntries* out, int depth) {
  if (n.attrs.i("mode", 0) != 0 || n.inputs.empty() || !n.inputs[0] || n.inputs[0]->shape.size() != 1) return false;
  auto param = [&](size_t idx, const char* name, int64_t def, int64_t* val) {
    std::vector<int64_t> v;
    if (idx < n.inputs.size() && n.inputs[idx]) {
      if (!constant_ints(n.inputs[idx], &v)) return false;
    } else if (n.attrs.has(name)) {
      v = n.attrs.ints(name);
    } else {
      if (def < 0) return false;
      v = {def};
    }
    if (v.size() != 1) return false;
    *val = v[0];
    return true;
  };
  PartialEntries data;
  if (!walk(n.inputs[0], &data, depth + 1)) return false;
  int64_t start, size, stride;
  if (!param(1, "start", 0, &start) || !param(2, "size", -1, &size) || !param(3, "stride", 1, &stride)) return false;
  const int64_t len = static_cast<int64_t>(data.size());
  out->clear();
  for (int64_t i = 0; i < size; ++i) {
    const int64_t at = start + i * stride;
    if (at < 0 || at >= len) return false;
    out->push_back(data[static_cast<size_t>(at)]);
  }
  return true;
}

// ONNX's Slice (DynamicSlice) of a 1-D tensor with constant starts, ends, axes (0) and steps.
bool walk_dynamic_slice(const Node& n, PartialEntries* out, int depth) {
  if (n.inputs.size() < 3 || !n.inputs[0] || n.inputs[0]->shape.size() != 1) return false;
  std::vector<int64_t> starts, ends, axes{0}, steps{1};
  if (!constant_ints(n.inputs[1], &starts) || !constant_ints(n.inputs[2], &ends)) return false;
  if (n.inputs.size() > 3 && n.inputs[3] && !constant_ints(n.inputs[3], &axes)) return false;
  if (n.inputs.size() > 4 && n.inputs[4] && !constant_ints(n.inputs[4], &steps)) return false;
  if (starts.size() != 1 || ends.size() != 1 || axes.size() != 1 || steps.size() != 1) return false;
  if ((axes[0] != 0 && axes[0] != -1) || steps[0] == 0) return false;
  PartialEntries data;
  if (!walk(n.inputs[0], &data, depth + 1)) return false;
  const SliceRange r = onnx_slice_range(static_cast<int64_t>(data.size()), starts[0], ends[0], steps[0]);
  out->clear();
  for (int64_t i = 0; i < r.length; ++i) out->push_back(data[static_cast<size_t>(r.start + i * steps[0])]);
  return true;
}

bool walk(const Value* v, PartialEntries* out, int depth) {
  if (!v || depth > kMaxDepth || !is_index_type(v->dtype) || v->shape.size() > 1) return false;
  std::vector<int64_t> c;
  if (constant_ints(v, &c)) {
    out->clear();
    for (int64_t x : c) out->push_back(PartialEntry{x, nullptr, -1});
    return true;
  }
  const Node* n = v->producer;
  bool ok = false;
  if (!n || n->outputs.size() != 1) {
    ok = false;
  } else if (n->op == "Shape") {
    const Dims& in = n->inputs[0]->shape;
    const int64_t rank = static_cast<int64_t>(in.size());
    auto clamp = [&](int64_t x) { return std::min(std::max(x < 0 ? x + rank : x, int64_t{0}), rank); };
    const int64_t start = clamp(n->attrs.i("start", 0)), end = clamp(n->attrs.i("end", rank));
    out->clear();
    for (int64_t i = start; i < end; ++i)
      out->push_back(PartialEntry{in[i] >= 0 ? std::optional<int64_t>(in[i]) : std::nullopt, n->inputs[0], i});
    ok = true;
  } else if (n->op == "Gather") {
    ok = walk_gather(*n, out, depth);
  } else if (n->op == "Slice") {
    ok = walk_slice(*n, out, depth);
  } else if (n->op == "DynamicSlice") {
    ok = walk_dynamic_slice(*n, out, depth);
  } else if (n->op == "Concatenation") {
    const int64_t axis = n->attrs.i("axis", 0);
    ok = axis == 0 || (axis == -1 && v->shape.size() == 1);
    out->clear();
    for (const Value* in : n->inputs) {
      PartialEntries part;
      ok = ok && walk(in, &part, depth + 1);
      out->insert(out->end(), part.begin(), part.end());
    }
  } else if (pass_through(*n) && !n->inputs.empty()) {
    ok = walk(n->inputs[0], out, depth + 1);
  }
  // The walk must agree with the value's declared element count (a stale or odd graph: say nothing). Where
  // it learned nothing, a known count still gives that many unknown entries (a Concatenation's piece
  // computed from the batch size).
  int64_t count;
  const bool counted = known_count(v, &count);
  if (ok && (!counted || count == static_cast<int64_t>(out->size()))) return true;
  if (!counted) return false;
  out->assign(static_cast<size_t>(count), PartialEntry{});
  return true;
}

}  // namespace

bool partial_entries(const Value* v, PartialEntries* out) { return walk(v, out, 0); }

namespace {

int64_t axis_of(const Node& n, size_t rank) {
  int64_t axis = n.attrs.i("axis", 0);
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

// Operand x of an elementwise node decides the output's dim d: its rank is the output's, and no other operand
// reaches d with a size other than 1 (the aligned dim absent, or a known 1).
bool decides_dim(const Node& n, const Value* x, int64_t d) {
  const size_t r = n.outputs[0]->shape.size();
  if (!x || x->shape.size() != r) return false;
  for (const Value* o : n.inputs) {
    if (!o || o == x) continue;
    const int64_t at = d - static_cast<int64_t>(r - o->shape.size());
    if (at >= 0 && o->shape[static_cast<size_t>(at)] != 1) return false;
  }
  return true;
}

// Every tensor whose dim d is v's dim d at run time through the layers from it to v (v included): up through
// a Split along another axis, a GEMM's rows and batch dims against a matrix, an elementwise op's operands that
// decide d, and shape-keeping layers.
void dim_keepers(const Value* v, int64_t d, int depth, std::vector<const Value*>* out) {
  if (std::find(out->begin(), out->end(), v) != out->end()) return;
  out->push_back(v);
  const Node* n = v->producer;
  if (!n || depth > kMaxDepth || n->inputs.empty() || !n->inputs[0] || d < 0 || d >= static_cast<int64_t>(v->shape.size()))
    return;
  const Value* in = n->inputs[0];
  const bool same_rank = in->shape.size() == v->shape.size();
  if (n->op == "Split") {
    if (same_rank && axis_of(*n, in->shape.size()) != d) dim_keepers(in, d, depth + 1, out);
    return;
  }
  if (n->op == "MatrixMultiply") {
    // Rows and batch dims of input 0 against a matrix (no batch dims of its own to broadcast).
    const int64_t r = static_cast<int64_t>(v->shape.size());
    const bool plain = n->attrs.i("op_a", 0) == 0 && n->inputs.size() > 1 && n->inputs[1] && n->inputs[1]->shape.size() <= 2;
    if (plain && same_rank && d < r - 1) dim_keepers(in, d, depth + 1, out);
    return;
  }
  if (n->op == "ElementWise") {
    for (const Value* x : n->inputs)
      if (decides_dim(*n, x, d)) dim_keepers(x, d, depth + 1, out);
    return;
  }
  static const char* const kShapeKeeping[] = {"Cast", "Activation", "Unary", "Identity", "Normalization", "SoftMax"};
  for (const char* op : kShapeKeeping)
    if (n->op == op && same_rank) dim_keepers(in, d, depth + 1, out);
}

}  // namespace

// a and b share dim d when some tensor keeps it for both: one is the other's ancestor (a projection of the
// tensor whose Shape is read), or both descend from it (the k and v outputs of one Split, GPT-2's v reshaped
// with the dims read from k's Shape).
bool same_dim_at_run_time(const Value* a, const Value* b, int64_t d) {
  if (!a || !b) return false;
  if (a == b) return true;
  std::vector<const Value*> from_a, from_b;
  dim_keepers(a, d, 0, &from_a);
  dim_keepers(b, d, 0, &from_b);
  for (const Value* v : from_a)
    if (std::find(from_b.begin(), from_b.end(), v) != from_b.end()) return true;
  return false;
}

bool all_known(const PartialEntries& p) {
  return std::all_of(p.begin(), p.end(), [](const PartialEntry& x) { return x.value.has_value(); });
}

}  // namespace kiln::ir
