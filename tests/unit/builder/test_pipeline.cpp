// run_pipeline: after a pass that changed the graph, the layers it left dead are gone before the next pass
// runs, so no pass counts a dead layer as a reader (GPT-2's embedding fusion missed one so, twentieth session).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "builder/pipeline.h"
#include "passes/fusion_test_util.h"

using namespace kiln;

namespace {

// Records how many readers the graph's first input has when it runs.
class CountsReaders : public passes::Pass {
 public:
  explicit CountsReaders(size_t* readers) : readers_(readers) {}
  std::string name() const override { return "counts-readers"; }
  bool run(ir::Graph& g) override {
    *readers_ = g.users(g.inputs()[0]).size();
    return false;
  }

 private:
  size_t* readers_;
};

}  // namespace

TEST(RunPipeline, APassThatChangedTheGraphIsFollowedByTheDeadLayerSweep) {
  fusetest::Builder b;
  ir::Value* x = b.input({2, 3});
  b.output(b.act(x, 0));
  b.infer();
  size_t readers = 0;
  std::vector<std::unique_ptr<passes::Pass>> passes;
  passes.push_back(std::make_unique<fusetest::LeavesADeadShape>(x));
  passes.push_back(std::make_unique<CountsReaders>(&readers));
  run_pipeline(b.g, passes, nullptr);
  EXPECT_EQ(readers, 1u) << "the next pass saw the dead Shape";
  EXPECT_EQ(b.g.find_node("dead_shape"), nullptr);
  EXPECT_EQ(b.g.num_nodes(), 1u) << b.g.to_string();
}
