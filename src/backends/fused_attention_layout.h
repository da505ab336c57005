// How a FusedAttention node's tensors are laid out, shared by the CPU and CUDA kernels: q, k, v (and the
// output) are contiguous [B, H, S, X] (3-D tensors count as H = 1), batch dims broadcast; the mask is read
// through strides over the scores' [B, H, Sq, Sk] (0 on broadcast dims). All strides are in elements.
#pragma once
#include <algorithm>
#include <string>

#include "kiln/types.h"

namespace kiln {

struct AttentionLayout {
  int64_t B = 1, H = 1, Sq = 0, Sk = 0, D = 0, Dv = 0;
  int64_t q_sb = 0, q_sh = 0, k_sb = 0, k_sh = 0, v_sb = 0, v_sh = 0;
  int64_t m_sb = 0, m_sh = 0, m_si = 0, m_sj = 0;
  bool has_mask = false;
  bool k_transposed = false;
};

// Fills the layout from the shapes; returns an error message ("" when the shapes fit together).
inline std::string attention_layout(const Dims& q, const Dims& k, const Dims& v, const Dims* mask, bool k_transposed,
                                    AttentionLayout* L) {
  const size_t r = q.size();
  if ((r != 3 && r != 4) || k.size() != r || v.size() != r)
    return "q, k and v must all be 3-D or 4-D, got " + dims_str(q) + ", " + dims_str(k) + ", " + dims_str(v);
  auto four = [&](const Dims& d) { return r == 4 ? d : Dims{1, d[0], d[1], d[2]}; };
  const Dims q4 = four(q), k4 = four(k), v4 = four(v);
  L->k_transposed = k_transposed;
  L->Sq = q4[2];
  L->D = q4[3];
  L->Sk = k_transposed ? k4[3] : k4[2];
  L->Dv = v4[3];
  if ((k_transposed ? k4[2] : k4[3]) != L->D || v4[2] != L->Sk)
    return "q " + dims_str(q) + ", k " + dims_str(k) + (k_transposed ? " (transposed)" : "") + " and v " + dims_str(v) +
           " do not fit together";
  L->B = std::max({q4[0], k4[0], v4[0]});
  L->H = std::max({q4[1], k4[1], v4[1]});
  for (const Dims* d : {&q4, &k4, &v4})
    if (((*d)[0] != 1 && (*d)[0] != L->B) || ((*d)[1] != 1 && (*d)[1] != L->H))
      return "the batch dims of q " + dims_str(q) + ", k " + dims_str(k) + " and v " + dims_str(v) + " do not broadcast";
  auto strides = [&](const Dims& d, int64_t* sb, int64_t* sh) {
    const int64_t mat = d[2] * d[3];
    *sh = d[1] == 1 ? 0 : mat;
    *sb = d[0] == 1 ? 0 : d[1] * mat;
  };
  strides(q4, &L->q_sb, &L->q_sh);
  strides(k4, &L->k_sb, &L->k_sh);
  strides(v4, &L->v_sb, &L->v_sh);
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

}  // namespace kiln
