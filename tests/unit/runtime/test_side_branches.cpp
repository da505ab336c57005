// Side branches (runtime/side_branches.h): which steps may run on a second stream beside the main chain, and
// the static plan that keeps their buffers apart from every step running beside them (no GPU needed; the CUDA
// run is tested in backends/cuda/test_cuda_side_streams.cpp).
#include <gtest/gtest.h>

#include <algorithm>

#include "ir/graph.h"
#include "runtime/side_branches.h"
#include "runtime/static_plan.h"
#include "runtime_test_graphs.h"

namespace kiln {
namespace {

using Ids = std::vector<std::vector<int>>;

// ResNet's first block at the step level: 0 pool writes 10; 1 conv1 reads 10 writes 11; 2 downsample reads 10
// writes 12; 3 conv2 reads 11 writes 13; 4 conv3 reads 13 and 12 (the residual) writes 14.
TEST(SideBranches, ResNetDownsampleRunsBesideTheChain) {
  const Ids reads = {{}, {10}, {10}, {11}, {13, 12}}, writes = {{10}, {11}, {12}, {13}, {14}};
  const std::vector<SideBranch> b = find_side_branches(reads, writes, std::vector<bool>(5, true));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].step, 2);
  EXPECT_EQ(b[0].fork, 0);
  EXPECT_EQ(b[0].join, 4);
}

TEST(SideBranches, NeedsOneReaderAndWorkBesideIt) {
  // The downsample's output read twice (conv3 and a later step): it stays on the main stream; conv1 (joined at
  // conv2, with the downsample beside it) may go instead.
  const Ids reads = {{}, {10}, {10}, {11}, {13, 12}, {12, 14}}, writes = {{10}, {11}, {12}, {13}, {14}, {15}};
  const std::vector<SideBranch> b = find_side_branches(reads, writes, std::vector<bool>(6, true));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].step, 1);
  EXPECT_EQ(b[0].join, 3);
  // A step read by the very next one, with nothing else between its fork and its join: nothing to overlap.
  const Ids chain_reads = {{}, {10}, {11}}, chain_writes = {{10}, {11}, {12}};
  EXPECT_TRUE(find_side_branches(chain_reads, chain_writes, std::vector<bool>(3, true)).empty());
  // The downsample not eligible (too large, or no device kernel): it stays, and a step of the chain runs
  // beside it instead.
  const Ids r = {{}, {10}, {10}, {11}, {13, 12}}, w = {{10}, {11}, {12}, {13}, {14}};
  const std::vector<SideBranch> c = find_side_branches(r, w, {true, true, false, true, true});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NE(c[0].step, 2);
  EXPECT_TRUE(find_side_branches(r, w, {true, false, false, false, true}).empty());
}

TEST(SideBranches, AStepReadingOnlyNetworkInputsForksAtTheStart) {
  // Step 0 reads only the input (no producer): it may start with the run, beside steps 1 and 2 (step 1, joined
  // at 2 with nothing else between, has nothing to run beside).
  const Ids reads = {{-2}, {-2}, {11}, {12, 10}}, writes = {{10}, {11}, {12}, {13}};
  const std::vector<SideBranch> b = find_side_branches(reads, writes, std::vector<bool>(4, true));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].step, 0);
  EXPECT_EQ(b[0].fork, -1);
  EXPECT_EQ(b[0].join, 3);
}

TEST(SideBranches, ForksAndJoinsStayOnTheMainStream) {
  // Two blocks in a row: 0 writes 10; block one: 1 (conv1) -> 3, 2 (downsample) joined at 3; block two forks
  // at 3: 4 (conv1') -> 6, 5 (downsample') joined at 6. The downsamples leave; the joins 3 and 6 stay.
  const Ids reads = {{}, {10}, {10}, {11, 12}, {13}, {13}, {14, 15}},
            writes = {{10}, {11}, {12}, {13}, {14}, {15}, {16}};
  const std::vector<SideBranch> b = find_side_branches(reads, writes, std::vector<bool>(7, true));
  // Each downsample's window holds only its conv1 besides it: both conv1 and downsample are candidates of the
  // same length; the first of each pair in step order (conv1) goes, its sibling keeps the main stream busy.
  ASSERT_EQ(b.size(), 2u);
  for (const SideBranch& s : b) {
    EXPECT_NE(s.step, 3);
    EXPECT_NE(s.step, 6);
    EXPECT_NE(s.step, 0);
  }
  EXPECT_EQ(b[0].fork, 0);
  EXPECT_EQ(b[1].fork, 3);
}

// x -> s = relu(x) (a side step read only by the last one); x -> m1 -> m2 -> m3; y = m3 + s.
std::shared_ptr<EngineData> side_graph() {
  auto g = std::make_unique<ir::Graph>();
  auto* x = g->add_input("x", DataType::kFLOAT, {1, 64});
  ir::Value* s = test::relu(*g, x, "s")->outputs[0];
  ir::Value* m1 = test::negate(*g, x, "m1")->outputs[0];
  ir::Value* m2 = test::relu(*g, m1, "m2")->outputs[0];
  ir::Value* m3 = test::negate(*g, m2, "m3")->outputs[0];
  auto* add = g->add_node("ElementWise", "y", {m3, s}, 1);
  add->attrs.set("op", int64_t{0});
  add->outputs[0]->name = "y";
  g->mark_output(add->outputs[0]);
  return test::engine_of(std::move(g));
}

// Byte ranges [offset, offset + bytes) of two arena values overlap.
bool overlap(const StaticPlan& p, const ShapeAnalysis& sh, int a, int b) {
  auto bytes = [&](int v) { return volume(sh.info[v].shape) * static_cast<int64_t>(dtype_size(sh.info[v].dtype)); };
  const int64_t a0 = p.loc[a].index, b0 = p.loc[b].index;
  return a0 < b0 + bytes(b) && b0 < a0 + bytes(a);
}

TEST(SideBranches, HeldWindowKeepsTheSideStepsBufferApart) {
  std::shared_ptr<EngineData> ed = side_graph();
  IoMap io(*ed);
  ShapeAnalysis sh = analyze_shapes(*ed->graph, io.graph_input_shapes(*ed, {{1, 64}}), true);
  StaticPlan seq = plan_static(*ed, io, sh);
  auto step_of = [&](const StaticPlan& p, const std::string& name) {
    for (size_t k = 0; k < p.steps.size(); ++k)
      if (p.steps[k]->name == name) return static_cast<int>(k);
    return -1;
  };
  const int s = step_of(seq, "s"), y = step_of(seq, "y");
  ASSERT_GE(s, 0);
  ASSERT_GE(y, 0);
  const ir::Graph& g = *ed->graph;
  const int s_out = g.find_value("s")->id;
  std::vector<int> window;  // the arena outputs of the steps that run beside s
  for (const char* m : {"m1", "m2", "m3"}) window.push_back(g.find_value(m)->id);
  StaticPlan held = plan_static(*ed, io, sh, {StepWindow{s, 0, y}});
  EXPECT_EQ(test::names(held.steps), test::names(seq.steps)) << "holding a window keeps the order";
  ASSERT_EQ(held.loc[s_out].where, StaticPlan::Where::kArena);
  for (int m : window) {
    ASSERT_EQ(held.loc[m].where, StaticPlan::Where::kArena);
    EXPECT_FALSE(overlap(held, sh, s_out, m)) << g.values()[m]->name << " shares bytes with the side step's output";
  }
  EXPECT_GE(held.memory.arena_size, seq.memory.arena_size);
  EXPECT_THROW(plan_static(*ed, io, sh, {StepWindow{99, 0, 1}}), Error);
}

}  // namespace
}  // namespace kiln
