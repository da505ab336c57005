// MergeParallelGemms: GEMMs with constant weights on one input become one GEMM (+ one bias add) and a Split
// along the last axis (graph before/after, the merged weights and biases element by element, and the whole
// graph's outputs before vs after on random inputs, CPU backend); what must stay apart stays apart.
#include <gtest/gtest.h>

#include "passes/fusion_test_util.h"
#include "passes/merge_parallel_gemms.h"

using namespace kiln;
using fusetest::Builder;
using fusetest::count_op;
using fusetest::run_and_compare;

namespace {

ir::Node* only_node(const ir::Graph& g, const std::string& op) {
  ir::Node* found = nullptr;
  for (auto& n : g.nodes()) {
    if (n->op != op) continue;
    EXPECT_EQ(found, nullptr) << "more than one " << op;
    found = n.get();
  }
  return found;
}

// One projection: A @ W (W a constant named `name`/w, [K, N], or [N, K] with op_b TRANSPOSE).
ir::Value* projection(Builder& b, ir::Value* a, Dims w_shape, const std::string& name, bool transposed = false) {
  ir::Value* w = b.rand_cst(std::move(w_shape), 0.1, 1.0);
  ir::Value* y = b.matmul(a, w, name);
  if (transposed) y->producer->attrs.set("op_b", int64_t{1});
  return y;
}

// Relu of v as a graph output, so that v itself is no graph output (a branch's output may not be one).
void consume(Builder& b, ir::Value* v) { b.output(b.act(v, 0)); }

// The unmerged pass run: no change, the graph still computes the same.
void expect_unchanged(Builder& b) {
  passes::MergeParallelGemms p;
  bool changed = true;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5, &changed));
  EXPECT_FALSE(changed) << b.g.to_string();
}

const HostTensor& constant_of(const ir::Value* v) {
  const HostTensor* t = ir::constant_value(v);
  EXPECT_NE(t, nullptr) << v->name << " is not a constant";
  static const HostTensor none;
  return t ? *t : none;
}

}  // namespace

TEST(MergeParallelGemms, QkvWithBiasesBecomeOneGemmOneAddOneSplit) {
  Builder b;
  ir::Value* x = b.input({2, 3, 8});
  ir::Value* q = projection(b, x, {8, 5}, "q");
  ir::Value* k = projection(b, x, {8, 4}, "k");
  ir::Value* v = projection(b, x, {8, 6}, "v");
  // The bias shapes and operand orders exporters write: [N], [1, N] first (ONNX's Add(bias, x)), [1, 1, N].
  const HostTensor bq = mtest::rand_float({5}), bk = mtest::rand_float({1, 4}), bv = mtest::rand_float({1, 1, 6});
  ir::Value* qs = b.add(q, b.cst(bq), "q_add");
  ir::Value* ks = b.add(b.cst(bk), k, "k_add");
  ir::Value* vs = b.add(v, b.cst(bv), "v_add");
  qs->name = "q_out";
  ks->name = "k_out";
  vs->name = "v_out";
  consume(b, qs);
  consume(b, ks);
  consume(b, vs);
  b.infer();
  const HostTensor wq = constant_of(q->producer->inputs[1]), wk = constant_of(k->producer->inputs[1]),
                   wv = constant_of(v->producer->inputs[1]);
  passes::MergeParallelGemms p;
  ASSERT_TRUE(run_and_compare(b.g, p));

  EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 1u);
  EXPECT_EQ(count_op(b.g, "ElementWise"), 1u);
  EXPECT_EQ(count_op(b.g, "Constant"), 2u) << "the branches' weights and biases are gone";
  ir::Node* mm = only_node(b.g, "MatrixMultiply");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->name, "merged(q, k, v)");
  EXPECT_EQ(mm->inputs[0], x);
  EXPECT_EQ(mm->attrs.i("op_b", -1), 0);
  EXPECT_EQ(mm->outputs[0]->shape, (Dims{2, 3, 15}));
  const HostTensor& w = constant_of(mm->inputs[1]);
  ASSERT_EQ(w.shape(), (Dims{8, 15}));
  for (int64_t r = 0; r < 8; ++r) {
    for (int64_t c = 0; c < 5; ++c) EXPECT_EQ(w.get_f64(r * 15 + c), wq.get_f64(r * 5 + c));
    for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(w.get_f64(r * 15 + 5 + c), wk.get_f64(r * 4 + c));
    for (int64_t c = 0; c < 6; ++c) EXPECT_EQ(w.get_f64(r * 15 + 9 + c), wv.get_f64(r * 6 + c));
  }

  ir::Node* add = only_node(b.g, "ElementWise");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->name, "merged(q_add, k_add, v_add)");
  EXPECT_EQ(add->attrs.i("op", -1), 0);
  EXPECT_EQ(add->inputs[0], mm->outputs[0]);
  const HostTensor& bias = constant_of(add->inputs[1]);
  ASSERT_EQ(bias.shape(), (Dims{15}));
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(bias.get_f64(i), bq.get_f64(i));
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(bias.get_f64(5 + i), bk.get_f64(i));
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(bias.get_f64(9 + i), bv.get_f64(i));

  ir::Node* split = only_node(b.g, "Split");
  ASSERT_NE(split, nullptr);
  EXPECT_EQ(split->inputs, (std::vector<ir::Value*>{add->outputs[0]}));
  EXPECT_EQ(split->attrs.i("axis", -1), 2);
  EXPECT_EQ(split->attrs.ints("split"), (std::vector<int64_t>{5, 4, 6}));
  ASSERT_EQ(split->outputs.size(), 3u);
  EXPECT_EQ(split->outputs[0], qs) << "the Split produces the branches' own values";
  EXPECT_EQ(split->outputs[1], ks);
  EXPECT_EQ(split->outputs[2], vs);
  EXPECT_EQ(qs->name, "q_out");
  EXPECT_EQ(vs->shape, (Dims{2, 3, 6}));
}

TEST(MergeParallelGemms, TransposedWeightsMixedWithPlainOnes) {
  {  // op_b TRANSPOSE [N, K] next to op_b NONE [K, N]: the merged weight is [K, N] with the [N, K] one transposed
    Builder b;
    ir::Value* x = b.input({6, 8});
    ir::Value* q = projection(b, x, {8, 5}, "q");
    ir::Value* k = projection(b, x, {3, 8}, "k", true);
    consume(b, q);
    consume(b, k);
    b.infer();
    const HostTensor wq = constant_of(q->producer->inputs[1]), wk = constant_of(k->producer->inputs[1]);
    passes::MergeParallelGemms p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    ir::Node* mm = only_node(b.g, "MatrixMultiply");
    ASSERT_NE(mm, nullptr);
    EXPECT_EQ(mm->attrs.i("op_b", -1), 0);
    const HostTensor& w = constant_of(mm->inputs[1]);
    ASSERT_EQ(w.shape(), (Dims{8, 8}));
    for (int64_t r = 0; r < 8; ++r) {
      for (int64_t c = 0; c < 5; ++c) EXPECT_EQ(w.get_f64(r * 8 + c), wq.get_f64(r * 5 + c));
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(w.get_f64(r * 8 + 5 + c), wk.get_f64(c * 8 + r));
    }
    EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
    EXPECT_EQ(only_node(b.g, "Split")->attrs.i("axis", -1), 1);
  }
  {  // all TRANSPOSE (ONNX Gemm transB = 1): the [N_i, K] rows stacked, op_b stays TRANSPOSE
    Builder b;
    ir::Value* x = b.input({6, 8});
    ir::Value* q = projection(b, x, {5, 8}, "q", true);
    ir::Value* k = projection(b, x, {3, 8}, "k", true);
    consume(b, b.add(q, b.rand_cst({5})));
    consume(b, b.add(k, b.rand_cst({3})));
    b.infer();
    const HostTensor wq = constant_of(q->producer->inputs[1]), wk = constant_of(k->producer->inputs[1]);
    passes::MergeParallelGemms p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    ir::Node* mm = only_node(b.g, "MatrixMultiply");
    ASSERT_NE(mm, nullptr);
    EXPECT_EQ(mm->attrs.i("op_b", -1), 1);
    const HostTensor& w = constant_of(mm->inputs[1]);
    ASSERT_EQ(w.shape(), (Dims{8, 8}));
    for (int64_t i = 0; i < 5 * 8; ++i) EXPECT_EQ(w.get_f64(i), wq.get_f64(i));
    for (int64_t i = 0; i < 3 * 8; ++i) EXPECT_EQ(w.get_f64(40 + i), wk.get_f64(i));
    EXPECT_EQ(count_op(b.g, "ElementWise"), 1u);
  }
}

TEST(MergeParallelGemms, TransposedAAndDynamicBatch) {
  Builder b;
  ir::Value* x = b.input({2, 8, 3});  // op_a TRANSPOSE: A is [B, K, M]
  ir::Value* q = projection(b, x, {8, 4}, "q");
  ir::Value* k = projection(b, x, {8, 2}, "k");
  q->producer->attrs.set("op_a", int64_t{1});
  k->producer->attrs.set("op_a", int64_t{1});
  consume(b, q);
  consume(b, k);
  b.infer();
  passes::MergeParallelGemms p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  ir::Node* mm = only_node(b.g, "MatrixMultiply");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->attrs.i("op_a", -1), 1);
  EXPECT_EQ(mm->outputs[0]->shape, (Dims{2, 3, 6}));

  // An unknown batch dim is no obstacle: K and the N_i come from the weights.
  Builder d;
  ir::Value* xd = d.input({-1, 3, 8});
  consume(d, projection(d, xd, {8, 4}, "q"));
  consume(d, projection(d, xd, {8, 2}, "k"));
  d.infer();
  ASSERT_TRUE(p.run(d.g));
  EXPECT_EQ(count_op(d.g, "MatrixMultiply"), 1u);
  EXPECT_EQ(only_node(d.g, "MatrixMultiply")->outputs[0]->shape, (Dims{-1, 3, 6}));
  EXPECT_NO_THROW(infer_graph_inplace(d.g));
}

TEST(MergeParallelGemms, WithoutABiasOnEveryBranchTheAddsStay) {
  {  // v has no bias
    Builder b;
    ir::Value* x = b.input({2, 3, 8});
    ir::Value* q = projection(b, x, {8, 5}, "q");
    ir::Value* k = projection(b, x, {8, 4}, "k");
    ir::Value* v = projection(b, x, {8, 6}, "v");
    consume(b, b.add(q, b.rand_cst({5})));
    consume(b, b.add(k, b.rand_cst({4})));
    consume(b, v);
    b.infer();
    passes::MergeParallelGemms p;
    ASSERT_TRUE(run_and_compare(b.g, p));
    EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 1u);
    EXPECT_EQ(count_op(b.g, "Split"), 1u);
    EXPECT_EQ(count_op(b.g, "ElementWise"), 2u) << "the two adds stay on the Split's outputs";
    ir::Node* split = only_node(b.g, "Split");
    EXPECT_EQ(split->inputs[0], only_node(b.g, "MatrixMultiply")->outputs[0]);
    EXPECT_EQ(split->outputs[0], q);
    EXPECT_EQ(split->outputs[2], v);
  }
  {  // k's output has a second user, or k's add is a SUB, or adds an [M, 1] column: no bias anywhere
    for (int variant = 0; variant < 3; ++variant) {
      Builder b;
      ir::Value* x = b.input({3, 8});
      ir::Value* q = projection(b, x, {8, 5}, "q");
      ir::Value* k = projection(b, x, {8, 4}, "k");
      consume(b, b.add(q, b.rand_cst({5})));
      if (variant == 0) {
        consume(b, b.add(k, b.rand_cst({4})));
        consume(b, k);
      } else if (variant == 1) {
        consume(b, b.ew(k, b.rand_cst({4}), 4));
      } else {
        consume(b, b.add(k, b.rand_cst({3, 1})));
      }
      b.infer();
      passes::MergeParallelGemms p;
      ASSERT_TRUE(run_and_compare(b.g, p)) << variant;
      EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 1u) << variant;
      EXPECT_EQ(count_op(b.g, "ElementWise"), 2u) << variant;
      EXPECT_EQ(only_node(b.g, "Split")->inputs[0], only_node(b.g, "MatrixMultiply")->outputs[0]) << variant;
    }
  }
}

TEST(MergeParallelGemms, OnlyTheMergeableBranchesMergeInGraphOrder) {
  // x feeds two constant-weight GEMMs and one with a runtime weight; y feeds two more, built interleaved.
  Builder b;
  ir::Value* x = b.input({4, 8});
  ir::Value* y = b.input({4, 6});
  consume(b, projection(b, x, {8, 3}, "x_first"));
  consume(b, projection(b, y, {6, 2}, "y_first"));
  consume(b, b.matmul(x, b.input({8, 5}), "x_runtime"));
  consume(b, projection(b, x, {8, 7}, "x_second"));
  consume(b, projection(b, y, {6, 4}, "y_second"));
  b.infer();
  passes::MergeParallelGemms p;
  ASSERT_TRUE(run_and_compare(b.g, p));
  EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 3u);
  EXPECT_EQ(count_op(b.g, "Split"), 2u);
  ASSERT_NE(b.g.find_node("merged(x_first, x_second)"), nullptr) << b.g.to_string();
  ASSERT_NE(b.g.find_node("merged(y_first, y_second)"), nullptr);
  ASSERT_NE(b.g.find_node("x_runtime"), nullptr);
  EXPECT_EQ(b.g.find_node("merged(x_first, x_second)/split")->attrs.ints("split"), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(b.g.find_node("merged(y_first, y_second)/split")->attrs.ints("split"), (std::vector<int64_t>{2, 4}));
}

TEST(MergeParallelGemms, Float16WeightsMergeBitForBit) {
  Builder b;
  ir::Value* x = b.input({3, 8}, DataType::kHALF);
  const HostTensor w1 = mtest::rand_float({8, 2}, DataType::kHALF), w2 = mtest::rand_float({8, 3}, DataType::kHALF);
  ir::Value* q = b.matmul(x, b.cst(w1), "q");
  ir::Value* k = b.matmul(x, b.cst(w2), "k");
  consume(b, q);
  consume(b, k);
  b.infer();
  passes::MergeParallelGemms p;
  ASSERT_TRUE(p.run(b.g));  // the CPU backend has no float16 GEMM: structure only
  EXPECT_NO_THROW(infer_graph_inplace(b.g));
  ir::Node* mm = only_node(b.g, "MatrixMultiply");
  ASSERT_NE(mm, nullptr);
  const HostTensor& w = constant_of(mm->inputs[1]);
  ASSERT_EQ(w.dtype(), DataType::kHALF);
  ASSERT_EQ(w.shape(), (Dims{8, 5}));
  for (int64_t r = 0; r < 8; ++r) {
    for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(w.data<uint16_t>()[r * 5 + c], w1.data<uint16_t>()[r * 2 + c]);
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(w.data<uint16_t>()[r * 5 + 2 + c], w2.data<uint16_t>()[r * 3 + c]);
  }
  EXPECT_EQ(q->dtype, DataType::kHALF);
}

TEST(MergeParallelGemms, WhatStaysApart) {
  {  // different A
    Builder b;
    consume(b, projection(b, b.input({3, 8}), {8, 4}, "q"));
    consume(b, projection(b, b.input({3, 8}), {8, 4}, "k"));
    b.infer();
    expect_unchanged(b);
  }
  {  // one weight is no constant: one branch left, nothing to merge
    Builder b;
    ir::Value* x = b.input({3, 8});
    consume(b, projection(b, x, {8, 4}, "q"));
    consume(b, b.matmul(x, b.input({8, 4}), "k"));
    b.infer();
    expect_unchanged(b);
  }
  {  // a branch's output is a graph output
    Builder b;
    ir::Value* x = b.input({3, 8});
    consume(b, projection(b, x, {8, 4}, "q"));
    b.output(projection(b, x, {8, 4}, "k"));
    b.infer();
    expect_unchanged(b);
  }
  {  // float64 is not merged (float32, float16, bfloat16 only)
    Builder b;
    ir::Value* x = b.input({3, 8}, DataType::kDOUBLE);
    b.output(b.act(b.matmul(x, b.cst(mtest::rand_float({8, 4}, DataType::kDOUBLE)), "q"), 0));
    b.output(b.act(b.matmul(x, b.cst(mtest::rand_float({8, 2}, DataType::kDOUBLE)), "k"), 0));
    b.infer();
    expect_unchanged(b);
  }
  {  // a 3-D (batched) weight
    Builder b;
    ir::Value* x = b.input({2, 3, 8});
    consume(b, projection(b, x, {2, 8, 4}, "q"));
    consume(b, projection(b, x, {2, 8, 4}, "k"));
    b.infer();
    expect_unchanged(b);
  }
  {  // a user-set precision, and a GEMM that already has a fused bias
    for (int variant = 0; variant < 2; ++variant) {
      Builder b;
      ir::Value* x = b.input({3, 8});
      ir::Value* q = projection(b, x, {8, 4}, "q");
      ir::Value* bias = b.rand_cst({4});
      ir::Value* k = projection(b, x, {8, 4}, "k");
      if (variant == 0) k->producer->precision = DataType::kFLOAT;
      else k->producer->inputs.push_back(bias);
      consume(b, q);
      consume(b, k);
      b.infer();
      expect_unchanged(b);
    }
  }
  {  // op_a differs (a square A read both ways)
    Builder b;
    ir::Value* x = b.input({8, 8});
    consume(b, projection(b, x, {8, 4}, "q"));
    ir::Value* k = projection(b, x, {8, 4}, "k");
    k->producer->attrs.set("op_a", int64_t{1});
    consume(b, k);
    b.infer();
    expect_unchanged(b);
  }
  {  // one weight read by both GEMMs: merging would hold it twice
    Builder b;
    ir::Value* x = b.input({3, 8});
    ir::Value* w = b.rand_cst({8, 4});
    consume(b, b.matmul(x, w, "q"));
    consume(b, b.matmul(x, w, "k"));
    b.infer();
    expect_unchanged(b);
  }
}

TEST(MergeParallelGemms, DifferentWeightDtypesStayApart) {
  // Shape inference would refuse a float16 weight on a float32 A; the pass must not merge such a graph
  // (nor throw) before the builder reports it.
  Builder b;
  ir::Value* x = b.input({3, 8});
  ir::Value* q = b.matmul(x, b.rand_cst({8, 4}), "q");
  ir::Value* k = b.matmul(x, b.cst(mtest::rand_float({8, 4}, DataType::kHALF)), "k");
  q->shape = k->shape = {3, 4};
  consume(b, q);
  consume(b, k);
  passes::MergeParallelGemms p;
  EXPECT_FALSE(p.run(b.g));
  EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 2u);
}
