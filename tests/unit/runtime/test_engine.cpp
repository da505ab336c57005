// Network API -> Builder -> plan -> Runtime -> ExecutionContext, in C++.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/graph.h"
#include "kiln/builder.h"
#include "kiln/runtime.h"
#include "runtime_test_graphs.h"

using namespace kiln;

namespace {
using test::CollectingLogger;

// y = relu(x * w + b) summed over the last axis (keep dims), x: [-1, 8]
std::vector<uint8_t> build_small(CollectingLogger& log, bool with_profile) {
  Builder builder(&log);
  auto net = builder.create_network();
  auto* x = net->add_input("x", DataType::kFLOAT, {-1, 8});
  std::vector<float> w(8), b(8);
  for (int i = 0; i < 8; ++i) {
    w[i] = 0.5f + 0.1f * i;
    b[i] = -0.2f * i;
  }
  auto* wc = net->add_constant({1, 8}, HostTensor::from_f32(w, {8}));
  auto* bc = net->add_constant({1, 8}, HostTensor::from_f32(b, {8}));
  auto* mul = net->add_elementwise(x, wc->outputs[0], 1);
  auto* add = net->add_elementwise(mul->outputs[0], bc->outputs[0], 0);
  auto* relu = net->add_activation(add->outputs[0], 0);
  auto* sum = net->add_reduce(relu->outputs[0], 0, 1u << 1, true);
  sum->outputs[0]->name = "y";
  net->mark_output(sum->outputs[0]);
  BuilderConfig config;
  if (with_profile) {
    OptimizationProfile p;
    EXPECT_TRUE(p.set_shape("x", {1, 8}, {4, 8}, {16, 8}));
    config.add_optimization_profile(p);
  }
  return builder.build_serialized_network(*net, config);
}
}  // namespace

TEST(Engine, BuildSerializeRunWithDynamicBatch) {
  CollectingLogger log;
  auto plan = build_small(log, true);
  ASSERT_FALSE(plan.empty()) << (log.errors.empty() ? "" : log.errors[0]);
  Runtime rt(&log);
  auto engine = rt.deserialize(plan.data(), plan.size());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->num_io_tensors(), 2);
  EXPECT_EQ(engine->io_shape("x"), (Dims{-1, 8}));
  EXPECT_EQ(engine->io_shape("y"), (Dims{-1, 1}));
  EXPECT_GT(engine->device_memory_size(), 0u);
  auto ctx = engine->create_execution_context();
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int batch : {1, 16, 5}) {
    ASSERT_TRUE(ctx->set_input_shape("x", {batch, 8}));
    EXPECT_EQ(ctx->get_tensor_shape("y"), (Dims{batch, 1}));
    std::vector<float> x(batch * 8), y(batch, NAN);
    for (auto& v : x) v = u(rng);
    ASSERT_TRUE(ctx->set_tensor_address("x", x.data()));
    ASSERT_TRUE(ctx->set_tensor_address("y", y.data()));
    ASSERT_TRUE(ctx->execute());
    for (int n = 0; n < batch; ++n) {
      double ref = 0;
      for (int i = 0; i < 8; ++i) ref += std::max(0.0, x[n * 8 + i] * (0.5 + 0.1 * i) - 0.2 * i);
      EXPECT_NEAR(y[n], ref, 1e-5);
    }
  }
  EXPECT_FALSE(ctx->set_input_shape("x", {17, 8}));
  EXPECT_FALSE(ctx->set_input_shape("x", {2, 9}));
  EXPECT_FALSE(ctx->set_input_shape("nope", {2, 8}));
}

TEST(Engine, DynamicInputWithoutProfileFailsToBuild) {
  CollectingLogger log;
  auto plan = build_small(log, false);
  EXPECT_TRUE(plan.empty());
  ASSERT_FALSE(log.errors.empty());
  EXPECT_NE(log.errors.back().find("optimization profile"), std::string::npos) << log.errors.back();
}

TEST(Engine, DamagedPlansAreRefusedWithAReason) {
  CollectingLogger log;
  auto plan = build_small(log, true);
  ASSERT_FALSE(plan.empty());
  Runtime rt(&log);
  EXPECT_EQ(rt.deserialize(nullptr, 0), nullptr);
  for (size_t cut : {size_t{0}, size_t{7}, plan.size() / 2, plan.size() - 1})
    EXPECT_EQ(rt.deserialize(plan.data(), cut), nullptr) << "cut at " << cut;
  auto flipped = plan;
  flipped[flipped.size() / 2] ^= 0x10;
  EXPECT_EQ(rt.deserialize(flipped.data(), flipped.size()), nullptr);
  EXPECT_GE(log.errors.size(), 6u);
}

TEST(Engine, ExecuteWithoutShapesOrAddressesFailsCleanly) {
  CollectingLogger log;
  auto plan = build_small(log, true);
  Runtime rt(&log);
  auto engine = rt.deserialize(plan.data(), plan.size());
  ASSERT_NE(engine, nullptr);
  auto ctx = engine->create_execution_context();
  EXPECT_FALSE(ctx->execute());  // shape not set
  ASSERT_TRUE(ctx->set_input_shape("x", {2, 8}));
  EXPECT_FALSE(ctx->execute());  // no addresses
  EXPECT_NE(log.errors.back().find("no address"), std::string::npos);
}
