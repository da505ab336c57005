// What an execution context needs from a GPU backend, without CUDA types: the runtime stays buildable
// without the toolkit. The CUDA backend implements it (src/backends/cuda/cuda_execution.cpp); a build
// without CUDA gets a factory that refuses with a clear message.
#pragma once
#include <memory>
#include <vector>

#include "kiln/runtime.h"
#include "runtime/engine_data.h"

namespace kiln {

class DeviceExecution {
 public:
  virtual ~DeviceExecution() = default;
  // Infers shapes for these input shapes (engine input order) and sizes the activation memory.
  // shape_values: per io tensor, the contents of shape-tensor inputs (empty elsewhere or when unknown).
  virtual void prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& shape_values) = 0;
  // Copies `bytes` from host or device memory at `src` to the host (shape-tensor inputs).
  virtual void read(void* dst, const void* src, size_t bytes) = 0;
  virtual bool prepared() const = 0;
  virtual const Dims& io_shape(size_t io_index) const = 0;
  virtual int64_t activation_bytes() const = 0;
  // Enqueues the network on `stream` (a cudaStream_t; nullptr is the legacy default stream) with
  // device addresses, one per I/O tensor. Does not wait for the work.
  virtual void enqueue(const std::vector<void*>& io_ptrs, void* stream) = 0;
  virtual void synchronize(void* stream) = 0;
  // As enqueue, but eagerly (no CUDA graph) with an event around every layer; waits for the work and
  // returns each layer's time.
  virtual std::vector<LayerTiming> profile(const std::vector<void*>& io_ptrs, void* stream) = 0;
};

// Throws kiln::Error when the build has no CUDA backend or no device is usable.
std::unique_ptr<DeviceExecution> make_cuda_execution(std::shared_ptr<const EngineData> engine);

}  // namespace kiln
