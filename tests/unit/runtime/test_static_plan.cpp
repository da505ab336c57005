// The static plan shared by the CPU and CUDA executors: outputs no step writes (constants, host-computed
// shape values) keep their own storage and are copied out at the end, so layers that read them never see
// the caller's output buffer before it is filled; passed-through inputs are copied too. View layers
// (reshapes that keep the bytes) run no kernel and share their input's storage.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstdint>

#include "ir/graph.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"
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

// y = x + c and expand(x, shape(x)), with the constant c and the shape of x also network outputs.
std::shared_ptr<EngineData> net() {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {3});
  auto* c = g->add_constant("c", HostTensor::from_f32({1.f, 2.f, 3.f}, {3}));
  c->outputs[0]->name = "c_out";
  auto* add = g->add_node("ElementWise", "add", {x, c->outputs[0]}, 1);
  add->attrs.set("op", int64_t{0});
  add->outputs[0]->name = "y";
  auto* shape = g->add_node("Shape", "shape", {x}, 1);
  shape->outputs[0]->name = "x_shape";
  // A step reading the host-computed shape (x's data is unknown, so it runs as a kernel).
  auto* expand = g->add_node("Expand", "expand", {x, shape->outputs[0]}, 1);
  expand->outputs[0]->name = "x_expanded";
  g->mark_output(c->outputs[0]);
  g->mark_output(add->outputs[0]);
  g->mark_output(shape->outputs[0]);
  g->mark_output(expand->outputs[0]);
  g->mark_output(x);  // a passed-through input
  return engine_of(std::move(g));
}

TEST(StaticPlan, OutputsNoStepWritesKeepTheirStorageAndAreCopiedOut) {
  auto ed = net();
  IoMap io(*ed);
  ShapeAnalysis shapes = analyze_shapes(*ed->graph, io.graph_input_shapes(*ed, {{3}}), true);
  StaticPlan p = plan_static(*ed, io, shapes);
  using Where = StaticPlan::Where;
  auto where = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id].where; };
  EXPECT_EQ(where("c_out"), Where::kConstant);
  EXPECT_EQ(where("x_shape"), Where::kHost);
  EXPECT_EQ(where("y"), Where::kIO);
  std::vector<std::string> copied;
  for (auto [i, vid] : p.output_copies) copied.push_back(ed->io[i].name);
  EXPECT_EQ(copied, (std::vector<std::string>{"c_out", "x_shape", "x"}));
}

TEST(StaticPlan, LayersReadConstantAndHostOutputsBeforeTheirBuffersAreFilled) {
  auto ed = net();
  Executor ex(ed);
  ex.prepare({{3}});
  std::vector<float> x{0.5f, -1.f, 4.f};
  const float nan = std::nanf("");
  std::vector<float> c(3, nan), y(3, nan), x_expanded(3, nan), x_out(3, nan);
  std::vector<int64_t> x_shape(1, -7);  // poison: a reader of this buffer would see -7
  std::vector<void*> ptrs{x.data(), c.data(), y.data(), x_shape.data(), x_expanded.data(), x_out.data()};
  std::vector<uint8_t> arena(static_cast<size_t>(ex.arena_bytes()) + 256);
  ex.run(ptrs, arena.data(), &cpu::default_thread_pool());
  EXPECT_EQ(c, (std::vector<float>{1.f, 2.f, 3.f}));
  EXPECT_EQ(y, (std::vector<float>{1.5f, 1.f, 7.f}));
  EXPECT_EQ(x_shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(x_expanded, x);
  EXPECT_EQ(x_out, x);
}

// ---------------------------------------------------------------------------------------------------------
// View layers

// a = relu(x) is read only through a chain of three views; c = -x is made before the chain's reader d.
// a's storage must outlive c's birth, so c cannot take a's bytes.
std::shared_ptr<EngineData> view_chain_net() {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {4, 64});
  auto* a = relu(*g, x, "a");
  auto* v1 = unsqueeze(*g, a->outputs[0], "v1");                   // [1, 4, 64]
  auto* v2 = reshape(*g, v1->outputs[0], {16, 16}, "v2");          // a view of a view
  auto* v3 = reshape(*g, v2->outputs[0], {4, 64}, "v3");
  auto* c = negate(*g, x, "c");
  auto* d = g->add_node("ElementWise", "d", {v3->outputs[0], c->outputs[0]}, 1);
  d->attrs.set("op", int64_t{0});
  d->outputs[0]->name = "d";
  g->mark_output(d->outputs[0]);
  return engine_of(std::move(g));
}

TEST(StaticPlanViews, ChainsOfViewsShareTheirRootsOffsetAndRunNoKernel) {
  auto ed = view_chain_net();
  StaticPlan p = plan_for(*ed, {{4, 64}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_EQ(names(p.views), (std::vector<std::string>{"v1", "v2", "v3"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  const int a_id = ed->graph->find_value("a")->id;
  ASSERT_EQ(loc("a").where, StaticPlan::Where::kArena);
  for (const char* v : {"v1", "v2", "v3"}) {
    EXPECT_EQ(loc(v).where, StaticPlan::Where::kArena) << v;
    EXPECT_EQ(loc(v).index, loc("a").index) << v;
    EXPECT_EQ(loc(v).value, a_id) << v;
  }
  // a lives until d reads v3, so c (written in between, same size) needs bytes of its own.
  EXPECT_NE(loc("c").index, loc("a").index);
  // Two 1 KiB buffers alive at once, in the arena and in the liveness bound alike (the views add none).
  EXPECT_EQ(p.memory.arena_size, 2048);
  EXPECT_EQ(p.memory.lower_bound, 2048);
}

TEST(StaticPlanViews, ChainOfViewsComputesTheSameValues) {
  auto ed = view_chain_net();
  std::vector<float> x = ramp(4 * 64, -30.f), d(4 * 64, std::nanf(""));
  test::run_cpu(ed, {{4, 64}}, {x.data(), d.data()});
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(d[i], std::max(x[i], 0.f) - x[i]) << i;
}

// y = reshape(relu(x)) and y2 = unsqueeze(relu(x)) are network outputs, z = -y reads the first.
std::shared_ptr<EngineData> view_output_net() {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {2, 3});
  auto* a = relu(*g, x, "a");
  auto* y = reshape(*g, a->outputs[0], {6}, "y");
  auto* y2 = unsqueeze(*g, a->outputs[0], "y2");
  auto* z = negate(*g, y->outputs[0], "z");
  g->mark_output(y->outputs[0]);
  g->mark_output(z->outputs[0]);
  g->mark_output(y2->outputs[0]);
  return engine_of(std::move(g));
}

TEST(StaticPlanViews, AGroupHoldingANetworkOutputLivesInThatOutputsBuffer) {
  auto ed = view_output_net();
  StaticPlan p = plan_for(*ed, {{2, 3}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "z"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  // relu writes the caller's y buffer directly; y2, in the same group, is copied out of it at the end.
  EXPECT_EQ(loc("a").where, StaticPlan::Where::kIO);
  EXPECT_EQ(loc("a").index, 1);  // io order: x, y, z, y2
  EXPECT_EQ(loc("y").index, 1);
  EXPECT_EQ(loc("y2").index, 1);
  EXPECT_EQ(copied_outputs(*ed, p), (std::vector<std::string>{"y2"}));
  EXPECT_EQ(p.memory.arena_size, 0);

  std::vector<float> x = ramp(6, -0.5f), y(6, std::nanf("")), z(6, std::nanf("")), y2(6, std::nanf(""));
  test::run_cpu(ed, {{2, 3}}, {x.data(), y.data(), z.data(), y2.data()});
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(y[i], std::max(x[i], 0.f)) << i;
    EXPECT_EQ(y2[i], y[i]) << i;
    EXPECT_EQ(z[i], -y[i]) << i;
  }
}

TEST(StaticPlanViews, AViewOfANetworkOutputIsCopiedOutOfItsBuffer) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {2, 3});
  auto* a = relu(*g, x, "a");
  auto* y = unsqueeze(*g, a->outputs[0], "y");
  g->mark_output(a->outputs[0]);
  g->mark_output(y->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{2, 3}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a"}));
  EXPECT_EQ(p.loc[ed->graph->find_value("y")->id].index, 1);  // a's own output buffer
  EXPECT_EQ(copied_outputs(*ed, p), (std::vector<std::string>{"y"}));
  std::vector<float> xs = ramp(6, -0.5f), as(6, std::nanf("")), ys(6, std::nanf(""));
  test::run_cpu(ed, {{2, 3}}, {xs.data(), as.data(), ys.data()});
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(as[i], std::max(xs[i], 0.f)) << i;
    EXPECT_EQ(ys[i], as[i]) << i;
  }
}

// Views of the network input x and of a constant c (both too large to be computed on the host during
// shape analysis), read by a step and also network outputs of their own.
TEST(StaticPlanViews, ViewsOfInputsAndConstantsReadTheirStorageAndAreCopiedWhenOutputs) {
  const Dims shape{2, 200};
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, shape);
  std::vector<float> cv = ramp(400, 3.f);
  auto* c = g->add_constant("c", HostTensor::from_f32(cv, shape));
  auto* xs = unsqueeze(*g, x, "xs");
  auto* cs = unsqueeze(*g, c->outputs[0], "cs");
  auto* sum = g->add_node("ElementWise", "sum", {xs->outputs[0], cs->outputs[0]}, 1);
  sum->attrs.set("op", int64_t{0});
  sum->outputs[0]->name = "sum";
  auto* xr = reshape(*g, x, {400}, "xr");
  auto* cr = reshape(*g, c->outputs[0], {400}, "cr");
  g->mark_output(sum->outputs[0]);
  g->mark_output(xr->outputs[0]);
  g->mark_output(cr->outputs[0]);
  auto ed = engine_of(std::move(g));

  StaticPlan p = plan_for(*ed, {shape});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"sum"}));
  auto loc = [&](const char* name) { return p.loc[ed->graph->find_value(name)->id]; };
  EXPECT_EQ(loc("xs").where, StaticPlan::Where::kIO);
  EXPECT_EQ(loc("xs").index, 0);
  EXPECT_EQ(loc("cs").where, StaticPlan::Where::kConstant);
  EXPECT_EQ(loc("cs").value, c->outputs[0]->id);  // the executors find the constant's data by this id
  EXPECT_EQ(copied_outputs(*ed, p), (std::vector<std::string>{"xr", "cr"}));
  EXPECT_EQ(p.memory.arena_size, 0);

  std::vector<float> xv = ramp(400, -7.f), s(400, std::nanf("")), xo(400, std::nanf("")), co(400, std::nanf(""));
  const std::vector<float> x_before = xv;
  test::run_cpu(ed, {shape}, {xv.data(), s.data(), xo.data(), co.data()});
  EXPECT_EQ(xv, x_before);  // the caller's input is only read
  EXPECT_EQ(xo, xv);
  EXPECT_EQ(co, cv);
  for (size_t i = 0; i < 400; ++i) ASSERT_EQ(s[i], xv[i] + cv[i]) << i;
}

TEST(StaticPlanViews, TransposesThatMoveDataStaySteps) {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {2, 3});
  auto* a = relu(*g, x, "a");
  auto* t = g->add_node("Shuffle", "t", {a->outputs[0]}, 1);
  t->attrs.set("first_transpose", std::vector<int64_t>{1, 0});
  t->outputs[0]->name = "t";
  g->mark_output(t->outputs[0]);
  auto ed = engine_of(std::move(g));
  StaticPlan p = plan_for(*ed, {{2, 3}});
  EXPECT_EQ(names(p.steps), (std::vector<std::string>{"a", "t"}));
  EXPECT_TRUE(p.views.empty());
  EXPECT_EQ(p.loc[ed->graph->find_value("a")->id].where, StaticPlan::Where::kArena);
}

}  // namespace
}  // namespace kiln
