// Which legacy cuDNN algorithms a float32 convolution may take (backends/cuda/cudnn/legacy_algo_numerics.h):
// no GPU needed. A float32 ConvTranspose3d of integers came back 8e-6 off zero when the FFT algorithm won
// cudnnFind's timing, so the transformed-domain algorithms must be refused for float32 I/O, every other
// algorithm kept, and half types keep them all.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include "backends/cuda/cudnn/legacy_algo_numerics.h"

namespace kiln::cuda {
namespace {

TEST(CudnnLegacyAlgoNumerics, Float32RefusesFftAndWinogradForward) {
  for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
    auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(a);
    const bool transformed = algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT || algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                             algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
                             algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    EXPECT_EQ(keeps_accuracy(algo, true), !transformed) << "forward algorithm " << a;
    EXPECT_TRUE(keeps_accuracy(algo, false)) << "forward algorithm " << a << " with half I/O";
  }
}

TEST(CudnnLegacyAlgoNumerics, Float32RefusesFftAndWinogradBackwardData) {
  for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++a) {
    auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(a);
    const bool transformed = algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
                             algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
                             algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
                             algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    EXPECT_EQ(keeps_accuracy(algo, true), !transformed) << "backward-data algorithm " << a;
    EXPECT_TRUE(keeps_accuracy(algo, false)) << "backward-data algorithm " << a << " with half I/O";
  }
  // The algorithms a float32 deconvolution still has: the direct and GEMM-based ones.
  EXPECT_TRUE(keeps_accuracy(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, true));
  EXPECT_TRUE(keeps_accuracy(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true));
}

}  // namespace
}  // namespace kiln::cuda
#endif
