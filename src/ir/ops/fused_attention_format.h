// How FusedAttention's q, k, v and output are stored: the attributes `q_layout`, `k_layout`, `v_layout`,
// `out_layout`, `q_slot`, `k_slot`, `v_slot` and `k_transposed` (contract: ir/OPS.md). Shared by shape
// inference, the fuse-attention pass and the kernels (backends/fused_attention_layout.h turns it into strides).
//
// Attention works on one matrix per (batch, head) and tensor: q [Sq, D], k [Sk, D] (K^T [D, Sk] with
// k_transposed), v [Sk, Dv], out [Sq, Dv]. A layout says where the batch, head, row and column dims sit in the
// stored tensor:
//   0 heads-major  [B, H, S, X], or 3-D [N, S, X]: what the unfused MatMuls compute on (the default)
//   1 tokens-major [B, S, H, X], or 3-D [S, N, X]: a projection as exporters reshape it, before their head
//                  Transpose (nn.MultiheadAttention's [S, B*H, D] for 3-D); reading it directly makes that
//                  Transpose (and the one back after attention) unnecessary
//   2 packed       [B, S, N, H, X]: N projections side by side (ViT's fused qkv); the input reads its `slot`
//                  of N, so one tensor feeds q, k and v without the Transpose and Gathers that split it
//   3 sequence-first tokens-major [S, B, H, X]: nn.MultiheadAttention's projections, which it computes on
//                  [S, B, E] (torch transposes batch-first inputs to sequence-first before attention)
//   4 sequence-first packed [S, B, N, H, X]: nn.MultiheadAttention's in_proj output, q, k and v side by side
// The column dim X is always the last and contiguous. The output takes layouts 0, 1 and 3. A 3-D form's one
// batch dim N plays the head dim's role (as in [1, N, S, X]): a mask then broadcasts against the scores
// [N, Sq, Sk] as it would against the unfused MatMul's. Inputs are all 3-D or all 4-D (packed: 5-D).
#pragma once
#include <cstdint>
#include <string>

#include "ir/attrs.h"
#include "kiln/types.h"

namespace kiln::ir {

enum AttentionTensorLayout : int64_t {
  kAttnHeadsMajor = 0,
  kAttnTokensMajor = 1,
  kAttnPacked = 2,
  kAttnSeqFirstTokens = 3,
  kAttnSeqFirstPacked = 4,
};

// Layouts that hold N projections side by side, read through a slot.
inline bool attention_layout_packed(int64_t layout) { return layout == kAttnPacked || layout == kAttnSeqFirstPacked; }

// Positions of the logical dims in a stored tensor; -1 where the layout has none (size 1).
struct AttentionAxes {
  int b = -1, h = -1, rows = -1, cols = -1, slot = -1;
};

struct AttentionFormat {
  int64_t layout[3] = {kAttnHeadsMajor, kAttnHeadsMajor, kAttnHeadsMajor};  // q, k, v
  int64_t slot[3] = {0, 0, 0};                                              // with kAttnPacked
  int64_t out_layout = kAttnHeadsMajor;
  bool k_transposed = false;
};

// The format a node's attributes describe (absent attributes: the defaults; not validated here).
AttentionFormat attention_format(const Attrs& a);
// Writes the format's attributes; the layout and slot ones only where they differ from the default, so that
// nodes in the default format keep the attributes they always had.
void set_attention_format(Attrs& a, const AttentionFormat& f);

// Where the dims of a tensor of `rank` dims stored in `layout` are: "" or why that rank does not fit.
std::string attention_axes(int64_t layout, size_t rank, AttentionAxes* ax);

// Checks the format against the stored shapes of q, k and v (dims may be -1): valid layout and slot values,
// ranks that fit the layouts, k_transposed only with a heads-major k, and either every input in a 3-D form
// (the output is then 3-D too) or every input in a 4-D form (a packed tensor counts as one). Returns "" or
// the error; *three_d tells which form it is.
std::string check_attention_format(const AttentionFormat& f, const Dims& q, const Dims& k, const Dims& v, bool* three_d);

// A stored tensor's logical [B, H, rows, cols] (1 where the layout has no such dim: B of the 3-D form).
Dims attention_logical_dims(const Dims& stored, const AttentionAxes& ax);

// The output's stored shape for batch B, heads H, Sq queries of Dv values (3-D: B is 1, H the one batch dim).
Dims attention_output_shape(int64_t out_layout, bool three_d, int64_t B, int64_t H, int64_t Sq, int64_t Dv);

}  // namespace kiln::ir
