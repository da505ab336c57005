// The fused epilogue kernel's vector path (kernels/epilogue.cu: 16 bytes per thread, a grid-stride loop over
// one grid's worth of resident blocks) against its scalar path, bit for bit: the same data is run once from a
// 16-byte aligned address (vector path) and once shifted by one element (scalar path: the address is no
// longer aligned). The scalar path is checked against the CPU by the fused Convolution and MatrixMultiply
// tests. Cases: no bias, a last-dim bias (MatrixMultiply), a per-channel bias over whole vectors (NCHW with
// spatial sizes of whole vectors) and over partial ones (which take the scalar path on both runs), with and
// without a residual, the activations the vector path specializes and one it reads at run time, every float
// dtype; then sizes where each thread runs several grid-stride steps (the bias cursor advances and wraps),
// and a last-dim bias off 16-byte alignment (the scalar path).
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/kernels/epilogue.h"

namespace kiln {
namespace {

using namespace cudatest;

// Copies `y` (and the residual) to device memory `shift` elements past a 256-byte aligned start, the bias
// `bias_shift` elements past one, applies the epilogue there and returns the result.
HostTensor run_at(const HostTensor& y, const HostTensor& bias, const HostTensor& residual, int shift,
                  cuda::BiasAct p, int64_t channels, int64_t inner, int bias_shift = 0) {
  const size_t es = dtype_size(y.dtype());
  const size_t off = shift * es;
  cuda::DeviceBuffer dy(y.nbytes() + 256), db(bias.nbytes() + 256), dr(residual.nbytes() + 256);
  auto at = [&](cuda::DeviceBuffer& b) { return static_cast<uint8_t*>(b.get()) + off; };
  EXPECT_EQ(cudaMemcpy(at(dy), y.raw(), y.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  if (!bias.empty()) {
    uint8_t* b = static_cast<uint8_t*>(db.get()) + bias_shift * es;
    EXPECT_EQ(cudaMemcpy(b, bias.raw(), bias.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    p.bias = b;
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

// An output shape and its bias: `channels` values, each over `inner` consecutive elements.
struct Layout {
  Dims y;
  bool bias;
  int64_t channels, inner;
};

TEST(CudaEpilogueKernel, VectorPathMatchesScalarPathBitForBit) {
  KILN_REQUIRE_CUDA_DEVICE();
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

TEST(CudaEpilogueKernel, GridStrideStepsAndMisalignedBiasMatchScalarPath) {
  KILN_REQUIRE_CUDA_DEVICE();
  // About 4.2M elements: more 16-byte vectors than an H200 holds threads (132 SMs x at most 2048), so
  // every thread advances the bias cursor: past the row end (last-dim bias of 2056 channels), through
  // channel runs whose length does not divide the step (inner 56000 and 1000), and with no bias at all.
  const std::vector<Layout> layouts = {
      {{2048, 2056}, true, 2056, 1},
      {{2, 37, 200, 280}, true, 37, 56000},
      {{32, 131, 1000}, true, 131, 1000},
      {{4096, 1024}, false, 1, 1},
  };
  for (DataType dt : float_types())
    for (const Layout& l : layouts) {
      const HostTensor y = randf(l.y, dt, 0.0, 3.0);
      const HostTensor bias = l.bias ? randf({l.channels}, dt, 0.0, 1.0) : HostTensor();
      const HostTensor res = randf(l.y, dt, 0.0, 1.0);
      for (bool residual : {false, true})
        for (int64_t act : {12, 0}) {  // GELU erf (BERT's MLP), ReLU
          cuda::BiasAct p;
          p.act = static_cast<int>(act);
          const HostTensor r = residual ? res : HostTensor();
          const HostTensor vec = run_at(y, bias, r, 0, p, l.channels, l.inner);
          const HostTensor scalar = run_at(y, bias, r, 1, p, l.channels, l.inner);
          EXPECT_TRUE(vec.same_bytes(scalar)) << dtype_name(dt) << " y " << dims_str(l.y) << " bias " << l.bias
                                              << " inner " << l.inner << " residual " << residual << " act " << act;
        }
    }
  // A last-dim bias one element past 16-byte alignment: the scalar path, the same bits.
  for (DataType dt : float_types()) {
    const HostTensor y = randf({64, 96}, dt, 0.0, 3.0), bias = randf({96}, dt, 0.0, 1.0);
    cuda::BiasAct p;
    p.act = 12;
    const HostTensor aligned = run_at(y, bias, HostTensor(), 0, p, 96, 1);
    const HostTensor shifted = run_at(y, bias, HostTensor(), 0, p, 96, 1, 1);
    EXPECT_TRUE(aligned.same_bytes(shifted)) << dtype_name(dt);
    EXPECT_FALSE(aligned.same_bytes(y)) << "the epilogue changed nothing";
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
