// PatchifyConvolution: patch-embedding convolutions (kernel == stride, no padding) become Shuffle ->
// MatrixMultiply -> Shuffle, numerically the same on random inputs (CPU backend); other convolutions stay.
#include <gtest/gtest.h>

#include "passes/fusion_test_util.h"
#include "passes/patchify_conv.h"
#include "passes/view_ops.h"

using namespace kiln;
using fusetest::Builder;
using fusetest::count_op;
using fusetest::run_and_compare;

namespace {

struct ConvSpec {
  Dims x, w;
  int64_t stride = 0, pad = 0;  // stride 0: the kernel size
  bool bias = true, residual = false;
  int64_t act = -1;
};

ir::Node* add_conv(Builder& b, const ConvSpec& s) {
  std::vector<ir::Value*> ins = {b.input(s.x), b.rand_cst(s.w, 0.1, 0.5)};
  if (s.bias || s.residual) ins.push_back(s.bias ? b.rand_cst({s.w[0]}) : nullptr);
  const int64_t st = s.stride ? s.stride : s.w[2];
  if (s.residual) {
    const int64_t oh = (s.x[2] + 2 * s.pad - s.w[2]) / st + 1, ow = (s.x[3] + 2 * s.pad - s.w[3]) / st + 1;
    ins.push_back(b.input({s.x[0], s.w[0], oh, ow}));
  }
  ir::Node* n = b.node("Convolution", ins, "conv");
  n->attrs.set("stride", std::vector<int64_t>{st, s.stride ? s.stride : s.w[3]});
  n->attrs.set("pre_padding", std::vector<int64_t>{s.pad, s.pad});
  n->attrs.set("post_padding", std::vector<int64_t>{s.pad, s.pad});
  if (s.act >= 0) n->attrs.set("activation", s.act);
  b.output(n->outputs[0]);
  b.infer();
  return n;
}

}  // namespace

TEST(PatchifyConvolution, PatchEmbeddingBecomesOneGemm) {
  for (const ConvSpec& s : {ConvSpec{{2, 3, 8, 12}, {5, 3, 4, 4}}, ConvSpec{{1, 3, 32, 32}, {16, 3, 16, 16}},
                            ConvSpec{{2, 4, 6, 9}, {7, 4, 2, 3}, 0, 0, false}, ConvSpec{{2, 3, 8, 8}, {6, 3, 4, 4}, 0, 0, true, false, 0}}) {
    Builder b;
    add_conv(b, s);
    passes::PatchifyConvolution p;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5)) << dims_str(s.x) << " " << dims_str(s.w);
    EXPECT_EQ(count_op(b.g, "Convolution"), 0u);
    EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 1u);
    ir::Node* mm = b.g.find_node("conv/patch_gemm");
    ASSERT_NE(mm, nullptr);
    EXPECT_EQ(mm->inputs.size(), s.bias ? 3u : 2u) << "the bias stays in the GEMM's epilogue";
    EXPECT_EQ(mm->attrs.i("activation", -1), s.act);
    EXPECT_EQ(b.g.outputs()[0]->shape, (Dims{s.x[0], s.w[0], s.x[2] / s.w[2], s.x[3] / s.w[3]}));
  }
}

TEST(PatchifyConvolution, OtherConvolutionsStay) {
  const std::vector<ConvSpec> keep = {
      {{1, 3, 8, 8}, {4, 3, 3, 3}, 1, 1},                 // overlapping windows
      {{1, 3, 8, 8}, {4, 3, 4, 4}, 0, 1},                 // padding
      {{1, 3, 9, 8}, {4, 3, 4, 4}},                       // H not a whole number of patches
      {{1, 3, 8, 8}, {4, 3, 4, 4}, 0, 0, true, true},     // a fused residual
      {{1, 3, 8, 8}, {4, 3, 1, 1}},                       // 1x1: not a patch embedding
  };
  for (const ConvSpec& s : keep) {
    Builder b;
    add_conv(b, s);
    passes::PatchifyConvolution p;
    bool changed = true;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed)) << dims_str(s.x) << " " << dims_str(s.w);
    EXPECT_FALSE(changed) << dims_str(s.x) << " " << dims_str(s.w);
  }
}

// ViT reads the patches as tokens, Transpose[0, 2, 1](Reshape(conv, [N, K, OH*OW])): that is the GEMM's own
// output viewed [N, OH*OW, K], so no copy is left between the GEMM and the tokens (only view Shuffles), and
// the tokens are the same.
TEST(PatchifyConvolution, TokensReadTheGemmOutputDirectly) {
  Builder b;
  ir::Value* x = b.input({2, 3, 8, 12});
  ir::Node* conv = b.node("Convolution", {x, b.rand_cst({5, 3, 4, 4}, 0.1, 0.5), b.rand_cst({5})}, "conv");
  conv->attrs.set("stride", std::vector<int64_t>{4, 4});
  ir::Node* flat = b.node("Shuffle", {conv->outputs[0]}, "flatten");
  flat->attrs.set("has_reshape", int64_t{1});
  flat->attrs.set("reshape_dims", std::vector<int64_t>{0, 5, -1});
  ir::Node* t = b.node("Shuffle", {flat->outputs[0]}, "to_tokens");
  t->attrs.set("first_transpose", std::vector<int64_t>{0, 2, 1});
  b.output(t->outputs[0]);
  b.infer();
  passes::PatchifyConvolution p;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5));
  EXPECT_EQ(b.g.outputs()[0]->shape, (Dims{2, 6, 5}));
  for (auto& n : b.g.nodes())
    if (n->op == "Shuffle" && n->name != "conv/patches") {
      EXPECT_TRUE(passes::views::reshape_only(n.get())) << n->name << " moves data";
    }
  EXPECT_EQ(b.g.find_node("conv/patch_nchw"), nullptr);
}
