// The static plan shared by the CPU and CUDA executors: outputs no step writes (constants, host-computed
// shape values) keep their own storage and are copied out at the end, so layers that read them never see
// the caller's output buffer before it is filled; passed-through inputs are copied too.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/graph.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"
#include "runtime/static_plan.h"

namespace kiln {
namespace {

std::shared_ptr<EngineData> engine_of(std::unique_ptr<ir::Graph> g) {
  auto ed = std::make_shared<EngineData>();
  g->topo_sort();
  infer_graph_inplace(*g);
  for (auto* in : g->inputs())
    ed->io.push_back(IOTensorInfo{in->name, true, in->dtype, in->shape, {ProfileShapes{in->shape, in->shape, in->shape}}});
  for (auto* o : g->outputs()) ed->io.push_back(IOTensorInfo{o->name, false, o->dtype, o->shape, {}});
  ed->graph = std::move(g);
  return ed;
}

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

}  // namespace
}  // namespace kiln
