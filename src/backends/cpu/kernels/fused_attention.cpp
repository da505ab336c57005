// CPU kernel for FusedAttention, the reference the CUDA kernel is tested against: per (batch, head) and block
// of 64 query rows, scores = scale * q @ k^T with cpu::sgemm, plus the mask and the causal -inf, a stable
// softmax per row (a row with no finite score gives probabilities 0, so an output row of 0), then P @ v with
// sgemm. float16/bfloat16 tensors are converted to float32 first; everything computes in float32. The
// matrices are read and written through the layout's strides (fused_attention_layout.h): sgemm's leading
// dimensions are the row strides, so tokens-major and packed tensors need no copy.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range, grain_for
#include "backends/fused_attention_layout.h"
#include "ir/host_tensor.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

// A float32 view of a float tensor: the data itself, or a converted copy in buf.
const float* as_f32(const KernelContext& ctx, const TensorRef& t, std::vector<float>& buf) {
  if (t.dtype == DataType::kFLOAT) return t.as<float>();
  if (t.dtype != DataType::kHALF && t.dtype != DataType::kBF16)
    ctx.fail(std::string("the CPU kernel supports float32, float16 and bfloat16, got ") + dtype_name(t.dtype));
  const uint16_t* s = t.as<uint16_t>();
  buf.resize(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) buf[i] = t.dtype == DataType::kHALF ? half_to_float(s[i]) : bf16_to_float(s[i]);
  return buf.data();
}

void fused_attention_kernel(KernelContext& ctx) {
  const TensorRef& q = ctx.input(0);
  const TensorRef& k = ctx.input(1);
  const TensorRef& v = ctx.input(2);
  const bool has_mask = ctx.has_input(3);
  AttentionLayout L;
  const std::string err =
      attention_layout(q.shape, k.shape, v.shape, has_mask ? &ctx.input(3).shape : nullptr, ctx.attrs(), &L);
  if (!err.empty()) ctx.fail(err);
  const float scale = static_cast<float>(ctx.attrs().f("scale", 1.0));
  const bool causal = ctx.attrs().i("causal", 0) != 0;
  const TensorRef& out = ctx.out[0];
  if (out.numel() == 0) return;

  std::vector<float> qb, kb, vb, mb, ob;
  // A packed tensor feeds q, k and v: converted once. The offsets select each one's slot.
  auto same = [](const TensorRef& a, const TensorRef& b) { return a.data == b.data && a.numel() == b.numel(); };
  const float* qs = as_f32(ctx, q, qb);
  const float* ks = same(k, q) ? qs : as_f32(ctx, k, kb);
  const float* vs = same(v, q) ? qs : same(v, k) ? ks : as_f32(ctx, v, vb);
  qs += L.q_off;
  ks += L.k_off;
  vs += L.v_off;
  const float* ms = has_mask ? as_f32(ctx, ctx.input(3), mb) : nullptr;
  float* os = out.dtype == DataType::kFLOAT ? out.as<float>() : (ob.resize(static_cast<size_t>(out.numel())), ob.data());

  const int64_t Sq = L.Sq, Sk = L.Sk, D = L.D, Dv = L.Dv, off = Sk - Sq;
  constexpr int64_t kRows = 64;
  const int64_t nqb = (Sq + kRows - 1) / kRows;
  const float ninf = -std::numeric_limits<float>::infinity();
  parallel_range(ctx.pool, L.B * L.H * nqb, grain_for(kRows * std::max<int64_t>(1, Sk) * (D + Dv + 8)),
                 [&](int64_t lo, int64_t hi) {
    std::vector<float> S(static_cast<size_t>(kRows * std::max<int64_t>(Sk, 1)));
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t bh = t / nqb, i0 = (t % nqb) * kRows;
      const int64_t b = bh / L.H, h = bh % L.H;
      const int64_t rows = std::min(kRows, Sq - i0);
      const float* qp = qs + b * L.q_sb + h * L.q_sh + i0 * L.q_ss;
      const float* kp = ks + b * L.k_sb + h * L.k_sh;
      const float* vp = vs + b * L.v_sb + h * L.v_sh;
      float* op = os + b * L.o_sb + h * L.o_sh + i0 * L.o_ss;
      if (Sk == 0) {
        for (int64_t r = 0; r < rows; ++r) std::fill(op + r * L.o_ss, op + r * L.o_ss + Dv, 0.0f);
        continue;
      }
      if (D > 0) sgemm(false, !L.k_transposed, rows, Sk, D, scale, qp, L.q_ss, kp, L.k_ss, 0.0f, S.data(), Sk, nullptr);
      else std::fill(S.begin(), S.begin() + rows * Sk, 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        float* s = S.data() + r * Sk;
        if (ms) {
          const float* mrow = ms + b * L.m_sb + h * L.m_sh + i * L.m_si;
          for (int64_t j = 0; j < Sk; ++j) s[j] += mrow[j * L.m_sj];
        }
        if (causal)
          for (int64_t j = std::max<int64_t>(0, i + off + 1); j < Sk; ++j) s[j] = ninf;
        float mx = ninf;
        for (int64_t j = 0; j < Sk; ++j) mx = s[j] > mx ? s[j] : mx;
        if (mx == ninf) {  // no visible key: probabilities 0, output row 0
          std::fill(s, s + Sk, 0.0f);
          continue;
        }
        double sum = 0.0;
        for (int64_t j = 0; j < Sk; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < Sk; ++j) s[j] *= inv;
      }
      if (Dv > 0) sgemm(false, false, rows, Dv, Sk, 1.0f, S.data(), Sk, vp, L.v_ss, 0.0f, op, L.o_ss, nullptr);
    }
  });
  if (out.dtype != DataType::kFLOAT) {
    uint16_t* dst = out.as<uint16_t>();
    for (int64_t i = 0; i < out.numel(); ++i) dst[i] = out.dtype == DataType::kHALF ? float_to_half(os[i]) : float_to_bf16(os[i]);
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("FusedAttention", &fused_attention_kernel);

}  // namespace kiln::cpu
