// CPU kernel for Bitwise: AND / OR / XOR (numpy broadcasting) and NOT on integer tensors. The ops act on
// raw bits, so one instantiation per element width (1, 2, 4, 8 bytes) serves signed and unsigned types.
#include <cstdint>
#include <string>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

template <class U>
void bitwise(KernelContext& ctx, int64_t op) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  const U* as = a.as<U>();
  U* ys = y.as<U>();
  if (op == 3) {
    parallel_range(ctx.pool, y.numel(), kParallelGrainElems, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ys[i] = static_cast<U>(~as[i]);
    });
    return;
  }
  const TensorRef& b = ctx.input(1);
  const U* bs = b.as<U>();
  const BroadcastPlan plan = make_broadcast_plan(y.shape, {&a.shape, &b.shape});
  const int64_t sa = plan.inner_stride[0], sb = plan.inner_stride[1];
  broadcast_parallel(ctx.pool, plan, kParallelGrainElems, [&](int64_t o, const int64_t* off, int64_t len) {
    const U* pa = as + off[0];
    const U* pb = bs + off[1];
    U* py = ys + o;
    for (int64_t k = 0; k < len; ++k) {
      const U x = pa[k * sa], z = pb[k * sb];
      py[k] = static_cast<U>(op == 0 ? (x & z) : op == 1 ? (x | z) : (x ^ z));
    }
  });
}

void k_bitwise(KernelContext& ctx) {
  const int64_t op = ctx.attrs().i("op", 0);
  if (op < 0 || op > 3) ctx.fail("unknown op " + std::to_string(op));
  switch (dtype_size(ctx.input(0).dtype)) {
    case 1: return bitwise<uint8_t>(ctx, op);
    case 2: return bitwise<uint16_t>(ctx, op);
    case 4: return bitwise<uint32_t>(ctx, op);
    case 8: return bitwise<uint64_t>(ctx, op);
    default: ctx.fail(std::string("unsupported dtype ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Bitwise", &k_bitwise);

}  // namespace kiln::cpu
