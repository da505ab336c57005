// How a FusedAttention node's tensors sit in memory, shared by the CPU and CUDA kernels. Each of q, k, v and
// the output is a row-major matrix per (batch b, head h): q's starts at q_off + b * q_sb + h * q_sh (elements
// from the tensor's data pointer), its rows are q_ss apart, its last dim is contiguous. The node's layout
// attributes (ir/ops/fused_attention_format.h) decide the strides: heads-major [B, H, S, X] gives rows X apart,
// tokens-major [B, S, H, X] rows H * X apart and heads X apart, a packed [B, S, N, H, X] rows N * H * X apart
// and slot i at offset i * H * X; the 3-D [N, S, X] and [S, N, X] count as [1, N, S, X]. Batch dims broadcast (stride 0 on
// a dim of size 1). The mask is read through
// strides over the scores' [B, H, Sq, Sk] (0 on broadcast dims). All strides and offsets are in elements.
#pragma once
#include <algorithm>
#include <string>

#include "ir/attrs.h"
#include "ir/ops/fused_attention_format.h"
#include "kiln/types.h"

namespace kiln {

struct AttentionLayout {
  int64_t B = 1, H = 1, Sq = 0, Sk = 0, D = 0, Dv = 0;
  // Per (batch, head) matrix: first element, batch / head strides, row stride (K^T: between its D rows of Sk).
  int64_t q_off = 0, k_off = 0, v_off = 0;
  int64_t q_sb = 0, q_sh = 0, k_sb = 0, k_sh = 0, v_sb = 0, v_sh = 0;
  int64_t q_ss = 0, k_ss = 0, v_ss = 0;
  int64_t o_sb = 0, o_sh = 0, o_ss = 0;  // the output (never broadcast, offset 0)
  int64_t m_sb = 0, m_sh = 0, m_si = 0, m_sj = 0;
  bool has_mask = false;
  bool k_transposed = false;
  bool three_d = false;  // the 3-D forms [N, S, X] / [S, N, X] (B = 1, H = N)
  // Every row of q, k, v and the output directly follows the previous one and every (batch, head) matrix is
  // whole: the heads-major storage the GEMM path's slices and the older tests assume.
  bool rows_packed() const {
    return q_ss == D && v_ss == Dv && o_ss == Dv && k_ss == (k_transposed ? Sk : D) && q_off == 0 && k_off == 0 &&
           v_off == 0;
  }
};

namespace attention_detail {

inline Dims row_major_strides(const Dims& d) {
  Dims s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

// Offset and strides of a stored tensor (logical dims lg = [B, H, rows, cols]).
inline void tensor_strides(const Dims& stored, const ir::AttentionAxes& ax, const Dims& lg, int64_t slot, int64_t* off,
                           int64_t* sb, int64_t* sh, int64_t* ss) {
  const Dims st = row_major_strides(stored);
  *sb = lg[0] == 1 ? 0 : st[ax.b];
  *sh = ax.h < 0 || lg[1] == 1 ? 0 : st[ax.h];
  *ss = st[ax.rows];
  *off = ax.slot < 0 ? 0 : slot * st[ax.slot];
}

}  // namespace attention_detail

// Fills the layout from the stored shapes and the node's format; returns an error message ("" when the
// shapes fit together).
inline std::string attention_layout(const Dims& q, const Dims& k, const Dims& v, const Dims* mask,
                                    const ir::AttentionFormat& f, AttentionLayout* L) {
  bool three_d = false;
  if (std::string err = ir::check_attention_format(f, q, k, v, &three_d); !err.empty()) return err;
  const Dims* stored[3] = {&q, &k, &v};
  ir::AttentionAxes ax[3];
  Dims lg[3];
  for (int t = 0; t < 3; ++t) {
    ir::attention_axes(f.layout[t], stored[t]->size(), &ax[t]);
    lg[t] = ir::attention_logical_dims(*stored[t], ax[t]);
    for (int64_t d : lg[t])
      if (d < 0) return "unknown dims in " + dims_str(*stored[t]);
  }
  const bool kt = f.k_transposed;
  L->k_transposed = kt;
  L->three_d = three_d;
  L->Sq = lg[0][2];
  L->D = lg[0][3];
  L->Sk = kt ? lg[1][3] : lg[1][2];
  L->Dv = lg[2][3];
  if ((kt ? lg[1][2] : lg[1][3]) != L->D || lg[2][2] != L->Sk)
    return "q " + dims_str(q) + ", k " + dims_str(k) + (kt ? " (transposed)" : "") + " and v " + dims_str(v) +
           " do not fit together";
  L->B = std::max({lg[0][0], lg[1][0], lg[2][0]});
  L->H = std::max({lg[0][1], lg[1][1], lg[2][1]});
  for (const Dims& d : lg)
    if ((d[0] != 1 && d[0] != L->B) || (d[1] != 1 && d[1] != L->H))
      return "the batch dims of q " + dims_str(q) + ", k " + dims_str(k) + " and v " + dims_str(v) + " do not broadcast";
  using attention_detail::tensor_strides;
  tensor_strides(q, ax[0], lg[0], f.slot[0], &L->q_off, &L->q_sb, &L->q_sh, &L->q_ss);
  tensor_strides(k, ax[1], lg[1], f.slot[1], &L->k_off, &L->k_sb, &L->k_sh, &L->k_ss);
  tensor_strides(v, ax[2], lg[2], f.slot[2], &L->v_off, &L->v_sb, &L->v_sh, &L->v_ss);
  {
    const Dims out = ir::attention_output_shape(f.out_layout, three_d, L->B, L->H, L->Sq, L->Dv);
    ir::AttentionAxes oax;
    ir::attention_axes(f.out_layout, out.size(), &oax);
    const Dims st = attention_detail::row_major_strides(out);
    L->o_sb = oax.b < 0 ? 0 : st[oax.b];
    L->o_sh = oax.h < 0 ? 0 : st[oax.h];
    L->o_ss = st[oax.rows];
  }
  L->has_mask = mask != nullptr;
  if (mask) {
    const int64_t full[4] = {L->B, L->H, L->Sq, L->Sk};
    if (mask->size() > 4) return "the mask " + dims_str(*mask) + " has more than 4 dims";
    int64_t st[4] = {0, 0, 0, 0};
    int64_t acc = 1;
    for (size_t i = 0; i < mask->size(); ++i) {
      const int64_t md = (*mask)[mask->size() - 1 - i];
      const int fd = 3 - static_cast<int>(i);
      if (md != 1 && md != full[fd])
        return "the mask " + dims_str(*mask) + " does not broadcast to the scores [" + std::to_string(L->B) + ", " +
               std::to_string(L->H) + ", " + std::to_string(L->Sq) + ", " + std::to_string(L->Sk) + "]";
      st[fd] = md == 1 ? 0 : acc;
      acc *= md;
    }
    L->m_sb = st[0];
    L->m_sh = st[1];
    L->m_si = st[2];
    L->m_sj = st[3];
  }
  return "";
}

// The heads-major form (every layout 0), k read as K^T [.., D, Sk] when k_transposed.
inline std::string attention_layout(const Dims& q, const Dims& k, const Dims& v, const Dims* mask, bool k_transposed,
                                    AttentionLayout* L) {
  ir::AttentionFormat f;
  f.k_transposed = k_transposed;
  return attention_layout(q, k, v, mask, f, L);
}

// Copies the layout's element strides (q/k/v batch, head and row; output batch, head and row; mask) into a
// kernel's parameter struct P, which names them as AttentionLayout does: every CUDA attention kernel's
// parameters carry the same sixteen strides.
template <class P>
void copy_attention_strides(const AttentionLayout& L, P* p) {
  p->q_sb = L.q_sb;
  p->q_sh = L.q_sh;
  p->k_sb = L.k_sb;
  p->k_sh = L.k_sh;
  p->v_sb = L.v_sb;
  p->v_sh = L.v_sh;
  p->q_ss = L.q_ss;
  p->k_ss = L.k_ss;
  p->v_ss = L.v_ss;
  p->o_sb = L.o_sb;
  p->o_sh = L.o_sh;
  p->o_ss = L.o_ss;
  p->m_sb = L.m_sb;
  p->m_sh = L.m_sh;
  p->m_si = L.m_si;
  p->m_sj = L.m_sj;
}

// A node's layout from its input shapes and attributes.
inline std::string attention_layout(const Dims& q, const Dims& k, const Dims& v, const Dims* mask, const ir::Attrs& a,
                                    AttentionLayout* L) {
  return attention_layout(q, k, v, mask, ir::attention_format(a), L);
}

}  // namespace kiln
