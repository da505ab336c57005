// The op table: every IR op registers its name, arity and shape/type inference here. One file per op
// family under ir/ops/ registers its ops with KILN_REGISTER_OP. The contract of each op (inputs,
// attributes, semantics) is written in ir/OPS.md.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// What inference knows about one input or output: dtype, shape (-1 = unknown dim) and, when the
// tensor's contents are known at this point (a constant, or a small shape tensor computed on the host),
// its value.
struct TensorInfo {
  bool present = true;
  DataType dtype = DataType::kFLOAT;
  Dims shape;
  const HostTensor* value = nullptr;
  static TensorInfo absent() {  // an optional input left out
    TensorInfo t;
    t.present = false;
    return t;
  }
};

class InferContext {
 public:
  InferContext(const Node& node, std::vector<TensorInfo> in) : node_(node), in_(std::move(in)) {
    out_.resize(node.outputs.size());
  }
  const Node& node() const { return node_; }
  const Attrs& attrs() const { return node_.attrs; }
  size_t num_inputs() const { return in_.size(); }
  bool has_input(size_t i) const { return i < in_.size() && in_[i].present; }
  const TensorInfo& in(size_t i) const;  // throws when absent
  TensorInfo& out(size_t i) { return out_.at(i); }
  std::vector<TensorInfo>& outputs() { return out_; }
  // Convenience: sets output i.
  void set_out(size_t i, DataType dt, Dims shape);
  // Throws kiln::Error prefixed with the layer's name and op, e.g.
  // "layer 'conv1' (Convolution): input 0 must be 4-D, got [1, 3]".
  [[noreturn]] void fail(const std::string& msg) const;
  void check(bool cond, const std::string& msg) const {
    if (!cond) fail(msg);
  }

 private:
  const Node& node_;
  std::vector<TensorInfo> in_;
  std::vector<TensorInfo> out_;
};

using InferFn = void (*)(InferContext&);

struct OpDef {
  std::string name;
  int min_inputs = 0;
  int max_inputs = 0;       // -1: variadic
  int num_outputs = 1;      // -1: as many as the node has
  InferFn infer = nullptr;
};

void register_op(OpDef def);
const OpDef* find_op(const std::string& name);
std::vector<std::string> registered_ops();

// Runs the op's inference for `node` given its inputs; checks arity; returns the outputs' info.
std::vector<TensorInfo> infer_node(const Node& node, std::vector<TensorInfo> inputs);

// Normalizes a possibly negative axis for a tensor of `rank`; throws naming the layer when out of range.
int64_t normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank);

// Numpy-style broadcast of two shapes (-1 dims stay unknown unless the other side fixes them).
Dims broadcast_shapes(const InferContext& ctx, const Dims& a, const Dims& b);

}  // namespace kiln::ir

#define KILN_CAT2(a, b) a##b
#define KILN_CAT(a, b) KILN_CAT2(a, b)
#define KILN_REGISTER_OP(...) \
  static const bool KILN_CAT(kiln_op_registered_, __LINE__) = (::kiln::ir::register_op(__VA_ARGS__), true)
