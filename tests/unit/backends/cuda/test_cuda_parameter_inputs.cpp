// CUDA kernels whose parameters arrive as input tensors (read from their host copies) against the CPU
// kernels: Reduce with the opset-18 `axes` input (noop_with_empty_axes too), Resize with the `axes`
// attribute (scales/sizes for a subset of axes, in any order). (CumSum's axis input: test_cuda_reduce.cpp;
// how the runtime gets such values to the host: test_cuda_execution_inputs.cpp.)
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"

namespace kiln {
namespace {

using namespace cudatest;
using Ints = std::vector<int64_t>;

HostTensor int_vector(const Ints& v, DataType dt) {
  if (dt == DataType::kINT64) return HostTensor::from_i64(v);
  std::vector<int32_t> n(v.begin(), v.end());
  return HostTensor::copy_of(DataType::kINT32, {static_cast<int64_t>(n.size())}, n.data());
}

struct AxesCase {
  Dims shape;
  Ints axes;
};
const std::vector<AxesCase>& reduce_axes_cases() {
  static const std::vector<AxesCase> c = {
      {{3, 2, 2}, {1}},       {{3, 2, 2}, {-2}},     {{3, 2, 2}, {0, 2}},      {{3, 2, 2}, {2, 0}},
      {{4, 3000}, {1}},       {{2, 40, 33}, {1}},    {{2, 3, 4, 5}, {-1, 1}},  {{5, 7}, {0, 1}},
      {{2, 3, 1, 5, 7}, {3}}, {{6}, {0}},
  };
  return c;
}

TEST(CudaReduceAxesInput, EveryOpMatchesTheCpuKernel) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (int64_t op : {0, 1, 2, 3, 4, 64, 65, 66, 67, 68})
      for (const AxesCase& c : reduce_axes_cases())
        for (int64_t keep : {0, 1}) {
          HostTensor x = randf(c.shape, dt, 0.1, 2.0, op == 66);  // LOG_SUM: a positive sum
          if (op == 1) x = randf(c.shape, dt, 0.9, 1.1);           // PROD: stay in range
          const DataType axes_dt = keep ? DataType::kINT64 : DataType::kINT32;
          Options opt;
          if (dt == DataType::kFLOAT) opt.tol = 2e-5;
          EXPECT_TRUE(check_op("Reduce", {x, int_vector(c.axes, axes_dt)}, [&](ir::Attrs& a) {
            a.set("op", op);
            a.set("keep_dims", keep);
          }, opt)) << "op " << op << " " << dtype_name(dt) << " " << dims_str(c.shape) << " axes " << dims_str(c.axes);
        }
}

TEST(CudaReduceAxesInput, IntegerInputs) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kINT32, DataType::kINT64})
    for (int64_t op : {0, 2, 3, 4, 64, 68})
      for (const AxesCase& c : reduce_axes_cases())
        EXPECT_TRUE(check_op("Reduce", {rand_ints(c.shape, dt, -50, 50), HostTensor::from_i64(c.axes)},
                             [&](ir::Attrs& a) {
                               a.set("op", op);
                               a.set("keep_dims", int64_t{1});
                             }))
            << "op " << op << " " << dtype_name(dt) << " " << dims_str(c.shape);
}

// An empty axes input: every axis without noop_with_empty_axes; none with it (each element is mapped and
// finalized alone: |x| for L1, sqrt(x^2) for L2, log(x) for LOG_SUM, x for the others).
TEST(CudaReduceAxesInput, EmptyAxesReduceAllOrNothing) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (int64_t op : {0, 1, 2, 3, 4, 64, 65, 66, 67, 68})
      for (int64_t noop : {0, 1})
        for (int64_t keep : {0, 1}) {
          HostTensor x = randf({3, 2, 2}, dt, 0.5, 1.5, op == 66 || op == 1);
          Options opt;
          if (dt == DataType::kFLOAT) opt.tol = 2e-5;
          EXPECT_TRUE(check_op("Reduce", {x, HostTensor::from_i64({})}, [&](ir::Attrs& a) {
            a.set("op", op);
            a.set("keep_dims", keep);
            a.set("noop_with_empty_axes", noop);
          }, opt)) << "op " << op << " " << dtype_name(dt) << " noop " << noop << " keep " << keep;
        }
}

// The axes input overrides the attribute (as on the CPU).
TEST(CudaReduceAxesInput, InputOverridesTheAttribute) {
  KILN_REQUIRE_CUDA_DEVICE();
  EXPECT_TRUE(check_op("Reduce", {randf({4, 5, 6}), HostTensor::from_i64({2})}, [](ir::Attrs& a) {
    a.set("op", int64_t{0});
    a.set("axes", Ints{0, 1});
    a.set("keep_dims", int64_t{1});
  }));
}

struct ResizeAxesCase {
  int64_t mode, coord;
  Dims x;
  Ints axes;
  std::vector<float> scales;
};

TEST(CudaResizeAxes, ScalesForListedAxesOnly) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<ResizeAxesCase> cases = {
      {0, 1, {1, 1, 2, 2}, {2, 3}, {2.0f, 3.0f}},     // ONNX's resize_upsample_scales_nearest_axes_2_3
      {0, 1, {1, 1, 2, 2}, {3, 2}, {3.0f, 2.0f}},     // ... axes_3_2: the scales follow the listed order
      {0, 2, {2, 3, 5, 4}, {-1, -2}, {1.5f, 0.6f}},   // negative axes
      {1, 2, {1, 2, 4, 5}, {2, 3}, {2.0f, 1.5f}},     // LINEAR
      {1, 0, {2, 4, 6}, {1}, {0.5f}},                 // one axis of three
      {2, 2, {1, 2, 6, 6}, {3, 2}, {0.75f, 1.5f}},    // CUBIC
  };
  for (DataType dt : float_types())
    for (const ResizeAxesCase& c : cases) {
      Options opt;
      if (dt == DataType::kFLOAT) opt.tol = 2e-5;
      HostTensor scales = HostTensor::from_f32(c.scales, {static_cast<int64_t>(c.scales.size())});
      EXPECT_TRUE(check_op("Resize", {randf(c.x, dt), HostTensor(), scales}, [&](ir::Attrs& a) {
        a.set("mode", c.mode);
        a.set("coordinate_transformation", c.coord);
        a.set("nearest_rounding", int64_t{2});
        a.set("axes", c.axes);
      }, opt)) << dtype_name(dt) << " mode " << c.mode << " " << dims_str(c.x) << " axes " << dims_str(c.axes);
    }
}

TEST(CudaResizeAxes, SizesForListedAxesOnly) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t mode : {0, 1})
    for (const Ints& axes : {Ints{2, 3}, Ints{3, 2}}) {
      Options opt;
      opt.tol = 2e-5;
      EXPECT_TRUE(check_op("Resize", {randf({1, 2, 4, 5}), HostTensor::from_i64({7, 3})}, [&](ir::Attrs& a) {
        a.set("mode", mode);
        a.set("coordinate_transformation", int64_t{2});
        a.set("axes", axes);
      }, opt)) << "mode " << mode << " axes " << dims_str(axes);
    }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
