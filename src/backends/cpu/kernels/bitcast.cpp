// CPU kernel for BitCast: a byte copy (the output dtype has the input's width; Kiln tensors are
// little-endian in memory, as ONNX requires).
#include <cstring>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

void k_bitcast(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  if (x.nbytes() != ctx.out[0].nbytes()) ctx.fail("the output's size differs from the input's");
  if (x.nbytes()) std::memcpy(ctx.out[0].data, x.data, x.nbytes());
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("BitCast", &k_bitcast);

}  // namespace kiln::cpu
