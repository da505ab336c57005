// What an execution context needs from a GPU backend, without CUDA types: the runtime stays buildable
// without the toolkit. The CUDA backend implements it (src/backends/cuda/cuda_execution.cpp); a build
// without CUDA gets a factory that refuses with a clear message.
#pragma once
#include <memory>
#include <vector>

#include "kiln/runtime.h"
#include "runtime/chain_timing_report.h"
#include "runtime/engine_data.h"

namespace kiln {

class OutputSink;  // runtime/dynamic_run.h

class DeviceExecution {
 public:
  virtual ~DeviceExecution() = default;
  // Infers shapes for these input shapes (engine input order) and sizes the activation memory.
  // shape_values: per io tensor, the contents of shape-tensor inputs (empty elsewhere or when unknown).
  virtual void prepare(const std::vector<Dims>& input_shapes, const std::vector<HostTensor>& shape_values) = 0;
  // Copies `bytes` from host or device memory at `src` to the host (shape-tensor inputs).
  virtual void read(void* dst, const void* src, size_t bytes) = 0;
  virtual bool prepared() const = 0;
  // Some output shape is known only while running (NonZero, Unique, ...): run with run_dynamic, not enqueue.
  virtual bool dynamic() const = 0;
  // Dynamic mode: runs the network once the work already on `stream` is done, hands each output to `sink`
  // (which returns host or device memory of the size it was told) and returns once the outputs are written.
  virtual void run_dynamic(const std::vector<void*>& io_ptrs, void* stream, OutputSink& sink) = 0;
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

// The builder's tactic timing: runs the engine once, eagerly, on zero-filled device buffers of these input
// shapes, so that every kernel that times library algorithms does so now and records its choice in
// engine->tactics; then decides the near ties in the chain (unless KILN_GEMM_CHAIN_TIES=0). Throws kiln::Error
// when it cannot run (no device, shape-tensor inputs it has no values for, ...); the contexts then time on
// their first run instead.
// `progress` (may be null) follows the chain timing.
ChainTimingReport time_tactics_on_device(std::shared_ptr<const EngineData> engine, const std::vector<Dims>& input_shapes,
                                         ChainProgress* progress = nullptr);

}  // namespace kiln
