// The device copy of an engine's constants (weights and parameter tensors): one allocation, uploaded
// once per engine and shared by every execution context of it, as the design asks ("weights live once
// per engine"). Made on first use and kept in the engine's CUDA state (engine_state.h).
#pragma once
#include <memory>
#include <vector>

#include "backends/cuda/device_buffer.h"
#include "runtime/engine_data.h"

namespace kiln::cuda {

class DeviceWeights {
 public:
  explicit DeviceWeights(const ir::Graph& g);
  // Device address of a constant value's data; nullptr when the value is not a constant.
  void* address(int value_id) const;
  size_t bytes() const { return buffer_.size(); }

 private:
  DeviceBuffer buffer_;
  std::vector<int64_t> offset_;  // by value id; -1 when not a constant
};

// The engine's device weights, uploaded by the first caller (engine_state.cpp).
std::shared_ptr<const DeviceWeights> device_weights(const EngineData& engine);

}  // namespace kiln::cuda
