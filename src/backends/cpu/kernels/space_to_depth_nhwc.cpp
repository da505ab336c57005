// CPU kernel for SpaceToDepthNhwc (ir/OPS.md): the reference the CUDA kernel is tested against, and what CPU
// engines built with the GPU target's passes (KILN_CPU_RUNS_GPU_PIPELINE) run. It only moves elements, so it
// is dtype-generic (copies of dtype_size bytes; zero bytes are 0 in every type).
#include <cstring>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

void k_space_to_depth_nhwc(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  const int64_t s = ctx.attrs().i("block", 0);
  const std::vector<int64_t> pre = ctx.attrs().ints("pre_padding");
  if (x.shape.size() != 4 || y.shape.size() != 4 || s < 1 || pre.size() != 2)
    ctx.fail("expected a 4-D input and output, 'block' >= 1 and 2 'pre_padding' values");
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t T = y.shape[1], U = y.shape[2], C_out = y.shape[3];
  if (C_out < C * s * s)
    ctx.fail("output channels " + std::to_string(C_out) + " cannot hold the " + std::to_string(C * s * s) +
             " of the blocks");
  const size_t es = dtype_size(x.dtype);
  const auto* src = static_cast<const char*>(x.data);
  auto* dst = static_cast<char*>(y.data);
  // One task per output row (n, t): U pixels of C_out channels, zero-filled, then the blocks' elements.
  auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / T, t = r % T;
      char* row = dst + static_cast<size_t>(r * U * C_out) * es;
      std::memset(row, 0, static_cast<size_t>(U * C_out) * es);
      for (int64_t u = 0; u < U; ++u)
        for (int64_t qh = 0; qh < s; ++qh) {
          const int64_t h = t * s + qh - pre[0];
          if (h < 0 || h >= H) continue;
          for (int64_t qw = 0; qw < s; ++qw) {
            const int64_t w = u * s + qw - pre[1];
            if (w < 0 || w >= W) continue;
            for (int64_t c = 0; c < C; ++c)
              std::memcpy(row + static_cast<size_t>(u * C_out + (qh * s + qw) * C + c) * es,
                          src + static_cast<size_t>(((n * C + c) * H + h) * W + w) * es, es);
          }
        }
    }
  };
  const int64_t n_rows = N * T;
  if (ctx.pool && n_rows > 1) ctx.pool->parallel_for(n_rows, 1, rows);
  else rows(0, n_rows);
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("SpaceToDepthNhwc", &k_space_to_depth_nhwc);

}  // namespace kiln::cpu
