// CUDA data-movement kernels (Shuffle, Squeeze/Unsqueeze, Concatenation, Split, Slice, DynamicSlice, Expand,
// Tile, Pad, Gather, Scatter, Resize, ConstantOfShape, Range, Fill) against the CPU kernels, for element sizes
// 1, 2, 4 and 8 bytes, ranks 1 to 5 and every mode.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"

namespace kiln {
namespace {

using namespace cudatest;
using Ints = std::vector<int64_t>;

// One dtype per element size, plus the float types the pointwise tests cover.
const std::vector<DataType>& move_types() {
  static const std::vector<DataType> t = {DataType::kUINT8, DataType::kHALF, DataType::kFLOAT, DataType::kINT64,
                                          DataType::kBOOL};
  return t;
}
HostTensor any(Dims shape, DataType dt) {
  if (dt == DataType::kBOOL) return rand_bool(std::move(shape));
  if (dt == DataType::kUINT8) return rand_ints(std::move(shape), dt, 0, 250);
  return rand_ints(std::move(shape), dt, -1000, 1000);
}
HostTensor i64(const Ints& v) { return HostTensor::from_i64(v); }

TEST(CudaShuffle, TransposesAndReshapes) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x;
    Ints p1, reshape, p2;
  };
  const std::vector<Case> cases = {
      {{5, 7}, {1, 0}, {}, {}},                      // 2-D, tiles with ragged edges
      {{70, 33}, {1, 0}, {}, {}},
      {{2, 3, 4}, {0, 2, 1}, {}, {}},                // last dim moves
      {{2, 3, 4}, {1, 0, 2}, {}, {}},                // last dim stays
      {{2, 1, 3, 4, 5}, {4, 2, 0, 3, 1}, {}, {}},    // rank 5 with a unit dim
      {{4, 6}, {}, {2, 12}, {1, 0}},                 // reshape then transpose
      {{2, 3, 4}, {2, 0, 1}, {4, 6}, {1, 0}},        // transpose, reshape, transpose
      {{3, 4, 5}, {}, {60}, {}},                     // plain reshape
      {{1, 40, 1, 50}, {0, 3, 2, 1}, {}, {}},
  };
  for (DataType dt : move_types())
    for (const Case& c : cases)
      EXPECT_TRUE(check_op("Shuffle", {any(c.x, dt)}, [&](ir::Attrs& a) {
        if (!c.p1.empty()) a.set("first_transpose", c.p1);
        if (!c.reshape.empty()) {
          a.set("reshape_dims", c.reshape);
          a.set("has_reshape", int64_t{1});
        }
        if (!c.p2.empty()) a.set("second_transpose", c.p2);
      })) << dtype_name(dt) << " " << dims_str(c.x);
}

TEST(CudaSqueeze, CopiesBytes) {
  KILN_REQUIRE_CUDA_DEVICE();
  EXPECT_TRUE(check_op("Squeeze", {any({1, 3, 1, 5}, DataType::kFLOAT)}, [](ir::Attrs& a) { a.set("axes", Ints{0, 2}); }));
  EXPECT_TRUE(check_op("Unsqueeze", {any({3, 5}, DataType::kINT64)}, [](ir::Attrs& a) { a.set("axes", Ints{0, 3}); }));
}

TEST(CudaConcatSplit, AxesAndWidths) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types()) {
    for (int64_t axis : {0, 1, 2, -1}) {
      Dims a = {2, 3, 5}, b = a, c = a;
      const int64_t ax = axis < 0 ? axis + 3 : axis;
      b[ax] = 1;
      c[ax] = 4;
      EXPECT_TRUE(check_op("Concatenation", {any(a, dt), any(b, dt), any(c, dt)}, [&](ir::Attrs& at) { at.set("axis", axis); }))
          << dtype_name(dt) << " axis " << axis;
      Options opt;
      opt.num_outputs = 3;
      EXPECT_TRUE(check_op("Split", {any({4, 6, 9}, dt)}, [&](ir::Attrs& at) {
        at.set("axis", axis);
        at.set("split", ax == 0 ? Ints{1, 1, 2} : ax == 1 ? Ints{1, 2, 3} : Ints{2, 3, 4});
      }, opt)) << dtype_name(dt) << " axis " << axis;
    }
    // 16-byte aligned widths (the vector copy).
    EXPECT_TRUE(check_op("Concatenation", {any({3, 64}, dt), any({3, 128}, dt)}, [](ir::Attrs& at) { at.set("axis", int64_t{1}); }));
  }
}

TEST(CudaSlice, EveryMode) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types())
    for (int64_t mode = 0; mode <= 4; ++mode) {
      const Dims x = {5, 6, 7};
      // STRICT_BOUNDS stays inside; the others read outside on purpose (negative start, overshooting stride).
      const Ints start = mode == 0 ? Ints{1, 5, 0} : Ints{-3, 4, -9};
      const Ints size = mode == 0 ? Ints{2, 3, 4} : Ints{6, 5, 12};
      const Ints stride = mode == 0 ? Ints{2, -1, 2} : Ints{1, -2, 2};
      std::vector<HostTensor> ins = {any(x, dt), i64(start), i64(size), i64(stride)};
      if (mode == 3) ins.push_back(any({}, dt));
      EXPECT_TRUE(check_op("Slice", ins, [&](ir::Attrs& a) { a.set("mode", mode); })) << dtype_name(dt) << " mode " << mode;
    }
  // Attributes instead of inputs, rank 5.
  EXPECT_TRUE(check_op("Slice", {any({2, 3, 4, 5, 6}, DataType::kFLOAT)}, [](ir::Attrs& a) {
    a.set("start", Ints{0, 1, 1, 0, 5});
    a.set("size", Ints{2, 2, 3, 5, 3});
    a.set("stride", Ints{1, 1, 1, 1, -2});
  }));
}

TEST(CudaDynamicSlice, OnnxSemantics) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types()) {
    const HostTensor x = any({6, 7, 8}, dt);
    EXPECT_TRUE(check_op("DynamicSlice", {x, i64({1, -1}), i64({100, -8}), i64({0, 2}), i64({2, -3})})) << dtype_name(dt);
    EXPECT_TRUE(check_op("DynamicSlice", {x, i64({-5}), i64({5}), i64({-2}), HostTensor()})) << dtype_name(dt);
  }
}

TEST(CudaExpandTile, Broadcasts) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types()) {
    EXPECT_TRUE(check_op("Expand", {any({3, 1}, dt), i64({2, 3, 5})})) << dtype_name(dt);
    EXPECT_TRUE(check_op("Expand", {any({1, 4, 1, 1}, dt), i64({2, 1, 4, 3, 2})})) << dtype_name(dt);
    EXPECT_TRUE(check_op("Tile", {any({2, 3, 1}, dt), i64({3, 1, 4})})) << dtype_name(dt);
    EXPECT_TRUE(check_op("Tile", {any({5}, dt), i64({7})})) << dtype_name(dt);
  }
}

TEST(CudaPad, Modes) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types())
    for (const char* mode : {"constant", "reflect", "edge", "wrap"}) {
      const HostTensor x = any({3, 4, 5}, dt);
      EXPECT_TRUE(check_op("Pad", {x, i64({1, 2, 3, 2, 0, 4})}, [&](ir::Attrs& a) { a.set("mode", mode); }))
          << dtype_name(dt) << " " << mode;
      // Negative pads crop; a constant value input.
      EXPECT_TRUE(check_op("Pad", {x, i64({-1, 0, 2, 0, 1, -2}), any({}, dt)}, [&](ir::Attrs& a) { a.set("mode", mode); }))
          << dtype_name(dt) << " " << mode;
    }
  EXPECT_TRUE(check_op("Pad", {any({2, 3}, DataType::kFLOAT)}, [](ir::Attrs& a) {
    a.set("pads", Ints{1, 1, 1, 1});
    a.set("value", 2.5);
  }));
}

TEST(CudaGather, ModesAndIndexTypes) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types())
    for (DataType it : {DataType::kINT32, DataType::kINT64})
      for (bool host : {true, false}) {
        Options opt;
        opt.host_copies = host;  // indices only on the device: the kernel must not need them on the host
        const HostTensor data = any({4, 5, 6}, dt);
        for (int64_t axis : {0, 1, -1})
          EXPECT_TRUE(check_op("Gather", {data, rand_ints({2, 3}, it, -4, 3)}, [&](ir::Attrs& a) { a.set("axis", axis); }, opt))
              << dtype_name(dt) << " axis " << axis;
        EXPECT_TRUE(check_op("Gather", {data, rand_ints({}, it, -4, 3)}, {}, opt)) << "scalar index";
        // ELEMENT.
        EXPECT_TRUE(check_op("Gather", {data, rand_ints({4, 3, 6}, it, -5, 4)}, [](ir::Attrs& a) {
          a.set("mode", int64_t{1});
          a.set("axis", int64_t{1});
        }, opt)) << dtype_name(dt);
        // ND, with and without batch dims.
        HostTensor nd = rand_ints({3, 2}, it, 0, 3);
        EXPECT_TRUE(check_op("Gather", {data, nd}, [](ir::Attrs& a) { a.set("mode", int64_t{2}); }, opt)) << dtype_name(dt);
        HostTensor ndb = rand_ints({4, 2, 1}, it, -5, 4);
        EXPECT_TRUE(check_op("Gather", {data, ndb}, [](ir::Attrs& a) {
          a.set("mode", int64_t{2});
          a.set("num_elementwise_dims", int64_t{1});
        }, opt)) << dtype_name(dt);
      }
}

TEST(CudaScatter, ElementsAndNdWithReductions) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kINT32, DataType::kINT64,
                      DataType::kUINT8})
    for (const char* red : {"none", "add", "mul", "max", "min"}) {
      // Reductions: the IR takes float32/float64/int32/int64 (ir/OPS.md); "none" any dtype.
      if ((dt == DataType::kUINT8 || dt == DataType::kHALF || dt == DataType::kBF16) && std::string(red) != "none") continue;
      const bool none = std::string(red) == "none";
      Options opt;
      opt.host_copies = false;
      opt.deterministic = none || !dtype_is_float(dt);  // float atomics may add in any order
      if (dt == DataType::kFLOAT) opt.tol = 1e-5;
      auto vals = [&](Dims s) { return dtype_is_float(dt) ? randf(std::move(s), dt, 0.5, 1.5) : any(std::move(s), dt); };
      // ELEMENT: duplicates along the axis (few index values).
      const HostTensor data = vals({4, 5, 6});
      for (int64_t axis : {0, 1, 2}) {
        Dims is = {4, 5, 6};
        is[axis] = 3;
        EXPECT_TRUE(check_op("Scatter", {data, rand_ints(is, DataType::kINT64, -2, 1), vals(is)}, [&](ir::Attrs& a) {
          a.set("mode", int64_t{0});
          a.set("axis", axis);
          a.set("reduction", red);
        }, opt)) << dtype_name(dt) << " " << red << " axis " << axis;
      }
      // ND: slices and single elements, duplicated tuples.
      EXPECT_TRUE(check_op("Scatter", {data, rand_ints({5, 1}, DataType::kINT32, -4, 3), vals({5, 5, 6})}, [&](ir::Attrs& a) {
        a.set("mode", int64_t{1});
        a.set("reduction", red);
      }, opt)) << dtype_name(dt) << " " << red << " nd slices";
      EXPECT_TRUE(check_op("Scatter", {data, rand_ints({2, 7, 3}, DataType::kINT64, 0, 2), vals({2, 7})}, [&](ir::Attrs& a) {
        a.set("mode", int64_t{1});
        a.set("reduction", red);
      }, opt)) << dtype_name(dt) << " " << red << " nd elements";
    }
}

TEST(CudaResize, NearestLinearCubic) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    int64_t mode, coord, rounding;
    Dims x, out;
    int64_t exclude;
  };
  const std::vector<Case> cases = {
      {0, 1, 2, {1, 2, 4, 5}, {1, 2, 8, 10}, 0},   {0, 2, 0, {1, 2, 6, 4}, {1, 2, 3, 7}, 0},
      {0, 0, 1, {2, 3, 5}, {2, 3, 9}, 0},          {0, 65, 3, {1, 1, 4, 4}, {1, 1, 7, 3}, 0},
      {1, 2, 2, {1, 2, 4, 5}, {1, 2, 8, 10}, 0},   {1, 0, 2, {1, 3, 5, 5}, {1, 3, 3, 9}, 0},
      {1, 64, 2, {1, 2, 5, 1}, {1, 2, 9, 1}, 0},   {1, 1, 2, {2, 3, 4, 5, 6}, {2, 3, 7, 2, 9}, 0},
      {2, 2, 2, {1, 2, 6, 6}, {1, 2, 9, 4}, 0},    {2, 2, 2, {1, 2, 6, 6}, {1, 2, 9, 4}, 1},
      {2, 1, 2, {1, 1, 5, 7}, {1, 1, 11, 3}, 0},
  };
  for (DataType dt : float_types())
    for (const Case& c : cases) {
      Options opt;
      if (dt == DataType::kFLOAT) opt.tol = 2e-5;
      EXPECT_TRUE(check_op("Resize", {randf(c.x, dt), i64(c.out)}, [&](ir::Attrs& a) {
        a.set("mode", c.mode);
        a.set("coordinate_transformation", c.coord);
        a.set("nearest_rounding", c.rounding);
        a.set("exclude_outside", c.exclude);
      }, opt)) << dtype_name(dt) << " mode " << c.mode << " coord " << c.coord << " " << dims_str(c.out);
    }
  // NEAREST on integers; scales instead of sizes; crop and resize with extrapolation.
  EXPECT_TRUE(check_op("Resize", {any({1, 2, 3, 4}, DataType::kINT64), HostTensor(),
                                  HostTensor::from_f32({1.f, 1.f, 2.5f, 1.5f}, {4})},
                       [](ir::Attrs& a) { a.set("mode", int64_t{0}); }));
  EXPECT_TRUE(check_op("Resize", {randf({1, 1, 4, 5}), i64({1, 1, 6, 3})}, [](ir::Attrs& a) {
    a.set("mode", int64_t{1});
    a.set("coordinate_transformation", int64_t{66});
    a.set("roi", std::vector<double>{0, 0, 0.2, -0.3, 1, 1, 0.9, 1.2});
    a.set("extrapolation_value", -7.0);
  }));
}

TEST(CudaGenerators, ConstantOfShapeRangeFill) {
  KILN_REQUIRE_CUDA_DEVICE();
  EXPECT_TRUE(check_op("ConstantOfShape", {i64({3, 1000})}));
  EXPECT_TRUE(check_op("ConstantOfShape", {i64({5, 7})}, [](ir::Attrs& a) { a.set("value", HostTensor::scalar_i64(-3)); }));
  EXPECT_TRUE(check_op("Range", {HostTensor::from_f32({0.5f}, {}), HostTensor::from_f32({100.f}, {}),
                                 HostTensor::from_f32({0.25f}, {})}));
  EXPECT_TRUE(check_op("Range", {HostTensor::scalar_i64(10), HostTensor::scalar_i64(-300), HostTensor::scalar_i64(-7)}));
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kINT32, DataType::kINT64})
    EXPECT_TRUE(check_op("Fill", {}, [&](ir::Attrs& a) {
      a.set("op", int64_t{0});
      a.set("shape", Ints{3, 4, 5});
      a.set("alpha", 1.5);
      a.set("beta", std::vector<double>{2.0, -1.0, 0.5});
      a.set("dtype", static_cast<int64_t>(dt));
    })) << dtype_name(dt);
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
