// The CUDA device Kiln runs on: its properties, read once, and the handles each execution context needs.
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace kiln::cuda {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int major = 0, minor = 0;      // compute capability
  int sm_count = 0;
  size_t total_memory = 0;
  int l2_bytes = 0;
  int max_shared_per_block_optin = 0;
  std::string arch() const { return "sm_" + std::to_string(major * 10 + minor); }
};

// The current device's properties; throws kiln::Error when no device is usable.
const DeviceInfo& current_device();

}  // namespace kiln::cuda
