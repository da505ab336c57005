// CUDA pointwise kernels (ElementWise, Unary, Activation, Select, Cast, Scale, Identity) against the CPU
// kernels: every op in every dtype it claims, broadcasting shapes, sizes that are not multiples of the
// vector width or the block, ranks 1 to 5.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"

namespace kiln {
namespace {

using namespace cudatest;

// Shape pairs for binary ops: equal (vector path, odd sizes), scalar, trailing vector, per channel, both sides.
const std::vector<std::pair<Dims, Dims>>& binary_shapes() {
  static const std::vector<std::pair<Dims, Dims>> s = {
      {{1}, {1}},           {{1027}, {1027}},           {{3, 5, 7}, {3, 5, 7}},    {{4, 33}, {}},
      {{2, 3, 4}, {4}},     {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{3, 1, 5}, {1, 4, 1}}, {{2, 1, 3, 1, 2}, {2, 2, 1, 3, 2}},
      {{70000}, {70000}},
  };
  return s;
}

TEST(CudaElementWise, FloatOpsAllDtypes) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<int64_t> ops = {0, 1, 2, 3, 4, 5, 6, 7, 64, 11, 12, 13, 65, 66};
  for (DataType dt : float_types())
    for (int64_t op : ops)
      for (const auto& [sa, sb] : binary_shapes()) {
        HostTensor a = randf(sa, dt), b = randf(sb, dt);
        if (op == 6) a = randf(sa, dt, 0.5, 2.0, true);  // POW: positive bases
        if (op == 11) b = a.numel() == b.numel() ? a : b; // EQUAL: some equal pairs
        Options opt;
        if (op == 6 && dt == DataType::kFLOAT) opt.tol = 3e-5;
        for (int64_t fm : {0, 1}) {
          if (op != 64 && fm == 1) continue;
          EXPECT_TRUE(check_op("ElementWise", {a, b}, [&](ir::Attrs& at) { at.set("op", op); at.set("fmod", fm); }, opt))
              << "op " << op << " fmod " << fm << " " << dtype_name(dt) << " " << dims_str(sa) << " x " << dims_str(sb);
        }
      }
}

TEST(CudaElementWise, IntegerOps) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<int64_t> ops = {0, 1, 2, 3, 4, 5, 6, 7, 64, 11, 12, 13, 65, 66, 67, 68};
  for (DataType dt : {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64})
    for (int64_t op : ops)
      for (const auto& [sa, sb] : binary_shapes()) {
        const bool u8 = dt == DataType::kUINT8;
        HostTensor a = rand_ints(sa, dt, u8 ? 0 : -100, 100), b = rand_ints(sb, dt, u8 ? 0 : -9, 9, op == 5 || op == 7 || op == 64);
        if (op == 6) b = rand_ints(sb, dt, u8 ? 0 : -2, 5);
        if (op == 67 || op == 68) b = rand_ints(sb, dt, u8 ? 0 : -2, static_cast<int64_t>(dtype_size(dt) * 8 + 2));
        for (int64_t fm : {0, 1}) {
          if (op != 64 && fm == 1) continue;
          EXPECT_TRUE(check_op("ElementWise", {a, b}, [&](ir::Attrs& at) { at.set("op", op); at.set("fmod", fm); }))
              << "op " << op << " " << dtype_name(dt) << " " << dims_str(sa) << " x " << dims_str(sb);
        }
      }
}

TEST(CudaElementWise, BoolLogic) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t op : {8, 9, 10, 11})
    for (const auto& [sa, sb] : binary_shapes())
      EXPECT_TRUE(check_op("ElementWise", {rand_bool(sa), rand_bool(sb)}, [&](ir::Attrs& at) { at.set("op", op); }))
          << "op " << op << " " << dims_str(sa) << " x " << dims_str(sb);
}

TEST(CudaElementWise, DivisionByZeroAndMinimumDoNotTrap) {
  KILN_REQUIRE_CUDA_DEVICE();
  HostTensor a = mtest::scalar_of(DataType::kINT32, 0, {4}), b = mtest::scalar_of(DataType::kINT32, 0, {4});
  a.mutable_data<int32_t>()[0] = INT32_MIN;
  b.mutable_data<int32_t>()[0] = -1;
  a.mutable_data<int32_t>()[1] = 7;
  for (int64_t op : {5, 7, 64}) EXPECT_TRUE(check_op("ElementWise", {a, b}, [&](ir::Attrs& at) { at.set("op", op); }));
}

TEST(CudaUnary, FloatOps) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (int64_t op = 0; op <= 24; ++op) {
      if (op == 20) continue;  // NOT: bool
      for (const Dims& shape : std::vector<Dims>{{1}, {17}, {3, 5, 7}, {2, 3, 4, 5, 6}, {70001}}) {
        HostTensor x = randf(shape, dt, 0.1, 3.0);
        if (op == 1 || op == 2 || op == 15) x = randf(shape, dt, 1.0, 4.0, true);  // LOG, SQRT, ACOSH
        if (op == 11 || op == 12 || op == 16) x = randf(shape, dt, 0.05, 0.95);    // ASIN, ACOS, ATANH
        if (op == 22) {  // ROUND: exact halves too
          x = randf(shape, dt, 0.1, 8.0);
          for (int64_t i = 0; i < x.numel(); i += 3) mtest::set_elem(x, i, (i % 7) - 3.5);
        }
        if (op == 23 || op == 24)
          for (int64_t i = 0; i < x.numel(); i += 4) mtest::set_elem(x, i, i % 8 ? INFINITY : NAN);
        Options opt;
        if (dt == DataType::kFLOAT) opt.tol = 4e-5;  // CUDA's libm vs glibc: a few ulp
        EXPECT_TRUE(check_op("Unary", {x}, [&](ir::Attrs& at) { at.set("op", op); }, opt))
            << "op " << op << " " << dtype_name(dt) << " " << dims_str(shape);
      }
    }
}

TEST(CudaUnary, IntegerAndBool) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kINT8, DataType::kINT32, DataType::kINT64})
    for (int64_t op : {4, 5, 21})
      for (const Dims& shape : std::vector<Dims>{{5}, {3, 37}, {2, 2, 2, 2, 65}}) {
        HostTensor x = rand_ints(shape, dt, -120, 120);
        EXPECT_TRUE(check_op("Unary", {x}, [&](ir::Attrs& at) { at.set("op", op); })) << op << " " << dtype_name(dt);
      }
  EXPECT_TRUE(check_op("Unary", {rand_bool({1031})}, [&](ir::Attrs& at) { at.set("op", int64_t{20}); }));
}

TEST(CudaActivation, EveryTypeFloat) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<int64_t> types = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 64, 65, 66, 67, 68};
  for (DataType dt : float_types())
    for (int64_t t : types)
      for (const Dims& shape : std::vector<Dims>{{1}, {13}, {2, 3, 129}, {1, 2, 3, 4, 5}}) {
        HostTensor x = randf(shape, dt, 0.01, 4.0);
        Options opt;
        if (dt == DataType::kFLOAT) opt.tol = 4e-5;
        EXPECT_TRUE(check_op("Activation", {x}, [&](ir::Attrs& a) {
          a.set("type", t);
          if (t == 8) { a.set("alpha", -1.5); a.set("beta", 0.75); }
          if (t == 3 || t == 4 || t == 67 || t == 68) a.set("alpha", 0.3);
          if (t == 68) a.set("beta", 0.6);
        }, opt)) << "type " << t << " " << dtype_name(dt) << " " << dims_str(shape);
      }
}

TEST(CudaActivation, IntegerReluClip) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64})
    for (int64_t t : {0, 8}) {
      HostTensor x = rand_ints({3, 77}, dt, dt == DataType::kUINT8 ? 0 : -100, 100);
      EXPECT_TRUE(check_op("Activation", {x}, [&](ir::Attrs& a) {
        a.set("type", t);
        a.set("alpha", -20.5);
        a.set("beta", 40.2);
      })) << t << " " << dtype_name(dt);
    }
}

TEST(CudaSelect, AllSizesBroadcast) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kINT8, DataType::kINT64, DataType::kBOOL})
    for (const auto& [sa, sb] : binary_shapes()) {
      HostTensor a = dt == DataType::kBOOL ? rand_bool(sa) : rand_ints(sa, dt, -50, 50);
      HostTensor b = dt == DataType::kBOOL ? rand_bool(sb) : rand_ints(sb, dt, -50, 50);
      HostTensor c = rand_bool(mtest::bcast_shape(sa, sb).empty() ? Dims{} : Dims{mtest::bcast_shape(sa, sb).back()});
      EXPECT_TRUE(check_op("Select", {c, a, b})) << dtype_name(dt) << " " << dims_str(sa) << " x " << dims_str(sb);
      EXPECT_TRUE(check_op("Select", {rand_bool(sb), a, b})) << dtype_name(dt);
    }
}

TEST(CudaCast, EveryPair) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<DataType> types = {DataType::kFLOAT, DataType::kHALF,  DataType::kBF16, DataType::kINT8,
                                       DataType::kUINT8, DataType::kINT32, DataType::kINT64, DataType::kBOOL};
  for (DataType from : types)
    for (DataType to : types)
      for (const Dims& shape : std::vector<Dims>{{7}, {3, 1029}}) {
        HostTensor x;
        if (from == DataType::kBOOL) x = rand_bool(shape);
        else if (dtype_is_float(from)) x = randf(shape, from, 0.1, 100.0);
        else x = rand_ints(shape, from, from == DataType::kUINT8 ? 0 : -120, 120);
        if (dtype_is_float(from)) mtest::set_elem(x, 0, 0.0);
        Options opt;
        opt.cpu_as_f32 = false;  // the CPU Cast takes every dtype
        opt.tol = 0;             // conversions are exact
        EXPECT_TRUE(check_op("Cast", {x}, [&](ir::Attrs& a) { a.set("to", static_cast<int64_t>(to)); }, opt))
            << dtype_name(from) << " -> " << dtype_name(to);
      }
}

TEST(CudaScale, Modes) {
  KILN_REQUIRE_CUDA_DEVICE();
  const Dims shape = {2, 3, 5, 7};
  struct Case { int64_t mode; int64_t c; };
  for (DataType dt : float_types())
    for (Case cs : {Case{0, 1}, Case{1, 3}, Case{2, 105}}) {
      HostTensor x = randf(shape, dt, 0.5, 2.0, true);
      // x*scale + shift stays positive, so any power is defined.
      HostTensor shift = randf({cs.c}, DataType::kFLOAT, 0.01, 0.1, true);
      HostTensor scale = randf({cs.c}, DataType::kFLOAT, 0.5, 1.5, true);
      HostTensor power = randf({cs.c}, DataType::kFLOAT, 0.5, 2.0, true);
      Options opt;
      if (dt == DataType::kFLOAT) opt.tol = 3e-5;
      EXPECT_TRUE(check_op("Scale", {x, shift, scale, power}, [&](ir::Attrs& a) { a.set("mode", cs.mode); }, opt))
          << cs.mode << " " << dtype_name(dt);
      EXPECT_TRUE(check_op("Scale", {x, HostTensor(), scale, HostTensor()}, [&](ir::Attrs& a) { a.set("mode", cs.mode); }, opt))
          << cs.mode << " " << dtype_name(dt);
    }
}

TEST(CudaIdentity, CopiesAnyDtype) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kINT64, DataType::kBOOL})
    EXPECT_TRUE(check_op("Identity", {dt == DataType::kBOOL ? rand_bool({5, 7}) : rand_ints({5, 7}, dt, -9, 9)}));
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
