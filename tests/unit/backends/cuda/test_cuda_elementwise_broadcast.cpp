// The CUDA ElementWise kernel's path for an operand broadcast along leading dims (kernels/elementwise.cu,
// k_map2_period: one operand has the output's shape, the other a suffix of it, so its index is i % period),
// checked bit for bit against the same op on a host-broadcast copy of that operand (both operands full: the
// contiguous kernel), and against the CPU kernel. Cases: ViT's position-embedding add (16-byte vectors), the
// broadcast operand first (operand order kept for SUB/DIV), leading 1s, periods that are not whole vectors
// (the element loop), scalars, pointers off 16-byte alignment, a size where every thread runs several
// grid-stride steps (the cursor's wrap-around), and shapes that are not suffixes (the general path).
#ifdef KILN_WITH_CUDA
#include <cstring>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cuda_run_placed.h"

namespace kiln {
namespace {

using namespace cudatest;

// t broadcast onto `shape` (numpy rules, shapes right-aligned), element bytes copied.
HostTensor broadcast_to(const HostTensor& t, const Dims& shape) {
  const Dims& ts = t.shape();
  const size_t r = shape.size(), lead = r - ts.size();
  std::vector<int64_t> stride(r, 0);  // t's element stride per output dim, 0 where broadcast
  int64_t acc = 1;
  for (size_t k = ts.size(); k-- > 0;) {
    stride[lead + k] = ts[k] == 1 ? 0 : acc;
    acc *= ts[k];
  }
  HostTensor y(t.dtype(), shape);
  const size_t es = dtype_size(t.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = r; d-- > 0;) {
      off += (rem % shape[d]) * stride[d];
      rem /= shape[d];
    }
    std::memcpy(static_cast<char*>(y.mutable_raw()) + i * es, static_cast<const char*>(t.raw()) + off * es, es);
  }
  return y;
}

Dims broadcast_shape(const Dims& a, const Dims& b) {
  Dims y(std::max(a.size(), b.size()), 1);
  for (size_t k = 0; k < y.size(); ++k) {
    const int64_t da = k < a.size() ? a[a.size() - 1 - k] : 1, db = k < b.size() ? b[b.size() - 1 - k] : 1;
    y[y.size() - 1 - k] = da == 1 ? db : da;
  }
  return y;
}

HostTensor operand(Dims shape, DataType dt) {
  if (dt == DataType::kBOOL) return rand_bool(std::move(shape));
  if (dt == DataType::kFLOAT || dt == DataType::kHALF || dt == DataType::kBF16) return randf(std::move(shape), dt, 0.1, 4.0);
  if (dt == DataType::kUINT8) return rand_ints(std::move(shape), dt, 1, 250);
  return rand_ints(std::move(shape), dt, -100, 100, true);  // nonzero: FLOOR_DIV divides by it
}

// Two operands and their host-broadcast full-shape copies.
struct Operands {
  HostTensor a, b, a_full, b_full;
  Operands(HostTensor a_, HostTensor b_) : a(std::move(a_)), b(std::move(b_)) {
    const Dims ys = broadcast_shape(a.shape(), b.shape());
    a_full = broadcast_to(a, ys);
    b_full = broadcast_to(b, ys);
  }
};

// ElementWise `op` on a and b (at element offsets) against the same op on their full-shape copies, byte for
// byte.
::testing::AssertionResult check_against_full(int64_t op, const Operands& x, const std::vector<int64_t>& in_off = {},
                                              int64_t out_off = 0) {
  auto attrs = [&](ir::Attrs& at) { at.set("op", op); };
  HostTensor got, want;
  ::testing::AssertionResult r = run_placed("ElementWise", {x.a, x.b}, attrs, in_off, out_off, &got);
  if (!r) return r;
  r = run_placed("ElementWise", {x.a_full, x.b_full}, attrs, {}, 0, &want);
  if (!r) return ::testing::AssertionFailure() << "the full-shape run: " << r.message();
  if (!got.same_bytes(want)) return ::testing::AssertionFailure() << "differs from the op on full-shape operands";
  return ::testing::AssertionSuccess();
}

struct Shapes {
  Dims a, b;
};

// Suffix broadcasts (the period path) and shapes that are not (the general path).
const std::vector<Shapes>& shape_cases() {
  static const std::vector<Shapes> s = {
      {{16, 197, 768}, {1, 197, 768}},  // ViT position embedding: 16-byte vectors for every dtype
      {{1, 197, 768}, {16, 197, 768}},  // the broadcast operand first
      {{3, 4, 16}, {1, 1, 16}},         // leading 1s
      {{9, 3, 12}, {12}},               // period of 12: whole vectors only for 4- and 8-byte types
      {{6, 5, 7}, {5, 7}},              // period of 35: the element loop
      {{4, 1000}, {}},                  // a scalar
      {{1}, {5, 3}},                    // a one-element operand of rank 1 first
      {{4, 6, 8}, {4, 1, 8}},           // not suffixes: a broadcast inside
      {{6, 8}, {6, 1}},                 // a trailing broadcast
      {{3, 1, 5}, {1, 4, 1}},           // both broadcast
      {{5, 6, 7}, {5, 6, 7}},           // both full
  };
  return s;
}

struct TypeOps {
  DataType dt;
  std::vector<int64_t> ops;
};

const std::vector<TypeOps>& type_ops() {
  static const std::vector<TypeOps> t = {
      {DataType::kFLOAT, {0, 4, 5, 12}}, {DataType::kHALF, {0, 4, 5, 12}}, {DataType::kBF16, {0, 4, 5, 12}},
      {DataType::kINT32, {0, 4, 7}},     {DataType::kINT64, {0, 4, 7}},     {DataType::kINT8, {0, 4, 7}},
      {DataType::kUINT8, {0, 1}},        {DataType::kBOOL, {8, 10}},
  };
  return t;
}

TEST(CudaElementWiseBroadcast, SuffixPathMatchesFullShapeRunBitForBit) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const TypeOps& to : type_ops())
    for (const Shapes& c : shape_cases()) {
      const Operands x(operand(c.a, to.dt), operand(c.b, to.dt));
      for (int64_t op : to.ops)
        EXPECT_TRUE(check_against_full(op, x))
            << "op " << op << " " << dtype_name(to.dt) << " " << dims_str(c.a) << " x " << dims_str(c.b);
    }
}

TEST(CudaElementWiseBroadcast, SuffixPathMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const TypeOps& to : type_ops())
    for (const Shapes& c : shape_cases()) {
      if (volume(c.a) > 100000 || volume(c.b) > 100000) continue;  // the big ones: bit for bit above
      const HostTensor a = operand(c.a, to.dt), b = operand(c.b, to.dt);
      for (int64_t op : to.ops)
        EXPECT_TRUE(check_op("ElementWise", {a, b}, [&](ir::Attrs& at) { at.set("op", op); }))
            << "op " << op << " " << dtype_name(to.dt) << " " << dims_str(c.a) << " x " << dims_str(c.b);
    }
  // ViT's add once against the CPU as well.
  for (DataType dt : float_types())
    EXPECT_TRUE(check_op("ElementWise", {operand({16, 197, 768}, dt), operand({1, 197, 768}, dt)},
                         [](ir::Attrs& at) { at.set("op", int64_t{0}); }))
        << dtype_name(dt);
}

TEST(CudaElementWiseBroadcast, MisalignedPointersTakeTheElementLoop) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<Shapes> cases = {{{8, 3, 64}, {3, 64}}, {{3, 64}, {8, 3, 64}}};
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kINT8})
    for (const Shapes& c : cases) {
      const Operands x(operand(c.a, dt), operand(c.b, dt));
      for (const std::vector<int64_t>& in_off : std::vector<std::vector<int64_t>>{{1, 0}, {0, 1}, {0, 0}})
        for (int64_t out_off : {0, 1}) {
          if (in_off[0] == 0 && in_off[1] == 0 && out_off == 0) continue;  // aligned: the first test
          EXPECT_TRUE(check_against_full(4, x, in_off, out_off))
              << dtype_name(dt) << " " << dims_str(c.a) << " x " << dims_str(c.b) << " offsets " << in_off[0] << ", "
              << in_off[1] << ", out " << out_off;
        }
    }
}

TEST(CudaElementWiseBroadcast, SeveralGridStrideStepsPerThread) {
  KILN_REQUIRE_CUDA_DEVICE();
  // 9.7M elements: more vectors than a GPU holds threads, so each thread's cursor into the period (197 x 768)
  // advances and wraps several times; once with 16-byte vectors, once off alignment (the element loop).
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF}) {
    const Operands full_first(operand({64, 197, 768}, dt), operand({197, 768}, dt));
    EXPECT_TRUE(check_against_full(0, full_first)) << dtype_name(dt);
    const Operands part_first(operand({197, 768}, dt), operand({64, 197, 768}, dt));
    EXPECT_TRUE(check_against_full(4, part_first, {0, 1}, 0)) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
