// CPU kernel for RotaryEmbedding (RoPE): each head vector's first R elements are rotated as R/2 complex
// pairs by the angle whose cos/sin the caches hold for the token's position; the rest is copied. Pairs are
// (i, i + R/2) by default, (2i, 2i + 1) when interleaved.
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range, grain_for
#include "ir/op_registry.h"                  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

template <class T>
void rotary(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const T* xs = x.as<T>();
  const T* cs = ctx.input(1).as<T>();
  const T* ss = ctx.input(2).as<T>();
  T* ys = ctx.out[0].as<T>();
  const bool four_d = x.shape.size() == 4;
  const int64_t batch = x.shape[0];
  const int64_t heads = four_d ? x.shape[1] : ctx.attrs().i("num_heads", 0);
  const int64_t seq = four_d ? x.shape[2] : x.shape[1];
  const int64_t head = four_d ? x.shape[3] : x.shape[2] / heads;
  const int64_t rot = ctx.attrs().i("rotary_dim", 0) ? ctx.attrs().i("rotary_dim", 0) : head;
  const int64_t half = rot / 2;
  const bool interleaved = ctx.attrs().i("interleaved", 0) != 0;
  const bool has_pos = ctx.has_input(3);
  const int64_t max_pos = has_pos ? ctx.input(1).shape[0] : 0;
  if (ctx.input(1).shape.back() != half) ctx.fail("the caches do not end in rotary_dim/2 = " + std::to_string(half));
  if (has_pos && (ctx.input(3).shape[0] != batch || ctx.input(3).shape[1] != seq))
    ctx.fail("position_ids " + dims_str(ctx.input(3).shape) + " must be [" + std::to_string(batch) + ", " + std::to_string(seq) + "]");
  if (!has_pos && (ctx.input(1).shape[0] != batch || ctx.input(1).shape[1] != seq))
    ctx.fail("the caches " + dims_str(ctx.input(1).shape) + " must start with [batch, seq] = [" + std::to_string(batch) +
             ", " + std::to_string(seq) + "]");
  // Cache row of each (b, s), checked once.
  std::vector<int64_t> row(static_cast<size_t>(batch * seq));
  for (int64_t bs = 0; bs < batch * seq; ++bs) {
    row[bs] = bs;
    if (has_pos) {
      row[bs] = ctx.input(3).get_i64(bs);
      if (row[bs] < 0 || row[bs] >= max_pos)
        ctx.fail("position id " + std::to_string(row[bs]) + " is outside the caches' " + std::to_string(max_pos) + " rows");
    }
  }
  parallel_range(ctx.pool, batch * heads * seq, grain_for(head), [&](int64_t b0, int64_t e0) {
    for (int64_t v = b0; v < e0; ++v) {  // v enumerates (b, h, s)
      const int64_t s = v % seq, h = (v / seq) % heads, b = v / (seq * heads);
      const int64_t off = four_d ? ((b * heads + h) * seq + s) * head : ((b * seq + s) * heads + h) * head;
      const T* c = cs + row[b * seq + s] * half;
      const T* sn = ss + row[b * seq + s] * half;
      const T* in = xs + off;
      T* out = ys + off;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
        const T x1 = in[i1], x2 = in[i2];
        out[i1] = c[i] * x1 - sn[i] * x2;
        out[i2] = sn[i] * x1 + c[i] * x2;
      }
      for (int64_t d = rot; d < head; ++d) out[d] = in[d];
    }
  });
}

void k_rotary(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return rotary<float>(ctx);
    case DataType::kDOUBLE: return rotary<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("RotaryEmbedding", &k_rotary);

}  // namespace kiln::cpu
