#include "runtime/view_layers.h"

#include "runtime/block_views.h"

namespace kiln {

namespace {

// Whether permuting a tensor by `perm` (permuted[i] = dims_of(perm[i])) keeps its row-major bytes: true
// when the dims of size other than 1 keep their relative order. `permuted` is the shape after the
// permutation; an empty permutation is the identity.
bool keeps_row_major_order(const std::vector<int64_t>& perm, const Dims& permuted) {
  if (perm.empty()) return true;
  if (perm.size() != permuted.size()) return false;  // shape inference rejects this; never alias on doubt
  int64_t previous = -1;
  for (size_t i = 0; i < perm.size(); ++i) {
    if (permuted[i] == 1) continue;
    if (perm[i] < previous) return false;
    previous = perm[i];
  }
  return true;
}

// A Shuffle is transpose2(reshape(transpose1(x))): a reshape never moves bytes, so it is a view when both
// transposes keep the row-major order. transpose1's result is x's shape permuted; transpose2's is the
// output's shape.
bool shuffle_keeps_bytes(const ir::Node& n, const Dims& in, const Dims& out) {
  std::vector<int64_t> first = n.attrs.ints("first_transpose"), second = n.attrs.ints("second_transpose");
  Dims transposed;
  if (!first.empty()) {
    if (first.size() != in.size()) return false;
    for (int64_t p : first) {
      if (p < 0 || p >= static_cast<int64_t>(in.size())) return false;
      transposed.push_back(in[p]);
    }
  }
  return keeps_row_major_order(first, transposed) && keeps_row_major_order(second, out);
}

}  // namespace

bool is_view_layer(const ir::Node& n, const ShapeAnalysis& shapes) {
  const bool shuffle = n.op == "Shuffle";
  if (!shuffle && n.op != "Identity" && n.op != "Squeeze" && n.op != "Unsqueeze") return false;
  if (n.inputs.empty() || !n.inputs[0] || n.outputs.size() != 1) return false;
  const ir::TensorInfo& in = shapes.info[n.inputs[0]->id];
  const ir::TensorInfo& out = shapes.info[n.outputs[0]->id];
  // Same dtype and element count: the same bytes (Identity with another output dtype would be a cast).
  if (in.dtype != out.dtype || !dims_known(in.shape) || !dims_known(out.shape)) return false;
  if (volume(in.shape) != volume(out.shape)) return false;
  return !shuffle || shuffle_keeps_bytes(n, in.shape, out.shape);
}

std::optional<std::vector<int64_t>> view_offsets(const ir::Node& n, const ShapeAnalysis& shapes) {
  if (is_view_layer(n, shapes)) return std::vector<int64_t>{0};
  return block_view_offsets(n, shapes);
}

}  // namespace kiln
