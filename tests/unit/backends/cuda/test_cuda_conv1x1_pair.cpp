// Kiln's fused 1x1 pair kernel (src/backends/cuda/kernels/conv1x1_pair_mma.*, the Conv1x1Pair op's CUDA kernel):
// which nodes it takes (no GPU needed), and on a GPU against the CPU kernel (the two convolutions in float32)
// in float16 and bfloat16: ResNet-50's layer1 pairs (256 -> 64 and, into layer2, 256 -> 128), with and
// without biases, residual and ReLUs, pixel counts that end inside a warp's 16-pixel slab, enough pixels that
// each warp takes several slabs (the copies of the next slab then overlap the current one), and an output
// whose address is off the kernel's 16-byte alignment, which runs the pair as its two convolutions.
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/kernels/conv1x1_pair_mma.h"
#include "kiln/types.h"

namespace kiln {
namespace {

using namespace cudatest;

struct PairCase {
  const char* label;
  Dims x;            // [N, H, W, C0]
  int64_t c1 = 256, c2 = 64;
  bool bias = true, residual = true;
  int64_t act1 = 0, act2 = 0;  // 0 ReLU, -1 none
};

std::string describe(const PairCase& c, DataType dt) {
  return std::string(c.label) + " " + dtype_name(dt) + " x " + dims_str(c.x) + " -> " + std::to_string(c.c1) +
         " -> " + std::to_string(c.c2);
}

// The node's inputs: x, w1, b1, r1, w2, b2 (empty = omitted). Weights small, so sums stay near 1-10 as a
// trained network's do.
std::vector<HostTensor> pair_inputs(const PairCase& c, DataType dt) {
  const Dims y1 = {c.x[0], c.x[1], c.x[2], c.c1};
  return {randf(c.x, dt),
          randf({c.c1, 1, 1, c.x[3]}, dt, 0.01, 0.2),
          c.bias ? randf({c.c1}, dt) : HostTensor(),
          c.residual ? randf(y1, dt) : HostTensor(),
          randf({c.c2, 1, 1, c.c1}, dt, 0.01, 0.1),
          c.bias ? randf({c.c2}, dt) : HostTensor()};
}

void set_attrs(ir::Attrs& a, const PairCase& c) {
  if (c.act1 >= 0) a.set("activation", c.act1);
  if (c.act2 >= 0) a.set("activation2", c.act2);
  a.set("first_name", "conv_a");
  a.set("second_name", "conv_b");
}

const std::vector<PairCase>& cases() {
  static const std::vector<PairCase> all = {
      {"layer1 pair", {2, 7, 9, 64}},                                   // 126 pixels: the last slab has 14
      {"into layer2", {1, 5, 13, 64}, 256, 128},                        // 65 pixels: a last slab of 1
      {"no biases", {1, 4, 8, 64}, 256, 64, false, true},
      {"no residual, no ReLUs", {3, 3, 5, 64}, 256, 128, true, false, -1, -1},
      {"ReLU on the second only", {1, 2, 8, 64}, 256, 64, true, true, -1, 0},
      // 50176 pixels, 3136 slabs: more than 8 warps on each of 132 SMs take, so warps take 2-3 slabs each.
      {"several slabs a warp", {16, 56, 56, 64}, 256, 128},
  };
  return all;
}

TEST(CudaConv1x1Pair, MatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const PairCase& c : cases()) {
      Options opt;
      opt.num_outputs = 2;
      EXPECT_TRUE(check_op("Conv1x1Pair", pair_inputs(c, dt), [&](ir::Attrs& a) { set_attrs(a, c); }, opt))
          << describe(c, dt);
    }
}

// A y1 two elements past an aligned address: the kernel's 16-byte stores cannot run, so the pair runs as its two
// Convolutions (through the Convolution kernel and its libraries) and must still match the CPU.
TEST(CudaConv1x1Pair, UnalignedOutputRunsAsTwoConvolutions) {
  KILN_REQUIRE_CUDA_DEVICE();
  const PairCase c = {"unaligned y1", {1, 6, 10, 64}, 256, 64};
  const DataType dt = DataType::kHALF;
  const std::vector<HostTensor> inputs = pair_inputs(c, dt);
  ir::Graph g;
  std::vector<ir::Value*> vals;
  std::vector<ir::TensorInfo> infos;
  for (size_t i = 0; i < inputs.size(); ++i) {
    vals.push_back(g.add_input("in" + std::to_string(i), dt, inputs[i].shape()));
    infos.push_back(ir::TensorInfo{true, dt, inputs[i].shape(), &inputs[i]});
  }
  ir::Node* node = g.add_node("Conv1x1Pair", "pair", vals, 2);
  set_attrs(node->attrs, c);
  const std::vector<ir::TensorInfo> outs = ir::infer_node(*node, infos);
  const std::vector<HostTensor> ref = cpu_reference("Conv1x1Pair", node->attrs, inputs, 2);

  cuda::Resources res;
  res.stream = test_stream();
  shared_library_handles().attach(res);
  cuda::KernelContext ctx{*node, {}, {}, res};
  std::vector<cuda::DeviceBuffer> bufs;
  for (const HostTensor& t : inputs) {
    bufs.emplace_back(t.nbytes());
    ASSERT_EQ(cudaMemcpy(bufs.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    ctx.in.push_back(cuda::TensorRef{true, dt, t.shape(), bufs.back().get(), t.raw()});
  }
  const size_t shift = 2 * dtype_size(dt);  // y1 at +4 bytes: 4-byte aligned, not 16
  for (size_t i = 0; i < outs.size(); ++i) {
    const size_t bytes = static_cast<size_t>(volume(outs[i].shape)) * dtype_size(dt);
    bufs.emplace_back(bytes + shift);
    char* at = static_cast<char*>(bufs.back().get()) + (i == 0 ? shift : 0);
    ctx.out.push_back(cuda::TensorRef{true, dt, outs[i].shape, at, nullptr});
  }
  EXPECT_FALSE(cuda::conv1x1_pair_aligned(ctx));
  cuda::find_kernel("Conv1x1Pair")(ctx);
  ASSERT_EQ(cudaStreamSynchronize(res.stream), cudaSuccess);
  for (size_t i = 0; i < outs.size(); ++i) {
    HostTensor got(dt, outs[i].shape);
    ASSERT_EQ(cudaMemcpy(got.mutable_raw(), ctx.out[i].data, got.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_TRUE(compare(got, ref.at(i), default_tol(dt), false)) << "output " << i;
  }
}

// The conditions, without a GPU: what the fusion pass asks through cuda::supports().
struct FitsCase {
  const char* label;
  DataType dt = DataType::kHALF;
  Dims x = {-1, 56, 56, 64}, w1 = {256, 1, 1, 64}, w2 = {64, 1, 1, 256};
  int64_t act1 = 0, act2 = 0;
  bool fits = true;
};

TEST(Conv1x1PairFits, TakesResNetsLayer1PairsOnly) {
  const std::vector<FitsCase> cases = {
      {"layer1 pair, batch unknown"},
      {"into layer2", DataType::kHALF, {8, 56, 56, 64}, {256, 1, 1, 64}, {128, 1, 1, 256}},
      {"bfloat16", DataType::kBF16},
      {"float32", DataType::kFLOAT, {8, 56, 56, 64}, {256, 1, 1, 64}, {64, 1, 1, 256}, 0, 0, false},
      {"C0 128", DataType::kHALF, {8, 28, 28, 128}, {256, 1, 1, 128}, {64, 1, 1, 256}, 0, 0, false},
      {"C1 512", DataType::kHALF, {8, 28, 28, 64}, {512, 1, 1, 64}, {64, 1, 1, 512}, 0, 0, false},
      {"C2 256", DataType::kHALF, {8, 56, 56, 64}, {256, 1, 1, 64}, {256, 1, 1, 256}, 0, 0, false},
      {"3x3 second", DataType::kHALF, {8, 56, 56, 64}, {256, 1, 1, 64}, {64, 3, 3, 256}, 0, 0, false},
      {"leaky ReLU first", DataType::kHALF, {8, 56, 56, 64}, {256, 1, 1, 64}, {64, 1, 1, 256}, 3, 0, false},
      {"sigmoid second", DataType::kHALF, {8, 56, 56, 64}, {256, 1, 1, 64}, {64, 1, 1, 256}, 0, 1, false},
  };
  for (const FitsCase& c : cases) {
    ir::Graph g;
    ir::Node* n = g.add_node("Conv1x1Pair", "pair", {}, 2);
    n->attrs.set("activation", c.act1);
    n->attrs.set("activation2", c.act2);
    const Dims y1 = {c.x[0], c.x[1], c.x[2], c.w1[0]};
    const std::vector<ir::TensorInfo> in = {{true, c.dt, c.x},  {true, c.dt, c.w1}, {true, c.dt, {c.w1[0]}},
                                            {true, c.dt, y1},   {true, c.dt, c.w2}, {true, c.dt, {c.w2[0]}}};
    std::string why;
    EXPECT_EQ(cuda::conv1x1_pair_fits(*n, in, &why), c.fits) << c.label << ": " << why;
    if (!c.fits) {
      EXPECT_FALSE(why.empty()) << c.label;
    }
  }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
