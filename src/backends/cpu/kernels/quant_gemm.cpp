// CPU kernels for MatMulInteger and ConvInteger (ir/OPS.md): exact integer products of int8/uint8 operands
// minus their zero points, accumulated in 64 bits and stored as int32 (wrapping like numpy's int32 matmul).
//
// Operands are first widened to int32 with the zero points subtracted, so the inner loops are plain
// multiply-adds; padding positions of ConvInteger contribute 0 (ONNX pads x - x_zero_point with zeros).
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "backends/cpu/kernels/quant_elem.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using Ints = std::vector<int64_t>;

// x - zero_point as int32, the zero point indexed by `zp_index(element)` (or 0 without one).
template <class ZpIndex>
std::vector<int32_t> widen(const TensorRef& x, const TensorRef* zp, ZpIndex&& zp_index) {
  std::vector<int32_t> v(static_cast<size_t>(x.numel()));
  std::vector<double> z = zp ? quant::load_all(*zp) : std::vector<double>{0.0};
  for (int64_t i = 0; i < x.numel(); ++i)
    v[i] = static_cast<int32_t>(quant::load(x.dtype, x.data, i)) - static_cast<int32_t>(z[z.size() == 1 ? 0 : zp_index(i)]);
  return v;
}

// ===================================== MatMulInteger ======================================================

void matmul_integer_kernel(KernelContext& ctx) {
  const TensorRef& a = ctx.input(0);
  const TensorRef& b = ctx.input(1);
  TensorRef& y = ctx.out[0];
  // numpy matmul: a vector a is [1, K], a vector b is [K, 1].
  Dims as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  if (bs[bs.size() - 2] != K) ctx.fail("inner dims differ: " + dims_str(a.shape) + " x " + dims_str(b.shape));
  // a's zero point is per row (dim -2 of a), b's per column (dim -1 of b).
  const std::vector<int32_t> A = widen(a, ctx.has_input(2) ? &ctx.in[2] : nullptr, [&](int64_t i) { return (i / K) % M; });
  const std::vector<int32_t> B = widen(b, ctx.has_input(3) ? &ctx.in[3] : nullptr, [&](int64_t i) { return i % N; });
  for (size_t i = 2; i < 4; ++i)
    if (ctx.has_input(i) && ctx.in[i].numel() != 1 && ctx.in[i].numel() != (i == 2 ? M : N))
      ctx.fail("zero point " + std::to_string(i) + " has " + std::to_string(ctx.in[i].numel()) + " elements, expected 1 or " +
               std::to_string(i == 2 ? M : N));
  // Batch dims broadcast: the offset of each output batch in a and b.
  const Dims ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const size_t nb = std::max(ab.size(), bb.size());
  Dims batch(nb, 1), sa(nb, 0), sb(nb, 0);
  int64_t stride_a = M * K, stride_b = K * N;
  for (size_t k = 0; k < nb; ++k) {
    const size_t d = nb - 1 - k;
    const int64_t da = k < ab.size() ? ab[ab.size() - 1 - k] : 1, db = k < bb.size() ? bb[bb.size() - 1 - k] : 1;
    batch[d] = std::max(da, db);
    sa[d] = da == 1 ? 0 : stride_a;
    sb[d] = db == 1 ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
  }
  const int64_t batches = volume(batch);
  int32_t* out = y.as<int32_t>();
  parallel_range(ctx.pool, batches * M, grain_for(K * N), [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> acc(static_cast<size_t>(N));
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t bi = r / M, m = r % M;
      int64_t oa = 0, ob = 0;
      for (int64_t d = static_cast<int64_t>(nb) - 1, rem = bi; d >= 0; --d) {
        const int64_t idx = rem % batch[d];
        rem /= batch[d];
        oa += idx * sa[d];
        ob += idx * sb[d];
      }
      std::fill(acc.begin(), acc.end(), 0);
      const int32_t* arow = A.data() + oa + m * K;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t av = arow[k];
        const int32_t* brow = B.data() + ob + k * N;
        for (int64_t n = 0; n < N; ++n) acc[n] += av * brow[n];
      }
      for (int64_t n = 0; n < N; ++n) out[r * N + n] = static_cast<int32_t>(acc[n]);
    }
  });
}

// ====================================== ConvInteger =======================================================

enum PaddingMode : int64_t { kRoundDown = 0, kRoundUp = 1, kSameUpper = 2, kSameLower = 3 };

Ints spatial_attr(const KernelContext& ctx, const char* name, size_t nsp, int64_t def) {
  Ints v = ctx.attrs().ints(name);
  if (v.empty()) return Ints(nsp, def);
  if (v.size() != nsp) ctx.fail(std::string("'") + name + "' has " + std::to_string(v.size()) + " values, expected " + std::to_string(nsp));
  return v;
}

void conv_integer_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& w = ctx.input(1);
  TensorRef& y = ctx.out[0];
  const size_t nsp = x.shape.size() - 2;
  if (x.shape.size() < 3 || nsp > 3) ctx.fail("expected 1 to 3 spatial dims, got input " + dims_str(x.shape));
  const int64_t N = x.shape[0], C = x.shape[1], Kout = y.shape[1], groups = ctx.attrs().i("groups", 1);
  if (groups < 1 || C % groups != 0 || Kout % groups != 0 || w.shape[1] * groups != C)
    ctx.fail("channels " + std::to_string(C) + " / weights " + dims_str(w.shape) + " do not fit groups " + std::to_string(groups));
  // Spatial dims padded to 3 (leading 1s) so one loop nest covers 1-D to 3-D.
  Ints in(3, 1), ker(3, 1), out(3, 1), stride(3, 1), dil(3, 1), pad(3, 0);
  const Ints st = spatial_attr(ctx, "stride", nsp, 1), dl = spatial_attr(ctx, "dilation", nsp, 1);
  const Ints pre = spatial_attr(ctx, "pre_padding", nsp, 0);
  const int64_t mode = ctx.attrs().i("padding_mode", kRoundDown);
  for (size_t i = 0; i < nsp; ++i) {
    const size_t d = 3 - nsp + i;
    in[d] = x.shape[2 + i];
    ker[d] = w.shape[2 + i];
    out[d] = y.shape[2 + i];
    stride[d] = st[i];
    dil[d] = dl[i];
    pad[d] = pre[i];
    if (mode == kSameUpper || mode == kSameLower) {  // out = ceil(in / stride); the odd pixel at the end for UPPER
      const int64_t total = std::max<int64_t>(0, (out[d] - 1) * stride[d] + dil[d] * (ker[d] - 1) + 1 - in[d]);
      pad[d] = mode == kSameUpper ? total / 2 : total - total / 2;
    }
  }
  const int64_t Cg = C / groups, Kg = Kout / groups;
  const int64_t in_sp = in[0] * in[1] * in[2], out_sp = out[0] * out[1] * out[2], ker_sp = ker[0] * ker[1] * ker[2];
  // x's zero point is one value; w's one value or one per output channel.
  const std::vector<int32_t> X = widen(x, ctx.has_input(2) ? &ctx.in[2] : nullptr, [](int64_t) { return int64_t{0}; });
  const std::vector<int32_t> W = widen(w, ctx.has_input(3) ? &ctx.in[3] : nullptr, [&](int64_t i) { return i / (Cg * ker_sp); });
  if (ctx.has_input(3) && ctx.in[3].numel() != 1 && ctx.in[3].numel() != Kout)
    ctx.fail("w_zero_point has " + std::to_string(ctx.in[3].numel()) + " elements, expected 1 or " + std::to_string(Kout));
  int32_t* ys = y.as<int32_t>();
  parallel_range(ctx.pool, N * Kout, grain_for(out_sp * Cg * ker_sp), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / Kout, k = t % Kout, g = k / Kg;
      const int32_t* wk = W.data() + k * Cg * ker_sp;
      const int32_t* xg = X.data() + (n * C + g * Cg) * in_sp;
      int32_t* yk = ys + t * out_sp;
      for (int64_t o0 = 0; o0 < out[0]; ++o0)
        for (int64_t o1 = 0; o1 < out[1]; ++o1)
          for (int64_t o2 = 0; o2 < out[2]; ++o2) {
            int64_t acc = 0;
            for (int64_t c = 0; c < Cg; ++c) {
              const int32_t* xc = xg + c * in_sp;
              const int32_t* wc = wk + c * ker_sp;
              for (int64_t k0 = 0; k0 < ker[0]; ++k0) {
                const int64_t i0 = o0 * stride[0] - pad[0] + k0 * dil[0];
                if (i0 < 0 || i0 >= in[0]) continue;
                for (int64_t k1 = 0; k1 < ker[1]; ++k1) {
                  const int64_t i1 = o1 * stride[1] - pad[1] + k1 * dil[1];
                  if (i1 < 0 || i1 >= in[1]) continue;
                  const int32_t* xrow = xc + (i0 * in[1] + i1) * in[2];
                  const int32_t* wrow = wc + (k0 * ker[1] + k1) * ker[2];
                  for (int64_t k2 = 0; k2 < ker[2]; ++k2) {
                    const int64_t i2 = o2 * stride[2] - pad[2] + k2 * dil[2];
                    if (i2 >= 0 && i2 < in[2]) acc += static_cast<int64_t>(xrow[i2]) * wrow[k2];
                  }
                }
              }
            }
            yk[(o0 * out[1] + o1) * out[2] + o2] = static_cast<int32_t>(acc);
          }
    }
  });
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("MatMulInteger", &matmul_integer_kernel);
KILN_REGISTER_CPU_KERNEL("ConvInteger", &conv_integer_kernel);

}  // namespace kiln::cpu
