// The executor's run-time shape machinery: shape-tensor inputs read at run time (static plan once their
// values are known), the dynamic mode for data-dependent shapes (NonZero feeding later nodes), and the
// ExecutionContext's TensorRT 10 output-allocator flow. References are computed naively here on random inputs.
#include <gtest/gtest.h>

#include <random>

#include "ir/graph.h"
#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"
#include "runtime/shape_analysis.h"
#include "runtime_test_graphs.h"

namespace kiln {
namespace {

using test::CollectingLogger;
using test::engine_of;



ir::Node* node(ir::Graph& g, const std::string& op, std::vector<ir::Value*> ins, ir::Attrs at = {}, int outs = 1) {
  ir::Node* n = g.add_node(op, op + std::to_string(g.num_nodes()), std::move(ins), outs);
  n->attrs = std::move(at);
  return n;
}

std::vector<float> random_with_zeros(int64_t n, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = (r() % 3 == 0) ? 0.0f : std::uniform_real_distribution<float>(-2, 2)(r);
  return v;
}

// x [n] -> values = x[NonZero(x)] (data-dependent [k]), total = sum(values) (a known scalar shape).
std::shared_ptr<EngineData> nonzero_engine(int64_t n) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {n});
  ir::Value* idx = node(*g, "NonZero", {x})->outputs[0];  // [1, k]
  ir::Attrs sq;
  sq.set("axes", std::vector<int64_t>{0});
  ir::Value* flat = node(*g, "Squeeze", {idx}, sq)->outputs[0];
  ir::Attrs ga;
  ga.set("axis", int64_t{0});
  ir::Value* values = node(*g, "Gather", {x, flat}, ga)->outputs[0];
  ir::Attrs ra;
  ra.set("op", int64_t{0});
  ra.set("keep_dims", int64_t{0});
  ir::Value* total = node(*g, "Reduce", {values}, ra)->outputs[0];
  values->name = "values";
  total->name = "total";
  g->mark_output(values);
  g->mark_output(total);
  return engine_of(std::move(g));
}

struct VectorSink : OutputSink {
  std::vector<std::vector<uint8_t>> mem;
  std::vector<Dims> shapes;
  explicit VectorSink(size_t n) : mem(n), shapes(n) {}
  void* output_memory(size_t i, const Dims& shape, size_t bytes) override {
    shapes[i] = shape;
    mem[i].assign(bytes + 1, 0);
    return mem[i].data();
  }
};

TEST(DynamicExecutor, NonZeroChainRunsInDynamicModeAgainstNaive) {
  const int64_t n = 37;
  auto ed = nonzero_engine(n);
  EXPECT_EQ(ed->io[1].shape, (Dims{-1}));  // data-dependent, declared unknown
  EXPECT_EQ(ed->io[2].shape, (Dims{}));
  Executor ex(ed);
  ex.prepare({{n}});
  EXPECT_TRUE(ex.dynamic());
  EXPECT_EQ(ex.io_shape(1), (Dims{-1}));
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<float> x = random_with_zeros(n, seed);
    std::vector<float> want;
    double sum = 0;
    for (float v : x)
      if (v != 0) {
        want.push_back(v);
        sum += v;
      }
    VectorSink sink(3);
    std::vector<void*> ptrs{x.data(), nullptr, nullptr};
    ex.run(ptrs, nullptr, nullptr, &sink);
    ASSERT_EQ(sink.shapes[1], (Dims{static_cast<int64_t>(want.size())}));
    const float* got = reinterpret_cast<const float*>(sink.mem[1].data());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]);
    EXPECT_EQ(sink.shapes[2], (Dims{}));
    EXPECT_NEAR(*reinterpret_cast<const float*>(sink.mem[2].data()), sum, 1e-4);
  }
}

TEST(DynamicExecutor, StaticGraphsKeepTheArenaPath) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {4});
  ir::Attrs at;
  at.set("op", int64_t{5});  // NEG
  ir::Value* y = node(*g, "Unary", {x}, at)->outputs[0];
  y->name = "y";
  g->mark_output(y);
  Executor ex(engine_of(std::move(g)));
  EXPECT_FALSE(ex.has_shape_inputs());
  ex.prepare({{4}});
  EXPECT_FALSE(ex.dynamic());
  std::vector<float> in{1, -2, 3, 0}, out(4, 7);
  ex.run({in.data(), out.data()}, nullptr, nullptr);
  EXPECT_EQ(out, (std::vector<float>{-1, 2, -3, 0}));
}

// x [6] reshaped to the dims held by input `dims` (int64 [2]): a shape tensor.
std::shared_ptr<EngineData> reshape_engine() {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {6});
  ir::Value* dims = g->add_input("dims", DataType::kINT64, {2});
  ir::Attrs at;
  at.set("zero_is_placeholder", int64_t{0});
  ir::Value* y = node(*g, "Shuffle", {x, dims}, at)->outputs[0];
  y->name = "y";
  g->mark_output(y);
  return engine_of(std::move(g));
}

TEST(DynamicExecutor, ShapeTensorInputsMakeShapesExact) {
  auto ed = reshape_engine();
  Executor ex(ed);
  EXPECT_FALSE(ex.is_shape_input(0));
  EXPECT_TRUE(ex.is_shape_input(1));
  ex.prepare({{6}, {2}});
  EXPECT_TRUE(ex.dynamic());  // without the dims' contents
  EXPECT_EQ(ex.io_shape(2), (Dims{-1, -1}));
  std::vector<HostTensor> vals(3);
  vals[1] = HostTensor::from_i64({3, -1});
  ex.prepare({{6}, {2}}, vals);
  EXPECT_FALSE(ex.dynamic());
  EXPECT_EQ(ex.io_shape(2), (Dims{3, 2}));
  std::vector<float> x{1, 2, 3, 4, 5, 6}, y(6, 0);
  std::vector<int64_t> d{3, -1};
  ex.run({x.data(), d.data(), y.data()}, nullptr, nullptr);
  EXPECT_EQ(y, x);
  vals[1] = HostTensor::from_i64({4, -1});  // 6 elements do not reshape to [4, -1]
  EXPECT_THROW(ex.prepare({{6}, {2}}, vals), Error);
}

TEST(DynamicExecutor, ContextReadsShapeTensorsAndReplansWhenTheyChange) {
  CollectingLogger log;
  auto engine = std::make_shared<Engine>(reshape_engine(), std::vector<uint8_t>{}, &log);
  EXPECT_TRUE(engine->is_shape_inference_io("dims"));
  EXPECT_FALSE(engine->is_shape_inference_io("x"));
  EXPECT_FALSE(engine->is_shape_inference_io("y"));
  auto ctx = engine->create_execution_context();
  std::vector<float> x{1, 2, 3, 4, 5, 6}, y(6, 0);
  std::vector<int64_t> d{2, 3};
  ctx->set_tensor_address("x", x.data());
  ctx->set_tensor_address("dims", d.data());
  ctx->set_tensor_address("y", y.data());
  EXPECT_EQ(ctx->get_tensor_shape("y"), (Dims{2, 3}));
  ASSERT_TRUE(ctx->execute()) << (log.errors.empty() ? "" : log.errors.back());
  EXPECT_EQ(y, x);
  d = {6, 1};  // same buffer, new contents: shapes follow
  EXPECT_EQ(ctx->get_tensor_shape("y"), (Dims{6, 1}));
  ASSERT_TRUE(ctx->execute());
  d = {5, 1};
  EXPECT_FALSE(ctx->execute());
  ASSERT_FALSE(log.errors.empty());
  EXPECT_NE(log.errors.back().find("cannot reshape"), std::string::npos) << log.errors.back();
}

struct GrowingAllocator : IOutputAllocator {
  std::vector<float> buf;
  uint64_t last_size = 0;
  Dims shape;
  int calls = 0;
  void* reallocate_output(const std::string&, void*, uint64_t size, uint64_t) override {
    ++calls;
    last_size = size;
    buf.assign(size / sizeof(float) + 1, -99.0f);
    return buf.data();
  }
  void notify_shape(const std::string&, const Dims& dims) override { shape = dims; }
};

TEST(DynamicExecutor, OutputAllocatorReceivesDataDependentOutputs) {
  CollectingLogger log;
  const int64_t n = 20;
  auto engine = std::make_shared<Engine>(nonzero_engine(n), std::vector<uint8_t>{}, &log);
  auto ctx = engine->create_execution_context();
  std::vector<float> x = random_with_zeros(n, 9);
  float total = -1;
  ctx->set_tensor_address("x", x.data());
  ctx->set_tensor_address("total", &total);
  EXPECT_EQ(ctx->get_tensor_shape("values"), (Dims{-1}));
  EXPECT_FALSE(ctx->execute());  // no allocator for the data-dependent output
  ASSERT_FALSE(log.errors.empty());
  EXPECT_NE(log.errors.back().find("output allocator"), std::string::npos) << log.errors.back();

  GrowingAllocator alloc;
  ASSERT_TRUE(ctx->set_output_allocator("values", &alloc));
  EXPECT_EQ(ctx->get_output_allocator("values"), &alloc);
  EXPECT_FALSE(ctx->set_output_allocator("x", &alloc));  // inputs have no allocators
  ASSERT_TRUE(ctx->execute()) << log.errors.back();
  std::vector<float> want;
  float sum = 0;
  for (float v : x)
    if (v != 0) {
      want.push_back(v);
      sum += v;
    }
  EXPECT_EQ(alloc.calls, 1);
  EXPECT_EQ(alloc.last_size, want.size() * sizeof(float));
  EXPECT_EQ(alloc.shape, (Dims{static_cast<int64_t>(want.size())}));
  EXPECT_EQ(ctx->get_tensor_shape("values"), alloc.shape);  // the real shape after execution
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(alloc.buf[i], want[i]);
  EXPECT_NEAR(total, sum, 1e-4);
}

TEST(DynamicExecutor, AllocatorsAlsoServeStaticOutputs) {
  CollectingLogger log;
  auto engine = std::make_shared<Engine>(reshape_engine(), std::vector<uint8_t>{}, &log);
  auto ctx = engine->create_execution_context();
  std::vector<float> x{1, 2, 3, 4, 5, 6};
  std::vector<int64_t> d{3, 2};
  GrowingAllocator alloc;
  ctx->set_tensor_address("x", x.data());
  ctx->set_tensor_address("dims", d.data());
  ASSERT_TRUE(ctx->set_output_allocator("y", &alloc));
  ASSERT_TRUE(ctx->execute()) << log.errors.back();
  EXPECT_EQ(alloc.last_size, 6 * sizeof(float));
  EXPECT_EQ(alloc.shape, (Dims{3, 2}));
  EXPECT_EQ(std::vector<float>(alloc.buf.begin(), alloc.buf.begin() + 6), x);
}

}  // namespace
}  // namespace kiln
