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
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
  {  // B a vector: the output has no N dim, so a one-element constant is no bias
    Builder b;
    b.output(b.add(b.matmul(b.input({3, 8}), b.input({8})), b.rand_cst({1})));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
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
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
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
  ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  EXPECT_EQ(count_op(b.g, "Activation"), 1u);
}

namespace {
// GPT-2's Conv1D as exported: x [.., 3, 8] flattened to [M, 8], Gemm (+ `bias` when given), reshaped back to
// `back` ("unflatten"), then `residual_add` of `res`. Returns the sum, named "out".
ir::Value* conv1d_residual(Builder& b, ir::Value* x, ir::Value* res, Dims flat, Dims back, ir::Value* bias = nullptr) {
  ir::Value* h = b.matmul(reshape(b, x, flat, "flatten"), b.rand_cst({8, 8}, 0.1, 0.5));
  if (bias) h = b.add(h, bias, "bias_add");
  ir::Value* out = b.add(reshape(b, h, back, "unflatten"), res, "residual_add");
  out->name = "out";
  return out;
}

// The residual that the GEMM reads: a reshape of `res` to the GEMM's own output shape.
void expect_residual_reshaped_from(ir::Node* mm, ir::Value* res) {
  ASSERT_EQ(mm->inputs.size(), 4u);
  ir::Value* r = mm->inputs[3];
  ASSERT_NE(r, nullptr);
  ASSERT_NE(r->producer, nullptr);
  EXPECT_EQ(r->producer->op, "Shuffle");
  EXPECT_EQ(r->producer->inputs[0], res);
  EXPECT_EQ(r->shape, mm->outputs[0]->shape);
}

// Runs the pass, checks the graph still infers, and compares the outputs before and after on `inputs` (for
// graphs with unknown dims, which run_and_compare cannot make random inputs for).
::testing::AssertionResult run_on(ir::Graph& g, passes::Pass& pass, const std::vector<HostTensor>& inputs,
                                  bool* changed) {
  std::unique_ptr<ir::Graph> before = g.clone();
  const std::vector<HostTensor> want = fusetest::eval_graph(*before, inputs);
  *changed = pass.run(g);
  if (pass.run(g)) return ::testing::AssertionFailure() << "not idempotent";
  infer_graph_inplace(g);
  const std::vector<HostTensor> got = fusetest::eval_graph(g, inputs);
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].shape() != want[i].shape()) return ::testing::AssertionFailure() << "output " << i << " shape";
    ::testing::AssertionResult r = mtest::close(got[i], mtest::to_f64(want[i]), 0, 1e-5);
    if (!r) return ::testing::AssertionFailure() << "output " << i << ": " << r.message() << "\n" << g.to_string();
  }
  return ::testing::AssertionSuccess();
}
}  // namespace

TEST(FuseGemmEpilogue, ResidualAfterTheReshapeBackBecomesTheGemmResidual) {
  // GPT-2's attention projection / MLP output: Gemm [6, 8], reshape to [2, 3, 8], add the residual stream.
  Builder b;
  ir::Value* res = b.input({2, 3, 8});
  ir::Value* out = conv1d_residual(b, b.input({2, 3, 8}), res, {6, 8}, {2, 3, 8});
  b.output(out);
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  ir::Node* mm = mm_node(b);
  ASSERT_NO_FATAL_FAILURE(expect_residual_reshaped_from(mm, res));
  EXPECT_EQ(mm->inputs[2], nullptr);
  EXPECT_EQ(mm->inputs[3]->shape, (Dims{6, 8}));
  EXPECT_EQ(mm->attrs.s("fused", ""), "residual_add");
  EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
  // The network output keeps its value and name, now the reshape of the GEMM's output.
  ASSERT_EQ(b.g.outputs().size(), 1u);
  EXPECT_EQ(b.g.outputs()[0], out);
  EXPECT_EQ(out->name, "out");
  EXPECT_EQ(out->shape, (Dims{2, 3, 8}));
  ASSERT_EQ(out->producer->op, "Shuffle");
  EXPECT_EQ(out->producer->name, "unflatten");
  EXPECT_EQ(out->producer->inputs[0]->producer, mm);
}

TEST(FuseGemmEpilogue, BiasIsTakenBeforeTheResidualAfterTheReshape) {
  Builder b;
  ir::Value* res = b.input({2, 3, 8});
  ir::Value* bias = b.rand_cst({8});
  ir::Value* out = conv1d_residual(b, b.input({2, 3, 8}), res, {6, 8}, {2, 3, 8}, bias);
  b.output(out);
  b.output(b.act(out, 0));  // the sum is read further on, as the residual stream is (and is a network output)
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  ir::Node* mm = mm_node(b);
  ASSERT_NO_FATAL_FAILURE(expect_residual_reshaped_from(mm, res));
  EXPECT_EQ(mm->inputs[2], bias);
  EXPECT_EQ(mm->attrs.s("fused", ""), "bias_add,residual_add");
  EXPECT_EQ(mm->attrs.i("activation", -1), -1) << "the sum has other readers: the activation stays after it";
  EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
  EXPECT_EQ(count_op(b.g, "Activation"), 1u);
  EXPECT_EQ(b.g.outputs()[0], out);
  EXPECT_EQ(out->name, "out");
}

TEST(FuseGemmEpilogue, ResidualThenActivationAfterTheReshapeBothReachTheEpilogue) {
  Builder b;
  ir::Value* res = b.input({2, 3, 8});
  ir::Value* sum = conv1d_residual(b, b.input({2, 3, 8}), res, {6, 8}, {2, 3, 8}, b.rand_cst({8}));
  ir::Value* out = b.act(sum, 12, "gelu");
  b.output(out);
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  ir::Node* mm = mm_node(b);
  ASSERT_NO_FATAL_FAILURE(expect_residual_reshaped_from(mm, res));
  EXPECT_EQ(mm->attrs.s("fused", ""), "bias_add,residual_add,gelu");
  EXPECT_EQ(mm->attrs.i("activation", -1), 12);
  EXPECT_EQ(count_op(b.g, "ElementWise") + count_op(b.g, "Activation"), 0u);
  EXPECT_EQ(b.g.outputs()[0], out);
}

TEST(FuseGemmEpilogue, ResidualAfterTheReshapeWithOperandsSwapped) {
  Builder b;
  ir::Value* res = b.input({2, 3, 8});
  ir::Value* h = b.matmul(reshape(b, b.input({2, 3, 8}), {6, 8}, "flatten"), b.rand_cst({8, 8}, 0.1, 0.5));
  b.output(b.add(res, reshape(b, h, {2, 3, 8}, "unflatten")));
  b.infer();
  passes::FuseGemmEpilogue p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  ASSERT_NO_FATAL_FAILURE(expect_residual_reshaped_from(mm_node(b), res));
}

TEST(FuseGemmEpilogue, WhatDoesNotFuseAsAResidualOverTheReshape) {
  struct Case {
    const char* what;
    Dims res;
    bool constant;
  };
  for (const Case& c : {Case{"broadcast over the batch", {1, 3, 8}, false},
                        Case{"broadcast along N only (bias-like, after the reshape)", {8}, false},
                        Case{"a different shape that broadcasts", {3, 8}, false},
                        Case{"a constant of the full shape", {2, 3, 8}, true},
                        Case{"a bias-like constant", {1, 1, 8}, true}}) {
    Builder b;
    ir::Value* res = c.constant ? b.rand_cst(c.res) : b.input(c.res);
    b.output(conv1d_residual(b, b.input({2, 3, 8}), res, {6, 8}, {2, 3, 8}));
    b.infer();
    passes::FuseGemmEpilogue p;
    bool changed = true;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed)) << c.what;
    EXPECT_FALSE(changed) << c.what;
    EXPECT_EQ(count_op(b.g, "ElementWise"), 1u) << c.what;
  }
  {  // the reshaped GEMM output is read elsewhere too
    Builder b;
    ir::Value* h = b.matmul(b.input({6, 8}), b.rand_cst({8, 8}, 0.1, 0.5));
    ir::Value* back = reshape(b, h, {2, 3, 8}, "unflatten");
    b.output(b.add(back, b.input({2, 3, 8})));
    b.output(b.act(back, 0));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
  {  // the reshaped GEMM output is itself a network output
    Builder b;
    ir::Value* h = b.matmul(b.input({6, 8}), b.rand_cst({8, 8}, 0.1, 0.5));
    ir::Value* back = reshape(b, h, {2, 3, 8}, "unflatten");
    b.output(back);
    b.output(b.add(back, b.input({2, 3, 8})));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
  {  // the GEMM has a residual already: the sum after the reshape stays
    Builder b;
    ir::Value* h = b.add(b.matmul(b.input({6, 8}), b.rand_cst({8, 8}, 0.1, 0.5)), b.input({6, 8}), "first");
    b.output(b.add(reshape(b, h, {2, 3, 8}, "unflatten"), b.input({2, 3, 8}), "second"));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    EXPECT_EQ(mm_node(b)->attrs.s("fused", ""), "first");
    EXPECT_EQ(count_op(b.g, "ElementWise"), 1u);
    EXPECT_EQ(count_op(b.g, "Shuffle"), 1u) << "no reshape of the second operand: it could not fuse";
  }
  {  // a transposing Shuffle is not a plain reshape
    Builder b;
    ir::Value* h = b.matmul(b.input({6, 8}), b.rand_cst({8, 8}, 0.1, 0.5));
    ir::Node* t = b.node("Shuffle", {h}, "transpose");
    t->attrs.set("first_transpose", std::vector<int64_t>{1, 0});
    b.output(b.add(t->outputs[0], b.input({8, 6})));
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
  {  // the sum is pinned to another precision
    Builder b;
    ir::Value* out = conv1d_residual(b, b.input({2, 3, 8}), b.input({2, 3, 8}), {6, 8}, {2, 3, 8});
    out->producer->precision = DataType::kHALF;
    b.output(out);
    b.infer();
    passes::FuseGemmEpilogue p;
    ASSERT_TRUE(fusetest::unchanged_by(b.g, p));
  }
}

TEST(FuseGemmEpilogue, ResidualOverTheReshapeWithADynamicBatch) {
  // As GPT-2 reaches the pass after shape folding: flatten to [-1, 8], Gemm, reshape to [-1, 3, 8], and the
  // residual stream [-1, 3, 8]. The residual is reshaped to the GEMM's [-1, 8].
  Builder b;
  ir::Value* x = b.input({-1, 3, 8});
  ir::Value* res = b.input({-1, 3, 8});
  ir::Value* out = conv1d_residual(b, x, res, {-1, 8}, {-1, 3, 8}, b.rand_cst({8}));
  b.output(out);
  b.infer();
  ASSERT_EQ(out->shape, (Dims{-1, 3, 8}));
  passes::FuseGemmEpilogue p;
  bool changed = false;
  const std::vector<HostTensor> inputs = {mtest::rand_float({4, 3, 8}, DataType::kFLOAT, 0.1, 2.0),
                                          mtest::rand_float({4, 3, 8}, DataType::kFLOAT, 0.1, 2.0)};
  ASSERT_TRUE(run_on(b.g, p, inputs, &changed));
  EXPECT_TRUE(changed);
  ir::Node* mm = mm_node(b);
  ASSERT_NO_FATAL_FAILURE(expect_residual_reshaped_from(mm, res));
  EXPECT_EQ(mm->inputs[3]->shape, (Dims{-1, 8}));
  EXPECT_EQ(mm->inputs[3]->producer->attrs.ints("reshape_dims"), (std::vector<int64_t>{-1, 8}));
  EXPECT_EQ(mm->attrs.s("fused", ""), "bias_add,residual_add");
  EXPECT_EQ(b.g.outputs()[0], out);
  EXPECT_EQ(out->shape, (Dims{-1, 3, 8}));
}

TEST(FuseGemmEpilogue, DynamicDimsThatCannotBeMatchedStayApart) {
  const std::vector<HostTensor> x = {mtest::rand_float({2, 3, 8}, DataType::kFLOAT, 0.1, 2.0)};
  {  // a known residual against an unknown batch: not known to be the same shape
    Builder b;
    b.output(conv1d_residual(b, b.input({-1, 3, 8}), b.input({2, 3, 8}), {-1, 8}, {-1, 3, 8}));
    b.infer();
    passes::FuseGemmEpilogue p;
    bool changed = true;
    ASSERT_TRUE(run_on(b.g, p, {x[0], x[0]}, &changed));
    EXPECT_FALSE(changed);
  }
  {  // the GEMM's output has two unknown dims: no static reshape reproduces it
    Builder b;
    ir::Value* h = b.matmul(b.input({-1, -1, 8}), b.rand_cst({8, 8}, 0.1, 0.5));
    b.output(b.add(reshape(b, h, {-1, 8}, "flatten"), b.input({-1, 8})));
    b.infer();
    ASSERT_EQ(h->shape, (Dims{-1, -1, 8}));
    passes::FuseGemmEpilogue p;
    bool changed = true;
    ASSERT_TRUE(run_on(b.g, p, {x[0], mtest::rand_float({6, 8}, DataType::kFLOAT, 0.1, 2.0)}, &changed));
    EXPECT_FALSE(changed);
  }
}
