#include "passes/patchify_conv.h"

#include "passes/view_ops.h"

namespace kiln::passes {

namespace {

std::vector<int64_t> ints_or(const ir::Attrs& a, const char* key, std::vector<int64_t> dflt) {
  std::vector<int64_t> v = a.has(key) ? a.ints(key) : std::vector<int64_t>{};
  return v.empty() ? dflt : v;
}

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v)
    if (e != x) return false;
  return true;
}

bool is_float(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

ir::Node* shuffle(ir::Graph& g, const std::string& name, ir::Value* x, std::vector<int64_t> reshape,
                  std::vector<int64_t> second_transpose, Dims out_shape) {
  ir::Node* s = g.add_node("Shuffle", name, {x}, 1);
  s->attrs.set("has_reshape", int64_t{1});
  s->attrs.set("reshape_dims", std::move(reshape));
  s->attrs.set("zero_is_placeholder", int64_t{1});
  if (!second_transpose.empty()) s->attrs.set("second_transpose", std::move(second_transpose));
  s->outputs[0]->dtype = x->dtype;
  s->outputs[0]->shape = std::move(out_shape);
  return s;
}

// The Transpose[0, 2, 1] of a Reshape of n's output to [N, K, L] when that chain is n's output's only reader
// (neither layer a network output nor pinned): the tokens the patches are read as. nullptr otherwise.
ir::Node* tokens_transpose(const ir::Graph& g, const ir::Node& n, int64_t K, int64_t L) {
  const ir::Value* y = n.outputs[0];
  if (y->is_output) return nullptr;
  const std::vector<ir::Node*> readers = g.users(y);
  if (readers.size() != 1 || !views::reshape_only(readers[0]) || views::pinned(readers[0])) return nullptr;
  const ir::Value* r = readers[0]->outputs[0];
  if (r->is_output || r->shape.size() != 3 || r->shape[1] != K || r->shape[2] != L) return nullptr;
  const std::vector<ir::Node*> next = g.users(r);
  if (next.size() != 1 || views::pinned(next[0]) || !views::is_transpose(next[0], {0, 2, 1})) return nullptr;
  return next[0];
}

// The GEMM form of node n, or nullptr when n is not a patch-embedding convolution (see the header).
ir::Value* patchify(ir::Graph& g, ir::Node& n) {
  if (n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1] || n.outputs.size() != 1) return nullptr;
  if (n.inputs.size() > 3 && n.inputs[3]) return nullptr;  // a fused residual
  if (n.attrs.i("channels_last", 0) != 0 || n.attrs.i("groups", 1) != 1) return nullptr;
  ir::Value* x = n.inputs[0];
  const HostTensor* w = ir::constant_value(n.inputs[1]);
  if (!w || x->shape.size() != 4 || w->shape().size() != 4 || !is_float(x->dtype) || w->dtype() != x->dtype)
    return nullptr;
  const int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t K = w->shape()[0], kh = w->shape()[2], kw = w->shape()[3];
  if (C <= 0 || H <= 0 || W <= 0 || w->shape()[1] != C || kh <= 0 || kw <= 0 || H % kh != 0 || W % kw != 0)
    return nullptr;
  if (ints_or(n.attrs, "stride", {1, 1}) != std::vector<int64_t>{kh, kw}) return nullptr;
  if (!all_equal(ints_or(n.attrs, "dilation", {1}), 1) || !all_equal(ints_or(n.attrs, "pre_padding", {0}), 0) ||
      !all_equal(ints_or(n.attrs, "post_padding", {0}), 0))
    return nullptr;
  // Explicit padding only: with no padding and whole patches ROUND_UP and ROUND_DOWN agree.
  const int64_t mode = n.attrs.i("padding_mode", 0);
  if (mode != 0 && mode != 1) return nullptr;
  ir::Value* bias = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
  if (bias && (bias->dtype != x->dtype || bias->shape != Dims{K})) return nullptr;
  if (kh == 1 && kw == 1) return nullptr;  // a 1x1 convolution: cuDNN's own GEMM-like kernels handle it
  const int64_t N = x->shape[0], OH = H / kh, OW = W / kw, CK = C * kh * kw;
  const int64_t M = N > 0 ? N * OH * OW : -1;

  // [N, C, OH, kh, OW, kw] -> [N, OH, OW, C, kh, kw] -> [N*OH*OW, C*kh*kw] (0: N copied from x).
  ir::Node* cut = shuffle(g, n.name + "/patches", x, {0, C, OH, kh, OW, kw}, {0, 2, 4, 1, 3, 5},
                          {N, OH, OW, C, kh, kw});
  ir::Node* rows = shuffle(g, n.name + "/patch_rows", cut->outputs[0], {-1, CK}, {}, {M, CK});
  ir::Node* wk = g.add_constant(n.name + "/patch_weights", w->reshaped({K, CK}));
  std::vector<ir::Value*> mm_in = {rows->outputs[0], wk->outputs[0]};
  if (bias) mm_in.push_back(bias);
  ir::Node* mm = g.add_node("MatrixMultiply", n.name + "/patch_gemm", mm_in, 1);
  mm->attrs.set("op_a", int64_t{0});
  mm->attrs.set("op_b", int64_t{1});
  for (const char* key : {"activation", "act_alpha", "act_beta", "fused"})
    if (n.attrs.has(key)) mm->attrs.set_value(key, n.attrs.all().at(key));
  mm->precision = n.precision;
  mm->output_types = n.output_types;
  mm->outputs[0]->dtype = x->dtype;
  mm->outputs[0]->shape = {M, K};
  // ViT reads the patches as tokens (torchvision: x.reshape(n, hidden, -1).permute(0, 2, 1); HF:
  // flatten(2).transpose(1, 2)): Transpose[0, 2, 1](Reshape(y, [N, K, OH*OW])) is the GEMM's own output viewed
  // [N, OH*OW, K]. Those readers take that view instead, and the two copies between go (0.10 ms of ViT-B/16
  // at batch 128 on the H200, 2 of its 95 kernels at batch 1).
  if (ir::Node* t = tokens_transpose(g, n, K, OH * OW)) {
    ir::Node* tokens = shuffle(g, n.name + "/patch_tokens", mm->outputs[0], {-1, OH * OW, K}, {}, {N, OH * OW, K});
    tokens->outputs[0]->dtype = t->outputs[0]->dtype;
    replace_value(g, t->outputs[0], tokens->outputs[0]);
  }
  // [N*OH*OW, K] -> [N, OH, OW, K] -> [N, K, OH, OW] (dead when the tokens view took its only reader).
  ir::Node* back = shuffle(g, n.name + "/patch_nchw", mm->outputs[0], {-1, OH, OW, K}, {0, 3, 1, 2}, {N, K, OH, OW});
  back->outputs[0]->dtype = n.outputs[0]->dtype;
  return back->outputs[0];
}

}  // namespace

bool PatchifyConvolution::run(ir::Graph& g) {
  if (!lower_nodes(g, {"Convolution"}, patchify)) return false;
  EliminateDeadNodes().run(g);  // the layout changes a tokens view replaced
  return true;
}

}  // namespace kiln::passes
