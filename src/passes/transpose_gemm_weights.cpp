#include "passes/transpose_gemm_weights.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "passes/fusion_match.h"

namespace kiln::passes {

namespace {

// A MatrixMultiply whose B is a half-precision [K, N] constant of its own (see the header). User-set precision
// or output types (views::pinned) do not stop it, unlike MergeParallelGemms, which would fold a pinned layer
// into another node: here the node stays, computing and writing the types the user set, and only the order in
// which its weights are stored changes.
bool transposable(const ir::Node& n, const fusion::Uses& uses) {
  if (n.op != "MatrixMultiply" || n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1]) return false;
  const int64_t op_a = n.attrs.i("op_a", 0);
  if (n.attrs.i("op_b", 0) != 0 || (op_a != 0 && op_a != 1)) return false;
  const ir::Value* w = n.inputs[1];
  const HostTensor* t = ir::constant_value(w);
  if (!t || t->shape().size() != 2 || t->dtype() != n.inputs[0]->dtype) return false;
  if (t->dtype() != DataType::kHALF && t->dtype() != DataType::kBF16) return false;
  // A weight read elsewhere too (another GEMM, or this one as A) would be held twice: [K, N] and [N, K].
  return !w->is_output && uses.num_uses(w) == 1;
}

// w [k, n] transposed to [n, k]: 2-byte elements (transposable takes half types only), in 32 x 32 tiles so that
// both sides' lines stay in cache on large weights.
HostTensor transposed(const HostTensor& w) {
  static_assert(sizeof(uint16_t) == 2, "float16 and bfloat16 elements");
  const int64_t k = w.shape()[0], n = w.shape()[1];
  HostTensor out(w.dtype(), Dims{n, k});
  const auto* src = static_cast<const uint16_t*>(w.raw());
  auto* dst = static_cast<uint16_t*>(out.mutable_raw());
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < k; r0 += kTile)
    for (int64_t c0 = 0; c0 < n; c0 += kTile)
      for (int64_t c = c0; c < std::min(n, c0 + kTile); ++c)
        for (int64_t r = r0; r < std::min(k, r0 + kTile); ++r) dst[c * k + r] = src[r * n + c];
  return out;
}

}  // namespace

bool TransposeGemmWeights::run(ir::Graph& g) {
  const fusion::Uses uses(g);
  std::vector<ir::Node*> todo;  // collected first: add_constant grows the node list
  for (auto& n : g.nodes())
    if (transposable(*n, uses)) todo.push_back(n.get());
  if (todo.empty()) return false;
  std::unordered_set<const ir::Node*> doomed;
  for (ir::Node* n : todo) {
    ir::Node* old = n->inputs[1]->producer;
    const std::string base = old->name.empty() ? n->name : old->name;
    ir::Node* nk = g.add_constant(fusion::fresh_name(g, base + "/nk"), transposed(*ir::constant_value(n->inputs[1])));
    n->inputs[1] = nk->outputs[0];
    n->attrs.set("op_b", int64_t{1});
    doomed.insert(old);  // its only reader was this node, and it is no graph output (transposable)
  }
  g.remove_nodes_if([&](const ir::Node* n) { return doomed.count(n) > 0; });
  g.topo_sort();
  return true;
}

}  // namespace kiln::passes
