// The CUDA SpaceToDepthNhwc kernel against the CPU kernel on random inputs: float32/16, bfloat16 (and one
// type each of 1 and 8 bytes), ResNet's stem geometry, batches of 2, odd sizes, a cropped end, channel
// padding beyond C*s*s, and both store paths: 16-byte vectors and single elements (C_out not whole vectors; an
// output pointer off 16-byte alignment). Exact: the kernel only moves elements.
#ifdef KILN_WITH_CUDA
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

// ResNet-50's stem input at batch 4 (the real geometry; 32-bit offsets).
TEST(CudaSpaceToDepthNhwc, ResNetStemSize) {
  KILN_REQUIRE_CUDA_DEVICE();
  const Case c{{4, 3, 224, 224}, 2, {3, 3}, {3, 3}, 16};
  for (DataType dt : float_types())
    EXPECT_TRUE(check_op("SpaceToDepthNhwc", {randf(c.x, dt)}, attrs_of(c), Options{.tol = 0})) << dtype_name(dt);
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

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
