#include "backends/cuda/device_weights.h"

#include <cuda_runtime.h>

#include <cstring>

#include "backends/cuda/cuda_check.h"
#include "builder/memory_planner.h"  // kArenaAlignment

namespace kiln::cuda {

DeviceWeights::DeviceWeights(const ir::Graph& g) {
  offset_.assign(g.values().size(), -1);
  int64_t total = 0;
  for (auto& n : g.nodes()) {
    if (n->op != "Constant") continue;
    const HostTensor& t = n->attrs.tensor("value");
    offset_[n->outputs[0]->id] = total;
    total += (static_cast<int64_t>(t.nbytes()) + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
  }
  if (total == 0) return;
  // Staged through one host block so the upload is one copy, not one per tensor.
  std::vector<uint8_t> staging(static_cast<size_t>(total), 0);
  for (auto& n : g.nodes()) {
    if (n->op != "Constant") continue;
    const HostTensor& t = n->attrs.tensor("value");
    if (t.nbytes()) std::memcpy(staging.data() + offset_[n->outputs[0]->id], t.raw(), t.nbytes());
  }
  buffer_ = DeviceBuffer(static_cast<size_t>(total));
  KILN_CUDA_CHECK(cudaMemcpy(buffer_.get(), staging.data(), staging.size(), cudaMemcpyHostToDevice));
}

void* DeviceWeights::address(int value_id) const {
  if (value_id < 0 || value_id >= static_cast<int>(offset_.size()) || offset_[value_id] < 0) return nullptr;
  return static_cast<uint8_t*>(buffer_.get()) + offset_[value_id];
}

}  // namespace kiln::cuda
