// The CUDA runtime for values that matter on the host, through an ExecutionContext on a GPU engine:
//  - a CumSum axis fed as a network input: read before each run, a new value prepares again (eager runs,
//    CUDA-graph capture and replay, host or device memory);
//  - a host parameter computed on the device (no host copy): its layer runs on the CPU backend;
//  - data-dependent output shapes (NonZero): the network runs on the CPU between copies of its I/O, outputs go
//    to a device output allocator and get_tensor_shape reports the shapes the run found.
// References are computed naively here.
#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>

#include "backends/cuda/cuda_op_harness.h"  // KILN_REQUIRE_CUDA_DEVICE
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/host_parameters.h"
#include "backends/gpu_probe.h"
#include "ir/graph.h"
#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/runtime_test_graphs.h"
#include "runtime/shape_analysis.h"

namespace kiln {
namespace {

using test::CollectingLogger;


// A GPU engine straight from a graph (what the builder would hand the runtime, without the passes).
std::shared_ptr<Engine> gpu_engine(std::unique_ptr<ir::Graph> g, ILogger* log) {
  std::shared_ptr<EngineData> ed = test::engine_of(std::move(g));
  ed->target = gpu::target();
  return std::make_shared<Engine>(ed, std::vector<uint8_t>{}, log);
}

ir::Value* add(ir::Graph& g, const std::string& op, std::vector<ir::Value*> ins, ir::Attrs at = {}) {
  ir::Node* n = g.add_node(op, op + std::to_string(g.num_nodes()), std::move(ins), 1);
  n->attrs = std::move(at);
  return n->outputs[0];
}

template <class T> cuda::DeviceBuffer to_device(const std::vector<T>& v) {
  cuda::DeviceBuffer b(std::max<size_t>(v.size() * sizeof(T), 1));
  EXPECT_EQ(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return b;
}

template <class T> std::vector<T> to_host(const void* p, size_t n) {
  std::vector<T> v(n);
  EXPECT_EQ(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return v;
}

std::vector<float> random_floats(size_t n, uint64_t seed, bool with_zeros = false) {
  std::mt19937_64 r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = (with_zeros && r() % 3 == 0) ? 0.0f : std::uniform_real_distribution<float>(-2, 2)(r);
  return v;
}

// Running sums of a row-major [rows, cols] matrix along `axis`.
std::vector<float> cumsum_2d(const std::vector<float>& x, int64_t rows, int64_t cols, int64_t axis) {
  std::vector<float> y(x.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t k = i * cols + j, prev = axis == 0 ? k - cols : k - 1;
      const bool first = axis == 0 ? i == 0 : j == 0;
      y[k] = x[k] + (first ? 0.0f : y[prev]);
    }
  return y;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << what << " [" << i << "]";
}

// y = CumSum(x [3, 5], axis) with the axis a network input (int32, 0-D as in ONNX).
std::unique_ptr<ir::Graph> cumsum_graph() {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {3, 5});
  ir::Value* axis = g->add_input("axis", DataType::kINT32, {});
  ir::Value* y = add(*g, "CumSum", {x, axis});
  y->name = "y";
  g->mark_output(y);
  return g;
}

// Which values the runtime must know on the host for the CUDA kernels (no device needed).
TEST(CudaHostParameters, FoundThroughTheNodesThatComputeThem) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {3, 5});
  ir::Value* a = g->add_input("a", DataType::kINT64, {});
  ir::Value* b = g->add_input("b", DataType::kINT64, {});
  ir::Attrs add_attrs;
  add_attrs.set("op", int64_t{0});  // SUM
  ir::Value* axis = add(*g, "ElementWise", {a, b}, add_attrs);
  ir::Value* y = add(*g, "CumSum", {x, axis});
  ir::Value* dims = add(*g, "Shape", {y});         // Shape reads dims only: y's data is no parameter
  ir::Value* r = add(*g, "Reduce", {x, dims});     // (a nonsense axes list, but a host parameter)
  g->mark_output(r);
  const std::vector<bool> feeds = cuda::values_feeding_host_parameters(*g);
  EXPECT_TRUE(feeds[axis->id]);
  EXPECT_TRUE(feeds[a->id]);
  EXPECT_TRUE(feeds[b->id]);
  EXPECT_TRUE(feeds[dims->id]);
  EXPECT_FALSE(feeds[x->id]);
  EXPECT_FALSE(feeds[y->id]);
  EXPECT_FALSE(feeds[r->id]);
  EXPECT_EQ(cuda::host_parameter_slots("CumSum"), (std::vector<int>{1}));
  EXPECT_TRUE(cuda::host_parameter_slots("ElementWise").empty());
}

TEST(CudaExecutionInputs, CumSumAxisNetworkInputIsReadBeforeEachRun) {
  KILN_REQUIRE_CUDA_DEVICE();
  CollectingLogger log;
  auto engine = gpu_engine(cumsum_graph(), &log);
  EXPECT_FALSE(engine->is_shape_inference_io("axis"));  // no shape depends on it: not a TensorRT shape input
  auto ctx = engine->create_execution_context();
  ASSERT_TRUE(ctx->on_gpu());
  const std::vector<float> x = random_floats(15, 1);
  cuda::DeviceBuffer dx = to_device(x), dy(15 * sizeof(float));
  std::vector<int32_t> axis_host(1);
  cuda::DeviceBuffer daxis(sizeof(int32_t));
  ctx->set_tensor_address("x", dx.get());
  ctx->set_tensor_address("y", dy.get());
  // Device memory, then host memory for the axis; each value runs three times (eager, captured, replayed).
  for (bool host_axis : {false, true})
    for (int32_t axis : {0, 1, -1, 0}) {
      axis_host[0] = axis;
      ASSERT_EQ(cudaMemcpy(daxis.get(), axis_host.data(), sizeof(int32_t), cudaMemcpyHostToDevice), cudaSuccess);
      ctx->set_tensor_address("axis", host_axis ? static_cast<void*>(axis_host.data()) : daxis.get());
      const std::vector<float> want = cumsum_2d(x, 3, 5, axis < 0 ? axis + 2 : axis);
      for (int run = 0; run < 3; ++run) {
        ASSERT_EQ(cudaMemset(dy.get(), 0xFF, 15 * sizeof(float)), cudaSuccess);
        ASSERT_TRUE(ctx->execute()) << log.last();
        const std::string what = "axis " + std::to_string(axis) + (host_axis ? " (host)" : " (device)");
        expect_near(to_host<float>(dy.get(), 15), want, what + " run " + std::to_string(run));
      }
    }
  EXPECT_EQ(ctx->get_tensor_shape("y"), (Dims{3, 5}));
}

TEST(CudaExecutionInputs, HostParameterComputedOnTheDeviceRunsItsLayerOnTheCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  // axis = max(flags): flags has more elements than the runtime reads on the host, so the axis exists on the
  // device only, and the CumSum layer (whose kernel needs it on the host) runs on the CPU.
  const int64_t n_flags = kMaxHostValueElements + 44;
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {3, 5});
  ir::Value* flags = g->add_input("flags", DataType::kINT32, {n_flags});
  ir::Attrs max_attrs;
  max_attrs.set("op", int64_t{2});  // MAX
  max_attrs.set("keep_dims", int64_t{0});
  ir::Value* axis = add(*g, "Reduce", {flags}, max_attrs);
  ir::Value* y = add(*g, "CumSum", {x, axis});
  y->name = "y";
  g->mark_output(y);
  CollectingLogger log;
  auto engine = gpu_engine(std::move(g), &log);
  auto ctx = engine->create_execution_context();
  const std::vector<float> x_host = random_floats(15, 2);
  cuda::DeviceBuffer dx = to_device(x_host), dy(15 * sizeof(float));
  ctx->set_tensor_address("x", dx.get());
  ctx->set_tensor_address("y", dy.get());
  for (int32_t axis_value : {1, 0}) {
    std::vector<int32_t> f(n_flags, 0);
    f[n_flags / 2] = axis_value;
    cuda::DeviceBuffer dflags = to_device(f);
    ctx->set_tensor_address("flags", dflags.get());
    for (int run = 0; run < 2; ++run) {
      ASSERT_TRUE(ctx->execute()) << log.last();
      expect_near(to_host<float>(dy.get(), 15), cumsum_2d(x_host, 3, 5, axis_value),
                  "axis " + std::to_string(axis_value));
    }
  }
}

// x [n] -> values = x[NonZero(x)] (data-dependent [k]), total = sum(values) (a known scalar shape).
std::unique_ptr<ir::Graph> nonzero_graph(int64_t n) {
  auto g = std::make_unique<ir::Graph>();
  ir::Value* x = g->add_input("x", DataType::kFLOAT, {n});
  ir::Value* idx = add(*g, "NonZero", {x});  // [1, k]
  ir::Attrs sq;
  sq.set("axes", std::vector<int64_t>{0});
  ir::Value* flat = add(*g, "Squeeze", {idx}, sq);
  ir::Attrs ga;
  ga.set("axis", int64_t{0});
  ir::Value* values = add(*g, "Gather", {x, flat}, ga);
  ir::Attrs ra;
  ra.set("op", int64_t{0});
  ra.set("keep_dims", int64_t{0});
  ir::Value* total = add(*g, "Reduce", {values}, ra);
  values->name = "values";
  total->name = "total";
  g->mark_output(values);
  g->mark_output(total);
  return g;
}

// Gives device memory, as a TensorRT application's allocator does.
struct DeviceAllocator : IOutputAllocator {
  cuda::DeviceBuffer buf;
  uint64_t size = 0;
  Dims shape;
  int calls = 0;
  void* reallocate_output(const std::string&, void*, uint64_t bytes, uint64_t) override {
    ++calls;
    size = bytes;
    buf = cuda::DeviceBuffer(std::max<uint64_t>(bytes, 1));
    return buf.get();
  }
  void notify_shape(const std::string&, const Dims& d) override { shape = d; }
};

TEST(CudaExecutionInputs, DataDependentShapesRunWithDeviceOutputAllocators) {
  KILN_REQUIRE_CUDA_DEVICE();
  const int64_t n = 41;
  CollectingLogger log;
  auto engine = gpu_engine(nonzero_graph(n), &log);
  auto ctx = engine->create_execution_context();
  ASSERT_TRUE(ctx->on_gpu());
  float total_host = -1;
  cuda::DeviceBuffer dtotal(sizeof(float));
  EXPECT_EQ(ctx->get_tensor_shape("values"), (Dims{-1}));
  for (bool host_io : {false, true})
    for (uint64_t seed : {3, 4}) {
      const std::vector<float> x = random_floats(n, seed, true);
      std::vector<float> want;
      double sum = 0;
      for (float v : x)
        if (v != 0) {
          want.push_back(v);
          sum += v;
        }
      cuda::DeviceBuffer dx = to_device(x);
      ctx->set_tensor_address("x", host_io ? const_cast<float*>(x.data()) : dx.get());
      ctx->set_tensor_address("total", host_io ? static_cast<void*>(&total_host) : dtotal.get());
      ctx->set_output_allocator("values", nullptr);
      EXPECT_FALSE(ctx->execute());  // a data-dependent output needs an allocator
      EXPECT_NE(log.last().find("output allocator"), std::string::npos) << log.last();

      DeviceAllocator alloc;
      ASSERT_TRUE(ctx->set_output_allocator("values", &alloc));
      cudaStream_t stream = nullptr;
      ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
      ASSERT_TRUE(ctx->execute_async(stream)) << log.last();
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      cudaStreamDestroy(stream);
      const Dims k{static_cast<int64_t>(want.size())};
      EXPECT_EQ(alloc.calls, 1);
      EXPECT_EQ(alloc.size, want.size() * sizeof(float));
      EXPECT_EQ(alloc.shape, k);
      EXPECT_EQ(ctx->get_tensor_shape("values"), k);  // the shape the run found
      EXPECT_EQ(to_host<float>(alloc.buf.get(), want.size()), want);
      const float total = host_io ? total_host : to_host<float>(dtotal.get(), 1)[0];
      EXPECT_NEAR(total, sum, 1e-4);
    }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
