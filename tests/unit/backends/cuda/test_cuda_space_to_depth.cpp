// The CUDA SpaceToDepthNhwc kernel against the CPU kernel on random inputs: float32/16, bfloat16 (and one
// type each of 1 and 8 bytes), ResNet's stem geometry, batches of 2, odd sizes, a cropped end, channel
// padding beyond C*s*s, and both store paths: 16-byte vectors and single elements (C_out not whole vectors; an
// output pointer off 16-byte alignment). Exact: the kernel only moves elements. And the converting form
// ('output_dtype': float32 in, float16/bfloat16 out) bit for bit against the CPU kernel, which rounds as the
// Cast kernels do, on random values and on the values where rounding matters. Geometries with even begin
// padding and width take the block-row kernel (vector loads of each pixel's 2 columns); a misaligned input
// falls back to the element kernel.
#ifdef KILN_WITH_CUDA
#include <cmath>
#include <limits>

#include "backends/cuda/cuda_op_harness.h"

namespace kiln {
namespace {

using namespace cudatest;
using Ints = std::vector<int64_t>;

struct Case {
  Dims x;
  int64_t block;
  Ints pre, post;
  int64_t c_out;
};

std::function<void(ir::Attrs&)> attrs_of(const Case& c) {
  return [c](ir::Attrs& a) {
    a.set("block", c.block);
    a.set("pre_padding", c.pre);
    a.set("post_padding", c.post);
    a.set("out_channels", c.c_out);
  };
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {{1, 3, 32, 32}, 2, {3, 3}, {3, 3}, 16},   // ResNet's stem, small: 16 channels (two float16 vectors)
      {{2, 3, 33, 31}, 2, {3, 3}, {4, 4}, 16},   // odd sizes, end padding extended
      {{2, 3, 20, 22}, 2, {2, 3}, {4, 1}, 16},   // asymmetric padding
      {{1, 1, 33, 30}, 4, {0, 1}, {-1, 1}, 16},  // stride 4, the last row cropped
      {{2, 1, 9, 7}, 2, {1, 0}, {0, 1}, 8},      // C*s*s = 4 padded to 8
      {{2, 3, 10, 10}, 2, {0, 0}, {0, 0}, 12},   // no channel padding: whole float32 vectors, float16 by element
      {{1, 2, 6, 6}, 3, {0, 0}, {0, 0}, 24},     // block 3: 18 channels of 24
      {{3, 3, 7, 5}, 2, {1, 1}, {0, 0}, 20},     // C_out > C*s*s, not a multiple of 8
      // Begin padding and width multiples of 2: the block-row kernel (C = 1 to 4, each store path).
      {{1, 3, 32, 32}, 2, {4, 4}, {2, 2}, 16},   // ResNet's stem as passes/channels_last writes it
      {{2, 3, 17, 16}, 2, {2, 2}, {1, 0}, 16},   // MobileNet's 3x3/2 stem: odd height, no end padding in W
      {{2, 4, 10, 12}, 2, {0, 2}, {2, 0}, 16},   // 4 channels: 16 of 16
      {{1, 2, 8, 6}, 2, {2, 0}, {-2, 2}, 8},     // 2 channels, the last rows cropped
      {{2, 1, 6, 10}, 2, {0, 2}, {0, 0}, 12},    // 1 channel: 4 of 12 (zeros past the data, both paths)
      {{1, 3, 8, 8}, 2, {0, 0}, {0, 0}, 24},     // 12 of 24: a whole zero vector after the data's last
  };
  return c;
}

TEST(CudaSpaceToDepthNhwc, MatchesTheCpuKernel) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (const Case& c : cases())
      EXPECT_TRUE(check_op("SpaceToDepthNhwc", {randf(c.x, dt)}, attrs_of(c), Options{.tol = 0}))
          << dtype_name(dt) << " " << dims_str(c.x) << " block " << c.block << " out_channels " << c.c_out;
  // Element sizes 1 and 8 (the kernel moves bytes; zero bytes are 0 in every type).
  for (DataType dt : {DataType::kUINT8, DataType::kINT64})
    for (const Case& c : cases())
      EXPECT_TRUE(check_op("SpaceToDepthNhwc", {rand_ints(c.x, dt, 1, 100)}, attrs_of(c), Options{.cpu_as_f32 = false}))
          << dtype_name(dt) << " " << dims_str(c.x);
}

// ResNet-50's stem input at batch 4 (the real geometry; 32-bit offsets), with the begin padding of the ONNX
// convolution (3: one element at a time) and the one passes/channels_last writes (4: block rows).
TEST(CudaSpaceToDepthNhwc, ResNetStemSize) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const Case& c : {Case{{4, 3, 224, 224}, 2, {3, 3}, {3, 3}, 16}, Case{{4, 3, 224, 224}, 2, {4, 4}, {2, 2}, 16}})
    for (DataType dt : float_types())
      EXPECT_TRUE(check_op("SpaceToDepthNhwc", {randf(c.x, dt)}, attrs_of(c), Options{.tol = 0}))
          << dtype_name(dt) << " pre " << c.pre[0];
}

// An output 8 bytes past a 16-byte boundary takes the element path, and writes nothing outside its range.
TEST(CudaSpaceToDepthNhwc, UnalignedOutputTakesTheElementPath) {
  KILN_REQUIRE_CUDA_DEVICE();
  const Case c{{2, 3, 9, 11}, 2, {3, 3}, {4, 2}, 16};
  const HostTensor x = randf(c.x, DataType::kHALF);
  ir::Graph g;
  ir::Node* n = g.add_node("SpaceToDepthNhwc", "s2d", {g.add_input("x", DataType::kHALF, c.x)}, 1);
  attrs_of(c)(n->attrs);
  const std::vector<ir::TensorInfo> out = ir::infer_node(*n, {ir::TensorInfo{true, DataType::kHALF, c.x, nullptr}});
  const HostTensor ref = cpu_reference("SpaceToDepthNhwc", n->attrs, {x}, 1, false)[0];
  const size_t bytes = ref.nbytes(), off = 8;
  cuda::DeviceBuffer dx(x.nbytes()), dy(bytes + 2 * off);
  ASSERT_EQ(cudaMemcpy(dx.get(), x.raw(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(dy.get(), 0x7B, bytes + 2 * off), cudaSuccess);
  cuda::Resources res;
  res.stream = test_stream();
  void* y = static_cast<char*>(dy.get()) + off;
  cuda::KernelContext ctx{*n, {cuda::TensorRef{true, DataType::kHALF, c.x, dx.get(), x.raw()}},
                          {cuda::TensorRef{true, DataType::kHALF, out[0].shape, y, nullptr}}, res};
  cuda::find_kernel("SpaceToDepthNhwc")(ctx);
  ASSERT_EQ(cudaStreamSynchronize(res.stream), cudaSuccess);
  std::vector<uint8_t> got(bytes + 2 * off);
  ASSERT_EQ(cudaMemcpy(got.data(), dy.get(), got.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < off; ++i) {
    EXPECT_EQ(got[i], 0x7B) << "byte " << i << " before the output";
    EXPECT_EQ(got[off + bytes + i], 0x7B) << "byte " << i << " after the output";
  }
  EXPECT_EQ(std::memcmp(got.data() + off, ref.raw(), bytes), 0) << "the output differs from the CPU kernel's";
}

// The kernel's output for the node `n` on x (placed x_off bytes past a 16-byte boundary), written `off` bytes
// past a 16-byte boundary; checks that nothing outside the output is written.
std::vector<uint8_t> run_on_gpu(const ir::Node& n, const HostTensor& x, size_t off, size_t x_off = 0) {
  const ir::TensorInfo out = ir::infer_node(n, {ir::TensorInfo{true, x.dtype(), x.shape(), nullptr}})[0];
  const size_t bytes = static_cast<size_t>(volume(out.shape)) * dtype_size(out.dtype);
  cuda::DeviceBuffer dx(x.nbytes() + x_off), dy(bytes + 2 * off + 16);
  void* xd = static_cast<char*>(dx.get()) + x_off;
  EXPECT_EQ(cudaMemcpy(xd, x.raw(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(dy.get(), 0x7B, dy.size()), cudaSuccess);
  cuda::Resources res;
  res.stream = test_stream();
  void* y = static_cast<char*>(dy.get()) + off;
  cuda::KernelContext ctx{n, {cuda::TensorRef{true, x.dtype(), x.shape(), xd, x.raw()}},
                          {cuda::TensorRef{true, out.dtype, out.shape, y, nullptr}}, res};
  cuda::find_kernel("SpaceToDepthNhwc")(ctx);
  EXPECT_EQ(cudaStreamSynchronize(res.stream), cudaSuccess);
  std::vector<uint8_t> all(dy.size());
  EXPECT_EQ(cudaMemcpy(all.data(), dy.get(), all.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < all.size(); ++i)
    if (i < off || i >= off + bytes) {
      EXPECT_EQ(all[i], 0x7B) << "byte " << i << " of the buffer, outside the output";
    }
  return std::vector<uint8_t>(all.begin() + off, all.begin() + off + bytes);
}


bool is_nan_bits(uint16_t b, DataType dt) {
  return dt == DataType::kHALF ? (b & 0x7C00) == 0x7C00 && (b & 0x03FF) : (b & 0x7F80) == 0x7F80 && (b & 0x007F);
}

// The converting kernel on x (float32) against the CPU kernel: the same bits, except that a NaN may carry
// another payload (both Cast kernels make NaNs their own way: the GPU's conversion gives the canonical NaN).
::testing::AssertionResult converts_like_the_cpu(const Case& c, const HostTensor& x, DataType to, size_t off = 0,
                                                 size_t x_off = 0) {
  ir::Graph g;
  ir::Node* n = g.add_node("SpaceToDepthNhwc", "s2d", {g.add_input("x", DataType::kFLOAT, c.x)}, 1);
  attrs_of(c)(n->attrs);
  n->attrs.set("output_dtype", static_cast<int64_t>(to));
  const std::vector<ir::TensorInfo> in{ir::TensorInfo{true, DataType::kFLOAT, c.x, nullptr}};
  if (!cuda::supports(*n, in)) return ::testing::AssertionFailure() << "cuda::supports() says no";
  const HostTensor ref = cpu_reference("SpaceToDepthNhwc", n->attrs, {x}, 1, false)[0];
  if (ref.dtype() != to) return ::testing::AssertionFailure() << "the CPU kernel wrote " << dtype_name(ref.dtype());
  const std::vector<uint8_t> got = run_on_gpu(*n, x, off, x_off);
  if (got.size() != ref.nbytes()) return ::testing::AssertionFailure() << "output size " << got.size();
  const auto* want = static_cast<const uint16_t*>(ref.raw());
  int bad = 0;
  std::ostringstream msg;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    uint16_t b;
    std::memcpy(&b, got.data() + 2 * i, 2);
    const bool ok = b == want[i] || (is_nan_bits(b, to) && is_nan_bits(want[i], to));
    if (!ok && bad++ < 6) msg << " [" << i << "] got 0x" << std::hex << b << " want 0x" << want[i] << std::dec << ";";
  }
  if (bad) return ::testing::AssertionFailure() << bad << " of " << ref.numel() << " elements differ:" << msg.str();
  return ::testing::AssertionSuccess();
}

// float32 -> float16/bfloat16: every case (both store paths: 16 and 8 channels make whole 16-byte vectors of
// 2-byte elements; 12 and 20 do not), on random values and on the hard ones, and off 16-byte alignment.
TEST(CudaSpaceToDepthNhwc, ConvertsFloat32LikeTheCpuKernel) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType to : {DataType::kHALF, DataType::kBF16})
    for (const Case& c : cases()) {
      const std::string what = std::string(dtype_name(to)) + " " + dims_str(c.x) + " block " +
                               std::to_string(c.block) + " out_channels " + std::to_string(c.c_out);
      EXPECT_TRUE(converts_like_the_cpu(c, randf(c.x, DataType::kFLOAT), to)) << what;
      EXPECT_TRUE(converts_like_the_cpu(c, mtest::conversion_hard_values(c.x), to)) << what << ", hard values";
      EXPECT_TRUE(converts_like_the_cpu(c, mtest::conversion_hard_values(c.x), to, 8)) << what << ", output off alignment";
    }
}

// ResNet-50's stem input at batch 4, converting (the case the fold makes: 16 channels, two vectors a pixel),
// with the ONNX begin padding (3) and passes/channels_last's (4, the block-row kernel).
TEST(CudaSpaceToDepthNhwc, ResNetStemSizeConverting) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const Case& c : {Case{{4, 3, 224, 224}, 2, {3, 3}, {3, 3}, 16}, Case{{4, 3, 224, 224}, 2, {4, 4}, {2, 2}, 16}})
    for (DataType to : {DataType::kHALF, DataType::kBF16}) {
      const std::string what = std::string(dtype_name(to)) + " pre " + std::to_string(c.pre[0]);
      EXPECT_TRUE(converts_like_the_cpu(c, randf(c.x, DataType::kFLOAT, 0.1, 2.0), to)) << what;
      EXPECT_TRUE(converts_like_the_cpu(c, mtest::conversion_hard_values(c.x), to)) << what << ", hard values";
    }
}

// An input 4 bytes off an 8-byte boundary cannot be read as 2-element float32 vectors: the block-row geometry
// then runs one element at a time, with the same result.
TEST(CudaSpaceToDepthNhwc, MisalignedInputTakesTheElementPath) {
  KILN_REQUIRE_CUDA_DEVICE();
  const Case c{{2, 3, 12, 16}, 2, {2, 2}, {2, 0}, 16};
  for (DataType to : {DataType::kHALF, DataType::kBF16})
    EXPECT_TRUE(converts_like_the_cpu(c, randf(c.x, DataType::kFLOAT), to, 0, 4)) << dtype_name(to);
}

// supports() takes the converting form only where the kernel has it.
TEST(CudaSpaceToDepthNhwc, SupportsOnlyTheConversionsItHas) {
  const Case c = cases()[0];
  auto supports = [&](DataType in, DataType to) {
    ir::Graph g;
    ir::Node* n = g.add_node("SpaceToDepthNhwc", "s2d", {g.add_input("x", in, c.x)}, 1);
    attrs_of(c)(n->attrs);
    n->attrs.set("output_dtype", static_cast<int64_t>(to));
    return cuda::supports(*n, {ir::TensorInfo{true, in, c.x, nullptr}});
  };
  EXPECT_TRUE(supports(DataType::kFLOAT, DataType::kHALF));
  EXPECT_TRUE(supports(DataType::kFLOAT, DataType::kBF16));
  EXPECT_TRUE(supports(DataType::kHALF, DataType::kHALF));
  EXPECT_FALSE(supports(DataType::kHALF, DataType::kFLOAT));
  EXPECT_FALSE(supports(DataType::kBF16, DataType::kHALF));
  EXPECT_FALSE(supports(DataType::kFLOAT, DataType::kINT8));
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
