// FoldBatchNormIntoConv and FuseConvEpilogue: graph before, run the pass, the graph after (node counts,
// ops, attributes) and the whole graph's outputs on random inputs, before vs after, with the CPU backend.
#include <gtest/gtest.h>

#include "passes/fuse_conv.h"
#include "passes/fusion_test_util.h"

using namespace kiln;
using fusetest::Builder;
using fusetest::count_layers;
using fusetest::count_op;
using fusetest::run_and_compare;

namespace {

constexpr int64_t K = 6;

// x [2, 4, 7, 5] -> conv 3x3 (K = 6, padding 1) with constant weights and optional constant bias.
ir::Value* make_conv(Builder& b, ir::Value** x = nullptr, bool bias = true, Dims xs = {2, 4, 7, 5}) {
  ir::Value* in = b.input(xs);
  if (x) *x = in;
  Dims ws = {K, xs[1]};
  for (size_t i = 2; i < xs.size(); ++i) ws.push_back(3);
  return b.conv(in, b.rand_cst(ws, 0.1, 1.0), bias ? b.rand_cst({K}) : nullptr);
}

ir::Node* conv_node(Builder& b) { return b.g.find_node("conv"); }

HostTensor channel_values(Dims shape, double lo, double hi) { return mtest::rand_float(std::move(shape), DataType::kFLOAT, lo, hi); }

}  // namespace

TEST(FoldBatchNormIntoConv, FoldsScaleFromBatchNormalization) {
  Builder b;
  ir::Value* y = make_conv(b);
  ir::Node* sc = b.node("Scale", {y, b.cst(channel_values({K}, 0.1, 1.0)), b.cst(channel_values({K}, 0.5, 2.0))}, "bn");
  sc->attrs.set("mode", int64_t{1});
  sc->attrs.set("channel_axis", int64_t{1});
  ir::Value* out = b.act(sc->outputs[0], 0, "relu");
  b.output(out);
  b.infer();
  ir::Value* bn_out = sc->outputs[0];
  passes::FoldBatchNormIntoConv p;
  bool changed = false;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(count_op(b.g, "Scale"), 0u);
  EXPECT_EQ(count_layers(b.g), 2u);  // conv, relu
  ir::Node* conv = conv_node(b);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->outputs[0], bn_out) << "the conv produces the folded layer's output value";
  EXPECT_EQ(conv->attrs.s("fused", ""), "bn");
  EXPECT_EQ(b.g.find_node("relu")->inputs[0], conv->outputs[0]);
}

TEST(FoldBatchNormIntoConv, FoldsMulAddChainWithoutBias) {
  // Computed statistics after constant folding: conv * a[1,K,1,1] + s[K,1,1]; the conv has no bias.
  Builder b;
  ir::Value* y = make_conv(b, nullptr, false);
  ir::Value* m = b.mul(y, b.cst(channel_values({1, K, 1, 1}, 0.2, 1.5)), "mul");
  ir::Value* a = b.add(b.cst(channel_values({K, 1, 1}, 0.1, 1.0)), m, "add");  // constant on the left
  b.output(a);
  b.infer();
  passes::FoldBatchNormIntoConv p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  ir::Node* conv = conv_node(b);
  ASSERT_EQ(conv->inputs.size(), 3u);
  ASSERT_NE(conv->inputs[2], nullptr) << "the shift became a bias";
  EXPECT_EQ(conv->attrs.s("fused", ""), "mul,add");
  EXPECT_EQ(b.g.outputs()[0], conv->outputs[0]);
}

TEST(FoldBatchNormIntoConv, FoldsDivSubAndUniformScale1d) {
  Builder b;
  ir::Value* y = make_conv(b, nullptr, true, {3, 4, 9});
  ir::Value* d = b.ew(y, b.cst(channel_values({K, 1}, 0.5, 2.0)), 5, "div");
  ir::Value* s = b.ew(d, b.scalar(0.25), 4, "sub");
  ir::Node* sc = b.node("Scale", {s, nullptr, b.scalar(1.5)}, "uniform");
  sc->attrs.set("mode", int64_t{0});
  b.output(sc->outputs[0]);
  b.infer();
  passes::FoldBatchNormIntoConv p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
}

TEST(FoldBatchNormIntoConv, LeavesWhatDoesNotFold) {
  struct Case {
    const char* what;
    std::function<void(Builder&, ir::Value*)> tail;
  };
  const std::vector<Case> cases = {
      {"power 2", [](Builder& b, ir::Value* y) {
         ir::Node* sc = b.node("Scale", {y, nullptr, b.rand_cst({K}), b.cst(mtest::scalar_of(DataType::kFLOAT, 2.0, {K}))});
         sc->attrs.set("mode", int64_t{1});
         b.output(sc->outputs[0]);
       }},
      {"channel axis 2", [](Builder& b, ir::Value* y) {
         ir::Node* sc = b.node("Scale", {y, nullptr, b.rand_cst({7})});
         sc->attrs.set("mode", int64_t{1});
         sc->attrs.set("channel_axis", int64_t{2});
         b.output(sc->outputs[0]);
       }},
      {"constant along the last axis", [](Builder& b, ir::Value* y) { b.output(b.mul(y, b.rand_cst({5}))); }},
      {"non-constant operand", [](Builder& b, ir::Value* y) { b.output(b.mul(y, b.input({1, K, 1, 1}))); }},
      {"constant divided by conv", [](Builder& b, ir::Value* y) { b.output(b.ew(b.rand_cst({1, K, 1, 1}), y, 5)); }},
      {"conv output used twice", [](Builder& b, ir::Value* y) {
         b.output(b.mul(y, b.rand_cst({1, K, 1, 1})));
         b.output(b.act(y, 0));
       }},
      {"conv output is a network output", [](Builder& b, ir::Value* y) {
         b.output(y);
         b.output(b.mul(y, b.rand_cst({1, K, 1, 1})));
       }},
      {"differently pinned precision", [](Builder& b, ir::Value* y) {
         ir::Value* m = b.mul(y, b.rand_cst({1, K, 1, 1}));
         m->producer->precision = DataType::kFLOAT;
         b.output(m);
       }},
  };
  for (const Case& c : cases) {
    Builder b;
    ir::Value* y = make_conv(b);
    c.tail(b, y);
    b.infer();
    const size_t before = b.g.num_nodes();
    passes::FoldBatchNormIntoConv p;
    bool changed = true;
    EXPECT_TRUE(run_and_compare(b.g, p, 1e-5, &changed)) << c.what;
    EXPECT_FALSE(changed) << c.what;
    EXPECT_EQ(b.g.num_nodes(), before) << c.what;
  }
}

TEST(FoldBatchNormIntoConv, SharedWeightsAreNotModified) {
  // Two convolutions share one weight constant; only one is followed by a scale.
  Builder b;
  ir::Value* x = b.input({1, 4, 6, 6});
  ir::Value* w = b.rand_cst({K, 4, 3, 3});
  ir::Value* y1 = b.conv(x, w, nullptr, "conv");
  ir::Value* y2 = b.conv(x, w, nullptr, "conv2");
  b.output(b.mul(y1, b.rand_cst({1, K, 1, 1})));
  b.output(y2);
  b.infer();
  const HostTensor w_before = ir::constant_value(w)->deep_copy();
  passes::FoldBatchNormIntoConv p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_TRUE(ir::constant_value(b.g.find_node("conv2")->inputs[1])->same_bytes(w_before));
  EXPECT_NE(b.g.find_node("conv")->inputs[1], b.g.find_node("conv2")->inputs[1]);
}

TEST(FuseConvEpilogue, ResidualAndReluBecomeOneConvolution) {
  Builder b;
  ir::Value* y = make_conv(b);
  ir::Value* r = b.input({2, K, 7, 5});
  ir::Value* s = b.add(r, y, "residual_add");  // residual on the left
  ir::Value* out = b.act(s, 0, "relu");
  out->name = "y";
  b.output(out);
  b.infer();
  passes::FuseConvEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  ir::Node* conv = conv_node(b);
  ASSERT_EQ(conv->inputs.size(), 4u);
  EXPECT_EQ(conv->inputs[3], r);
  EXPECT_EQ(conv->attrs.i("activation", -1), 0);
  EXPECT_EQ(conv->attrs.s("fused", ""), "residual_add,relu");
  EXPECT_EQ(b.g.outputs()[0]->name, "y");
  EXPECT_EQ(b.g.outputs()[0]->producer, conv);
}

TEST(FuseConvEpilogue, EveryActivationWithAndWithoutResidual) {
  struct A {
    int64_t type;
    double alpha, beta;
    bool has_alpha;
  };
  const std::vector<A> acts = {{0, 0, 0, false},   {8, 0.0, 6.0, true}, {1, 0, 0, false},  {2, 0, 0, false},
                               {3, 0.1, 0, true},  {65, 0, 0, false},  {64, 0, 0, false}, {12, 0, 0, false},
                               {13, 0, 0, false},  {4, 0.7, 0, true},  {3, 0, 0, false}};
  for (const A& a : acts)
    for (bool residual : {false, true}) {
      Builder b;
      ir::Value* y = make_conv(b);
      if (residual) y = b.add(y, b.input({2, K, 7, 5}));
      ir::Node* an = b.node("Activation", {y}, "act");
      an->attrs.set("type", a.type);
      if (a.has_alpha) {
        an->attrs.set("alpha", a.alpha);
        an->attrs.set("beta", a.beta);
      }
      b.output(an->outputs[0]);
      b.infer();
      passes::FuseConvEpilogue p;
      ASSERT_TRUE(run_and_compare(b.g, p, 2e-5)) << "activation " << a.type << " residual " << residual;
      EXPECT_EQ(count_layers(b.g), 1u) << "activation " << a.type;
      ir::Node* conv = conv_node(b);
      EXPECT_EQ(conv->attrs.i("activation", -1), a.type);
      EXPECT_EQ(conv->attrs.has("act_alpha"), a.has_alpha);
    }
}

TEST(FuseConvEpilogue, ConstantChannelAddBecomesTheBias) {
  Builder b;
  ir::Value* y = make_conv(b, nullptr, false);
  ir::Value* s = b.add(y, b.rand_cst({1, K, 1, 1}), "bias_add");
  b.output(b.act(s, 1, "sigmoid"));
  b.infer();
  passes::FuseConvEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  ir::Node* conv = conv_node(b);
  ASSERT_GE(conv->inputs.size(), 3u);
  ASSERT_NE(conv->inputs[2], nullptr);
  EXPECT_EQ(conv->inputs[2]->shape, (Dims{K}));
  EXPECT_EQ(conv->attrs.i("activation", -1), 1);
}

TEST(FuseConvEpilogue, TwoConvolutionsIntoOneAdd) {
  // ResNet's block end: conv(x) + conv(x2) then ReLU: one convolution takes the other's output as residual.
  Builder b;
  ir::Value* x = b.input({1, 4, 6, 6});
  ir::Value* y1 = b.conv(x, b.rand_cst({K, 4, 3, 3}), b.rand_cst({K}), "conv");
  ir::Value* y2 = b.conv(x, b.rand_cst({K, 4, 3, 3}), b.rand_cst({K}), "shortcut");
  b.output(b.act(b.add(y1, y2), 0));
  b.infer();
  passes::FuseConvEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 2u);
  EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
}

TEST(FuseConvEpilogue, StopsWhereTheChainBranchesOrIsPinned) {
  {  // the sum is a network output: only the residual add fuses, the activation stays
    Builder b;
    ir::Value* s = b.add(make_conv(b), b.input({2, K, 7, 5}));
    b.output(s);
    b.output(b.act(s, 0));
    b.infer();
    passes::FuseConvEpilogue p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    EXPECT_EQ(count_layers(b.g), 2u);
    EXPECT_EQ(conv_node(b)->attrs.i("activation", -1), -1);
  }
  {  // a broadcast (non-constant) operand is not a residual
    Builder b;
    b.output(b.act(b.add(make_conv(b), b.input({1, K, 1, 1})), 0));
    b.infer();
    passes::FuseConvEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
  {  // an activation pinned to another precision stays a layer of its own
    Builder b;
    ir::Value* a = b.act(b.add(make_conv(b), b.input({2, K, 7, 5})), 0);
    a->producer->precision = DataType::kFLOAT;
    b.output(a);
    b.infer();
    passes::FuseConvEpilogue p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    EXPECT_EQ(count_layers(b.g), 2u);
  }
  {  // a conv whose output has two users
    Builder b;
    ir::Value* y = make_conv(b);
    b.output(b.act(y, 0));
    b.output(b.act(y, 1));
    b.infer();
    passes::FuseConvEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
}

TEST(FuseConvEpilogue, AfterBatchNormFoldResNetBlock) {
  // conv -> BN (Scale) -> + identity -> ReLU: the fold then the epilogue give one convolution.
  Builder b;
  ir::Value* x = b.input({2, K, 5, 5});
  ir::Value* y = b.conv(x, b.rand_cst({K, K, 3, 3}, 0.1, 0.5), nullptr, "conv");
  ir::Node* sc = b.node("Scale", {y, b.rand_cst({K}), b.rand_cst({K}, 0.5, 1.5)}, "bn");
  sc->attrs.set("mode", int64_t{1});
  b.output(b.act(b.add(sc->outputs[0], x), 0));
  b.infer();
  passes::FoldBatchNormIntoConv fold;
  ASSERT_TRUE(run_and_compare(b.g, fold));
  passes::FuseConvEpilogue fuse;
  ASSERT_TRUE(run_and_compare(b.g, fuse));
  EXPECT_EQ(count_layers(b.g), 1u);
  ir::Node* conv = conv_node(b);
  EXPECT_EQ(conv->inputs[3], x);
  EXPECT_EQ(conv->attrs.i("activation", -1), 0);
}
