// FuseAttention: see fuse_attention.h for the patterns. Matching walks up from each SoftMax whose one
// consumer is the P @ V MatrixMultiply, through mask additions / causal Selects (nearest the SoftMax) and
// then scalar scales, to the Q @ K^T MatrixMultiply, trying both operands of commutative ops. Then the
// exporters' head transposes around the match are absorbed into the node's layout attributes
// (Matcher::absorb_inputs; the output's in fuse_one). One match is rewritten at a time (the use counts are
// recomputed after each), so chains never overlap.
#include "passes/fuse_attention.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "ir/graph.h"
#include "ir/ops/fused_attention_format.h"
#include "passes/uniform_values.h"
#include "passes/view_ops.h"

namespace kiln::passes {
namespace {

constexpr int64_t kEwSum = 0, kEwProd = 1, kEwDiv = 5;

bool attn_float(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

// A one-element float constant: its value.
bool const_scalar(const ir::Value* v, double* out) {
  const HostTensor* t = ir::constant_value(v);
  if (!t || t->numel() != 1) return false;
  const DataType dt = t->dtype();
  if (!attn_float(dt) && dt != DataType::kDOUBLE) return false;
  *out = t->get_f64(0);
  return true;
}

// m broadcasts onto s without growing it (unknown dims are taken to fit; the op checks at run time).
bool fits(const Dims& m, const Dims& s) {
  if (m.size() > s.size()) return false;
  for (size_t i = 0; i < m.size(); ++i) {
    const int64_t md = m[m.size() - 1 - i], sd = s[s.size() - 1 - i];
    if (md != 1 && md != -1 && md != sd) return false;
  }
  return true;
}

// Numpy broadcast of two shapes that are known to broadcast (unknown dims stay unknown).
Dims broadcast(const Dims& a, const Dims& b) {
  const size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    out[i] = da == 1 ? db : db == 1 ? da : da == -1 ? db : da;
  }
  return out;
}

using views::is_transpose;
using views::pinned;
using views::pure_transpose;

// A Shuffle that only swaps the last two dims.
bool is_swap_last_two(const ir::Node* n) {
  const std::vector<int64_t> perm = pure_transpose(n);
  const size_t r = perm.size();
  if (r < 2) return false;
  for (size_t i = 0; i + 2 < r; ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return perm[r - 2] == static_cast<int64_t>(r - 1) && perm[r - 1] == static_cast<int64_t>(r - 2);
}

// The exporters' head split of a `rank`-D q, k or v: tokens-major [B, S, H, X] -> heads-major [B, H, S, X]
// (nn.MultiheadAttention's 3-D [S, N, X] -> [N, S, X]), or straight to K^T [B, H, D, S] ([N, D, S]). The output
// goes back to tokens-major by the plain split, its own inverse.
std::vector<int64_t> head_split(size_t rank, bool to_kt) {
  if (rank == 4) return to_kt ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3};
  return to_kt ? std::vector<int64_t>{1, 2, 0} : std::vector<int64_t>{1, 0, 2};
}
// ViT's packed qkv [B, S, 3, H, D] -> [3, B, H, S, D], split by Gathers on axis 0.
const std::vector<int64_t> kPackedToHeads = {2, 0, 3, 1, 4};
// nn.MultiheadAttention's sequence-first forms (after SimplifyViews): q, v = Transpose[1, 2, 0, 3](t) of
// t [S, B, H, X] (K^T: [1, 2, 3, 0]), t = Gather(axis 0, i)(Transpose[2, 0, 1, 3, 4](p)) of the in_proj output
// p [S, B, 3, H, X]; the result goes back by Transpose[2, 0, 1, 3] to [S, B, H, X].
std::vector<int64_t> seq_first_head_split(bool to_kt) {
  return to_kt ? std::vector<int64_t>{1, 2, 3, 0} : std::vector<int64_t>{1, 2, 0, 3};
}
const std::vector<int64_t> kSeqFirstPackedToTokens = {2, 0, 1, 3, 4};
const std::vector<int64_t> kHeadsToSeqFirst = {2, 0, 1, 3};

struct SelectMask {
  ir::Value* cond;
  ir::Value* fill;        // the constant written where masked
  bool masked_when_true;  // Select(cond, fill, scores) rather than Select(cond, scores, fill)
};

struct Match {
  ir::Value* q = nullptr;
  ir::Value* k = nullptr;
  ir::Value* v = nullptr;
  bool k_transposed = false;
  ir::AttentionFormat format;        // how the fused node reads q, k, v and writes its output
  ir::Node* out_transpose = nullptr;  // absorbed: the fused node writes its output instead
  std::vector<ir::Node*> splits;      // packed-qkv transposes / Splits, removed once nothing reads them
  // q, k or v read as slot i of the tensor a Split cut along its last dim (merged q/k/v GEMMs, GPT-2's c_attn):
  // the Split, whose input the fused node reads as [..., N, H, D] through a reshape made in fuse_one.
  ir::Node* split_of[3] = {nullptr, nullptr, nullptr};
  const ir::Node* split_reshape[3] = {nullptr, nullptr, nullptr};  // the head reshape of each such slot
  int64_t split_heads[3] = {0, 0, 0}, split_head_size[3] = {0, 0, 0};
  double scale = 1.0;
  std::vector<ir::Value*> masks;
  std::vector<SelectMask> selects;
  std::vector<ir::Node*> chain;  // the nodes the fused node replaces
};

class Matcher {
 public:
  explicit Matcher(const ir::Graph& g) {
    for (auto& n : g.nodes())
      for (auto* in : n->inputs)
        if (in) ++uses_[in];
  }
  int uses(const ir::Value* v) const {
    auto it = uses_.find(v);
    return it == uses_.end() ? 0 : it->second;
  }
  // An intermediate the fused node may swallow.
  bool inner(const ir::Value* v) const { return v->producer && !v->is_output && uses(v) == 1 && !pinned(v->producer); }

  // A constant-scalar PROD/DIV of x (rank kept) with x single-use: its other input's factor.
  bool scaled(const ir::Value* v, ir::Value** x, double* factor) const {
    if (!inner(v) || v->producer->op != "ElementWise") return false;
    const ir::Node* n = v->producer;
    const int64_t op = n->attrs.i("op", -1);
    if (op != kEwProd && op != kEwDiv) return false;
    for (int side = 0; side < 2; ++side) {
      if (op == kEwDiv && side == 1) break;  // c / x is not a scale
      double c;
      if (!const_scalar(n->inputs[1 - side], &c) || !std::isfinite(c) || c == 0.0) continue;
      if (n->inputs[1 - side]->shape.size() > n->inputs[side]->shape.size()) continue;
      *x = n->inputs[side];
      *factor = op == kEwDiv ? 1.0 / c : c;
      return true;
    }
    return false;
  }

  // s: the scores (or a step towards them). phase 0 still allows masks, 1 only scales.
  bool match_scores(ir::Value* s, int phase, Match& m) const {
    if (!inner(s)) return false;
    ir::Node* n = s->producer;
    if (n->op == "MatrixMultiply") return match_qk(n, m);
    ir::Value* x;
    double f;
    if (scaled(s, &x, &f)) {
      Match saved = m;
      m.scale *= f;
      m.chain.push_back(n);
      if (match_scores(x, 1, m)) return true;
      m = saved;
      return false;
    }
    if (phase != 0) return false;
    if (n->op == "ElementWise" && n->attrs.i("op", -1) == kEwSum) {
      for (int side = 0; side < 2; ++side) {
        ir::Value* sc = n->inputs[side];
        ir::Value* mask = n->inputs[1 - side];
        if (!attn_float(mask->dtype) || !fits(mask->shape, sc->shape)) continue;
        Match saved = m;
        m.masks.push_back(mask);
        m.chain.push_back(n);
        if (match_scores(sc, 0, m)) return true;
        m = saved;
      }
      return false;
    }
    if (n->op == "Select") {
      ir::Value* cond = n->inputs[0];
      if (cond->dtype != DataType::kBOOL) return false;
      for (int side = 1; side <= 2; ++side) {
        ir::Value* sc = n->inputs[side];
        ir::Value* fill = n->inputs[3 - side];
        double c;
        if (!const_scalar(fill, &c) || !(c <= -1e4) || fill->dtype != sc->dtype) continue;
        if (!fits(cond->shape, sc->shape) || !fits(fill->shape, sc->shape)) continue;
        Match saved = m;
        m.selects.push_back(SelectMask{cond, fill, side == 2});
        m.chain.push_back(n);
        if (match_scores(sc, 0, m)) return true;
        m = saved;
      }
      return false;
    }
    return false;
  }

  bool match_qk(ir::Node* mm, Match& m) const {
    const int64_t op_b = mm->attrs.i("op_b", 0);
    if (mm->attrs.i("op_a", 0) != 0 || (op_b != 0 && op_b != 1)) return false;
    const size_t r = mm->outputs[0]->shape.size();
    ir::Value* q = mm->inputs[0];
    ir::Value* k = mm->inputs[1];
    if ((r != 3 && r != 4) || q->shape.size() != r || k->shape.size() != r) return false;
    m.chain.push_back(mm);
    bool kt = op_b == 0;
    ir::Value* x;
    double f;
    for (int guard = 0; guard < 8 && scaled(q, &x, &f); ++guard) {
      m.scale *= f;
      m.chain.push_back(q->producer);
      q = x;
    }
    for (int guard = 0; guard < 8; ++guard) {
      if (scaled(k, &x, &f)) {
        m.scale *= f;
        m.chain.push_back(k->producer);
        k = x;
      } else if (inner(k) && is_swap_last_two(k->producer)) {
        m.chain.push_back(k->producer);
        k = k->producer->inputs[0];
        kt = !kt;
      } else {
        break;
      }
    }
    m.q = q;
    m.k = k;
    m.k_transposed = kt;
    return true;
  }

  // The exporters' head transposes around a match, read through layouts instead (ir/ops/fused_attention_format.h):
  //   q, v  = Transpose[0, 2, 1, 3](t), t [B, S, H, X]      -> t, tokens-major
  //   k     = the same, or K^T = Transpose[0, 2, 3, 1](t)   -> t, tokens-major (K^T: no longer transposed)
  //   3-D   the same with [1, 0, 2] and [1, 2, 0], t [S, N, X] (nn.MultiheadAttention)
  //   q/k/v = Gather(axis 0, constant i)(Transpose[2, 0, 3, 1, 4](p)), p [B, S, N, H, X] (ViT's packed qkv)
  //                                                         -> p, packed, slot i
  // Each Transpose / Gather must be swallowable (inner: one consumer, not an output, no pinned precision). The
  // packed split's Transpose feeds the other Gathers too: it goes once none is left (fuse_one).
  void absorb_inputs(Match& m) const {
    ir::Value** ins[3] = {&m.q, &m.k, &m.v};
    for (int t = 0; t < 3; ++t) {
      ir::Value*& x = *ins[t];
      const bool kt = t == 1 && m.k_transposed;
      if (!inner(x)) continue;
      ir::Node* n = x->producer;
      if (x->shape.size() >= 3 && is_transpose(n, head_split(x->shape.size(), kt))) {
        m.chain.push_back(n);
        x = n->inputs[0];
        m.format.layout[t] = ir::kAttnTokensMajor;
        if (kt) m.k_transposed = false;
        // The tokens may be one slot of a Split projection: read the Split's input instead.
        int64_t slot, h, d;
        ir::Node* split = x->shape.size() == 4 && inner(x) ? split_slot(x->producer, &slot, &h, &d) : nullptr;
        if (split) {
          m.split_reshape[t] = x->producer;
          m.chain.push_back(x->producer);
          m.splits.push_back(split);
          m.split_of[t] = split;
          m.split_heads[t] = h;
          m.split_head_size[t] = d;
          x = split->inputs[0];
          m.format.layout[t] = ir::kAttnPacked;
          m.format.slot[t] = slot;
        }
      } else if (x->shape.size() == 4 && is_transpose(n, seq_first_head_split(kt))) {
        m.chain.push_back(n);
        x = n->inputs[0];
        m.format.layout[t] = ir::kAttnSeqFirstTokens;
        if (kt) m.k_transposed = false;
        // The sequence-first tokens may be one slot of the packed in_proj output.
        int64_t slot;
        ir::Node* split = inner(x) ? packed_split(x->producer, kSeqFirstPackedToTokens, &slot) : nullptr;
        if (split) {
          m.chain.push_back(x->producer);
          m.splits.push_back(split);
          x = split->inputs[0];
          m.format.layout[t] = ir::kAttnSeqFirstPacked;
          m.format.slot[t] = slot;
        }
      } else if (!kt) {
        int64_t slot;
        if (ir::Node* split = packed_split(n, kPackedToHeads, &slot)) {
          m.chain.push_back(n);
          m.splits.push_back(split);
          x = split->inputs[0];
          m.format.layout[t] = ir::kAttnPacked;
          m.format.slot[t] = slot;
        }
      }
    }
  }

  // r = Reshape(s) to [.., H, D] with H * D the last dim E of s, s output i of a Split of p [..., N * E] along
  // its last dim into N outputs of E: that Split, i, H and D; nullptr otherwise. The leading dims may be
  // regrouped (BERT's view(batch, -1, H, D) with a batch read from another tensor's Shape): a reshape keeps the
  // row-major order and H * D = E, so token t of s is token t of the result, and the same leading dims applied
  // to p viewed as [.., N, H, D] give slot i exactly (fuse_one builds that view from r's own target).
  ir::Node* split_slot(const ir::Node* r, int64_t* slot, int64_t* h, int64_t* d) const {
    if (!views::reshape_only(r) || pinned(r)) return nullptr;
    ir::Value* s = r->inputs[0];
    ir::Node* sp = s->producer;
    if (!sp || sp->op != "Split" || !inner(s) || sp->inputs.empty() || !sp->inputs[0]) return nullptr;
    const Dims& in = sp->inputs[0]->shape;
    const int64_t rank = static_cast<int64_t>(in.size());
    int64_t axis = sp->attrs.i("axis", 0);
    if (axis < 0) axis += rank;
    const int64_t n = static_cast<int64_t>(sp->outputs.size()), e = s->shape.empty() ? -1 : s->shape.back();
    // Rank 3 at least: the two leading entries of r's target (0 placeholders among them) index dims p shares.
    if (rank < 3 || axis != rank - 1 || e <= 0 || in.back() != n * e) return nullptr;
    for (const ir::Value* o : sp->outputs)
      if (o->shape.size() != in.size() || o->shape.back() != e) return nullptr;
    const Dims& out = r->outputs[0]->shape;
    if (out.size() != 4 || out[2] <= 0 || out[3] <= 0 || out[2] * out[3] != e) return nullptr;
    // The packed view is built from r's target: a static one, or a shape tensor of r's rank.
    const bool dynamic = r->inputs.size() > 1 && r->inputs[1];
    if (dynamic ? r->inputs[1]->shape != Dims{4} : r->attrs.ints("reshape_dims").size() != 4) return nullptr;
    *slot = std::find(sp->outputs.begin(), sp->outputs.end(), s) - sp->outputs.begin();
    *h = out[2];
    *d = out[3];
    return sp;
  }

  // gather = Gather(axis 0, constant scalar i)(Transpose_perm(p)), p [B, S, N, H, X] or [S, B, N, H, X] with N
  // known (perm brings N first): that Transpose, and i in [0, N) in *slot. nullptr otherwise.
  ir::Node* packed_split(const ir::Node* gather, const std::vector<int64_t>& perm, int64_t* slot) const {
    int64_t axis;
    const HostTensor* idx = views::constant_gather(gather, &axis);
    if (!idx || axis != 0 || !idx->shape().empty()) return nullptr;
    ir::Value* split_out = gather->inputs[0];
    ir::Node* split = split_out->producer;
    if (!split || split_out->is_output || pinned(split) || !is_transpose(split, perm)) return nullptr;
    const int64_t n = split->inputs[0]->shape[2];
    int64_t i = idx->get_i64(0);
    if (n < 0) return nullptr;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return nullptr;
    *slot = i;
    return split;
  }

 private:
  std::unordered_map<const ir::Value*, int> uses_;
};

// A constant cond whose visible part (cond, or !cond when masked_when_true) is the causal lower triangle
// for scores [..., sq, sk]: key j visible to query i iff j <= i + (sk - sq).
bool is_causal(const SelectMask& s, const Dims& scores) {
  const HostTensor* t = ir::constant_value(s.cond);
  const size_t r = scores.size();
  if (!t || t->dtype() != DataType::kBOOL || t->shape().size() < 2) return false;
  const int64_t sq = scores[r - 2], sk = scores[r - 1];
  const Dims& cs = t->shape();
  if (sq < 0 || sk < sq || cs[cs.size() - 2] != sq || cs[cs.size() - 1] != sk) return false;
  for (size_t i = 0; i + 2 < cs.size(); ++i)
    if (cs[i] != 1) return false;
  for (int64_t i = 0; i < sq; ++i)
    for (int64_t j = 0; j < sk; ++j) {
      const bool c = t->get_i64(i * sk + j) != 0;
      if ((s.masked_when_true ? !c : c) != (j <= i + (sk - sq))) return false;
    }
  return true;
}

// p = split's input [..., N * E] reshaped to [L, N, H, D], with L = the first two entries of the head reshape
// r's target (which may hold 0 placeholders, copying p's dims, or a -1: both read the same on p as on the slot).
ir::Value* packed_view(ir::Graph& g, const ir::Node* split, const ir::Node* r, int64_t h, int64_t d) {
  ir::Value* p = split->inputs[0];
  const int64_t n = static_cast<int64_t>(split->outputs.size());
  const std::string name = g.unique_name(split->name + "/packed");
  const bool zero_ph = r->attrs.i("zero_is_placeholder", 1) != 0;
  const Dims& out = r->outputs[0]->shape;
  const Dims shape = {out[0], out[1], n, h, d};
  if (!(r->inputs.size() > 1 && r->inputs[1])) {
    std::vector<int64_t> dims = r->attrs.ints("reshape_dims");
    dims.resize(2);
    for (int64_t x : {n, h, d}) dims.push_back(x);
    return views::add_reshape(g, name, p, dims, shape, zero_ph);
  }
  // A run-time target: its first two entries, then N, H, D.
  ir::Value* target_in = r->inputs[1];
  ir::Node* lead = g.add_node("Slice", g.unique_name(name + "/lead"), {target_in}, 1);
  lead->attrs.set("start", std::vector<int64_t>{0});
  lead->attrs.set("size", std::vector<int64_t>{2});
  lead->attrs.set("stride", std::vector<int64_t>{1});
  lead->outputs[0]->dtype = target_in->dtype;
  lead->outputs[0]->shape = {2};
  HostTensor tail(target_in->dtype, {3});
  const int64_t nhd[3] = {n, h, d};
  for (int i = 0; i < 3; ++i) {
    if (tail.dtype() == DataType::kINT64) tail.mutable_data<int64_t>()[i] = nhd[i];
    else tail.mutable_data<int32_t>()[i] = static_cast<int32_t>(nhd[i]);
  }
  ir::Node* c = g.add_constant(g.unique_name(name + "/heads"), tail);
  ir::Node* target = g.add_node("Concatenation", g.unique_name(name + "/target"), {lead->outputs[0], c->outputs[0]}, 1);
  target->attrs.set("axis", int64_t{0});
  target->outputs[0]->dtype = target_in->dtype;
  target->outputs[0]->shape = {5};
  ir::Node* view = g.add_node("Shuffle", name, {p, target->outputs[0]}, 1);
  view->attrs.set("zero_is_placeholder", int64_t{zero_ph ? 1 : 0});
  view->outputs[0]->dtype = p->dtype;
  view->outputs[0]->shape = shape;
  return view->outputs[0];
}

// An additive mask term Select(cond, 0, fill) (or Select(cond, fill, 0)) with a constant fill of -1e4 or
// less, read as the Select form (newer transformers add their causal mask this way): *out, with cond
// looked through Expands that only broadcast it, so a constant lower triangle can still become the causal
// attribute and a broadcast condition is read at its own size.
bool additive_select(const ir::Value* t, SelectMask* out) {
  const ir::Node* n = t->producer;
  if (!n || n->op != "Select" || n->inputs.size() != 3 || pinned(n) || n->inputs[0]->dtype != DataType::kBOOL)
    return false;
  for (int zero_side = 1; zero_side <= 2; ++zero_side) {
    ir::Value* fill = n->inputs[3 - zero_side];
    double c;
    if (!all_zero(n->inputs[zero_side]) || !const_scalar(fill, &c) || !(c <= -1e4) || fill->dtype != t->dtype) continue;
    ir::Value* cond = n->inputs[0];
    while (cond->producer && cond->producer->op == "Expand" && ir::constant_value(cond->producer->inputs[0]))
      cond = cond->producer->inputs[0];
    *out = SelectMask{cond, fill, zero_side == 2};
    return true;
  }
  return false;
}

// The first SoftMax -> MatrixMultiply chain that matches; false when there is none.
bool fuse_one(ir::Graph& g) {
  Matcher mt(g);
  for (auto& np : g.nodes()) {
    ir::Node* sm = np.get();
    if (sm->op != "SoftMax" || pinned(sm) || sm->attrs.i("log", 0) != 0) continue;
    ir::Value* x = sm->inputs[0];
    ir::Value* p = sm->outputs[0];
    const int64_t r = static_cast<int64_t>(x->shape.size());
    if (r != 3 && r != 4) continue;
    int64_t axis = sm->attrs.i("axis", -1);
    if (axis < 0) axis += r;
    if (axis != r - 1 || !attn_float(x->dtype)) continue;
    if (p->is_output || mt.uses(p) != 1) continue;
    const std::vector<ir::Node*> users = g.users(p);
    if (users.size() != 1) continue;
    ir::Node* pv = users[0];
    if (pv->op != "MatrixMultiply" || pinned(pv) || pv->inputs[0] != p || pv->inputs[1] == p) continue;
    if (pv->attrs.i("op_a", 0) != 0 || pv->attrs.i("op_b", 0) != 0) continue;
    ir::Value* v = pv->inputs[1];
    if (static_cast<int64_t>(v->shape.size()) != r || static_cast<int64_t>(pv->outputs[0]->shape.size()) != r) continue;
    Match m;
    m.chain = {sm, pv};
    if (!mt.match_scores(x, 0, m)) continue;
    if (m.q->dtype != x->dtype || m.k->dtype != x->dtype || v->dtype != x->dtype) continue;
    m.v = v;
    mt.absorb_inputs(m);
    // The Transpose back to tokens after attention, when it is the result's only consumer.
    ir::Value* old = pv->outputs[0];
    if (!old->is_output && mt.uses(old) == 1) {
      const std::vector<ir::Node*> next = g.users(old);
      if (next.size() == 1 && !pinned(next[0]) && is_transpose(next[0], head_split(static_cast<size_t>(r), false))) {
        m.out_transpose = next[0];
        m.chain.push_back(next[0]);
        m.format.out_layout = ir::kAttnTokensMajor;
      } else if (next.size() == 1 && !pinned(next[0]) && r == 4 && is_transpose(next[0], kHeadsToSeqFirst)) {
        m.out_transpose = next[0];
        m.chain.push_back(next[0]);
        m.format.out_layout = ir::kAttnSeqFirstTokens;
      }
    }

    // Masks that mask nothing go: an additive term of zeros, a Select whose condition never picks the fill
    // (exporters build both at the batch's size when the caller passes no attention mask; uniform_values.h).
    // An additive Select(cond, 0, fill) term joins the Selects, so a causal triangle can become the attribute.
    std::erase_if(m.masks, [](const ir::Value* t) { return all_zero(t); });
    std::erase_if(m.masks, [&](const ir::Value* t) {
      SelectMask sm;
      if (!additive_select(t, &sm)) return false;
      m.selects.push_back(sm);
      return true;
    });
    std::erase_if(m.selects, [](const SelectMask& s) {
      bool truth;
      return uniform_bool(s.cond, &truth) && truth != s.masked_when_true;
    });
    // The mask: the SUM masks plus the Selects as additive Select(cond, 0, fill) terms. A causal Select becomes
    // the `causal` attribute only when it is the sole masking: every row then keeps a visible key, so -inf and
    // the fill agree. With other masks, a row they mask entirely (left padding) would, unfused, spread over
    // all its keys (fill + mask everywhere): an additive fill term keeps that exactly.
    std::vector<ir::Value*> terms = m.masks;
    bool causal = false;
    for (const SelectMask& s : m.selects) {
      if (m.masks.empty() && m.selects.size() == 1 && is_causal(s, x->shape)) {
        causal = true;
        continue;
      }
      const HostTensor* fill = ir::constant_value(s.fill);
      ir::Node* zero = g.add_constant(g.unique_name("fused_attention_zero"), HostTensor(fill->dtype(), fill->shape()));
      zero->outputs[0]->dtype = fill->dtype();
      zero->outputs[0]->shape = fill->shape();
      ir::Node* sel = g.add_node("Select", g.unique_name("fused_attention_mask"),
                                 {s.cond, s.masked_when_true ? s.fill : zero->outputs[0],
                                  s.masked_when_true ? zero->outputs[0] : s.fill},
                                 1);
      sel->outputs[0]->dtype = s.fill->dtype;
      sel->outputs[0]->shape = broadcast(s.cond->shape, s.fill->shape);
      terms.push_back(sel->outputs[0]);
    }
    ir::Value* mask = terms.empty() ? nullptr : terms[0];
    for (size_t i = 1; i < terms.size(); ++i) {
      ir::Node* sum = g.add_node("ElementWise", g.unique_name("fused_attention_mask_sum"), {mask, terms[i]}, 1);
      sum->attrs.set("op", kEwSum);
      sum->outputs[0]->dtype = mask->dtype;
      sum->outputs[0]->shape = broadcast(mask->shape, terms[i]->shape);
      mask = sum->outputs[0];
    }

    std::vector<ir::Value*> ins = {m.q, m.k, m.v};
    // A Split's input read packed: p [..., N * E] viewed as [L, N, H, D], L the leading dims of the slot's head
    // reshape, from its own target (static dims, or the first entries of its shape tensor), so the view is
    // exact whatever those dims are at run time. One view per Split and target.
    std::map<std::pair<const ir::Node*, std::string>, ir::Value*> packed_views;
    for (int t = 0; t < 3; ++t) {
      ir::Node* split = m.split_of[t];
      if (!split) continue;
      const ir::Node* r = m.split_reshape[t];
      const bool dynamic = r->inputs.size() > 1 && r->inputs[1];
      const std::string key = dynamic ? "value " + r->inputs[1]->name : dims_str(r->attrs.ints("reshape_dims"));
      ir::Value*& view = packed_views[{split, key}];
      if (!view) view = packed_view(g, split, r, m.split_heads[t], m.split_head_size[t]);
      ins[t] = view;
    }
    if (mask) ins.push_back(mask);
    std::string name = "fused_attention(" + pv->name + ")";
    if (g.find_node(name)) name = g.unique_name("FusedAttention");
    ir::Node* fa = g.add_node("FusedAttention", name, ins, 1);
    fa->attrs.set("scale", m.scale);
    fa->attrs.set("causal", int64_t{causal ? 1 : 0});
    m.format.k_transposed = m.k_transposed;
    ir::set_attention_format(fa->attrs, m.format);
    // The fused node takes over the value it replaces: the attention result, or the output Transpose's.
    ir::Value* replaced = m.out_transpose ? m.out_transpose->outputs[0] : old;
    ir::Value* out = fa->outputs[0];
    out->dtype = replaced->dtype;
    out->shape = replaced->shape;
    const std::string out_name = replaced->name;
    replaced->name = out_name + "__unfused";
    out->name = out_name;
    g.replace_all_uses(replaced, out);
    std::unordered_set<const ir::Node*> gone(m.chain.begin(), m.chain.end());
    g.remove_nodes_if([&](const ir::Node* n) { return gone.count(n) != 0; });
    // A packed-qkv split Transpose goes with its last Gather, a Split with the last reader of its outputs (the
    // others may belong to no attention).
    std::unordered_set<const ir::Node*> dead;
    for (ir::Node* split : m.splits) {
      const bool unread = std::all_of(split->outputs.begin(), split->outputs.end(),
                                      [&](const ir::Value* o) { return !o->is_output && g.users(o).empty(); });
      if (unread) dead.insert(split);
    }
    if (!dead.empty()) g.remove_nodes_if([&](const ir::Node* n) { return dead.count(n) != 0; });
    return true;
  }
  return false;
}

}  // namespace

bool FuseAttention::run(ir::Graph& g) {
  bool changed = false;
  while (fuse_one(g)) changed = true;
  if (changed) g.topo_sort();
  return changed;
}

}  // namespace kiln::passes
