// FuseGemmEpilogue: MatrixMultiply + bias + residual + activation into one MatrixMultiply (graph before/after
// and the whole graph's outputs before vs after on random inputs, CPU backend).
#include <gtest/gtest.h>

#include "passes/fuse_gemm.h"
#include "passes/fusion_test_util.h"
#include "passes/recognize_activations.h"

using namespace kiln;
using fusetest::Builder;
using fusetest::count_layers;
using fusetest::count_op;
using fusetest::run_and_compare;

namespace {
ir::Node* mm_node(Builder& b) { return b.g.find_node("mm"); }
}  // namespace

TEST(FuseGemmEpilogue, BiasResidualGeluBecomeOneMatrixMultiply) {
  Builder b;
  ir::Value* x = b.input({2, 3, 8});
  ir::Value* y = b.matmul(x, b.rand_cst({8, 5}, 0.1, 1.0));
  ir::Value* bias = b.rand_cst({5});
  ir::Value* s = b.add(y, bias, "bias_add");
  ir::Value* r = b.input({2, 3, 5});
  ir::Value* t = b.add(s, r, "residual_add");
  ir::Value* out = b.act(t, 12, "gelu");
  out->name = "out";
  b.output(out);
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  ir::Node* mm = mm_node(b);
  ASSERT_EQ(mm->inputs.size(), 4u);
  EXPECT_EQ(mm->inputs[2], bias) << "a [N] constant is used as it is";
  EXPECT_EQ(mm->inputs[3], r);
  EXPECT_EQ(mm->attrs.i("activation", -1), 12);
  EXPECT_EQ(mm->attrs.s("fused", ""), "bias_add,residual_add,gelu");
  EXPECT_EQ(b.g.outputs()[0]->name, "out");
}

TEST(FuseGemmEpilogue, BiasShapesAndOperandOrder) {
  for (Dims bs : {Dims{5}, Dims{1, 5}, Dims{1, 1, 5}}) {
    Builder b;
    ir::Value* y = b.matmul(b.input({2, 3, 8}), b.input({8, 5}));  // B not constant
    b.output(b.act(b.add(b.rand_cst(bs), y), 0));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(run_and_compare(b.g, p)) << dims_str(bs);
    EXPECT_EQ(count_layers(b.g), 1u) << dims_str(bs);
    ir::Node* mm = mm_node(b);
    ASSERT_EQ(mm->inputs.size(), 3u);
    EXPECT_EQ(mm->inputs[2]->shape, (Dims{5}));
    EXPECT_EQ(mm->attrs.i("activation", -1), 0);
  }
}

TEST(FuseGemmEpilogue, NonConstantVectorBiasAndTransposedB) {
  Builder b;
  ir::Value* y = b.matmul(b.input({4, 8}), b.input({6, 8}));
  y->producer->attrs.set("op_b", int64_t{1});
  ir::Value* bias = b.input({6});
  b.output(b.act(b.add(y, bias), 65));
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  EXPECT_EQ(mm_node(b)->inputs[2], bias);
}

TEST(FuseGemmEpilogue, BatchedBroadcastWithResidualOnly) {
  Builder b;
  ir::Value* y = b.matmul(b.input({2, 1, 3, 4}), b.input({1, 3, 4, 5}));
  ir::Value* r = b.input({2, 3, 3, 5});
  b.output(b.act(b.add(r, y), 2));
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  ir::Node* mm = mm_node(b);
  ASSERT_EQ(mm->inputs.size(), 4u);
  EXPECT_EQ(mm->inputs[2], nullptr);
  EXPECT_EQ(mm->inputs[3], r);
}

TEST(FuseGemmEpilogue, WhatDoesNotFuse) {
  {  // a [M, 1] constant runs along M, not N: neither bias nor residual
    Builder b;
    b.output(b.add(b.matmul(b.input({3, 8}), b.input({8, 5})), b.rand_cst({3, 1})));
    b.infer();
    passes::FuseGemmEpilogue p;
    bool changed = true;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed));
    EXPECT_FALSE(changed);
  }
  {  // B a vector: the output has no N dim, so a one-element constant is no bias
    Builder b;
    b.output(b.add(b.matmul(b.input({3, 8}), b.input({8})), b.rand_cst({1})));
    b.infer();
    passes::FuseGemmEpilogue p;
    bool changed = true;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed));
    EXPECT_FALSE(changed);
  }
  {  // the biased value is also a network output: the bias fuses, the activation does not
    Builder b;
    ir::Value* s = b.add(b.matmul(b.input({3, 8}), b.input({8, 5})), b.rand_cst({5}));
    b.output(s);
    b.output(b.act(s, 0));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    EXPECT_EQ(count_layers(b.g), 2u);
    EXPECT_EQ(mm_node(b)->attrs.i("activation", -1), -1);
  }
  {  // the user pinned the activation to another output type
    Builder b;
    ir::Value* a = b.act(b.add(b.matmul(b.input({3, 8}), b.input({8, 5})), b.rand_cst({5})), 0);
    a->producer->output_types = {DataType::kFLOAT};
    b.output(a);
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    EXPECT_EQ(count_layers(b.g), 2u);
  }
  {  // a SUB is not a bias add
    Builder b;
    b.output(b.ew(b.matmul(b.input({3, 8}), b.input({8, 5})), b.rand_cst({5}), 4));
    b.infer();
    passes::FuseGemmEpilogue p;
    bool changed = true;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed));
    EXPECT_FALSE(changed);
  }
}

TEST(FuseGemmEpilogue, AfterRecognizingTheExportedGelu) {
  // Linear + GELU as PyTorch exports it: MatMul, Add(bias), then 0.5*x*(1+erf(x/sqrt 2)) in pieces.
  Builder b;
  ir::Value* h = b.add(b.matmul(b.input({4, 16}), b.rand_cst({16, 8}, 0.1, 0.5)), b.rand_cst({8}));
  ir::Value* e = b.unary(b.ew(h, b.scalar(1.4142135381698608), 5), 19);
  ir::Value* out = b.mul(b.mul(h, b.add(e, b.scalar(1.0))), b.scalar(0.5));
  b.output(out);
  b.infer();
  passes::RecognizeActivations rec;
  ASSERT_TRUE(run_and_compare(b.g, rec, 1e-5));
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_layers(b.g), 1u);
  EXPECT_EQ(mm_node(b)->attrs.i("activation", -1), 12);
}

namespace {
ir::Value* reshape(Builder& b, ir::Value* x, Dims to, const std::string& name) {
  ir::Node* n = b.node("Shuffle", {x}, name);
  n->attrs.set("has_reshape", int64_t{1});
  n->attrs.set("reshape_dims", std::vector<int64_t>(to));
  return n->outputs[0];
}
}  // namespace

TEST(FuseGemmEpilogue, ActivationAfterTheReshapeBackReachesTheEpilogue) {
  // GPT-2's MLP as exported: the 3-D input flattened to [M, K], Gemm + bias, reshaped back to 3-D, then GELU.
  Builder b;
  ir::Value* x = reshape(b, b.input({2, 3, 8}), {6, 8}, "flatten");
  ir::Value* h = b.add(b.matmul(x, b.rand_cst({8, 5}, 0.1, 0.5)), b.rand_cst({5}), "bias_add");
  ir::Value* back = reshape(b, h, {2, 3, 5}, "unflatten");
  ir::Value* out = b.act(back, 12, "gelu");
  out->name = "out";
  b.output(out);
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  ir::Node* mm = mm_node(b);
  EXPECT_EQ(mm->attrs.i("activation", -1), 12);
  EXPECT_EQ(mm->attrs.s("fused", ""), "bias_add,gelu");
  EXPECT_EQ(count_op(b.g, "Activation"), 0u);
  // The reshape now produces the network output, from the GEMM's.
  ASSERT_EQ(b.g.outputs()[0]->name, "out");
  ir::Node* last = b.g.outputs()[0]->producer;
  ASSERT_EQ(last->op, "Shuffle");
  EXPECT_EQ(last->inputs[0]->producer, mm);
  EXPECT_EQ(b.g.outputs()[0]->shape, (Dims{2, 3, 5}));
}

TEST(FuseGemmEpilogue, ReshapeReadByOthersKeepsTheActivationAfterIt) {
  Builder b;
  ir::Value* h = b.matmul(b.input({6, 8}), b.rand_cst({8, 5}, 0.1, 0.5));
  ir::Value* back = reshape(b, h, {2, 3, 5}, "unflatten");
  b.output(b.act(back, 12, "gelu"));
  b.output(b.add(back, b.scalar(1.0)));  // the reshaped pre-activation value is read elsewhere too
  b.infer();
  passes::FuseGemmEpilogue p;
  bool changed = true;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(count_op(b.g, "Activation"), 1u);
}
