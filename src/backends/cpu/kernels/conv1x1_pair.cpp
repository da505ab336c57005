// CPU kernel of Conv1x1Pair (ir/ops/conv1x1_pair.h): the CPU Convolution kernel run twice, on the pair's two
// halves as ir::conv1x1_pair_part makes them, y1 first and then y2 from y1 as stored. So the pair is the two
// Convolution nodes it replaced, bit for bit, and supports what they support (float32; the CPU runs a
// channels-last convolution as its NCHW twin between transposes). The GPU is where computing both at once pays.
//
// The Convolution kernel is found through the CPU kernel table (it registers itself from kernels/conv.cpp),
// so conv.cpp needs no second entry point.
#include <string>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL
#include "ir/ops/conv1x1_pair.h"

namespace kiln::cpu {
namespace {

// Runs one half; its errors ("layer 'conv_a' (Convolution): ...") are reported as the pair's, saying which half.
void run_half(KernelFn conv, KernelContext& pair, KernelContext& half, const char* which) {
  try {
    conv(half);
  } catch (const Error& e) {
    pair.fail(std::string(which) + " convolution: " + e.what());
  }
}

void k_conv1x1_pair(KernelContext& ctx) {
  const KernelFn conv = find_kernel("Convolution");
  if (!conv) ctx.fail("no CPU Convolution kernel is registered to run the pair's two convolutions");
  if (ctx.out.size() != 2) ctx.fail("expected 2 outputs (y1, y2), got " + std::to_string(ctx.out.size()));
  const TensorRef absent;
  auto in = [&](size_t i) -> const TensorRef& { return i < ctx.in.size() ? ctx.in[i] : absent; };
  using ir::kPairB1, ir::kPairB2, ir::kPairR1, ir::kPairW1, ir::kPairW2, ir::kPairX;

  const ir::Node first = ir::conv1x1_pair_part(ctx.node, 0);
  KernelContext a{first, {in(kPairX), in(kPairW1), in(kPairB1), in(kPairR1)}, {ctx.out[0]}, ctx.pool};
  run_half(conv, ctx, a, "first");

  TensorRef y1 = ctx.out[0];
  y1.present = true;  // an input now (runners may leave `present` unset on outputs)
  const ir::Node second = ir::conv1x1_pair_part(ctx.node, 1);
  KernelContext b{second, {y1, in(kPairW2), in(kPairB2)}, {ctx.out[1]}, ctx.pool};
  run_half(conv, ctx, b, "second");
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Conv1x1Pair", &k_conv1x1_pair);

}  // namespace kiln::cpu
