// SimplifyViews (passes/simplify_views.h): each rule on its own, checked for the layers it leaves and, on the
// CPU backend, for unchanged outputs; then the rules' limits.
#include <gtest/gtest.h>

#include "passes/fusion_test_util.h"
#include "passes/simplify_views.h"
#include "passes/view_ops.h"

using namespace kiln;
using fusetest::count_op;
using fusetest::eval_graph;

namespace {

ir::Value* constant_i64(ir::Graph& g, const std::vector<int64_t>& v, bool scalar = false) {
  HostTensor t = HostTensor::from_i64(v);
  if (scalar) t = t.reshaped({});
  return g.add_constant(g.unique_name("c"), t)->outputs[0];
}

ir::Node* transpose(ir::Graph& g, ir::Value* x, const std::vector<int64_t>& perm) {
  ir::Node* n = g.add_node("Shuffle", g.unique_name("t"), {x}, 1);
  n->attrs.set("first_transpose", perm);
  return n;
}

ir::Node* reshape(ir::Graph& g, ir::Value* x, const std::vector<int64_t>& dims) {
  ir::Node* n = g.add_node("Shuffle", g.unique_name("r"), {x}, 1);
  n->attrs.set("reshape_dims", dims);
  n->attrs.set("has_reshape", int64_t{1});
  return n;
}

ir::Node* gather(ir::Graph& g, ir::Value* x, int64_t i) {
  ir::Node* n = g.add_node("Gather", g.unique_name("g"), {x, constant_i64(g, {i}, true)}, 1);
  n->attrs.set("axis", int64_t{0});
  return n;
}

// Runs the pass and compares the outputs on `inputs` (concrete shapes for declared -1 dims).
::testing::AssertionResult simplify_and_compare(ir::Graph& g, const std::vector<HostTensor>& inputs, bool* changed) {
  infer_graph_inplace(g);
  std::unique_ptr<ir::Graph> before = g.clone();
  const std::vector<HostTensor> want = eval_graph(*before, inputs);
  passes::SimplifyViews pass;
  *changed = pass.run(g);
  if (pass.run(g)) return ::testing::AssertionFailure() << "not idempotent";
  const std::vector<HostTensor> got = eval_graph(g, inputs);
  for (size_t i = 0; i < got.size(); ++i) {
    if (!got[i].same_bytes(want[i]) || got[i].shape() != want[i].shape())
      return ::testing::AssertionFailure() << "output " << i << " differs\n" << g.to_string();
  }
  return ::testing::AssertionSuccess();
}

std::vector<HostTensor> rand_inputs(const std::vector<Dims>& shapes) {
  std::vector<HostTensor> r;
  for (const Dims& s : shapes) r.push_back(mtest::rand_float(s));
  return r;
}

}  // namespace

// torch's qkv split: Unsqueeze(0) -> Transpose[3, 1, 2, 0, 4] -> Squeeze(3) is one Transpose[2, 0, 1, 3].
TEST(SimplifyViews, UnitDimTransposeCollapses) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {5, -1, 3, 8});
  ir::Node* u = g.add_node("Unsqueeze", "u", {x, constant_i64(g, {0})}, 1);
  ir::Node* t = transpose(g, u->outputs[0], {3, 1, 2, 0, 4});
  ir::Node* s = g.add_node("Squeeze", "s", {t->outputs[0], constant_i64(g, {3})}, 1);
  g.mark_output(s->outputs[0]);
  bool changed = false;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{5, 2, 3, 8}}), &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(count_op(g, "Unsqueeze") + count_op(g, "Squeeze"), 0u);
  EXPECT_EQ(passes::views::pure_transpose(g.outputs()[0]->producer), (std::vector<int64_t>{2, 0, 1, 3}));
}

// [S, N, D] -> Transpose[1, 0, 2] -> Reshape [B, H, S, D]: the split of N happens before the transpose.
TEST(SimplifyViews, SplitMovesBeforeTheTranspose) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {5, -1, 4});
  ir::Node* t = transpose(g, x, {1, 0, 2});
  ir::Node* r = reshape(g, t->outputs[0], {-1, 3, 5, 4});
  g.mark_output(r->outputs[0]);
  bool changed = false;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{5, 6, 4}}), &changed));
  EXPECT_TRUE(changed);
  const ir::Node* out = g.outputs()[0]->producer;
  EXPECT_EQ(passes::views::pure_transpose(out), (std::vector<int64_t>{1, 2, 0, 3}));
  EXPECT_TRUE(passes::views::reshape_only(out->inputs[0]->producer));
  EXPECT_EQ(out->inputs[0]->shape, (Dims{5, -1, 3, 4}));
}

// A split whose dims after the split point are unknown cannot be written as reshape dims: left alone.
TEST(SimplifyViews, SplitWithUnknownTrailingDimStays) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {6, -1, 4});
  ir::Node* t = transpose(g, x, {0, 2, 1});  // [6, 4, B]
  ir::Node* r = reshape(g, t->outputs[0], {2, 3, 4, -1});
  g.mark_output(r->outputs[0]);
  bool changed = true;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{6, 5, 4}}), &changed));
  EXPECT_FALSE(changed);
}

// Reshape(Reshape(x)) with a static outer target merges; one with a 0 placeholder (copying the inner
// result's dim) does not.
TEST(SimplifyViews, ReshapesMerge) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {5, -1, 8});
  ir::Node* inner = reshape(g, x, {5, -1, 2, 4});
  ir::Node* outer = reshape(g, inner->outputs[0], {5, -1, 4, 2});
  g.mark_output(outer->outputs[0]);
  ir::Node* inner2 = reshape(g, x, {0, 0, 2, 4});
  ir::Node* outer2 = reshape(g, inner2->outputs[0], {0, -1, 4});
  g.mark_output(outer2->outputs[0]);
  bool changed = false;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{5, 3, 8}}), &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(outer->inputs[0], x);
  EXPECT_EQ(outer2->inputs[0], inner2->outputs[0]);
}

// The packed split: Transpose[2, 0, 1, 3] of [S, B, 3, E] read by three Gathers, each split to [S, B, H, D],
// becomes the split of E on the packed tensor, a 5-D transpose and the Gathers.
TEST(SimplifyViews, LastDimSplitMovesAboveGathers) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {5, -1, 3, 8});
  ir::Node* t = transpose(g, x, {2, 0, 1, 3});
  for (int64_t i = 0; i < 3; ++i) {
    ir::Node* r = reshape(g, gather(g, t->outputs[0], i)->outputs[0], {5, -1, 2, 4});
    g.mark_output(r->outputs[0]);
  }
  bool changed = false;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{5, 2, 3, 8}}), &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(passes::views::pure_transpose(t), (std::vector<int64_t>{2, 0, 1, 3, 4}));
  for (ir::Value* o : g.outputs()) {
    EXPECT_EQ(o->producer->op, "Gather");
    EXPECT_EQ(o->shape, (Dims{5, -1, 2, 4}));
  }
}

// One Gather's reshape splitting differently keeps every reshape where it is (the transpose feeds them all).
TEST(SimplifyViews, LastDimSplitNeedsEveryUserAlike) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {5, -1, 3, 8});
  ir::Node* t = transpose(g, x, {2, 0, 1, 3});
  g.mark_output(reshape(g, gather(g, t->outputs[0], 0)->outputs[0], {5, -1, 2, 4})->outputs[0]);
  g.mark_output(reshape(g, gather(g, t->outputs[0], 1)->outputs[0], {5, -1, 4, 2})->outputs[0]);
  bool changed = true;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{5, 2, 3, 8}}), &changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(passes::views::pure_transpose(t), (std::vector<int64_t>{2, 0, 1, 3}));
}

// A transpose another layer also reads is not rewritten for the reshape.
TEST(SimplifyViews, SharedTransposeStays) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {5, 6, 4});
  ir::Node* t = transpose(g, x, {1, 0, 2});
  g.mark_output(reshape(g, t->outputs[0], {2, 3, 5, 4})->outputs[0]);
  g.mark_output(t->outputs[0]);
  bool changed = true;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{5, 6, 4}}), &changed));
  EXPECT_FALSE(changed);
}

// GPT-2 in newer transformers: v (Split output 2) is reshaped with the batch and sequence read from k's
// (output 1) Shape. The Shape moves to the Split's input, which has the same leading entries, so k is read
// by its reshape alone; the outputs stay byte-identical for every batch.
ir::Node* split3(ir::Graph& g, ir::Value* x) {
  ir::Node* sp = g.add_node("Split", g.unique_name("split"), {x}, 3);
  sp->attrs.set("axis", int64_t{2});
  sp->attrs.set("split", std::vector<int64_t>{8, 8, 8});
  return sp;
}

ir::Value* reshape_with_dims_of(ir::Graph& g, ir::Value* x, ir::Value* dims_of, const std::vector<int64_t>& entries) {
  ir::Value* sh = g.add_node("Shape", g.unique_name("shape"), {dims_of}, 1)->outputs[0];
  std::vector<ir::Value*> parts;
  for (int64_t e : entries) {
    ir::Node* ga = g.add_node("Gather", g.unique_name("g"), {sh, constant_i64(g, {e})}, 1);
    ga->attrs.set("axis", int64_t{0});
    parts.push_back(ga->outputs[0]);
  }
  parts.push_back(constant_i64(g, {-1, 4}));
  ir::Node* cat = g.add_node("Concatenation", g.unique_name("target"), parts, 1);
  cat->attrs.set("axis", int64_t{0});
  return g.add_node("Shuffle", g.unique_name("r"), {x, cat->outputs[0]}, 1)->outputs[0];
}

TEST(SimplifyViews, SplitOutputShapeReadsTheSplitInput) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {-1, 5, 24});
  ir::Node* sp = split3(g, x);
  g.mark_output(reshape_with_dims_of(g, sp->outputs[1], sp->outputs[1], {0, 1}));
  g.mark_output(reshape_with_dims_of(g, sp->outputs[2], sp->outputs[1], {0, 1}));
  bool changed = false;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{3, 5, 24}}), &changed));
  EXPECT_TRUE(changed);
  for (auto& n : g.nodes())
    if (n->op == "Shape") {
      EXPECT_EQ(n->inputs[0], x) << "a Shape still reads a Split output";
    }
  EXPECT_EQ(fusetest::count_op(g, "Shape"), 2);
}

TEST(SimplifyViews, SplitOutputShapeOfTheSplitAxisStays) {
  ir::Graph g;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {-1, 4, 24});
  ir::Node* sp = split3(g, x);
  // Entry 2 (the split axis, 8 on the output, 24 on the input) and entry -1 (the same) must not move.
  g.mark_output(reshape_with_dims_of(g, sp->outputs[2], sp->outputs[1], {0, 2}));
  g.mark_output(reshape_with_dims_of(g, sp->outputs[0], sp->outputs[0], {-1, 0}));
  bool changed = false;
  EXPECT_TRUE(simplify_and_compare(g, rand_inputs({{3, 4, 24}}), &changed));
  for (auto& n : g.nodes())
    if (n->op == "Shape") {
      EXPECT_NE(n->inputs[0], x) << "a Shape read across the split axis moved";
    }
}
