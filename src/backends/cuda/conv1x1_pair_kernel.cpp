// The CUDA kernel of the Conv1x1Pair op (ir/ops/conv1x1_pair.h): Kiln's fused kernel
// (kernels/conv1x1_pair_mma.h), whose conditions are the op's `supports` predicate, so the fusion pass only
// makes pairs it can run. Where a run's addresses are not aligned for its 16-byte accesses (a caller's
// buffer bound as an output), the pair runs as its two Convolutions through the Convolution kernel instead:
// slower, never wrong.
#include <memory>
#include <string>

#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/conv1x1_pair_mma.h"
#include "ir/ops/conv1x1_pair.h"

namespace kiln::cuda {

namespace {

// The two Convolution nodes the pair stands for, made at the node's first unaligned run and kept: the
// Convolution kernel keeps its own per-node state (its chosen path) under their addresses.
struct PairParts {
  std::unique_ptr<ir::Node> first, second;
};

void run_as_two_convolutions(KernelContext& ctx) {
  auto& parts = node_state<PairParts>(ctx);
  if (!parts.first) {
    parts.first = std::make_unique<ir::Node>(ir::conv1x1_pair_part(ctx.node, 0));
    parts.second = std::make_unique<ir::Node>(ir::conv1x1_pair_part(ctx.node, 1));
  }
  const KernelFn conv = find_kernel("Convolution");
  if (!conv) ctx.fail("no Convolution kernel to run the pair's unaligned case with");
  // Inputs past the node's last are absent (the op allows leaving b2 off).
  auto input = [&](size_t i) { return ctx.has_input(i) ? ctx.in[i] : TensorRef{}; };
  KernelContext first{*parts.first, {input(0), input(1), input(2), input(3)}, {ctx.out[0]}, ctx.res};
  // Only the pair's last kernel may let the kernel after the pair start early.
  const bool may_start = ctx.res.next_kernel_may_start;
  ctx.res.next_kernel_may_start = false;
  conv(first);
  ctx.res.next_kernel_may_start = may_start;
  TensorRef y1 = ctx.out[0];
  y1.host = nullptr;
  KernelContext second{*parts.second, {y1, input(4), input(5), TensorRef{}}, {ctx.out[1]}, ctx.res};
  conv(second);
}

void k_conv1x1_pair(KernelContext& ctx) {
  if (conv1x1_pair_aligned(ctx)) return enqueue_conv1x1_pair(ctx);
  run_as_two_convolutions(ctx);
}

bool supports_conv1x1_pair(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs) {
  return conv1x1_pair_fits(node, inputs, nullptr);
}

}  // namespace

KILN_REGISTER_CUDA_KERNEL("Conv1x1Pair", &k_conv1x1_pair, &supports_conv1x1_pair);

}  // namespace kiln::cuda
