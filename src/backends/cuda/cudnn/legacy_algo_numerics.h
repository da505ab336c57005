// Which of cuDNN's legacy convolution algorithms keep float32 accuracy. The FFT and Winograd algorithms
// compute in a transformed domain whose rounding errors are far above float32's (an exact integer
// deconvolution came back 8e-6 off zero when FFT won the timing), so a float32 convolution or deconvolution
// never takes them, whatever cudnnFind timed; the graph path refuses the same engines through their
// numerical notes (conv_graph.cpp, numerics_refusal). Half types have the slack for them.
#pragma once

#include <cudnn.h>

namespace kiln::cuda {

inline bool transformed_domain(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}

inline bool transformed_domain(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}

// Whether an algorithm cudnnFind timed may run a convolution whose I/O is float32 (float32_io) or a half type.
template <typename Algo>
bool keeps_accuracy(Algo a, bool float32_io) {
  return !(float32_io && transformed_domain(a));
}

}  // namespace kiln::cuda
