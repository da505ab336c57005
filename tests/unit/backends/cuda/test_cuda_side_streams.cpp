// Side branches on the CUDA backend (runtime/side_branches.h, Executor::side_branches): small steps that only
// one later step reads run on the context's auxiliary stream, forked and joined by events, eagerly and inside
// a captured CUDA graph. The networks here compute their input back exactly (y = min(x, 0) + max(x, 0)), so
// a join that did not wait, or a buffer shared with a step running beside it, shows as a wrong element.
#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>

#include "backends/cuda/cuda_op_harness.h"  // KILN_REQUIRE_CUDA_DEVICE, ScopedEnv
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/device_weights.h"
#include "backends/cuda/executor.h"
#include "backends/gpu_probe.h"
#include "ir/graph.h"
#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/runtime_test_graphs.h"

namespace kiln {
namespace {

constexpr int64_t kC = 64, kHW = 56;

// `blocks` blocks in a row, each y = m3 + s with s = relu(x) beside the chain m1 = -x, m2 = relu(m1),
// m3 = -m2 (so y = min(x, 0) + max(x, 0) = x): ResNet's downsample beside conv1 -> conv2 -> conv3.
std::shared_ptr<EngineData> blocks_engine(int blocks) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {1, kC, kHW, kHW});
  for (int b = 0; b < blocks; ++b) {
    const std::string p = "b" + std::to_string(b) + "_";
    ir::Value* s = test::relu(*g, x, p + "side")->outputs[0];
    ir::Value* m1 = test::negate(*g, x, p + "m1")->outputs[0];
    ir::Value* m2 = test::relu(*g, m1, p + "m2")->outputs[0];
    ir::Value* m3 = test::negate(*g, m2, p + "m3")->outputs[0];
    ir::Node* add = g->add_node("ElementWise", p + "join", {m3, s}, 1);
    add->attrs.set("op", int64_t{0});
    x = add->outputs[0];
  }
  x->name = "y";
  g->mark_output(x);
  std::shared_ptr<EngineData> ed = test::engine_of(std::move(g));
  ed->target = gpu::target();
  return ed;
}

std::vector<float> random_input(size_t n) {
  std::mt19937 r(7);
  std::vector<float> v(n);
  for (auto& x : v) x = std::uniform_real_distribution<float>(-2, 2)(r);
  return v;
}

TEST(CudaSideStreams, EachBlocksSideStepIsFound) {
  KILN_REQUIRE_CUDA_DEVICE();
  std::shared_ptr<EngineData> ed = blocks_engine(3);
  cudatest::ScopedEnv on("KILN_SIDE_STREAMS", "1");
  cuda::Executor ex(ed, cuda::device_weights(*ed));
  ex.prepare({{1, kC, kHW, kHW}});
  ASSERT_EQ(ex.side_branches().size(), 3u);
  for (const char* off : {"0", static_cast<const char*>(nullptr)}) {  // the default is off
    cudatest::ScopedEnv env("KILN_SIDE_STREAMS", off);
    cuda::Executor seq(ed, cuda::device_weights(*ed));
    seq.prepare({{1, kC, kHW, kHW}});
    EXPECT_TRUE(seq.side_branches().empty()) << (off ? off : "unset");
    EXPECT_LE(seq.arena_bytes(), ex.arena_bytes()) << "held windows can only keep more bytes apart";
  }
}

// The two modes that take the feature apart (executor.cpp): "plan" keeps the branches' arena layout but runs
// on one stream; "serial" keeps the branches on the auxiliary stream.
TEST(CudaSideStreams, DiagnosticModesSplitLayoutFromStreams) {
  KILN_REQUIRE_CUDA_DEVICE();
  std::shared_ptr<EngineData> ed = blocks_engine(3);
  auto prepared = [&](const char* mode) {
    cudatest::ScopedEnv env("KILN_SIDE_STREAMS", mode);
    auto ex = std::make_unique<cuda::Executor>(ed, cuda::device_weights(*ed));
    ex->prepare({{1, kC, kHW, kHW}});
    return ex;
  };
  auto on = prepared("1"), plan = prepared("plan"), serial = prepared("serial"), off = prepared("0");
  EXPECT_TRUE(plan->side_branches().empty());
  EXPECT_EQ(plan->arena_bytes(), on->arena_bytes());
  EXPECT_GT(plan->arena_bytes(), off->arena_bytes()) << "the blocks' side buffers are held over their windows";
  EXPECT_EQ(serial->side_branches().size(), 3u);
  EXPECT_EQ(serial->arena_bytes(), on->arena_bytes());
}

// Eager run, capture, replays, and new I/O addresses (a graph update), with and without side streams.
TEST(CudaSideStreams, RunsMatchTheInputEagerAndCaptured) {
  KILN_REQUIRE_CUDA_DEVICE();
  const size_t n = static_cast<size_t>(kC * kHW * kHW);
  const std::vector<float> x = random_input(n);
  for (const char* side : {"1", "serial", "plan", "0"}) {
    cudatest::ScopedEnv env("KILN_SIDE_STREAMS", side);
    test::CollectingLogger log;
    auto engine = std::make_shared<Engine>(blocks_engine(4), std::vector<uint8_t>{}, &log);
    auto ctx = engine->create_execution_context();
    ASSERT_TRUE(ctx->on_gpu());
    cuda::DeviceBuffer dx(n * sizeof(float)), dy(n * sizeof(float)), dy2(n * sizeof(float));
    ASSERT_EQ(cudaMemcpy(dx.get(), x.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    ctx->set_tensor_address("x", dx.get());
    for (void* out : {dy.get(), dy2.get()}) {
      ctx->set_tensor_address("y", out);
      for (int run = 0; run < 4; ++run) {
        ASSERT_EQ(cudaMemset(out, 0xFF, n * sizeof(float)), cudaSuccess);
        ASSERT_TRUE(ctx->execute()) << log.last();
        std::vector<float> y(n);
        ASSERT_EQ(cudaMemcpy(y.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) bad += y[i] != x[i];
        EXPECT_EQ(bad, 0u) << "KILN_SIDE_STREAMS=" << side << " run " << run;
      }
    }
  }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
