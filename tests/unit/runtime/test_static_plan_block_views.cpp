// Block views in the static plan: a Gather, Slice or Split whose outputs are aligned contiguous blocks of
// its input runs no kernel; each output aliases its root's storage at an offset (summed along chains of
// views), the root lives until the last read of any of its views (to the end when one is a copied-out
// network output), and the CPU executor computes the same values as the kernels would.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ir/graph.h"
#include "runtime/static_plan.h"
#include "runtime_test_graphs.h"

namespace kiln {
namespace {

using test::copied_outputs;
using test::engine_of;
using test::names;
using test::negate;
using test::plan_for;
using test::ramp;
using test::relu;
using test::reshape;
using test::unsqueeze;
using Where = StaticPlan::Where;

ir::Node* gather(ir::Graph& g, ir::Value* x, int64_t index, int64_t axis, const std::string& name) {
  auto* i = g.add_constant(name + "_index", HostTensor::scalar_i64(index));
  auto* n = g.add_node("Gather", name, {x, i->outputs[0]}, 1);
  n->attrs.set("axis", axis);
  n->outputs[0]->name = name;
  return n;
}

ir::Node* elementwise(ir::Graph& g, ir::Value* a, ir::Value* b, int64_t op, const std::string& name) {
  auto* n = g.add_node("ElementWise", name, {a, b}, 1);
  n->attrs.set("op", op);
  n->outputs[0]->name = name;
  return n;
}
constexpr int64_t kSum = 0, kProd = 1;

float relu_of(float v) { return std::max(v, 0.f); }

// y = q * k + v with q, k, v the three [2, 64] slabs (512 bytes each) of a = relu(x), x [3, 2, 64], picked
// by Gathers of index 0, 1 and -1, as ViT's packed query/key/value projection is.
std::shared_ptr<EngineData> packed_qkv_net() {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {3, 2, 64});
  auto* a = relu(*g, x, "a");
  auto* q = gather(*g, a->outputs[0], 0, 0, "q");
  auto* k = gather(*g, a->outputs[0], 1, 0, "k");
  auto* v = gather(*g, a->outputs[0], -1, 0, "v");
  auto* qk = elementwise(*g, q->outputs[0], k->outputs[0], kProd, "qk");
  auto* y = elementwise(*g, qk->outputs[0], v->outputs[0], kSum, "y");
  g->mark_output(y->outputs[0]);
  return engine_of(std::move(g));
}

TEST(StaticPlanBlockViews, GathersOfAPackedProjectionAreViewsAtTheirSlabs) {
  auto ed = packed_qkv_net();
  StaticPlan p = plan_for(*ed, {{3, 2, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "qk", "y"}));
  EXPECT_EQ(names(p.views), (std::vector<std::string>{"q", "k", "v"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  ASSERT_EQ(loc("a").where, Where::kArena);
  EXPECT_EQ(loc("a").offset, 0);
  const int64_t expected[] = {0, 512, 1024};
  int i = 0;
  for (const char* name : {"q", "k", "v"}) {
    EXPECT_EQ(loc(name).where, Where::kArena) << name;
    EXPECT_EQ(loc(name).index, loc("a").index) << name;
    EXPECT_EQ(loc(name).value, ed->graph->find_value("a")->id) << name;
    EXPECT_EQ(loc(name).offset, expected[i++]) << name;
  }

  std::vector<float> x = ramp(3 * 128, -40.f), y(128, std::nanf(""));
  test::run_cpu(ed, {{3, 2, 64}}, {x.data(), y.data()});
  for (size_t e = 0; e < 128; ++e)
    ASSERT_EQ(y[e], relu_of(x[e]) * relu_of(x[128 + e]) + relu_of(x[256 + e])) << e;
}

TEST(StaticPlanBlockViews, SplitIntoThreeIsOneViewLayerWithThreeOffsets) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {6, 64});
  auto* a = relu(*g, x, "a");
  auto* split = g->add_node("Split", "split", {a->outputs[0]}, 3);
  split->attrs.set("axis", int64_t{0});
  auto* qk = elementwise(*g, split->outputs[0], split->outputs[1], kProd, "qk");
  auto* y = elementwise(*g, qk->outputs[0], split->outputs[2], kSum, "y");
  g->mark_output(y->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{6, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "qk", "y"}));
  EXPECT_EQ(names(p.views), (std::vector<std::string>{"split"}));
  for (int k = 0; k < 3; ++k) {
    const auto& l = p.loc[split->outputs[k]->id];
    EXPECT_EQ(l.value, a->outputs[0]->id);
    EXPECT_EQ(l.offset, 512 * k);
  }
  std::vector<float> xv = ramp(6 * 64, -50.f), yv(128, std::nanf(""));
  test::run_cpu(ed, {{6, 64}}, {xv.data(), yv.data()});
  for (size_t e = 0; e < 128; ++e)
    ASSERT_EQ(yv[e], relu_of(xv[e]) * relu_of(xv[128 + e]) + relu_of(xv[256 + e])) << e;
}

// Blocks at byte 20 (rows of five floats) and slabs of a non-leading axis: their kernels run.
TEST(StaticPlanBlockViews, UnalignedAndStridedPicksStaySteps) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {3, 5});
  auto* w = g->add_input("w", DataType::kFLOAT, {2, 3, 64});
  auto* a = relu(*g, x, "a");
  auto* b = relu(*g, w, "b");
  auto* row = gather(*g, a->outputs[0], 1, 0, "row");  // bytes 20..39
  auto* mid = gather(*g, b->outputs[0], 1, 1, "mid");  // rows 1 and 4 of six
  auto* y = negate(*g, row->outputs[0], "y");
  auto* z = negate(*g, mid->outputs[0], "z");
  g->mark_output(y->outputs[0]);
  g->mark_output(z->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{3, 5}, {2, 3, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "b", "row", "mid", "y", "z"}));
  EXPECT_TRUE(p.views.empty());
  std::vector<float> xv = ramp(15, -2.f), wv = ramp(384, -30.f), yv(5, std::nanf("")), zv(128, std::nanf(""));
  test::run_cpu(ed, {{3, 5}, {2, 3, 64}}, {xv.data(), wv.data(), yv.data(), zv.data()});
  for (size_t e = 0; e < 5; ++e) ASSERT_EQ(yv[e], -relu_of(xv[5 + e])) << e;
  for (size_t b2 = 0; b2 < 2; ++b2)
    for (size_t e = 0; e < 64; ++e) ASSERT_EQ(zv[b2 * 64 + e], -relu_of(wv[b2 * 192 + 64 + e])) << b2 << " " << e;
}

// a = relu(x) is read only through its row 3, c = -x only through its row 1, and d reads both after c
// is made: a's bytes must outlive c's birth, so the two cannot share bytes.
TEST(StaticPlanBlockViews, TheRootLivesUntilItsLastViewIsRead) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {4, 64});
  auto* a = relu(*g, x, "a");
  auto* s = gather(*g, a->outputs[0], 3, 0, "s");
  auto* c = negate(*g, x, "c");
  auto* cs = gather(*g, c->outputs[0], 1, 0, "cs");
  auto* d = elementwise(*g, s->outputs[0], cs->outputs[0], kSum, "d");
  g->mark_output(d->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{4, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "c", "d"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  EXPECT_NE(loc("c").index, loc("a").index);
  EXPECT_EQ(loc("s").offset, 768);
  EXPECT_EQ(loc("cs").offset, 256);
  EXPECT_EQ(p.memory.arena_size, 2048);
  EXPECT_EQ(p.memory.lower_bound, 2048);
  std::vector<float> xv = ramp(256, -30.f), dv(64, std::nanf(""));
  test::run_cpu(ed, {{4, 64}}, {xv.data(), dv.data()});
  for (size_t e = 0; e < 64; ++e) ASSERT_EQ(dv[e], relu_of(xv[192 + e]) - xv[64 + e]) << e;
}

// x [4, 2, 64] -> relu -> rows 2..3 (ONNX Slice, byte 1024) -> entry 1 of those (Gather, +512) -> unsqueeze
// (a reshape, +0) -> negate: the offsets add up along the chain.
TEST(StaticPlanBlockViews, ChainsOfViewsAddTheirOffsets) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {4, 2, 64});
  auto* a = relu(*g, x, "a");
  auto* starts = g->add_constant("starts", HostTensor::from_i64({2}));
  auto* ends = g->add_constant("ends", HostTensor::from_i64({4}));
  auto* axes = g->add_constant("axes", HostTensor::from_i64({0}));
  auto* s =
      g->add_node("DynamicSlice", "s", {a->outputs[0], starts->outputs[0], ends->outputs[0], axes->outputs[0]}, 1);
  s->outputs[0]->name = "s";
  auto* e = gather(*g, s->outputs[0], 1, 0, "e");
  auto* u = unsqueeze(*g, e->outputs[0], "u");
  auto* y = negate(*g, u->outputs[0], "y");
  g->mark_output(y->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{4, 2, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "y"}));
  EXPECT_EQ(names(p.views), (std::vector<std::string>{"s", "e", "u"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  EXPECT_EQ(loc("s").offset, 1024);
  EXPECT_EQ(loc("e").offset, 1536);
  EXPECT_EQ(loc("u").offset, 1536);
  for (const char* v : {"s", "e", "u"}) EXPECT_EQ(loc(v).value, a->outputs[0]->id) << v;
  std::vector<float> xv = ramp(512, -60.f), yv(128, std::nanf(""));
  test::run_cpu(ed, {{4, 2, 64}}, {xv.data(), yv.data()});
  for (size_t i = 0; i < 128; ++i) ASSERT_EQ(yv[i], -relu_of(xv[384 + i])) << i;
}

// y = row 1 of a = relu(x) is a network output, copied out after the steps; b = -x is made after a and
// read by the last step. a must live to the end, so b cannot take a's bytes.
TEST(StaticPlanBlockViews, ABlockViewOutputIsCopiedOutOfARootThatLivesToTheEnd) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {3, 64});
  auto* a = relu(*g, x, "a");
  auto* y = gather(*g, a->outputs[0], 1, 0, "y");
  auto* b = negate(*g, x, "b");
  auto* z = relu(*g, b->outputs[0], "z");
  g->mark_output(y->outputs[0]);
  g->mark_output(z->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{3, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "b", "z"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  // A 256-byte output cannot hold a's 768 bytes: a lives in the arena, y is copied out of it.
  ASSERT_EQ(loc("a").where, Where::kArena);
  ASSERT_EQ(loc("b").where, Where::kArena);
  EXPECT_NE(loc("a").index, loc("b").index);
  EXPECT_EQ(loc("y").offset, 256);
  EXPECT_EQ(copied_outputs(*ed, p), (std::vector<std::string>{"y"}));
  std::vector<float> xv = ramp(192, -20.f), yv(64, std::nanf("")), zv(192, std::nanf(""));
  test::run_cpu(ed, {{3, 64}}, {xv.data(), yv.data(), zv.data()});
  for (size_t e = 0; e < 64; ++e) ASSERT_EQ(yv[e], relu_of(xv[64 + e])) << e;
  for (size_t e = 0; e < 192; ++e) ASSERT_EQ(zv[e], relu_of(-xv[e])) << e;
}

// y1 = reshape(a) is all of a's bytes, so a lives in y1's buffer; y2 = row 2 of a is copied out of it.
// A Slice taking all of c's bytes (offset 0, same size) is such an output too.
TEST(StaticPlanBlockViews, AGroupLivesInAnOutputOnlyWhenThatOutputIsAllOfIt) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {3, 64});
  auto* a = relu(*g, x, "a");
  auto* y2 = gather(*g, a->outputs[0], 2, 0, "y2");
  auto* y1 = reshape(*g, a->outputs[0], {192}, "y1");
  auto* c = negate(*g, x, "c");
  auto* all = g->add_node("Slice", "all", {c->outputs[0]}, 1);
  all->attrs.set("start", std::vector<int64_t>{0, 0});
  all->attrs.set("size", std::vector<int64_t>{3, 64});
  all->attrs.set("stride", std::vector<int64_t>{1, 1});
  all->outputs[0]->name = "all";
  g->mark_output(y2->outputs[0]);
  g->mark_output(y1->outputs[0]);
  g->mark_output(all->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{3, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "c"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  EXPECT_EQ(loc("a").where, Where::kIO);
  EXPECT_EQ(loc("a").index, 2);  // io order: x, y2, y1, all
  EXPECT_EQ(loc("y2").index, 2);
  EXPECT_EQ(loc("y2").offset, 512);
  EXPECT_EQ(loc("c").where, Where::kIO);
  EXPECT_EQ(loc("c").index, 3);
  EXPECT_EQ(copied_outputs(*ed, p), (std::vector<std::string>{"y2"}));
  EXPECT_EQ(p.memory.arena_size, 0);
  std::vector<float> xv = ramp(192, -20.f), y2v(64, std::nanf("")), y1v(192, std::nanf("")), allv(192, std::nanf(""));
  test::run_cpu(ed, {{3, 64}}, {xv.data(), y2v.data(), y1v.data(), allv.data()});
  for (size_t e = 0; e < 192; ++e) {
    ASSERT_EQ(y1v[e], relu_of(xv[e])) << e;
    ASSERT_EQ(allv[e], -xv[e]) << e;
  }
  for (size_t e = 0; e < 64; ++e) ASSERT_EQ(y2v[e], relu_of(xv[128 + e])) << e;
}

// Rows of the network input x and of a constant c (too large to be picked on the host during shape
// analysis), read by a step and network outputs of their own.
TEST(StaticPlanBlockViews, BlocksOfInputsAndConstantsReadTheirStorageAtTheOffset) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {3, 512});
  std::vector<float> cv = ramp(1024, 3.f);
  auto* c = g->add_constant("c", HostTensor::from_f32(cv, {2, 512}));
  auto* xr = gather(*g, x, 2, 0, "xr");
  auto* cr = gather(*g, c->outputs[0], -1, 0, "cr");
  auto* sum = elementwise(*g, xr->outputs[0], cr->outputs[0], kSum, "sum");
  g->mark_output(sum->outputs[0]);
  g->mark_output(xr->outputs[0]);
  g->mark_output(cr->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{3, 512}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"sum"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  EXPECT_EQ(loc("xr").where, Where::kIO);
  EXPECT_EQ(loc("xr").index, 0);
  EXPECT_EQ(loc("xr").offset, 4096);
  EXPECT_EQ(loc("cr").where, Where::kConstant);
  EXPECT_EQ(loc("cr").value, c->outputs[0]->id);
  EXPECT_EQ(loc("cr").offset, 2048);
  EXPECT_EQ(copied_outputs(*ed, p), (std::vector<std::string>{"xr", "cr"}));
  EXPECT_EQ(p.memory.arena_size, 0);

  std::vector<float> xv = ramp(1536, -7.f), s(512, std::nanf("")), xo(512, std::nanf("")), co(512, std::nanf(""));
  const std::vector<float> x_before = xv;
  test::run_cpu(ed, {{3, 512}}, {xv.data(), s.data(), xo.data(), co.data()});
  EXPECT_EQ(xv, x_before);  // the caller's input is only read
  for (size_t e = 0; e < 512; ++e) {
    ASSERT_EQ(xo[e], xv[1024 + e]) << e;
    ASSERT_EQ(co[e], cv[512 + e]) << e;
    ASSERT_EQ(s[e], xv[1024 + e] + cv[512 + e]) << e;
  }
}

}  // namespace
}  // namespace kiln
