// CUDA data-movement kernels (Shuffle, Squeeze/Unsqueeze, Concatenation, Split, Slice, DynamicSlice, Expand,
// Tile, Pad, Gather, Scatter, Resize, ConstantOfShape, Range, Fill) against the CPU kernels, for element sizes
// 1, 2, 4 and 8 bytes, ranks 1 to 6 and every mode. Shuffle's transposes (transpose.cu) get the shapes real
// models produce (channels-last of a 3-channel input, attention head split/merge), every kernel path (vector
// row copies, 64x64 and thin tiles, the gather), 64-bit indexing, offset pointers and empty tensors; the fast
// division and the folding of two transposes around a reshape are also checked on the host (no GPU needed).
#ifdef KILN_WITH_CUDA
#include <algorithm>
#include <cstring>
#include <numeric>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/kernels/index_map.h"
#include "backends/cuda/kernels/transpose.cuh"

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

// A Shuffle node's attributes: first transpose, optional reshape, second transpose (empty = none).
std::function<void(ir::Attrs&)> shuffle_attrs(const Ints& p1, const Ints& reshape = {}, const Ints& p2 = {}) {
  return [=](ir::Attrs& a) {
    if (!p1.empty()) a.set("first_transpose", p1);
    if (!reshape.empty()) {
      a.set("reshape_dims", reshape);
      a.set("has_reshape", int64_t{1});
    }
    if (!p2.empty()) a.set("second_transpose", p2);
  };
}

// The element sizes once each (bool shares uint8's kernels).
const std::vector<DataType>& size_types() {
  static const std::vector<DataType> t = {DataType::kUINT8, DataType::kHALF, DataType::kFLOAT, DataType::kINT64};
  return t;
}

// NCHW <-> NHWC, the channels-last pass's Shuffles: C = 3 and 4 take the thin tiles (4 x 1024), C = 64 the
// 64x64 tiles, C = 1 collapses to a copy; H*W odd (35) and just over one thin tile (1073).
TEST(CudaShuffle, ChannelsLastBothWays) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : move_types())
    for (int64_t c : {1, 3, 4, 64})
      for (auto [h, w] : {std::pair<int64_t, int64_t>{5, 7}, {37, 29}}) {
        EXPECT_TRUE(check_op("Shuffle", {any({2, c, h, w}, dt)}, shuffle_attrs({0, 2, 3, 1})))
            << dtype_name(dt) << " NCHW->NHWC C=" << c << " " << h << "x" << w;
        EXPECT_TRUE(check_op("Shuffle", {any({2, h, w, c}, dt)}, shuffle_attrs({0, 3, 1, 2})))
            << dtype_name(dt) << " NHWC->NCHW C=" << c << " " << h << "x" << w;
      }
}

// Attention heads: [B,S,H,D] <-> [B,H,S,D] as a plain transpose, as reshape+transpose (split) and
// transpose+reshape (merge), and K's [B,S,H,D] -> [B,H,D,S]. D = 64 and 80 copy 16-byte rows, D = 3 2-byte
// units of fp16, D = 1 collapses to a 2-D transpose.
TEST(CudaShuffle, AttentionHeadSplitMerge) {
  KILN_REQUIRE_CUDA_DEVICE();
  const int64_t B = 2, S = 37, H = 5;
  for (DataType dt : move_types())
    for (int64_t d : {64, 80, 1, 3}) {
      const std::string what = std::string(dtype_name(dt)) + " D=" + std::to_string(d);
      EXPECT_TRUE(check_op("Shuffle", {any({B, S, H, d}, dt)}, shuffle_attrs({0, 2, 1, 3}))) << what;
      EXPECT_TRUE(check_op("Shuffle", {any({B, H, S, d}, dt)}, shuffle_attrs({0, 2, 1, 3}))) << what;
      EXPECT_TRUE(check_op("Shuffle", {any({B, S, H * d}, dt)}, shuffle_attrs({}, {B, S, H, d}, {0, 2, 1, 3}))) << what;
      EXPECT_TRUE(check_op("Shuffle", {any({B, H, S, d}, dt)}, shuffle_attrs({0, 2, 1, 3}, {B, S, H * d}))) << what;
      EXPECT_TRUE(check_op("Shuffle", {any({B, S, H, d}, dt)}, shuffle_attrs({0, 2, 3, 1}))) << what << " K^T";
    }
}

TEST(CudaShuffle, Rank6) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<Ints> perms = {
      {5, 4, 3, 2, 1, 0},  // reversal
      {1, 0, 3, 2, 5, 4},  // pairs swapped: the last dim moves
      {2, 0, 1, 4, 3, 5},  // the last dim stays
      {0, 1, 2, 3, 5, 4},  // an inner 2-D transpose
      {4, 5, 0, 1, 2, 3},  // two merged groups swap
  };
  for (DataType dt : size_types())
    for (const Dims& x : {Dims{2, 3, 4, 5, 3, 2}, Dims{3, 1, 4, 2, 5, 7}})
      for (const Ints& p : perms)
        EXPECT_TRUE(check_op("Shuffle", {any(x, dt)}, shuffle_attrs(p))) << dtype_name(dt) << " " << dims_str(x) << " " << dims_str(p);
}

// Every tile shape class: 64x64 with ragged edges, thin tiles with a small extent on either side, a 32x32
// tile (both extents 20), and transposes too small for a tile (the gather).
TEST(CudaShuffle, TileShapes) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x;
    Ints p;
  };
  const std::vector<Case> cases = {
      {{3, 130, 70}, {0, 2, 1}}, {{70, 2000}, {1, 0}}, {{5, 2, 3000}, {0, 2, 1}}, {{3000, 6}, {1, 0}},
      {{4, 20, 20}, {0, 2, 1}},  {{3, 3, 5}, {0, 2, 1}},  {{7, 2, 2}, {2, 1, 0}},    {{2, 17, 3, 33}, {3, 1, 2, 0}},
  };
  for (DataType dt : size_types())
    for (const Case& c : cases)
      EXPECT_TRUE(check_op("Shuffle", {any(c.x, dt)}, shuffle_attrs(c.p))) << dtype_name(dt) << " " << dims_str(c.x);
}

// Two transposes around a reshape: folded into one transpose when the reshape only splits and merges dims,
// gathered through both index maps when it does not ([3,2,4] -> [4,6] cuts the 3 and the 2 across).
TEST(CudaShuffle, TwoTransposesAroundAReshape) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : size_types()) {
    EXPECT_TRUE(check_op("Shuffle", {any({2, 8, 6}, dt)}, shuffle_attrs({0, 2, 1}, {2, 3, 2, 8}, {0, 1, 3, 2}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({2, 3, 4}, dt)}, shuffle_attrs({1, 0, 2}, {4, 6}, {1, 0}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({4, 6, 10}, dt)}, shuffle_attrs({2, 0, 1}, {5, 2, 24}, {2, 1, 0}))) << dtype_name(dt);
  }
}

// Resets the 64-bit switch even when a check throws.
struct Force64BitIndex {
  Force64BitIndex() { cuda::kern::set_transpose_force_64bit_index(true); }
  ~Force64BitIndex() { cuda::kern::set_transpose_force_64bit_index(false); }
};

TEST(CudaShuffle, SixtyFourBitIndexKernels) {
  KILN_REQUIRE_CUDA_DEVICE();
  Force64BitIndex force;
  for (DataType dt : size_types()) {
    EXPECT_TRUE(check_op("Shuffle", {any({2, 3, 37, 29}, dt)}, shuffle_attrs({0, 2, 3, 1}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({3, 130, 70}, dt)}, shuffle_attrs({0, 2, 1}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({2, 37, 5, 80}, dt)}, shuffle_attrs({0, 2, 1, 3}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({3, 3, 5}, dt)}, shuffle_attrs({0, 2, 1}))) << dtype_name(dt);
  }
}

// Shuffle with its input and output at element offsets inside larger device buffers, so the row copies
// must pick a narrower unit than 16 bytes; bytes around the output must stay untouched.
::testing::AssertionResult check_shuffle_at(const HostTensor& x, const Ints& perm, int64_t in_off, int64_t out_off) {
  ir::Graph g;
  ir::Node* node = g.add_node("Shuffle", "node", {g.add_input("in0", x.dtype(), x.shape())}, 1);
  node->attrs.set("first_transpose", perm);
  const HostTensor ref = cpu::eval_node(*node, {&x}).at(0);
  const size_t es = dtype_size(x.dtype());
  const size_t guard = 64;
  cuda::DeviceBuffer din(x.nbytes() + in_off * es + guard), dout(ref.nbytes() + out_off * es + guard);
  char* in_ptr = static_cast<char*>(din.get()) + in_off * es;
  char* out_ptr = static_cast<char*>(dout.get()) + out_off * es;
  cudaStream_t s = test_stream();
  if (cudaMemcpy(in_ptr, x.raw(), x.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemset(dout.get(), 0xA5, dout.size()) != cudaSuccess)
    return ::testing::AssertionFailure() << "cudaMemcpy/cudaMemset failed";
  cuda::Resources res;
  res.stream = s;
  cuda::KernelContext ctx{*node, {}, {}, res};
  ctx.in.push_back(cuda::TensorRef{true, x.dtype(), x.shape(), in_ptr, nullptr});
  ctx.out.push_back(cuda::TensorRef{true, ref.dtype(), ref.shape(), out_ptr, nullptr});
  cuda::find_kernel("Shuffle")(ctx);
  const cudaError_t e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(e);
  std::vector<unsigned char> got(dout.size());
  if (cudaMemcpy(got.data(), dout.get(), got.size(), cudaMemcpyDeviceToHost) != cudaSuccess)
    return ::testing::AssertionFailure() << "cudaMemcpy of the output failed";
  const size_t first = out_off * es, last = first + ref.nbytes();
  for (size_t i = 0; i < got.size(); ++i) {
    const unsigned char want = i >= first && i < last ? static_cast<const unsigned char*>(ref.raw())[i - first] : 0xA5;
    if (got[i] != want)
      return ::testing::AssertionFailure() << "byte " << i << " of the output buffer (view at " << first << ".." << last
                                           << ") is " << int(got[i]) << ", expected " << int(want);
  }
  return ::testing::AssertionSuccess();
}

TEST(CudaShuffle, OffsetPointers) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x;
    Ints p;
  };
  const std::vector<Case> cases = {
      {{2, 5, 3, 8}, {0, 2, 1, 3}},  // rows of 8 elements: 16-byte units only when aligned
      {{2, 5, 3, 3}, {0, 2, 1, 3}},  // rows of 3
      {{2, 3, 5, 7}, {0, 2, 3, 1}},  // a thin tile
      {{3, 70, 66}, {0, 2, 1}},      // 64x64 tiles
  };
  for (DataType dt : size_types())
    for (const Case& c : cases)
      for (int64_t in_off : {0, 1, 3})
        for (int64_t out_off : {0, 1, 2})
          EXPECT_TRUE(check_shuffle_at(any(c.x, dt), c.p, in_off, out_off))
              << dtype_name(dt) << " " << dims_str(c.x) << " offsets " << in_off << ", " << out_off;
}

TEST(CudaShuffle, EmptyTensors) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : size_types()) {
    EXPECT_TRUE(check_op("Shuffle", {any({0, 3, 4}, dt)}, shuffle_attrs({1, 0, 2}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({2, 0, 5}, dt)}, shuffle_attrs({2, 0, 1}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({3, 0}, dt)}, shuffle_attrs({}, {5, 0}))) << dtype_name(dt);
    EXPECT_TRUE(check_op("Shuffle", {any({2, 0, 4}, dt)}, shuffle_attrs({1, 0, 2}, {0, 8}, {1, 0}))) << dtype_name(dt);
  }
}

// The Shuffles of real models at full size (the shapes the tiles and index widths were chosen for), each
// checked against the CPU kernel. Their speed is measured by the benchmark's per-layer profile, not here.
TEST(CudaShuffle, RealModelShapes) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    const char* name;
    DataType dt;
    Dims x;
    Ints p1, reshape, p2;
  };
  const DataType f16 = DataType::kHALF, f32 = DataType::kFLOAT;
  const std::vector<Case> cases = {
      {"NCHW->NHWC [128,3,224,224] fp16", f16, {128, 3, 224, 224}, {0, 2, 3, 1}, {}, {}},
      {"NCHW->NHWC [128,3,224,224] fp32", f32, {128, 3, 224, 224}, {0, 2, 3, 1}, {}, {}},
      {"NHWC->NCHW [128,112,112,64] fp16", f16, {128, 112, 112, 64}, {0, 3, 1, 2}, {}, {}},
      {"NCHW->NHWC [128,64,112,112] fp16", f16, {128, 64, 112, 112}, {0, 2, 3, 1}, {}, {}},
      {"BERT b64 head split [64,128,768]->[64,12,128,64] fp16", f16, {64, 128, 768}, {}, {64, 128, 12, 64}, {0, 2, 1, 3}},
      {"BERT b64 head merge [64,12,128,64]->[64,128,768] fp16", f16, {64, 12, 128, 64}, {0, 2, 1, 3}, {64, 128, 768}, {}},
      {"ViT b128 head split [128,197,768]->[128,12,197,64] fp16", f16, {128, 197, 768}, {}, {128, 197, 12, 64}, {0, 2, 1, 3}},
      {"K^T [64,128,12,64]->[64,12,64,128] fp16", f16, {64, 128, 12, 64}, {0, 2, 3, 1}, {}, {}},
  };
  for (const Case& c : cases) {
    HostTensor x(c.dt, c.x);
    auto* bytes = static_cast<uint32_t*>(x.mutable_raw());
    for (size_t i = 0; i < x.nbytes() / 4; ++i) bytes[i] = static_cast<uint32_t>(i * 2654435761u);
    ir::Graph g;
    ir::Node* node = g.add_node("Shuffle", "node", {g.add_input("in0", x.dtype(), x.shape())}, 1);
    shuffle_attrs(c.p1, c.reshape, c.p2)(node->attrs);
    const HostTensor want = cpu::eval_node(*node, {&x}).at(0);
    cuda::DeviceBuffer din(x.nbytes()), dout(want.nbytes());
    ASSERT_EQ(cudaMemcpy(din.get(), x.raw(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    cudaStream_t s = test_stream();
    cuda::Resources res;
    res.stream = s;
    cuda::KernelContext ctx{*node, {}, {}, res};
    ctx.in.push_back(cuda::TensorRef{true, x.dtype(), x.shape(), din.get(), nullptr});
    ctx.out.push_back(cuda::TensorRef{true, want.dtype(), want.shape(), dout.get(), nullptr});
    const cuda::KernelFn fn = cuda::find_kernel("Shuffle");
    fn(ctx);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    HostTensor got(want.dtype(), want.shape());
    ASSERT_EQ(cudaMemcpy(got.mutable_raw(), dout.get(), got.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_TRUE(got.same_bytes(want)) << c.name;
  }
}

// ----------------------------------------------------------------------------------------------------------
// Host-side pieces of the transposes (run without a GPU).

TEST(TransposeHost, FastDivisionIsExact) {
  using cuda::kern::FastDivU32;
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4099; ++d) divisors.push_back(d);
  for (int s = 12; s < 31; ++s)
    for (int64_t delta : {-1, 0, 1}) divisors.push_back(static_cast<uint32_t>((int64_t{1} << s) + delta));
  divisors.push_back(0x7fffffffu);
  for (int i = 0; i < 2000; ++i) divisors.push_back(static_cast<uint32_t>(mtest::rand_int(1, 0x7fffffff)));
  const uint32_t kMax = 0x7fffffffu;
  for (uint32_t d : divisors) {
    const FastDivU32 f(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, kMax, kMax - 1, kMax - d + 1};
    if (d < kMax / 2) ns.insert(ns.end(), {d + 1, 2 * d - 1, 2 * d, 2 * d + 1});
    ns.push_back(kMax / d * d);
    if (kMax / d * d > 0) ns.push_back(kMax / d * d - 1);
    for (int i = 0; i < 200; ++i) ns.push_back(static_cast<uint32_t>(mtest::rand_int(0, kMax)));
    for (uint32_t n : ns)
      ASSERT_EQ(f.div(n), n / d) << n << " / " << d << " (magic " << f.magic << ", shift " << f.shift << ")";
  }
}

// out = x (row-major with dims `shape`) transposed by perm, on the host, byte by byte.
HostTensor host_transpose(const HostTensor& x, const Dims& shape, const Ints& perm) {
  const size_t r = shape.size(), es = dtype_size(x.dtype());
  Dims od(r), in_strides(r, 1);
  for (size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * shape[i];
  for (size_t j = 0; j < r; ++j) od[j] = shape[perm[j]];
  HostTensor y(x.dtype(), {x.numel()});
  for (int64_t f = 0; f < x.numel(); ++f) {
    int64_t rem = f, off = 0;
    for (size_t j = r; j-- > 0;) {
      off += (rem % od[j]) * in_strides[perm[j]];
      rem /= od[j];
    }
    std::memcpy(static_cast<char*>(y.mutable_raw()) + f * es, static_cast<const char*>(x.raw()) + off * es, es);
  }
  return y;
}

Ints random_perm(size_t r) {
  Ints p(r);
  std::iota(p.begin(), p.end(), 0);
  std::shuffle(p.begin(), p.end(), mtest::rng());
  return p;
}

// fold_shuffle's single transpose against the CPU Shuffle kernel on random shapes, permutations and
// reshapes (dims 1-4, ranks 1-5; a reshape that splits and merges dims at random).
TEST(TransposeHost, FoldedShuffleMatchesTheCpuKernel) {
  int folded = 0, refused = 0;
  for (int iter = 0; iter < 400; ++iter) {
    Dims x(mtest::rand_int(1, 4));
    for (int64_t& d : x) d = mtest::rand_int(1, 4);
    // mid: the elements regrouped into random factors of the remaining count.
    int64_t left = volume(x);
    Dims mid;
    while (left > 1 || mid.empty()) {
      std::vector<int64_t> divs;
      for (int64_t f = 1; f <= left; ++f)
        if (left % f == 0) divs.push_back(f);
      const int64_t f = divs[mtest::rand_int(0, static_cast<int64_t>(divs.size()) - 1)];
      mid.push_back(f);
      left /= f;
      if (mid.size() >= 5) {
        mid.back() *= left;
        left = 1;
      }
    }
    const Ints p1 = random_perm(x.size()), p2 = random_perm(mid.size());
    Dims shape;
    Ints perm;
    if (!cuda::kern::fold_shuffle(x, p1, mid, p2, &shape, &perm)) {
      ++refused;
      continue;
    }
    ++folded;
    const HostTensor in = rand_ints(x, DataType::kINT32, -1000, 1000);
    ir::Graph g;
    ir::Node* node = g.add_node("Shuffle", "node", {g.add_input("in0", in.dtype(), in.shape())}, 1);
    shuffle_attrs(p1, mid, p2)(node->attrs);
    const HostTensor want = cpu::eval_node(*node, {&in}).at(0);
    const HostTensor got = host_transpose(in, shape, perm);
    ASSERT_TRUE(got.reshaped(want.shape()).same_bytes(want))
        << dims_str(x) << " " << dims_str(p1) << " -> " << dims_str(mid) << " " << dims_str(p2) << " folded to "
        << dims_str(shape) << " " << dims_str(perm);
  }
  EXPECT_GT(folded, 200);
  EXPECT_GT(refused, 0);
}

TEST(TransposeHost, FoldRefusesAReshapeThatCutsAcrossDims) {
  Dims shape;
  Ints perm;
  EXPECT_FALSE(cuda::kern::fold_shuffle({2, 3, 4}, {1, 0, 2}, {4, 6}, {1, 0}, &shape, &perm));  // [3,2,4] -> [4,6]
  EXPECT_FALSE(cuda::kern::fold_shuffle({3, 2}, {0, 1}, {2, 3}, {1, 0}, &shape, &perm));
  ASSERT_TRUE(cuda::kern::fold_shuffle({2, 3, 4}, {2, 0, 1}, {4, 6}, {1, 0}, &shape, &perm));
  EXPECT_EQ(shape, (Dims{2, 3, 4}));
  EXPECT_EQ(perm, (Ints{0, 1, 2}));  // [4,2,3] -> [4,6] -> [6,4] is x itself
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

// Pads and slices whose neighbouring axes collapse into one (index_map.h), with 32- and 64-bit indices: the
// RGB stem's channel padding of an NHWC input, and a slice of the outer axis of a contiguous block.
struct ForceIndexMap64 {
  ForceIndexMap64() { cuda::kern::set_index_map_force_64bit_index(true); }
  ~ForceIndexMap64() { cuda::kern::set_index_map_force_64bit_index(false); }
};

void check_collapsed_maps(const char* width) {
  for (DataType dt : move_types()) {
    const HostTensor nhwc = any({2, 5, 6, 3}, dt);
    EXPECT_TRUE(check_op("Pad", {nhwc, i64({0, 0, 0, 0, 0, 0, 0, 5})})) << dtype_name(dt) << " " << width;
    EXPECT_TRUE(check_op("Pad", {nhwc, i64({0, 0, 0, 1, 0, 0, 0, 2})}, [](ir::Attrs& a) { a.set("mode", "reflect"); }))
        << dtype_name(dt) << " " << width;
    EXPECT_TRUE(check_op("DynamicSlice", {any({6, 4, 5, 7}, dt), i64({1}), i64({5}), i64({0}), HostTensor()}))
        << dtype_name(dt) << " " << width;
    EXPECT_TRUE(check_op("Expand", {any({1, 4, 5}, dt), i64({3, 4, 5})})) << dtype_name(dt) << " " << width;
  }
}

TEST(CudaIndexMap, CollapsedAxesBothIndexWidths) {
  KILN_REQUIRE_CUDA_DEVICE();
  check_collapsed_maps("32-bit");
  ForceIndexMap64 force;
  check_collapsed_maps("64-bit");
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
