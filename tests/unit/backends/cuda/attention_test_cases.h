// FusedAttention test cases shared by the CUDA attention tests (the op's kernel as registered, the GEMM path,
// the flash kernel): shapes, masks, attributes (storage layouts included), tolerances, and an environment
// override for one scope (KILN_ATTENTION forces a path).
#pragma once
#ifdef KILN_WITH_CUDA
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"
#include "ir/ops/fused_attention_format.h"

namespace kiln::cudatest {

struct AttentionCase {
  Dims q, k, v;
  Dims mask;  // empty: no mask
  bool causal = false;
  bool k_transposed = false;
  double scale = 0;        // 0: 1/sqrt(D)
  int neg_inf_row = -1;    // >= 0: that query row of the mask is all `masked_value` (the mask must have full Sq, Sk)
  float masked_value = -std::numeric_limits<float>::infinity();
  // Storage (ir/ops/fused_attention_format.h); q, k, v above are the stored shapes.
  int64_t layout[3] = {0, 0, 0};  // q, k, v: 0 heads-major, 1 tokens-major, 2 packed
  int64_t slot[3] = {0, 0, 0};
  int64_t out_layout = 0;
  bool one_tensor = false;  // k and v are q's tensor (a packed qkv feeding all three)
};

inline ir::AttentionFormat attention_format_of(const AttentionCase& c) {
  ir::AttentionFormat f;
  for (int t = 0; t < 3; ++t) {
    f.layout[t] = c.layout[t];
    f.slot[t] = c.slot[t];
  }
  f.out_layout = c.out_layout;
  f.k_transposed = c.k_transposed;
  return f;
}

inline std::string describe(const AttentionCase& c) {
  std::string d = "q " + dims_str(c.q) + " k " + dims_str(c.k) + " v " + dims_str(c.v) + " mask " + dims_str(c.mask) +
                  (c.causal ? " causal" : "") + (c.k_transposed ? " k_transposed" : "");
  if (c.layout[0] || c.layout[1] || c.layout[2] || c.out_layout)
    d += " layouts " + std::to_string(c.layout[0]) + "/" + std::to_string(c.layout[1]) + "/" + std::to_string(c.layout[2]) +
         " slots " + std::to_string(c.slot[0]) + "/" + std::to_string(c.slot[1]) + "/" + std::to_string(c.slot[2]) +
         " out " + std::to_string(c.out_layout);
  return d;
}

// BERT / GPT-2 as exported, read without their head Transposes: q [B, Sq, H, D], k [B, Sk, H, D],
// v [B, Sk, H, Dv] and the output [B, Sq, H, Dv] tokens-major.
inline AttentionCase tokens_major_case(int64_t B, int64_t H, int64_t Sq, int64_t Sk, int64_t D, Dims mask = {},
                                       bool causal = false) {
  AttentionCase c{{B, Sq, H, D}, {B, Sk, H, D}, {B, Sk, H, D}, std::move(mask), causal};
  c.layout[0] = c.layout[1] = c.layout[2] = 1;
  c.out_layout = 1;
  return c;
}

// ViT's packed qkv [B, S, 3, H, D], one tensor for q, k and v (slots 0, 1, 2), output tokens-major.
inline AttentionCase packed_case(int64_t B, int64_t H, int64_t S, int64_t D, Dims mask = {}) {
  const Dims p{B, S, 3, H, D};
  AttentionCase c{p, p, p, std::move(mask)};
  for (int t = 0; t < 3; ++t) {
    c.layout[t] = 2;
    c.slot[t] = t;
  }
  c.out_layout = 1;
  c.one_tensor = true;
  return c;
}

// nn.MultiheadAttention's in_proj output as torch 2.11 exports it: q, k, v packed sequence-first
// [S, B, 3, H, D] (layout 4, slots 0, 1, 2), output sequence-first [S, B, H, D] (layout 3).
inline AttentionCase seq_first_packed_case(int64_t B, int64_t H, int64_t S, int64_t D, Dims mask = {}) {
  AttentionCase c = packed_case(B, H, S, D, std::move(mask));
  c.q = c.k = c.v = Dims{S, B, 3, H, D};
  for (int t = 0; t < 3; ++t) c.layout[t] = 4;
  c.out_layout = 3;
  return c;
}

// Relative to max |reference|. Every path rounds P to float16/bfloat16 before P V.
inline double attention_tol(DataType dt, bool tf32 = false) {
  switch (dt) {
    case DataType::kFLOAT: return tf32 ? 5e-3 : 1e-4;
    case DataType::kHALF: return 5e-3;
    default: return 3e-2;
  }
}

inline HostTensor attention_mask(const AttentionCase& c, DataType dt) {
  HostTensor m = randf(c.mask, dt, 0.1, 2.0);
  if (c.neg_inf_row < 0) return m;
  const int64_t sk = c.mask.back(), sq = c.mask[c.mask.size() - 2];
  for (int64_t o = 0; o < volume(c.mask) / (sq * sk); ++o)
    for (int64_t j = 0; j < sk; ++j) {
      const int64_t idx = (o * sq + c.neg_inf_row) * sk + j;
      if (dt == DataType::kFLOAT) m.mutable_data<float>()[idx] = c.masked_value;
      else if (dt == DataType::kHALF) m.mutable_data<uint16_t>()[idx] = float_to_half(c.masked_value);
      else m.mutable_data<uint16_t>()[idx] = float_to_bf16(c.masked_value);
    }
  return m;
}

inline std::vector<HostTensor> attention_inputs(const AttentionCase& c, DataType dt, DataType mask_dt) {
  const HostTensor q = randf(c.q, dt);
  std::vector<HostTensor> in = {q, c.one_tensor ? q : randf(c.k, dt), c.one_tensor ? q : randf(c.v, dt)};
  if (!c.mask.empty()) in.push_back(attention_mask(c, mask_dt));
  return in;
}

inline void set_attention_attrs(ir::Attrs& a, const AttentionCase& c, bool tf32 = false) {
  a.set("scale", c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.q.back())));
  a.set("causal", int64_t{c.causal ? 1 : 0});
  ir::set_attention_format(a, attention_format_of(c));  // k_transposed and the layouts
  if (tf32) a.set("allow_tf32", int64_t{1});
}

}  // namespace kiln::cudatest

#endif  // KILN_WITH_CUDA
