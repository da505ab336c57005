#include "passes/channels_last.h"

#include <cstring>
#include <unordered_set>

namespace kiln::passes {

namespace {

using Perm = std::vector<int64_t>;
const Perm kToNhwc{0, 2, 3, 1};  // Shuffle first_transpose: out dim i = in dim perm[i]
const Perm kToNchw{0, 3, 1, 2};

Dims permuted(const Dims& s, const Perm& p) {
  Dims out(p.size());
  for (size_t i = 0; i < p.size(); ++i) out[i] = s[static_cast<size_t>(p[i])];
  return out;
}

// A Shuffle that is exactly a transpose by `p` (no reshape, no second transpose).
bool is_transpose(const ir::Node* n, const Perm& p) {
  if (!n || n->op != "Shuffle" || n->inputs.size() != 1 || n->outputs.size() != 1) return false;
  if (n->attrs.i("has_reshape", 0) != 0 || !n->attrs.ints("second_transpose").empty()) return false;
  return n->attrs.ints("first_transpose") == p;
}

// The NHWC value behind v when v = transpose(NHWC -> NCHW) of it, else nullptr.
ir::Value* nhwc_source(const ir::Value* v) {
  return v && is_transpose(v->producer, kToNchw) ? v->producer->inputs[0] : nullptr;
}

ir::Value* add_transpose(ir::Graph& g, ir::Value* x, const Perm& p, const std::string& base) {
  for (ir::Node* u : g.users(x))  // one transpose per value, however many convolutions read it
    if (is_transpose(u, p)) return u->outputs[0];
  ir::Node* t = g.add_node("Shuffle", g.unique_name(base), {x}, 1);
  t->attrs.set("first_transpose", p);
  t->attrs.set("has_reshape", int64_t{0});
  ir::Value* y = t->outputs[0];
  y->dtype = x->dtype;
  y->shape = permuted(x->shape, p);
  return y;
}

// A constant of rank <= 4, broadcast-aligned to rank 4 (leading 1s) and transposed to NHWC.
ir::Value* nhwc_constant(ir::Graph& g, const ir::Value* v) {
  const HostTensor* c = ir::constant_value(v);
  if (!c || c->shape().size() > 4) return nullptr;
  Dims s4 = c->shape();
  while (s4.size() < 4) s4.insert(s4.begin(), 1);
  Dims out_shape = permuted(s4, kToNhwc);
  HostTensor out(c->dtype(), out_shape);
  const size_t es = dtype_size(c->dtype());
  const auto* src = static_cast<const uint8_t*>(c->raw());
  auto* dst = static_cast<uint8_t*>(out.mutable_raw());
  // dst[n][h][w][c] = src[n][c][h][w]
  const int64_t N = s4[0], C = s4[1], H = s4[2], W = s4[3];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t ch = 0; ch < C; ++ch)
          std::memcpy(dst + (((n * H + h) * W + w) * C + ch) * es, src + (((n * C + ch) * H + h) * W + w) * es, es);
  ir::Node* k = g.add_constant(g.unique_name(v->name + "_nhwc"), std::move(out));
  k->outputs[0]->dtype = c->dtype();
  k->outputs[0]->shape = out_shape;
  return k->outputs[0];
}

// A twin of `n` (same op, attributes, precision) on new inputs, with one output of `dtype` and `shape`.
ir::Node* twin(ir::Graph& g, const ir::Node* n, std::vector<ir::Value*> inputs, DataType dtype, const Dims& shape) {
  ir::Node* t = g.add_node(n->op, g.unique_name(n->name + "_nhwc"), std::move(inputs), 1);
  t->attrs = n->attrs;
  t->precision = n->precision;
  t->output_types = n->output_types;
  t->outputs[0]->dtype = dtype;
  t->outputs[0]->shape = shape;
  return t;
}

// ---- A strided stem as a stride-1 convolution on its space-to-depth input (channels_last.h says why) ----

// The most channels the space-to-depth input may have: ResNet's 7x7/2 RGB stem has 3 x 2 x 2 = 12 (padded to
// 16, two 16-byte float16 vectors a pixel). Wider inputs already fill cuDNN's tensor-core vectors.
constexpr int64_t kMaxSpaceToDepthChannels = 16;

// How a strided convolution runs on its space-to-depth input.
struct SpaceToDepth {
  int64_t s = 0;                    // the stride, and the block
  int64_t c = 0, c_out = 0;         // input channels; the op's output channels (c*s*s rounded up to 8)
  int64_t kh = 0, kw = 0;           // the original kernel
  int64_t kh2 = 0, kw2 = 0;         // the stride-1 kernel: ceil((k + shift) / s)
  int64_t shift_h = 0, shift_w = 0; // zero taps put in front of the original kernel (see plan_space_to_depth)
  std::vector<int64_t> pre, post;   // the op's spatial padding (post may be negative: a crop)
};

// The zero taps to put in front of a kernel of k taps with begin padding `pre` so that the padding becomes a
// multiple of s, or 0 where that would need one more stride-1 tap (ceil((k + shift) / s) > ceil(k / s)).
// Why: with pre a multiple of s every block of s input columns starts at an s-aligned column, so the
// SpaceToDepthNhwc kernel reads each (channel, row) block as one s-element vector (ResNet's 7x7/2 with
// padding 3 becomes 8 taps, the first zero, with padding 4: still 4 stride-1 taps).
int64_t aligning_shift(int64_t k, int64_t pre, int64_t s) {
  const int64_t shift = (s - pre % s) % s;
  return (k + shift + s - 1) / s == (k + s - 1) / s ? shift : 0;
}

bool all_ones(const std::vector<int64_t>& v) {
  for (int64_t x : v)
    if (x != 1) return false;
  return true;
}

// Whether n (a Convolution, weights w) gets the rewrite, and its geometry. Per spatial axis (input size H,
// begin padding pb, kernel R, stride s, output size O): y[o] = sum_{r<R} w[r] xp[s*o + r] (xp: x padded with
// zeros). With r = s*a + q (a < R' = ceil(R/s), q < s) and w'[a][q] = w[s*a + q] (0 where s*a + q >= R):
// y[o] = sum_a sum_q w'[a][q] xs[q][o + a], xs[q][t] = xp[s*t + q] for t < T = O + R' - 1. So the op pads x
// by pb at the start and to s*T in all (end padding s*T - H - pb: positions past the original padded size
// meet only zero weights, and rows before it that no output reaches are dropped when it is negative).
// A shift of d zero taps in front (aligning_shift) is the same convolution with kernel w[r - d] of R + d taps
// and begin padding pb + d: R' = ceil((R + d) / s), w'[a][q] = w[s*a + q - d] (0 outside [0, R)).
bool plan_space_to_depth(const ir::Node* n, const HostTensor* w, bool align, SpaceToDepth* p) {
  const ir::Value* x = n->inputs[0];
  const ir::Value* y = n->outputs[0];
  const Dims& ws = w->shape();
  const int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (C <= 0 || H <= 0 || W <= 0 || y->shape[2] <= 0 || y->shape[3] <= 0 || ws[1] != C) return false;
  if (n->attrs.i("groups", 1) != 1 || !all_ones(n->attrs.ints("dilation"))) return false;
  const int64_t mode = n->attrs.i("padding_mode", 0);
  if (mode != 0 && mode != 1) return false;  // explicit padding only (ROUND_UP's extra window reads zeros)
  const std::vector<int64_t> stride = n->attrs.ints("stride");
  if (stride.size() != 2 || stride[0] != stride[1] || stride[0] < 2) return false;
  const int64_t s = stride[0], kh = ws[2], kw = ws[3];
  // PatchifyConvolution takes kernel == stride (ViT's patch embedding).
  if (kh <= s || kw <= s || C * s * s > kMaxSpaceToDepthChannels) return false;
  std::vector<int64_t> pre = n->attrs.ints("pre_padding"), post = n->attrs.ints("post_padding");
  if (pre.empty()) pre = {0, 0};
  if (post.empty()) post = {0, 0};
  if (pre.size() != 2 || post.size() != 2) return false;
  p->s = s;
  p->c = C;
  p->c_out = (C * s * s + 7) / 8 * 8;
  p->kh = kh;
  p->kw = kw;
  p->shift_h = align ? aligning_shift(kh, pre[0], s) : 0;
  p->shift_w = align ? aligning_shift(kw, pre[1], s) : 0;
  p->kh2 = (kh + p->shift_h + s - 1) / s;
  p->kw2 = (kw + p->shift_w + s - 1) / s;
  pre = {pre[0] + p->shift_h, pre[1] + p->shift_w};
  const int64_t th = y->shape[2] + p->kh2 - 1, tw = y->shape[3] + p->kw2 - 1;
  p->pre = pre;
  p->post = {s * th - H - pre[0], s * tw - W - pre[1]};
  return true;
}

// x [N, C, H, W] as the NHWC space-to-depth tensor [N, T_h, T_w, c_out] (one op per value and geometry,
// however many convolutions read it).
ir::Value* space_to_depth(ir::Graph& g, ir::Value* x, const SpaceToDepth& p, const std::string& base) {
  auto same = [&](const ir::Node* u) {
    return u->op == "SpaceToDepthNhwc" && u->attrs.i("block", 0) == p.s && u->attrs.ints("pre_padding") == p.pre &&
           u->attrs.ints("post_padding") == p.post && u->attrs.i("out_channels", 0) == p.c_out;
  };
  for (ir::Node* u : g.users(x))
    if (same(u)) return u->outputs[0];
  ir::Node* d = g.add_node("SpaceToDepthNhwc", g.unique_name(base), {x}, 1);
  d->attrs.set("block", p.s);
  d->attrs.set("pre_padding", p.pre);
  d->attrs.set("post_padding", p.post);
  d->attrs.set("out_channels", p.c_out);
  ir::Value* y = d->outputs[0];
  y->dtype = x->dtype;
  y->shape = {x->shape[0], (x->shape[2] + p.pre[0] + p.post[0]) / p.s, (x->shape[3] + p.pre[1] + p.post[1]) / p.s,
              p.c_out};
  return y;
}

// The weights [K, C, kh, kw] as the stride-1 convolution's [K, kh2, kw2, c_out] (NHWC, as every channels-last
// convolution's): w'[k, a_h, a_w, (q_h*s + q_w)*C + c] = w[k, c, s*a_h + q_h - shift_h, s*a_w + q_w - shift_w],
// zero where the tap lies outside the original kernel and in the padding channels.
ir::Value* space_to_depth_weights(ir::Graph& g, const ir::Value* wv, const SpaceToDepth& p) {
  const HostTensor* w = ir::constant_value(wv);
  const int64_t K = w->shape()[0], C = p.c, s = p.s;
  const Dims shape{K, p.kh2, p.kw2, p.c_out};
  HostTensor out(w->dtype(), shape);
  std::memset(out.mutable_raw(), 0, out.nbytes());
  const size_t es = dtype_size(w->dtype());
  const auto* src = static_cast<const uint8_t*>(w->raw());
  auto* dst = static_cast<uint8_t*>(out.mutable_raw());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < p.kh; ++r)
        for (int64_t t = 0; t < p.kw; ++t) {
          const int64_t rs = r + p.shift_h, ts = t + p.shift_w;  // the tap's place in the shifted kernel
          const int64_t to = ((k * p.kh2 + rs / s) * p.kw2 + ts / s) * p.c_out + ((rs % s) * s + ts % s) * C + c;
          std::memcpy(dst + to * es, src + (((k * C + c) * p.kh + r) * p.kw + t) * es, es);
        }
  ir::Node* k = g.add_constant(g.unique_name(wv->name + "_space_to_depth"), std::move(out));
  k->outputs[0]->dtype = w->dtype();
  k->outputs[0]->shape = shape;
  return k->outputs[0];
}

bool convert_convolution(ir::Graph& g, ir::Node* n, bool stem_space_to_depth, bool align_stem_padding) {
  if (n->op != "Convolution" || n->attrs.i("channels_last", 0) != 0 || n->outputs.size() != 1) return false;
  if (n->inputs.size() < 2 || !n->inputs[0] || n->inputs[0]->shape.size() != 4) return false;
  const HostTensor* w = ir::constant_value(n->inputs[1]);
  if (!w || w->shape().size() != 4) return false;
  ir::Value* y = n->outputs[0];
  if (y->shape.size() != 4) return false;
  std::vector<ir::Value*> ins = n->inputs;
  SpaceToDepth s2d;
  const bool stem = stem_space_to_depth && plan_space_to_depth(n, w, align_stem_padding, &s2d);
  if (stem) {
    // The op writes the NHWC input itself (in place of the transpose), padded spatially and in channels.
    ins[0] = space_to_depth(g, n->inputs[0], s2d, n->name + "_space_to_depth");
    ins[1] = space_to_depth_weights(g, n->inputs[1], s2d);
  } else {
    ins[0] = add_transpose(g, n->inputs[0], kToNhwc, n->name + "_to_nhwc");
    ins[1] = nhwc_constant(g, n->inputs[1]);  // [K, C/g, kh, kw] -> [K, kh, kw, C/g]
  }
  if (ins.size() > 3 && ins[3]) ins[3] = add_transpose(g, ins[3], kToNhwc, n->name + "_residual_to_nhwc");
  ir::Node* c = twin(g, n, ins, y->dtype, permuted(y->shape, kToNhwc));
  c->attrs.set("channels_last", int64_t{1});
  if (stem) {  // the same epilogue (bias, residual, activation, fused names); a stride-1 unpadded window
    c->attrs.set("kernel", std::vector<int64_t>{s2d.kh2, s2d.kw2});
    c->attrs.set("stride", std::vector<int64_t>{1, 1});
    c->attrs.set("dilation", std::vector<int64_t>{1, 1});
    c->attrs.set("pre_padding", std::vector<int64_t>{0, 0});
    c->attrs.set("post_padding", std::vector<int64_t>{0, 0});
    c->attrs.set("padding_mode", int64_t{0});
  }
  std::swap(c->name, n->name);  // the layer keeps its name (profiles, precision settings)
  replace_value(g, y, add_transpose(g, c->outputs[0], kToNchw, c->name + "_to_nchw"));
  return true;
}

// Axis `a` of a 4-D NCHW tensor as an NHWC axis.
int64_t nhwc_axis(int64_t a) {
  static const int64_t map[4] = {0, 3, 1, 2};
  return map[a < 0 ? a + 4 : a];
}

// Rewrites `n` onto the NHWC sources of its inputs when every non-constant input has one; the result is
// transposed back to NCHW for n's consumers. Constants are transposed at build time.
bool sink(ir::Graph& g, ir::Node* n) {
  static const char* const kAgnostic[] = {"Activation", "Unary", "Cast", "ElementWise", "Select", "Scale",
                                          "Concatenation", "GlobalPooling"};
  bool known = false;
  for (const char* op : kAgnostic) known |= n->op == op;
  if (!known || n->outputs.size() != 1 || n->outputs[0]->shape.size() != 4) return false;
  if (n->op == "Scale" && (n->attrs.i("mode", 0) == 2 || n->attrs.i("channel_axis", 1) != 1)) return false;
  if (n->op == "GlobalPooling" && n->attrs.i("type", 0) != 0 && n->attrs.i("type", 0) != 1) return false;
  bool any = false;
  for (ir::Value* in : n->inputs) {
    if (!in) continue;
    if (nhwc_source(in)) any = true;
    else if (n->op == "Scale" || n->op == "Concatenation" || n->op == "GlobalPooling") {
      if (in == n->inputs[0] || n->op == "Concatenation") return false;  // the data input must be NHWC
    } else if (!ir::constant_value(in) || ir::constant_value(in)->shape().size() > 4) {
      return false;
    }
  }
  if (!any) return false;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < n->inputs.size(); ++i) {
    ir::Value* in = n->inputs[i];
    if (!in) ins.push_back(nullptr);
    else if (ir::Value* s = nhwc_source(in)) ins.push_back(s);
    else if (n->op == "Scale") ins.push_back(in);  // per-channel or uniform parameters: layout-free
    else if (ir::constant_value(in)->numel() == 1 && ir::constant_value(in)->shape().size() <= 1) ins.push_back(in);
    else ins.push_back(nhwc_constant(g, in));
  }
  ir::Value* y = n->outputs[0];
  ir::Node* t;
  if (n->op == "GlobalPooling") {
    // Over H and W of NHWC: a Reduce with kept dims, [N, 1, 1, C].
    t = g.add_node("Reduce", g.unique_name(n->name + "_nhwc"), {ins[0]}, 1);
    t->attrs.set("op", int64_t{n->attrs.i("type", 0) == 0 ? 2 : 4});  // MAX 2, AVG 4
    t->attrs.set("axes", std::vector<int64_t>{1, 2});
    t->attrs.set("keep_dims", int64_t{1});
    t->precision = n->precision;
    t->outputs[0]->dtype = y->dtype;
    t->outputs[0]->shape = permuted(y->shape, kToNhwc);
  } else {
    t = twin(g, n, ins, y->dtype, permuted(y->shape, kToNhwc));
    if (n->op == "Concatenation") t->attrs.set("axis", nhwc_axis(n->attrs.i("axis", 0)));
    if (n->op == "Scale") t->attrs.set("channel_axis", int64_t{3});
  }
  std::swap(t->name, n->name);
  replace_value(g, y, add_transpose(g, t->outputs[0], kToNchw, t->name + "_to_nchw"));
  return true;
}

// Pooling has a channels-last form (attr channels_last, as on Convolution): a 2-D Pooling of a value that
// is stored NHWC runs NHWC, with the same attributes (window, padding, strides, ... are per spatial dim).
bool sink_pooling(ir::Graph& g, ir::Node* n) {
  if (n->op != "Pooling" || n->attrs.i("channels_last", 0) != 0 || n->inputs.size() != 1 || n->outputs.size() != 1)
    return false;
  ir::Value* src = nhwc_source(n->inputs[0]);
  ir::Value* y = n->outputs[0];
  if (!src || y->shape.size() != 4) return false;
  ir::Node* t = twin(g, n, {src}, y->dtype, permuted(y->shape, kToNhwc));
  t->attrs.set("channels_last", int64_t{1});
  std::swap(t->name, n->name);
  replace_value(g, y, add_transpose(g, t->outputs[0], kToNchw, t->name + "_to_nchw"));
  return true;
}

// transpose(NCHW -> NHWC) of transpose(NHWC -> NCHW) of x is x.
bool cancel(ir::Graph& g, ir::Node* n) {
  if (!is_transpose(n, kToNhwc) || n->outputs[0]->is_output) return false;
  ir::Value* x = nhwc_source(n->inputs[0]);
  if (!x) return false;
  g.replace_all_uses(n->outputs[0], x);
  return true;
}

bool dead(const ir::Graph& g, const ir::Node* n) {
  for (const ir::Value* o : n->outputs)
    if (o->is_output || !g.users(o).empty()) return false;
  return true;
}

// Removes nodes nothing uses, repeatedly (remove_nodes_if's predicate must not look at the graph itself).
void remove_dead(ir::Graph& g) {
  for (;;) {
    std::unordered_set<const ir::Node*> doomed;
    for (auto& n : g.nodes())
      if (dead(g, n.get())) doomed.insert(n.get());
    if (doomed.empty()) return;
    g.remove_nodes_if([&](const ir::Node* n) { return doomed.count(n) > 0; });
  }
}

}  // namespace

bool ChannelsLast::run(ir::Graph& g) {
  bool changed = false;
  std::vector<ir::Node*> snapshot;
  for (auto& n : g.nodes()) snapshot.push_back(n.get());
  for (ir::Node* n : snapshot) changed |= convert_convolution(g, n, stem_space_to_depth_, align_stem_padding_);
  if (!changed) return false;
  // Sink and cancel until nothing moves; nodes are visited in topological order so that one sweep
  // carries a transpose as far down as it can go.
  for (int round = 0; round < 64; ++round) {
    remove_dead(g);
    g.topo_sort();
    bool moved = false;
    snapshot.clear();
    for (auto& n : g.nodes()) snapshot.push_back(n.get());
    for (ir::Node* n : snapshot) {
      if (dead(g, n)) continue;
      if (cancel(g, n) || sink(g, n) || sink_pooling(g, n)) moved = true;
    }
    if (!moved) break;
  }
  remove_dead(g);
  return true;
}

}  // namespace kiln::passes
