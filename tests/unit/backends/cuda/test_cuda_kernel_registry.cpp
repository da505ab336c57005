// The CUDA kernel table (runs without a GPU): every op family Kiln's own CUDA kernels cover is registered,
// and the `supports` predicates send what the kernels do not handle (float64, random fills, unknown modes,
// layouts) to the CPU backend instead of failing at run time.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <functional>

#include "backends/cuda/kernel.h"
#include "ir/graph.h"

namespace kiln {
namespace {

ir::TensorInfo info(DataType dt, Dims shape) {
  ir::TensorInfo t;
  t.dtype = dt;
  t.shape = std::move(shape);
  return t;
}

bool supported(const std::string& op, std::vector<ir::TensorInfo> ins, const std::function<void(ir::Attrs&)>& attrs = {}) {
  ir::Graph g;
  std::vector<ir::Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i) vals.push_back(g.add_input("in" + std::to_string(i), ins[i].dtype, ins[i].shape));
  ir::Node* n = g.add_node(op, "node", vals, 1);
  if (attrs) attrs(n->attrs);
  return cuda::supports(*n, ins);
}

TEST(CudaKernelRegistry, EveryOwnOpIsRegistered) {
  for (const char* op : {"ElementWise", "Unary", "Activation", "Select", "Cast", "Scale", "Identity", "Squeeze",
                         "Unsqueeze", "Reduce", "ArgMinMax", "SoftMax", "Normalization", "Shuffle", "Concatenation",
                         "Split", "Slice", "DynamicSlice", "Expand", "Tile", "Pad", "Gather", "Scatter", "Resize",
                         "Pooling", "GlobalPooling", "TopK", "CumSum", "ConstantOfShape", "Range", "Fill"})
    EXPECT_NE(cuda::find_kernel(op), nullptr) << op;
}

TEST(CudaKernelRegistry, SupportsPredicatesDeclineWhatRunsOnTheCpu) {
  const auto f32 = info(DataType::kFLOAT, {2, 3}), f64 = info(DataType::kDOUBLE, {2, 3}), h = info(DataType::kHALF, {2, 3});
  const auto b = info(DataType::kBOOL, {2, 3}), i32 = info(DataType::kINT32, {2, 3});
  auto op = [](int64_t v) { return [v](ir::Attrs& a) { a.set("op", v); }; };
  EXPECT_TRUE(supported("ElementWise", {h, h}, op(0)));
  EXPECT_FALSE(supported("ElementWise", {f64, f64}, op(0)));   // float64: CPU
  EXPECT_FALSE(supported("ElementWise", {f32, f32}, op(8)));   // AND on floats is not an op
  EXPECT_TRUE(supported("ElementWise", {b, b}, op(8)));
  EXPECT_FALSE(supported("ElementWise", {f32, f32}, op(67)));  // shifts: integers only
  EXPECT_TRUE(supported("ElementWise", {i32, i32}, op(67)));
  EXPECT_FALSE(supported("Unary", {i32}, op(0)));               // EXP on int32: not an op
  EXPECT_TRUE(supported("Unary", {b}, op(20)));
  EXPECT_FALSE(supported("Cast", {f64}, [](ir::Attrs& a) { a.set("to", int64_t{0}); }));
  EXPECT_TRUE(supported("Cast", {h}, [](ir::Attrs& a) { a.set("to", int64_t{8}); }));
  EXPECT_FALSE(supported("Reduce", {info(DataType::kINT8, {4})}));
  EXPECT_FALSE(supported("SoftMax", {f64}));
  EXPECT_FALSE(supported("Fill", {}, [](ir::Attrs& a) { a.set("op", int64_t{1}); }));  // RANDOM: CPU
  EXPECT_TRUE(supported("Fill", {}, [](ir::Attrs& a) { a.set("op", int64_t{0}); }));
  // Normalization: statistics dims must be one run once size-1 dims are dropped.
  auto axes = [](std::vector<int64_t> v) { return [v](ir::Attrs& a) { a.set("axes", v); }; };
  const auto x4 = info(DataType::kFLOAT, {2, 3, 4, 5}), s = info(DataType::kFLOAT, {5});
  EXPECT_TRUE(supported("Normalization", {x4, s, s}, axes({2, 3})));
  EXPECT_TRUE(supported("Normalization", {x4, s, s}, axes({1})));
  EXPECT_FALSE(supported("Normalization", {x4, s, s}, axes({1, 3})));
  EXPECT_TRUE(supported("Normalization", {info(DataType::kFLOAT, {2, 1, 4, 5}), s, s}, axes({1, 3})));
  EXPECT_TRUE(supported("Normalization", {info(DataType::kFLOAT, {2, 3, 1, 5}), s, s}, axes({1, 3})));
  // Resize LINEAR: at most 4 resized axes at once; NEAREST any.
  const auto x6 = info(DataType::kFLOAT, {2, 2, 2, 2, 2, 2});
  auto resize = [](int64_t mode, std::vector<double> sc) {
    return [mode, sc](ir::Attrs& a) {
      a.set("mode", mode);
      a.set("scales", sc);
    };
  };
  EXPECT_FALSE(supported("Resize", {x6}, resize(1, {2, 2, 2, 2, 2, 1})));
  EXPECT_TRUE(supported("Resize", {x6}, resize(1, {1, 2, 2, 2, 2, 1})));
  EXPECT_TRUE(supported("Resize", {x6}, resize(0, {2, 2, 2, 2, 2, 2})));
  EXPECT_FALSE(supported("Scatter", {info(DataType::kUINT8, {4}), info(DataType::kINT64, {1, 1}), info(DataType::kUINT8, {1})},
                         [](ir::Attrs& a) { a.set("reduction", "add"); }));
  EXPECT_TRUE(supported("Scatter", {info(DataType::kUINT8, {4}), info(DataType::kINT64, {1, 1}), info(DataType::kUINT8, {1})},
                        [](ir::Attrs& a) { a.set("reduction", "none"); }));
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
