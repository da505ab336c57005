// The CUDA FusedPointwise kernel (NVRTC-generated) against the CPU interpreter of the same program: every
// opcode in float32/float16/bfloat16 (and float64, integers, bool), broadcasts of ranks 1 to 5 (flat,
// scalar and strided inputs, the vectorized path with sizes that are not multiples of 4), casts between
// every pair of dtypes, and long chains (LayerNorm's tail, GELU's erf form). Skips without a device.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/nvrtc/nvrtc_module.h"
#include "backends/cuda/pointwise_programs.h"

namespace kiln {
namespace {

using namespace cudatest;
using namespace ir::pw;

::testing::AssertionResult check_program(const Program& p, const std::vector<HostTensor>& inputs, Options opt = {}) {
  opt.cpu_as_f32 = false;  // the interpreter takes float16/bfloat16 as they are
  return check_op("FusedPointwise", inputs, [&](ir::Attrs& a) { p.to_attrs(a); }, opt);
}

// Shapes for two-input programs: flat (odd sizes, a large one), scalar, row, column, rank-5 broadcasts.
const std::vector<std::pair<Dims, Dims>>& shapes2() {
  static const std::vector<std::pair<Dims, Dims>> s = {
      {{1}, {1}},       {{1027}, {1027}},          {{3, 5, 7}, {3, 5, 7}},       {{4, 33}, {1}},
      {{2, 3, 4}, {4}}, {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{3, 1, 5}, {1, 4, 1}}, {{2, 1, 3, 1, 2}, {2, 2, 1, 3, 2}},
      {{70001}, {70001}}, {{6, 1}, {6, 7}},
  };
  return s;
}

TEST(CudaFusedPointwise, UnaryOpsFloat) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kDOUBLE})
    for (int64_t op = kExp; op <= kIsNan; ++op) {
      if (op == kNot) continue;
      Program p;
      const int64_t x = p.input(0, dt);
      // A second instruction so the program is a chain: y = op(x * 0.75).
      const int64_t s = p.add({kElementWise, kProd, dt, x, p.constant(dt, 0.75), 0});
      const DataType out = (op == kIsInf || op == kIsNan) ? DataType::kBOOL : dt;
      p.add({kUnary, op, out, s, -1, -1});
      Options opt;
      opt.nan_ok = true;
      if (dt == DataType::kDOUBLE) opt.tol = 1e-12;  // libm and CUDA's double functions differ in the last bits
      const bool positive = op != kSign && op != kAbs && op != kNeg;
      EXPECT_TRUE(check_program(p, {randf({1027}, dt, 0.1, 1.2, positive)}, opt)) << "unary " << op << " " << dtype_name(dt);
    }
}

TEST(CudaFusedPointwise, ActivationsFloat) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
    for (int64_t type : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 64, 65, 66, 67, 68}) {
      Program p;
      const int64_t x = p.input(0, dt);
      const int64_t s = p.add({kElementWise, kSum, dt, x, p.constant(dt, -0.25), 0});
      pwtest::act(p, type, dt, s);
      Options opt;
      if (dt == DataType::kFLOAT) opt.tol = 3e-5;
      EXPECT_TRUE(check_program(p, {randf({3, 1000}, dt, 0.05, 3.0)}, opt)) << "activation " << type << " " << dtype_name(dt);
    }
}

TEST(CudaFusedPointwise, BinaryOpsWithBroadcasts) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
    for (int64_t op : {kSum, kProd, kMax, kMin, kSub, kDiv, kPow, kFloorDiv, kMod, kGreater, kLessEqual})
      for (const auto& [sa, sb] : shapes2()) {
        Program p;
        const int64_t a = p.input(0, dt), b = p.input(1, dt);
        const bool cmp = ew_is_compare(op);
        const int64_t r = p.add({kElementWise, op, cmp ? DataType::kBOOL : dt, a, b, 0});
        if (cmp) p.add({kSelect, 0, dt, r, a, b});
        else pwtest::act(p, kRelu, dt, r);
        Options opt;
        if (op == kPow && dt == DataType::kFLOAT) opt.tol = 3e-5;
        HostTensor x = op == kPow ? randf(sa, dt, 0.5, 2.0, true) : randf(sa, dt);
        EXPECT_TRUE(check_program(p, {x, randf(sb, dt)}, opt))
            << "op " << op << " " << dtype_name(dt) << " " << dims_str(sa) << " x " << dims_str(sb);
      }
}

TEST(CudaFusedPointwise, IntegerPrograms) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64}) {
    const pwtest::TestProgram t = pwtest::int_program(dt);
    const int64_t lo = dt == DataType::kUINT8 ? 0 : -20;
    for (const auto& [sa, sb] : shapes2())
      EXPECT_TRUE(check_program(t.program, {rand_ints(sa, dt, lo, 20), rand_ints(sb, dt, lo, 20)}))
          << t.name << " " << dims_str(sa) << " x " << dims_str(sb);
  }
}

TEST(CudaFusedPointwise, CastsBetweenEveryPair) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType from : pwtest::all_types()) {
    const pwtest::TestProgram t = pwtest::cast_program(from);
    HostTensor x;
    if (from == DataType::kBOOL) x = rand_bool({1027});
    else if (is_int_type(from)) x = rand_ints({1027}, from, from == DataType::kUINT8 ? 0 : -120, 120);
    else x = randf({1027}, from, 0.1, 300.0);
    EXPECT_TRUE(check_program(t.program, {x})) << t.name;
  }
  for (DataType out : pwtest::all_types()) {
    const pwtest::TestProgram t = pwtest::store_program(out);
    EXPECT_TRUE(check_program(t.program, {randf({5, 211}, DataType::kFLOAT, 0.1, 40.0)})) << t.name;
  }
}

TEST(CudaFusedPointwise, EveryOpcodeProgram) {
  KILN_REQUIRE_CUDA_DEVICE();
  // The big float programs of the codegen test: mostly NaN (log of negatives...), but every instruction runs.
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    const pwtest::TestProgram t = pwtest::float_program(dt);
    Options opt;
    opt.nan_ok = true;
    opt.tol = 1e-2;
    EXPECT_TRUE(check_program(t.program, {randf({257}, dt, 0.1, 0.9, true), randf({257}, dt, 0.1, 0.9, true), rand_bool({257})}, opt))
        << t.name;
  }
}

// y = (x - mean) * rsqrt(var + eps) * gamma + beta: LayerNorm's tail, x [B, S, H], statistics [B, S, 1].
TEST(CudaFusedPointwise, LayerNormTail) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    Program p;
    const int64_t x = p.input(0, dt), mean = p.input(1, dt), var = p.input(2, dt), gamma = p.input(3, dt), beta = p.input(4, dt);
    const int64_t d = p.add({kElementWise, kSub, dt, x, mean, 0});
    const int64_t ve = p.add({kElementWise, kSum, dt, var, p.constant(dt, 1e-5), 0});
    const int64_t sd = p.add({kUnary, kSqrt, dt, ve, -1, -1});
    const int64_t n = p.add({kElementWise, kDiv, dt, d, sd, 0});
    const int64_t g = p.add({kElementWise, kProd, dt, n, gamma, 0});
    p.add({kElementWise, kSum, dt, g, beta, 0});
    for (const Dims& xs : std::vector<Dims>{{2, 7, 768}, {3, 5, 33}, {1, 1, 1}}) {
      const Dims st = {xs[0], xs[1], 1}, hs = {xs[2]};
      EXPECT_TRUE(check_program(p, {randf(xs, dt), randf(st, dt), randf(st, dt, 0.5, 2.0, true), randf(hs, dt), randf(hs, dt)}))
          << dtype_name(dt) << " " << dims_str(xs);
    }
  }
}

// GELU's erf form as exported: x * 0.5 * (1 + erf(x / sqrt(2))), with float16 I/O around float32 compute.
TEST(CudaFusedPointwise, GeluErfChainWithCasts) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType io : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    Program p;
    const DataType f = DataType::kFLOAT;
    const int64_t x = p.add({kCast, 0, f, p.input(0, io), -1, -1});
    const int64_t d = p.add({kElementWise, kDiv, f, x, p.constant(f, 1.4142135623730951), 0});
    const int64_t e = p.add({kUnary, kErf, f, d, -1, -1});
    const int64_t o = p.add({kElementWise, kSum, f, e, p.constant(f, 1.0), 0});
    const int64_t h = p.add({kElementWise, kProd, f, x, p.constant(f, 0.5), 0});
    const int64_t y = p.add({kElementWise, kProd, f, h, o, 0});
    p.add({kCast, 0, io, y, -1, -1});
    // For x near -4, 1 + erf(x/sqrt2) is ~6e-5: the difference between libm's and CUDA's erff (2 ulp of ~1,
    // 2.4e-7) is most of the result, so a few-element case cannot be held to 1e-5 of its own largest value.
    // The allowance is that bound: 0.5 * |x| (4) * 2.4e-7, doubled.
    Options opt;
    if (io == DataType::kFLOAT) opt.atol = 1e-6;
    for (const Dims& s : std::vector<Dims>{{1}, {3}, {4, 1027}, {2, 3, 4, 5, 6}})
      EXPECT_TRUE(check_program(p, {randf(s, io, 0.01, 4.0)}, opt)) << dtype_name(io) << " " << dims_str(s);
  }
}

// Three broadcast inputs of rank 5 plus a one-element input, and an output of higher rank than any input.
TEST(CudaFusedPointwise, MixedBroadcastsAndRank) {
  KILN_REQUIRE_CUDA_DEVICE();
  Program p;
  const DataType f = DataType::kHALF;
  const int64_t a = p.input(0, f), b = p.input(1, f), c = p.input(2, f), s = p.input(3, f);
  const int64_t ab = p.add({kElementWise, kProd, f, a, b, 0});
  const int64_t abc = p.add({kElementWise, kSum, f, ab, c, 0});
  p.add({kElementWise, kSub, f, abc, s, 0});
  auto attrs = [&](ir::Attrs& at) {
    p.to_attrs(at);
    at.set("rank", int64_t{6});
  };
  Options opt;
  opt.cpu_as_f32 = false;
  EXPECT_TRUE(check_op("FusedPointwise", {randf({2, 1, 3, 1, 5}, f), randf({4, 3, 1, 5}, f), randf({2, 4, 1, 1, 1}, f), randf({1}, f)},
                       attrs, opt));
}

TEST(CudaFusedPointwise, KernelsAreCachedPerSource) {
  KILN_REQUIRE_CUDA_DEVICE();
  Program p;
  const int64_t x = p.input(0, DataType::kFLOAT);
  p.add({kUnary, kExp, DataType::kFLOAT, p.add({kUnary, kNeg, DataType::kFLOAT, x, -1, -1}), -1, -1});
  ASSERT_TRUE(check_program(p, {randf({100})}));
  const size_t n = cuda::nvrtc::cache_size();
  ASSERT_TRUE(check_program(p, {randf({100})}));
  EXPECT_EQ(cuda::nvrtc::cache_size(), n) << "the same program and layout compile once";
  ASSERT_TRUE(check_program(p, {randf({3, 100})}));
  EXPECT_EQ(cuda::nvrtc::cache_size(), n) << "flat inputs of another shape reuse the kernel";
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
