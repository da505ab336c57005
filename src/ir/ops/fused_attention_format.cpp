#include "ir/ops/fused_attention_format.h"

namespace kiln::ir {

namespace {

const char* const kLayoutAttr[3] = {"q_layout", "k_layout", "v_layout"};
const char* const kSlotAttr[3] = {"q_slot", "k_slot", "v_slot"};
const char* const kTensorName[3] = {"q", "k", "v"};

}  // namespace

AttentionFormat attention_format(const Attrs& a) {
  AttentionFormat f;
  for (int t = 0; t < 3; ++t) {
    f.layout[t] = a.i(kLayoutAttr[t], kAttnHeadsMajor);
    f.slot[t] = a.i(kSlotAttr[t], 0);
  }
  f.out_layout = a.i("out_layout", kAttnHeadsMajor);
  f.k_transposed = a.i("k_transposed", 0) != 0;
  return f;
}

void set_attention_format(Attrs& a, const AttentionFormat& f) {
  for (int t = 0; t < 3; ++t) {
    if (f.layout[t] != kAttnHeadsMajor) a.set(kLayoutAttr[t], f.layout[t]);
    else a.erase(kLayoutAttr[t]);
    if (f.slot[t] != 0) a.set(kSlotAttr[t], f.slot[t]);
    else a.erase(kSlotAttr[t]);
  }
  if (f.out_layout != kAttnHeadsMajor) a.set("out_layout", f.out_layout);
  else a.erase("out_layout");
  a.set("k_transposed", int64_t{f.k_transposed ? 1 : 0});
}

std::string attention_axes(int64_t layout, size_t rank, AttentionAxes* ax) {
  *ax = AttentionAxes{};
  switch (layout) {
    case kAttnHeadsMajor:
      if (rank == 4) *ax = AttentionAxes{0, 1, 2, 3, -1};
      else if (rank == 3) *ax = AttentionAxes{-1, 0, 1, 2, -1};
      else return "a heads-major tensor (layout 0) is [B, H, S, X] or [B, S, X]";
      return "";
    case kAttnTokensMajor:
      if (rank == 4) *ax = AttentionAxes{0, 2, 1, 3, -1};
      else if (rank == 3) *ax = AttentionAxes{-1, 1, 0, 2, -1};
      else return "a tokens-major tensor (layout 1) is [B, S, H, X] or [S, N, X]";
      return "";
    case kAttnPacked:
      if (rank != 5) return "a packed tensor (layout 2) is [B, S, N, H, X]";
      *ax = AttentionAxes{0, 3, 1, 4, 2};
      return "";
    case kAttnSeqFirstTokens:
      if (rank != 4) return "a sequence-first tokens-major tensor (layout 3) is [S, B, H, X]";
      *ax = AttentionAxes{1, 2, 0, 3, -1};
      return "";
    case kAttnSeqFirstPacked:
      if (rank != 5) return "a sequence-first packed tensor (layout 4) is [S, B, N, H, X]";
      *ax = AttentionAxes{1, 3, 0, 4, 2};
      return "";
    default:
      return "unknown layout " + std::to_string(layout) +
             " (0 heads-major, 1 tokens-major, 2 packed, 3 sequence-first tokens-major, 4 sequence-first packed)";
  }
}

std::string check_attention_format(const AttentionFormat& f, const Dims& q, const Dims& k, const Dims& v, bool* three_d_out) {
  const Dims* shapes[3] = {&q, &k, &v};
  int three_d = 0;
  for (int t = 0; t < 3; ++t) {
    AttentionAxes ax;
    const std::string err = attention_axes(f.layout[t], shapes[t]->size(), &ax);
    if (!err.empty())
      return std::string(kTensorName[t]) + " " + dims_str(*shapes[t]) + " does not fit its " + kLayoutAttr[t] + ": " + err;
    if (attention_layout_packed(f.layout[t])) {
      const int64_t n = (*shapes[t])[ax.slot];
      if (f.slot[t] < 0 || (n >= 0 && f.slot[t] >= n))
        return std::string(kSlotAttr[t]) + " " + std::to_string(f.slot[t]) + " is not one of the " + std::to_string(n) +
               " projections packed in " + kTensorName[t] + " " + dims_str(*shapes[t]);
    } else if (f.slot[t] != 0) {
      return std::string(kSlotAttr[t]) + " applies to a packed " + kTensorName[t] + " (" + kLayoutAttr[t] + " 2 or 4) only";
    }
    three_d += ax.b < 0;
  }
  if (f.out_layout != kAttnHeadsMajor && f.out_layout != kAttnTokensMajor && f.out_layout != kAttnSeqFirstTokens)
    return "out_layout must be 0 (heads-major), 1 (tokens-major) or 3 (sequence-first tokens-major), got " +
           std::to_string(f.out_layout);
  if (f.k_transposed && f.layout[1] != kAttnHeadsMajor)
    return "k_transposed needs a heads-major k (k_layout 0): k is then [B, H, D, Sk]";
  if (three_d != 0 && three_d != 3)
    return "q " + dims_str(q) + ", k " + dims_str(k) + " and v " + dims_str(v) + " mix 3-D and 4-D forms";
  if (three_d == 3 && f.out_layout == kAttnSeqFirstTokens)
    return "out_layout 3 (sequence-first [S, B, H, X]) needs the 4-D forms (the 3-D form has no batch dim)";
  *three_d_out = three_d == 3;
  return "";
}

Dims attention_logical_dims(const Dims& stored, const AttentionAxes& ax) {
  auto at = [&](int pos) { return pos < 0 ? int64_t{1} : stored[pos]; };
  return Dims{at(ax.b), at(ax.h), at(ax.rows), at(ax.cols)};
}

Dims attention_output_shape(int64_t out_layout, bool three_d, int64_t B, int64_t H, int64_t Sq, int64_t Dv) {
  if (three_d) return out_layout == kAttnTokensMajor ? Dims{Sq, H, Dv} : Dims{H, Sq, Dv};
  if (out_layout == kAttnTokensMajor) return Dims{B, Sq, H, Dv};
  if (out_layout == kAttnSeqFirstTokens) return Dims{Sq, B, H, Dv};
  return Dims{B, H, Sq, Dv};
}

}  // namespace kiln::ir
