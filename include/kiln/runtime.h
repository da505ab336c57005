// Running plans: Runtime deserializes a plan into an Engine (immutable, shareable between threads);
// each ExecutionContext holds one caller's shapes, tensor addresses and activation memory.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln {

struct EngineData;
class Executor;
class ExecutionContext;

enum class TensorIOMode : int32_t { kNONE = 0, kINPUT = 1, kOUTPUT = 2 };

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

  std::unique_ptr<ExecutionContext> create_execution_context();

 private:
  std::shared_ptr<const EngineData> data_;
  std::vector<uint8_t> plan_;
  ILogger* logger_;
};

class ExecutionContext {
 public:
  explicit ExecutionContext(std::shared_ptr<Engine> engine);
  ~ExecutionContext();

  Engine& engine() { return *engine_; }
  std::string name;
  bool debug_sync = false;

  // Each returns false and logs why on bad input; nothing is changed then.
  bool set_tensor_address(const std::string& name, void* ptr);
  void* get_tensor_address(const std::string& name) const;
  bool set_input_shape(const std::string& name, const Dims& dims);
  Dims get_tensor_shape(const std::string& name);  // outputs: inferred from the current input shapes
  bool all_input_shapes_specified() const;
  bool set_optimization_profile(int profile);
  int active_optimization_profile() const { return profile_; }
  // Runs the network with the addresses set; false (logged) on any failure.
  bool execute();
  // Binding-style: one address per I/O tensor in engine order.
  bool execute_bindings(const std::vector<void*>& bindings);
  int64_t activation_bytes() const;

 private:
  std::shared_ptr<Engine> engine_;
  std::unique_ptr<Executor> exec_;
  std::vector<void*> addresses_;
  std::vector<Dims> input_shapes_;  // per io index (inputs only meaningful)
  bool shapes_dirty_ = true;
  int profile_ = 0;
  std::vector<uint8_t> arena_storage_;
  void* arena_ = nullptr;
  size_t arena_capacity_ = 0;

  bool ensure_prepared();
  void error(const std::string& msg) const;
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
