// A cuBLASLt handle, a cuDNN handle and a device workspace bundled for kernels that call the libraries (they
// read them from Resources). For code that runs kernels outside an execution context, such as the kernel
// tests; no cuDNN header is needed to use it.
#pragma once
#include <cstddef>

#include "backends/cuda/device_buffer.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

class LibraryHandles {
 public:
  explicit LibraryHandles(size_t workspace_bytes = 64ull << 20);  // throws kiln::Error when a library fails
  ~LibraryHandles();
  LibraryHandles(const LibraryHandles&) = delete;
  LibraryHandles& operator=(const LibraryHandles&) = delete;

  // Points res at these handles and this workspace.
  void attach(Resources& res) const;

 private:
  cublasLtHandle_t lt_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  DeviceBuffer workspace_;
};

}  // namespace kiln::cuda
