// A Convolution node and a KernelContext over it whose tensors sit at fake, device-like addresses (never
// dereferenced): what the eligibility checks of Kiln's own convolution paths read (the cuBLASLt GEMM path,
// the narrow-input kernel), tested without a GPU.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backends/cuda/kernel.h"
#include "ir/graph.h"

namespace kiln::cudatest {

struct FakeConvNode {
  ir::Graph g;
  ir::Node* node = nullptr;
  cuda::Resources res;
  std::unique_ptr<cuda::KernelContext> ctx;

  // x, w, [bias [K]], [residual of y's shape] and y of dtype dt, at base + 0x100000 * i for i = 0..4 (16-byte
  // aligned for an aligned base); `attrs` sets the node's attributes.
  FakeConvNode(DataType dt, const Dims& x, const Dims& w, const Dims& y, bool bias, bool residual,
               const std::function<void(ir::Attrs&)>& attrs, uintptr_t base = 0x10000) {
    const int64_t k = w[0];
    std::vector<ir::Value*> vals = {g.add_input("x", dt, x), g.add_input("w", dt, w)};
    if (bias || residual) vals.push_back(bias ? g.add_input("b", dt, {k}) : nullptr);
    if (residual) vals.push_back(g.add_input("r", dt, y));
    node = g.add_node("Convolution", "conv", vals, 1);
    attrs(node->attrs);
    ctx = std::make_unique<cuda::KernelContext>(cuda::KernelContext{*node, {}, {}, res});
    auto at = [&](int i) { return reinterpret_cast<void*>(base + 0x100000 * i); };
    ctx->in.push_back(cuda::TensorRef{true, dt, x, at(0), nullptr});
    ctx->in.push_back(cuda::TensorRef{true, dt, w, at(1), nullptr});
    if (bias || residual) ctx->in.push_back(bias ? cuda::TensorRef{true, dt, {k}, at(2), nullptr} : cuda::TensorRef{});
    if (residual) ctx->in.push_back(cuda::TensorRef{true, dt, y, at(3), nullptr});
    ctx->out.push_back(cuda::TensorRef{true, dt, y, at(4), nullptr});
  }
};

}  // namespace kiln::cudatest
