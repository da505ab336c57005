// CPU kernel for SpaceToDepthNhwc (ir/OPS.md): the reference the CUDA kernel is tested against, and what CPU
// engines built with the GPU target's passes (KILN_CPU_RUNS_GPU_PIPELINE) run. Moving elements is
// dtype-generic (copies of dtype_size bytes; zero bytes are 0 in every type); a float32 input with a
// float16/bfloat16 output (attribute 'output_dtype', passes/fold_space_to_depth_cast.h) converts each element
// with the CPU Cast kernel's own helpers (float_to_half / float_to_bf16: round to nearest even), so the
// result is bit-identical to a Cast followed by the op.
#include <cstring>

#include "backends/cpu/kernel.h"
#include "backends/space_to_depth_nhwc_geometry.h"
#include "ir/host_tensor.h"  // float_to_half, float_to_bf16
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

// Fills output rows [begin, end) (a row: (n, t), U pixels of C_out channels): zeros, then the blocks'
// elements. move(y_index, x_index) writes one element.
template <class Move>
void fill_rows(const SpaceToDepthGeometry& g, int64_t begin, int64_t end, size_t out_size, char* dst, Move move) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / g.T, t = r % g.T;
    const int64_t row = r * g.U * g.C_out;
    std::memset(dst + static_cast<size_t>(row) * out_size, 0, static_cast<size_t>(g.U * g.C_out) * out_size);
    for (int64_t u = 0; u < g.U; ++u)
      for (int64_t qh = 0; qh < g.s; ++qh) {
        const int64_t h = t * g.s + qh - g.pre_h;
        if (h < 0 || h >= g.H) continue;
        for (int64_t qw = 0; qw < g.s; ++qw) {
          const int64_t w = u * g.s + qw - g.pre_w;
          if (w < 0 || w >= g.W) continue;
          for (int64_t c = 0; c < g.C; ++c)
            move(row + u * g.C_out + (qh * g.s + qw) * g.C + c, ((n * g.C + c) * g.H + h) * g.W + w);
        }
      }
  }
}

void k_space_to_depth_nhwc(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  SpaceToDepthGeometry g;
  const std::string bad = space_to_depth_geometry(ctx.attrs(), x.shape, x.dtype, y.shape, y.dtype, &g);
  if (!bad.empty()) ctx.fail(bad);
  const bool convert = x.dtype != y.dtype;
  const size_t es = dtype_size(x.dtype), out_size = dtype_size(y.dtype);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(y.data);
  auto rows = [&](int64_t begin, int64_t end) {
    if (!convert) {
      fill_rows(g, begin, end, out_size, dst, [&](int64_t yi, int64_t xi) {
        std::memcpy(dst + static_cast<size_t>(yi) * es, src + static_cast<size_t>(xi) * es, es);
      });
      return;
    }
    const float* xf = reinterpret_cast<const float*>(src);
    uint16_t* y16 = reinterpret_cast<uint16_t*>(dst);
    if (y.dtype == DataType::kHALF)
      fill_rows(g, begin, end, out_size, dst, [&](int64_t yi, int64_t xi) { y16[yi] = float_to_half(xf[xi]); });
    else
      fill_rows(g, begin, end, out_size, dst, [&](int64_t yi, int64_t xi) { y16[yi] = float_to_bf16(xf[xi]); });
  };
  const int64_t n_rows = g.N * g.T;
  if (ctx.pool && n_rows > 1) ctx.pool->parallel_for(n_rows, 1, rows);
  else rows(0, n_rows);
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("SpaceToDepthNhwc", &k_space_to_depth_nhwc);

}  // namespace kiln::cpu
