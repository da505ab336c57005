// Running plans: Runtime deserializes a plan into an Engine (immutable, shareable between threads);
// each ExecutionContext holds one caller's shapes, tensor addresses and activation memory.
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln {

struct EngineData;
class Executor;
class DeviceExecution;
class ExecutionContext;

// One layer's share of a profiled execution (ExecutionContext::profiling): its time and what it moved and
// computed (estimates from the run-time shapes), for achieved TFLOP/s and GB/s.
struct LayerTiming {
  std::string name;  // the layer (node) name
  std::string op;    // its IR op
  double ms = 0;
  double flops = 0;
  double bytes = 0;
  bool on_host = false;  // GPU engines: the layer ran on the CPU backend (a fallback, with copies)
};

enum class TensorIOMode : int32_t { kNONE = 0, kINPUT = 1, kOUTPUT = 2 };

// TensorRT 10's IOutputAllocator: gives memory to an output when its size is known, which for outputs
// whose shape depends on input values (NonZero, Unique, ...) is only while the network runs. Set one per
// output with ExecutionContext::set_output_allocator; the context does not own it.
class IOutputAllocator {
 public:
  virtual ~IOutputAllocator() = default;
  // Memory of at least `size` bytes, aligned to `alignment`, for output `name`; `current` is the address
  // the output has now (nullptr if none). Return `current` to keep it, or nullptr to fail the execution.
  virtual void* reallocate_output(const std::string& name, void* current, uint64_t size, uint64_t alignment) = 0;
  // The output's actual shape, once its contents are written.
  virtual void notify_shape(const std::string& name, const Dims& dims) = 0;
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  Engine(std::shared_ptr<const EngineData> data, std::vector<uint8_t> plan_bytes, ILogger* logger);
  ~Engine();

  const std::string& name() const;
  const std::string& target() const;
  int num_io_tensors() const;
  int num_layers() const;
  int num_optimization_profiles() const;
  uint64_t device_memory_size() const;
  const std::string& io_name(int i) const;      // throws on a bad index
  int io_index(const std::string& name) const;  // -1 when unknown
  TensorIOMode io_mode(const std::string& name) const;
  Dims io_shape(const std::string& name) const;  // -1 for dynamic dims
  DataType io_dtype(const std::string& name) const;
  // [min, opt, max] of an input for a profile; throws for outputs or bad profile.
  std::vector<Dims> profile_shapes(const std::string& name, int profile) const;
  const std::vector<uint8_t>& serialized() const { return plan_; }
  const EngineData& data() const { return *data_; }
  std::shared_ptr<const EngineData> shared_data() const { return data_; }
  ILogger* logger() const { return logger_; }
  std::string describe() const;  // I/O, layers and memory, for `kiln inspect`

  // Whether input `name`'s contents are needed to compute shapes (a shape tensor: read from host memory
  // at run time, and a new value may change output shapes). TensorRT 10's is_shape_inference_io.
  bool is_shape_inference_io(const std::string& name) const;

  std::unique_ptr<ExecutionContext> create_execution_context();
  // Each profile's activation arena at its max shapes against the liveness lower bound (one line each).
  std::string memory_report() const;

 private:
  std::shared_ptr<const EngineData> data_;
  std::vector<uint8_t> plan_;
  ILogger* logger_;
  mutable std::once_flag shape_io_once_;
  mutable std::vector<bool> shape_io_;  // by io index, filled on first use
};

class ExecutionContext {
 public:
  explicit ExecutionContext(std::shared_ptr<Engine> engine);
  ~ExecutionContext();

  Engine& engine() { return *engine_; }
  std::string name;
  bool debug_sync = false;
  // When set, each execution times every layer (TensorRT's IProfiler): GPU engines then run eagerly with an
  // event around each layer and synchronize before returning. Off, executions are not slowed.
  bool profiling = false;
  // The layers of the last profiled execution, in execution order (empty before one ran).
  const std::vector<LayerTiming>& last_profile() const { return last_profile_; }

  // Each returns false and logs why on bad input; nothing is changed then.
  bool set_tensor_address(const std::string& name, void* ptr);
  void* get_tensor_address(const std::string& name) const;
  bool set_input_shape(const std::string& name, const Dims& dims);
  // Outputs: inferred from the current input shapes (and shape-tensor contents, read from their addresses);
  // -1 dims for data-dependent shapes until an execution has computed them.
  Dims get_tensor_shape(const std::string& name);
  // TensorRT 10: the allocator that gives output `name` its memory once its size is known (nullptr clears).
  bool set_output_allocator(const std::string& name, IOutputAllocator* allocator);
  IOutputAllocator* get_output_allocator(const std::string& name) const;
  bool all_input_shapes_specified() const;
  bool set_optimization_profile(int profile);
  int active_optimization_profile() const { return profile_; }
  // Runs the network with the addresses set; false (logged) on any failure.
  bool execute();
  // Binding-style: one address per I/O tensor in engine order.
  bool execute_bindings(const std::vector<void*>& bindings);
  // GPU engines: enqueue on `stream` (a cudaStream_t; nullptr is the default stream) and return without
  // waiting. CPU engines run synchronously on the caller's thread.
  bool execute_async(void* stream);
  bool execute_bindings_async(const std::vector<void*>& bindings, void* stream);
  bool on_gpu() const { return device_ != nullptr; }
  int64_t activation_bytes() const;

 private:
  std::shared_ptr<Engine> engine_;
  std::unique_ptr<Executor> exec_;
  std::unique_ptr<DeviceExecution> device_;  // GPU engines: the CUDA backend's side of this context
  std::vector<void*> addresses_;
  std::vector<Dims> input_shapes_;  // per io index (inputs only meaningful)
  // Per io index: the bytes of shape-tensor inputs last prepared with (nullopt: unknown, no address set).
  std::vector<std::optional<std::vector<uint8_t>>> shape_values_;
  std::vector<IOutputAllocator*> allocators_;  // per io index
  std::vector<Dims> run_shapes_;  // per io index: outputs' shapes from the last dynamic-mode execution
  bool shapes_dirty_ = true;
  int profile_ = 0;
  std::vector<LayerTiming> last_profile_;
  std::vector<uint8_t> arena_storage_;
  void* arena_ = nullptr;
  size_t arena_capacity_ = 0;

  bool ensure_prepared();
  bool read_shape_values();  // re-reads shape-tensor inputs; marks shapes dirty when they changed
  bool give_allocated_outputs();  // static mode: outputs with an allocator get memory before running
  void error(const std::string& msg) const;
  friend class ContextOutputSink;
};

class Runtime {
 public:
  explicit Runtime(ILogger* logger) : logger_(logger) {}
  // Returns nullptr and logs why for empty, truncated, corrupted or foreign plans.
  std::shared_ptr<Engine> deserialize(const void* data, size_t size);
  ILogger* logger() const { return logger_; }

 private:
  ILogger* logger_;
};

}  // namespace kiln
