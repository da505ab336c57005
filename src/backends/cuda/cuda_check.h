// Error checking for CUDA runtime, cuBLASLt and cuDNN calls: every failing call becomes a kiln::Error that
// names the call, the library's message and where it was made. Kernel launches are checked with
// KILN_CUDA_LAUNCH_CHECK() right after the launch (launch errors are reported by cudaGetLastError).
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace kiln::cuda {

[[noreturn]] void throw_library_error(const char* library, const std::string& message, const char* call,
                                      const char* file, int line);

}  // namespace kiln::cuda

#define KILN_CUDA_CHECK(call)                                                                         \
  do {                                                                                                \
    cudaError_t kiln_err_ = (call);                                                                   \
    if (kiln_err_ != cudaSuccess)                                                                     \
      ::kiln::cuda::throw_library_error("CUDA", cudaGetErrorString(kiln_err_), #call, __FILE__, __LINE__); \
  } while (0)

#define KILN_CUDA_LAUNCH_CHECK() KILN_CUDA_CHECK(cudaGetLastError())
