// KILN_CUBLAS_CHECK and KILN_CUDNN_CHECK: as KILN_CUDA_CHECK, for cuBLAS(Lt) and cuDNN status codes.
#pragma once
#include <cublasLt.h>
#include <cudnn.h>

#include "backends/cuda/cuda_check.h"

namespace kiln::cuda {
// cublasGetStatusString lives in libcublas, which Kiln does not otherwise need: name the codes here.
const char* cublas_status_name(cublasStatus_t s);
}  // namespace kiln::cuda

#define KILN_CUBLAS_CHECK(call)                                                                           \
  do {                                                                                                    \
    cublasStatus_t kiln_st_ = (call);                                                                     \
    if (kiln_st_ != CUBLAS_STATUS_SUCCESS)                                                                \
      ::kiln::cuda::throw_library_error("cuBLASLt", ::kiln::cuda::cublas_status_name(kiln_st_), #call, __FILE__, __LINE__); \
  } while (0)

#define KILN_CUDNN_CHECK(call)                                                                         \
  do {                                                                                                 \
    cudnnStatus_t kiln_st_ = (call);                                                                   \
    if (kiln_st_ != CUDNN_STATUS_SUCCESS)                                                              \
      ::kiln::cuda::throw_library_error("cuDNN", cudnnGetErrorString(kiln_st_), #call, __FILE__, __LINE__); \
  } while (0)
