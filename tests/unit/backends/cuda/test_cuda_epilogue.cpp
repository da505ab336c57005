// The fused epilogue kernel's vector path (kernels/epilogue.cu: 16 bytes per thread) against its scalar
// path, bit for bit: the same data is run once from a 16-byte aligned address (vector path) and once shifted
// by one element (scalar path: the address is no longer aligned). The scalar path is checked against the CPU
// by the fused Convolution and MatrixMultiply tests. Cases: no bias, a last-dim bias (MatrixMultiply), a
// per-channel bias over whole vectors (NCHW with spatial sizes of whole vectors) and over partial ones
// (which take the scalar path on both runs), with and without a residual, the activations the vector path
// specializes and one it reads at run time, every float dtype.
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/kernels/epilogue.h"

namespace kiln {
namespace {

using namespace cudatest;

// Copies `t` to device memory `shift` elements past a 256-byte aligned start, applies the epilogue there and
// returns the result.
HostTensor run_at(const HostTensor& y, const HostTensor& bias, const HostTensor& residual, int shift,
                  cuda::BiasAct p, int64_t channels, int64_t inner) {
  const size_t es = dtype_size(y.dtype());
  const size_t off = shift * es;
  cuda::DeviceBuffer dy(y.nbytes() + 256), db(bias.nbytes() + 256), dr(residual.nbytes() + 256);
  auto at = [&](cuda::DeviceBuffer& b) { return static_cast<uint8_t*>(b.get()) + off; };
  EXPECT_EQ(cudaMemcpy(at(dy), y.raw(), y.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  if (!bias.empty()) {
    EXPECT_EQ(cudaMemcpy(db.get(), bias.raw(), bias.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    p.bias = db.get();
    p.channels = channels;
    p.inner = inner;
  }
  if (!residual.empty()) {
    EXPECT_EQ(cudaMemcpy(at(dr), residual.raw(), residual.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    p.residual = at(dr);
  }
  cuda::launch_bias_act(test_stream(), y.dtype(), at(dy), y.numel(), p);
  EXPECT_EQ(cudaStreamSynchronize(test_stream()), cudaSuccess);
  HostTensor out(y.dtype(), y.shape());
  EXPECT_EQ(cudaMemcpy(out.mutable_raw(), at(dy), y.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

TEST(CudaEpilogueKernel, VectorPathMatchesScalarPathBitForBit) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Layout {
    Dims y;
    bool bias;
    int64_t channels, inner;
  };
  const std::vector<Layout> layouts = {
      {{6, 48}, false, 1, 1},         {{6, 48}, true, 48, 1},     {{2, 24, 16}, true, 24, 1},
      {{2, 3, 4, 8}, true, 3, 32},    {{2, 5, 7, 7}, true, 5, 49}, {{1024, 72}, true, 72, 1},
  };
  const std::vector<int64_t> acts = {-1, 0, 8, 12, 13, 1};  // none, ReLU, clip, GELU erf/tanh, sigmoid
  for (DataType dt : float_types())
    for (const Layout& l : layouts)
      for (bool residual : {false, true})
        for (int64_t act : acts) {
          if (!l.bias && !residual && act < 0) continue;  // nothing to apply
          const HostTensor y = randf(l.y, dt, 0.0, 3.0);
          const HostTensor bias = l.bias ? randf({l.channels}, dt, 0.0, 1.0) : HostTensor();
          const HostTensor res = residual ? randf(l.y, dt, 0.0, 1.0) : HostTensor();
          cuda::BiasAct p;
          p.act = static_cast<int>(act);
          if (act == 8) {
            p.alpha = 0.0f;
            p.beta = 6.0f;
          }
          const HostTensor vec = run_at(y, bias, res, 0, p, l.channels, l.inner);
          const HostTensor scalar = run_at(y, bias, res, 1, p, l.channels, l.inner);
          EXPECT_TRUE(vec.same_bytes(scalar)) << dtype_name(dt) << " y " << dims_str(l.y) << " bias " << l.bias
                                              << " inner " << l.inner << " residual " << residual << " act " << act;
          EXPECT_FALSE(vec.same_bytes(y)) << "the epilogue changed nothing";
        }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
