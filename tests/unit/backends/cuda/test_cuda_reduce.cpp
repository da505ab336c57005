// CUDA row-wise kernels (Reduce, ArgMinMax, SoftMax, Normalization, TopK, CumSum) against the CPU kernels:
// every op and dtype, axes at the front, middle and back (row, column and general paths), short rows (a
// warp per row) and long ones (a block per row), ranks 1 to 5.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"

namespace kiln {
namespace {

using namespace cudatest;

struct AxesCase {
  Dims shape;
  std::vector<int64_t> axes;
};
const std::vector<AxesCase>& reduce_cases() {
  static const std::vector<AxesCase> c = {
      {{7}, {0}},          {{3, 5}, {1}},          {{3, 5}, {0}},          {{4, 3000}, {1}},
      {{2, 3, 4}, {}},     {{2, 3, 4}, {0, 2}},    {{2, 3, 4, 5}, {1, 3}}, {{2, 40, 33}, {1}},
      {{3, 1, 4, 1, 6}, {0, 4}}, {{2, 3, 1, 5, 7}, {-1, -2}}, {{5, 2}, {0}},  {{1, 2000, 3}, {1}},
      {{9000, 3}, {1}},     {{1, 1, 1}, {1}},
      // Few outputs over long columns (several threads a column): ResNet's global average pool at batch 1
      // and 2 (channels-last, the two spatial dims one segment), a long column, and R just at each split.
      {{1, 7, 7, 2048}, {1, 2}}, {{2, 7, 7, 96}, {1, 2}}, {{3, 1000, 40}, {1}}, {{2, 8, 50}, {1}},
      {{1, 16, 33}, {1}},   {{1, 64, 70}, {1}},
  };
  return c;
}

TEST(CudaReduce, FloatOps) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (int64_t op : {0, 1, 2, 3, 4, 64, 65, 66, 67, 68})
      for (const AxesCase& c : reduce_cases())
        for (int64_t keep : {0, 1}) {
          // SUM, AVG and LOG_SUM get positive inputs: with signs, a sum can cancel to near zero, and a tolerance
          // relative to the result then measures the summation order (CPU sequential, GPU a tree), not the
          // kernel (seen as 6e-5 relative on a 24-element sum that cancelled to 0.004). Signed inputs stay
          // covered by MAX, MIN, PROD and the L1/L2/SUM_SQUARE ops.
          HostTensor x = randf(c.shape, dt, 0.1, 2.0, op == 0 || op == 4 || op == 66);
          if (op == 1) x = randf(c.shape, dt, 0.9, 1.1);           // PROD: stay in range
          Options opt;
          if (dt == DataType::kFLOAT) opt.tol = 2e-5;
          EXPECT_TRUE(check_op("Reduce", {x}, [&](ir::Attrs& a) {
            a.set("op", op);
            a.set("axes", c.axes);
            a.set("keep_dims", keep);
          }, opt)) << "op " << op << " " << dtype_name(dt) << " " << dims_str(c.shape) << " axes " << c.axes.size();
        }
}

TEST(CudaReduce, IntegerOps) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kINT32, DataType::kINT64})
    for (int64_t op : {0, 1, 2, 3, 4, 64, 65, 66, 67, 68})
      for (const AxesCase& c : reduce_cases()) {
        HostTensor x = rand_ints(c.shape, dt, op == 66 ? 1 : -50, 50);
        if (op == 1) x = rand_ints(c.shape, dt, -3, 3, true);
        EXPECT_TRUE(check_op("Reduce", {x}, [&](ir::Attrs& a) {
          a.set("op", op);
          a.set("axes", c.axes);
        })) << "op " << op << " " << dtype_name(dt) << " " << dims_str(c.shape);
      }
}

TEST(CudaArgMinMax, AllDtypesTiesAndPaths) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<DataType> types = {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kINT8,
                                       DataType::kUINT8, DataType::kINT32, DataType::kINT64};
  for (DataType dt : types)
    for (const auto& [shape, axis] : std::vector<std::pair<Dims, int64_t>>{
             {{9}, 0}, {{4, 37}, 1}, {{4, 37}, 0}, {{2, 3000}, -1}, {{2, 5, 6, 7}, 2}, {{3, 1, 2, 2, 50}, 4}})
      for (int64_t op : {0, 1})
        for (int64_t last : {0, 1}) {
          // Few distinct values: many ties, so first/last index selection matters.
          HostTensor x = rand_ints(shape, dt, dt == DataType::kUINT8 ? 0 : -4, 4);
          EXPECT_TRUE(check_op("ArgMinMax", {x}, [&](ir::Attrs& a) {
            a.set("op", op);
            a.set("axis", axis);
            a.set("keep_dims", int64_t{1});
            a.set("select_last_index", last);
          })) << dtype_name(dt) << " " << dims_str(shape) << " axis " << axis << " op " << op << " last " << last;
        }
}

TEST(CudaSoftMax, AxesAndLog) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (const auto& [shape, axis] : std::vector<std::pair<Dims, int64_t>>{
             {{5}, 0}, {{3, 33}, 1}, {{3, 33}, 0}, {{2, 5000}, 1}, {{2, 3, 4, 5}, 1}, {{2, 3, 1, 4, 70}, -1}})
      for (int64_t log : {0, 1}) {
        HostTensor x = randf(shape, dt, 0.0, 8.0);
        EXPECT_TRUE(check_op("SoftMax", {x}, [&](ir::Attrs& a) {
          a.set("axis", axis);
          a.set("log", log);
        })) << dtype_name(dt) << " " << dims_str(shape) << " axis " << axis << " log " << log;
      }
}

TEST(CudaNormalization, LayerInstanceGroup) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x, scale;
    std::vector<int64_t> axes;
    int64_t groups;
  };
  const std::vector<Case> cases = {
      {{4, 7}, {7}, {1}, 1},                       // LayerNorm, short rows
      {{2, 3, 1500}, {1500}, {2}, 1},              // LayerNorm, long rows (block per row)
      {{2, 3, 8, 5}, {8, 5}, {2, 3}, 1},           // LayerNorm over two dims
      {{2, 4, 5, 6}, {1, 4, 1, 1}, {2, 3}, 1},     // InstanceNorm
      {{2, 6, 5, 3}, {1, 6, 1, 1}, {2, 3}, 3},     // GroupNorm
      {{2, 6, 7}, {1, 6, 1}, {2}, 2},              // GroupNorm, 1 spatial dim
      {{3, 40, 5}, {1, 40, 1}, {1}, 1},            // statistics over the middle axis (column path)
      {{2, 3, 4, 5, 6}, {5, 6}, {3, 4}, 1},        // rank 5
  };
  for (DataType dt : float_types())
    for (const Case& c : cases) {
      HostTensor x = randf(c.x, dt, 0.0, 3.0), scale = randf(c.scale, dt, 0.5, 1.5), bias = randf(c.scale, dt);
      Options opt;
      if (dt == DataType::kFLOAT) opt.tol = 3e-5;
      EXPECT_TRUE(check_op("Normalization", {x, scale, bias}, [&](ir::Attrs& a) {
        a.set("axes", c.axes);
        a.set("epsilon", 1e-5);
        a.set("num_groups", c.groups);
      }, opt)) << dtype_name(dt) << " " << dims_str(c.x) << " groups " << c.groups;
    }
}

// LayerNorm rows that take the warp-per-row kernel (whole 16-byte vectors, scale/bias per row position):
// BERT/ViT widths, one vector per lane and fewer, the largest rows the registers hold, scale/bias given with
// leading unit dims, float32 scale/bias for 16-bit x (the precision-lowered models keep some that way), and
// widths just outside the fast path (not whole vectors, too long) that must still take the general kernel.
TEST(CudaNormalization, LayerNormWarpPerRow) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x, scale;
    int64_t axis;
  };
  const std::vector<Case> cases = {
      {{128, 768}, {768}, 1},        {{2, 197, 768}, {1, 1, 768}, 2}, {{3, 1024}, {1024}, -1},
      {{2, 2048}, {2048}, 1},        {{5, 8}, {8}, 1},                {{7, 24}, {24}, 1},
      {{3, 4, 256}, {256}, 2},       {{2, 2056}, {2056}, 1},          {{4, 12}, {12}, 1},
      {{1, 1, 768}, {768}, 2},       {{1000, 64}, {64}, 1},
  };
  for (DataType dt : float_types())
    for (const Case& c : cases)
      for (bool f32_params : {false, true}) {
        const DataType pdt = f32_params ? DataType::kFLOAT : dt;
        HostTensor x = randf(c.x, dt, -2.0, 3.0), scale = randf(c.scale, pdt, 0.5, 1.5), bias = randf(c.scale, pdt);
        Options opt;
        if (dt == DataType::kFLOAT) opt.tol = 3e-5;
        EXPECT_TRUE(check_op("Normalization", {x, scale, bias}, [&](ir::Attrs& a) {
          a.set("axes", std::vector<int64_t>{c.axis});
          a.set("epsilon", 1e-5);
          a.set("num_groups", int64_t{1});
        }, opt)) << dtype_name(dt) << " " << dims_str(c.x) << (f32_params ? " float32 scale/bias" : "");
      }
}

// y stored in float32 from float16/bfloat16 x (output_dtype, written by passes/fold_normalization_cast for a
// transformer's last LayerNorm): the warp kernel (one and two 16-byte pieces of y a vector, float32 and x-typed
// scale/bias), the row kernel and the column kernel, against the CPU's float32 result on the same values. The
// GPU computes in float32 either way, so the float32 tolerance holds: the stored y is not rounded to half.
TEST(CudaNormalization, StoresFloat32FromHalfPrecision) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x, scale;
    std::vector<int64_t> axes;
  };
  const std::vector<Case> cases = {
      {{128, 768}, {768}, {1}},     {{2, 197, 768}, {1, 1, 768}, {2}}, {{5, 8}, {8}, {1}},  // warp kernel
      {{4, 7}, {7}, {1}},           {{2, 3, 1500}, {1500}, {2}},                              // row kernel
      {{3, 40, 5}, {1, 40, 1}, {1}},                                                          // column kernel
  };
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const Case& c : cases)
      for (bool f32_params : {false, true}) {
        const DataType pdt = f32_params ? DataType::kFLOAT : dt;
        HostTensor x = randf(c.x, dt, -2.0, 3.0), scale = randf(c.scale, pdt, 0.5, 1.5), bias = randf(c.scale, pdt);
        Options opt;
        opt.tol = 3e-5;
        EXPECT_TRUE(check_op("Normalization", {x, scale, bias}, [&](ir::Attrs& a) {
          a.set("axes", c.axes);
          a.set("epsilon", 1e-5);
          a.set("num_groups", int64_t{1});
          a.set("output_dtype", static_cast<int64_t>(DataType::kFLOAT));
        }, opt)) << dtype_name(dt) << " " << dims_str(c.x) << (f32_params ? " float32 scale/bias" : "");
      }
}

TEST(CudaNormalization, SupportsOnlyTheOutputDtypesItStores) {
  auto supported = [](DataType x, int64_t out) {
    ir::Graph g;
    std::vector<ir::TensorInfo> ins(3);
    std::vector<ir::Value*> vals;
    for (size_t i = 0; i < 3; ++i) {
      ins[i].dtype = x;
      ins[i].shape = i == 0 ? Dims{4, 768} : Dims{768};
      vals.push_back(g.add_input("in" + std::to_string(i), x, ins[i].shape));
    }
    ir::Node* n = g.add_node("Normalization", "ln", vals, 1);
    n->attrs.set("axes", std::vector<int64_t>{1});
    if (out >= 0) n->attrs.set("output_dtype", out);
    return cuda::supports(*n, ins);
  };
  const int64_t f32 = static_cast<int64_t>(DataType::kFLOAT), f16 = static_cast<int64_t>(DataType::kHALF);
  const int64_t bf16 = static_cast<int64_t>(DataType::kBF16);
  EXPECT_TRUE(supported(DataType::kHALF, -1));
  EXPECT_TRUE(supported(DataType::kHALF, f32));
  EXPECT_TRUE(supported(DataType::kBF16, f32));
  EXPECT_TRUE(supported(DataType::kHALF, f16)) << "x's own dtype";
  EXPECT_FALSE(supported(DataType::kFLOAT, f16)) << "narrowing: the CPU kernel takes it";
  EXPECT_FALSE(supported(DataType::kHALF, bf16));
}

TEST(CudaTopK, SortAndSelectPaths) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<DataType> types = {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kINT32,
                                       DataType::kINT64};
  struct Case {
    Dims shape;
    int64_t axis, k;
  };
  const std::vector<Case> cases = {{{10}, 0, 3},   {{4, 33}, 1, 33},   {{4, 33}, 0, 2},  {{2, 4100}, 1, 5},
                                   {{2, 3, 9}, 1, 2}, {{2, 1000, 3}, 1, 17}, {{1, 2, 3, 2, 8}, 4, 8}};
  for (DataType dt : types)
    for (const Case& c : cases)
      for (int64_t op : {0, 1}) {
        // Few distinct values: ties must keep the smaller index first.
        HostTensor x = rand_ints(c.shape, dt, -20, 20);
        Options opt;
        opt.num_outputs = 2;
        EXPECT_TRUE(check_op("TopK", {x}, [&](ir::Attrs& a) {
          a.set("op", op);
          a.set("axis", c.axis);
          a.set("k", c.k);
        }, opt)) << dtype_name(dt) << " " << dims_str(c.shape) << " axis " << c.axis << " k " << c.k << " op " << op;
      }
  // int32 indices, k from an input.
  Options opt;
  opt.num_outputs = 2;
  EXPECT_TRUE(check_op("TopK", {randf({3, 50}), HostTensor::scalar_i64(7)}, [&](ir::Attrs& a) {
    a.set("index_dtype", int64_t{3});
  }, opt));
}

TEST(CudaCumSum, SumProdExclusiveReverse) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<std::pair<Dims, int64_t>> cases = {{{7}, 0}, {{3, 300}, 1}, {{3, 300}, 0}, {{2, 5000}, -1},
                                                       {{2, 3, 4, 5}, 2}, {{2, 1, 3, 1, 33}, 4}};
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kINT32, DataType::kINT64})
    for (const auto& [shape, axis] : cases)
      for (int64_t product : {0, 1})
        for (int64_t excl : {0, 1})
          for (int64_t rev : {0, 1}) {
            HostTensor x = dtype_is_float(dt) ? randf(shape, dt, 0.1, 1.0) : rand_ints(shape, dt, -5, 5);
            if (product) x = dtype_is_float(dt) ? randf(shape, dt, 0.99, 1.01) : rand_ints(shape, dt, -2, 2, true);
            Options opt;
            if (dt == DataType::kFLOAT) opt.tol = 1e-4 * (product ? 1 : 0.2);  // long float sums, other order
            EXPECT_TRUE(check_op("CumSum", {x, HostTensor::scalar_i64(axis)}, [&](ir::Attrs& a) {
              a.set("exclusive", excl);
              a.set("reverse", rev);
              a.set("product", product);
            }, opt)) << dtype_name(dt) << " " << dims_str(shape) << " axis " << axis << " prod " << product << " excl "
                     << excl << " rev " << rev;
          }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
