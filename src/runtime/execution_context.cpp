#include <cstdlib>

#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/device_execution.h"
#include "runtime/executor.h"

namespace kiln {

ExecutionContext::ExecutionContext(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {
  exec_ = std::make_unique<Executor>(engine_->shared_data());
  if (engine_->target().rfind("cuda:", 0) == 0) device_ = make_cuda_execution(engine_->shared_data());
  const auto& io = engine_->data().io;
  addresses_.assign(io.size(), nullptr);
  input_shapes_.resize(io.size());
  shape_values_.resize(io.size());
  allocators_.assign(io.size(), nullptr);
  // Fully static inputs need no set_input_shape call.
  for (size_t i = 0; i < io.size(); ++i)
    if (io[i].is_input && dims_known(io[i].shape)) input_shapes_[i] = io[i].shape;
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::error(const std::string& msg) const { log_to(engine_->logger(), Severity::kERROR, msg); }

bool ExecutionContext::set_tensor_address(const std::string& n, void* ptr) {
  int i = engine_->io_index(n);
  if (i < 0) {
    error("set_tensor_address: no I/O tensor named '" + n + "'");
    return false;
  }
  addresses_[i] = ptr;
  return true;
}

void* ExecutionContext::get_tensor_address(const std::string& n) const {
  int i = engine_->io_index(n);
  return i < 0 ? nullptr : addresses_[i];
}

bool ExecutionContext::set_input_shape(const std::string& n, const Dims& dims) {
  int i = engine_->io_index(n);
  const auto& io = engine_->data().io;
  if (i < 0 || !io[i].is_input) {
    error("set_input_shape: '" + n + "' is not an input of this engine");
    return false;
  }
  const auto& decl = io[i].shape;
  if (dims.size() != decl.size()) {
    error("set_input_shape: '" + n + "' has rank " + std::to_string(decl.size()) + ", got " + dims_str(dims));
    return false;
  }
  const auto& prof = io[i].profiles.at(profile_);
  for (size_t d = 0; d < dims.size(); ++d) {
    if (decl[d] >= 0 && dims[d] != decl[d]) {
      error("set_input_shape: '" + n + "' dimension " + std::to_string(d) + " is fixed at " + std::to_string(decl[d]) +
            ", got " + dims_str(dims));
      return false;
    }
    if (dims[d] < prof.min[d] || dims[d] > prof.max[d]) {
      error("set_input_shape: " + dims_str(dims) + " for '" + n + "' is outside optimization profile " +
            std::to_string(profile_) + " [min " + dims_str(prof.min) + ", max " + dims_str(prof.max) + "]");
      return false;
    }
  }
  if (input_shapes_[i] != dims) {
    input_shapes_[i] = dims;
    shapes_dirty_ = true;
  }
  return true;
}

bool ExecutionContext::all_input_shapes_specified() const {
  const auto& io = engine_->data().io;
  for (size_t i = 0; i < io.size(); ++i)
    if (io[i].is_input && (input_shapes_[i].size() != io[i].shape.size() || !dims_known(input_shapes_[i])))
      return false;
  return true;
}

bool ExecutionContext::set_optimization_profile(int profile) {
  if (profile < 0 || profile >= engine_->num_optimization_profiles()) {
    error("set_optimization_profile: profile " + std::to_string(profile) + " is out of range [0, " +
          std::to_string(engine_->num_optimization_profiles()) + ")");
    return false;
  }
  profile_ = profile;
  return true;
}

bool ExecutionContext::set_output_allocator(const std::string& n, IOutputAllocator* allocator) {
  int i = engine_->io_index(n);
  if (i < 0 || engine_->data().io[i].is_input) {
    error("set_output_allocator: '" + n + "' is not an output of this engine");
    return false;
  }
  allocators_[i] = allocator;
  return true;
}

IOutputAllocator* ExecutionContext::get_output_allocator(const std::string& n) const {
  int i = engine_->io_index(n);
  return i < 0 ? nullptr : allocators_[i];
}

// Shape tensors live in host memory on the CPU backend: their contents are read at each preparation and
// execution (they are small), and shapes are analyzed again only when those contents changed.
bool ExecutionContext::read_shape_values() {
  const auto& io = engine_->data().io;
  bool all = true;
  for (size_t i = 0; i < io.size(); ++i) {
    if (!exec_->is_shape_input(i)) continue;
    std::optional<std::vector<uint8_t>> now;
    int64_t n = volume(input_shapes_[i]);
    if (addresses_[i] && n >= 0) {
      size_t bytes = static_cast<size_t>(n) * dtype_size(io[i].dtype);
      if (device_) {  // TensorRT keeps shape tensors in host memory; device memory is read too
        now.emplace(bytes);
        device_->read(now->data(), addresses_[i], bytes);
      } else {
        const auto* p = static_cast<const uint8_t*>(addresses_[i]);
        now.emplace(p, p + bytes);
      }
    } else if (n != 0) {
      all = false;
    } else {
      now.emplace();
    }
    if (now != shape_values_[i]) {
      shape_values_[i] = std::move(now);
      shapes_dirty_ = true;
    }
  }
  return all;
}

bool ExecutionContext::ensure_prepared() {
  const auto& io = engine_->data().io;
  if (!all_input_shapes_specified()) {
    for (size_t i = 0; i < io.size(); ++i)
      if (io[i].is_input && !dims_known(input_shapes_[i]))
        error("input '" + io[i].name + "' has dynamic shape " + dims_str(io[i].shape) +
              ": call set_input_shape first");
    return false;
  }
  if (exec_->has_shape_inputs()) read_shape_values();
  if (!shapes_dirty_ && (device_ ? device_->prepared() : exec_->prepared())) return true;
  std::vector<Dims> shapes;
  std::vector<HostTensor> values(io.size());
  for (size_t i = 0; i < io.size(); ++i) {
    if (!io[i].is_input) continue;
    shapes.push_back(input_shapes_[i]);
    if (shape_values_[i]) values[i] = HostTensor::copy_of(io[i].dtype, input_shapes_[i], shape_values_[i]->data());
  }
  try {
    if (device_) device_->prepare(shapes, values);
    else exec_->prepare(shapes, values);
  } catch (const std::exception& e) {
    error(e.what());
    return false;
  }
  size_t need = static_cast<size_t>(exec_->arena_bytes());
  if (need > arena_capacity_) {
    arena_storage_.assign(need + kArenaAlignment, 0);
    uintptr_t p = reinterpret_cast<uintptr_t>(arena_storage_.data());
    arena_ = reinterpret_cast<void*>((p + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment);
    arena_capacity_ = need;
  }
  run_shapes_.clear();
  shapes_dirty_ = false;
  return true;
}

Dims ExecutionContext::get_tensor_shape(const std::string& n) {
  int i = engine_->io_index(n);
  if (i < 0) {
    error("get_tensor_shape: no I/O tensor named '" + n + "'");
    return {};
  }
  const auto& io = engine_->data().io[i];
  if (io.is_input) return input_shapes_[i].empty() && !io.shape.empty() ? io.shape : input_shapes_[i];
  if (!all_input_shapes_specified() || !ensure_prepared()) return io.shape;
  if (!run_shapes_.empty()) return run_shapes_[i];  // data-dependent shapes, as the last execution found them
  return device_ ? device_->io_shape(i) : exec_->io_shape(i);
}

int64_t ExecutionContext::activation_bytes() const {
  if (device_) return device_->prepared() ? device_->activation_bytes() : 0;
  return exec_->prepared() ? exec_->arena_bytes() : 0;
}

namespace {
constexpr uint64_t kOutputAlignment = 256;
}  // namespace

// Dynamic mode: hands each output its memory once its shape is known (from its allocator, or the address set
// for it when its shape was known up front).
class ContextOutputSink : public OutputSink {
 public:
  explicit ContextOutputSink(ExecutionContext& c) : c_(c), shapes_(c.addresses_.size()) {}

  void* output_memory(size_t i, const Dims& shape, size_t bytes) override {
    const auto& io = c_.engine_->data().io[i];
    shapes_[i] = shape;
    if (IOutputAllocator* a = c_.allocators_[i]) {
      void* p = a->reallocate_output(io.name, c_.addresses_[i], bytes, kOutputAlignment);
      if (!p && bytes) throw Error("the output allocator of '" + io.name + "' returned no memory for " +
                                   std::to_string(bytes) + " bytes");
      c_.addresses_[i] = p;
      return p;
    }
    const Dims& planned = c_.device_ ? c_.device_->io_shape(i) : c_.exec_->io_shape(i);
    if (planned != shape)
      throw Error("output '" + io.name + "' has shape " + dims_str(shape) + ", not the " + dims_str(planned) +
                  " its address was set for");
    return c_.addresses_[i];
  }

  const std::vector<Dims>& shapes() const { return shapes_; }

 private:
  ExecutionContext& c_;
  std::vector<Dims> shapes_;
};

// Static mode: outputs with an allocator get their memory now (their sizes are known).
bool ExecutionContext::give_allocated_outputs() {
  const auto& io = engine_->data().io;
  for (size_t i = 0; i < io.size(); ++i) {
    if (io[i].is_input || !allocators_[i]) continue;
    uint64_t bytes = static_cast<uint64_t>(volume(exec_->io_shape(i))) * dtype_size(io[i].dtype);
    void* p = allocators_[i]->reallocate_output(io[i].name, addresses_[i], bytes, kOutputAlignment);
    if (!p && bytes) {
      error("execute: the output allocator of '" + io[i].name + "' returned no memory for " + std::to_string(bytes) +
            " bytes");
      return false;
    }
    addresses_[i] = p;
  }
  return true;
}

bool ExecutionContext::execute_async(void* stream) {
  if (!device_) return execute();
  if (!ensure_prepared()) return false;
  const auto& io = engine_->data().io;
  // Data-dependent output shapes: the device runs the network synchronously (on the CPU backend) and hands
  // outputs to their allocators, as execute() does for CPU engines.
  const bool dynamic = device_->dynamic();
  for (size_t i = 0; i < io.size(); ++i) {
    const Dims& s = device_->io_shape(i);
    if (dynamic && !io[i].is_input && allocators_[i]) continue;
    if (!dims_known(s)) {
      error("execute: output '" + io[i].name + "' has a data-dependent shape " + dims_str(s) +
            ": give it an output allocator (set_output_allocator, TensorRT's IOutputAllocator)");
      return false;
    }
    if (!addresses_[i] && volume(s) > 0) {
      error("execute: no address set for " + std::string(io[i].is_input ? "input" : "output") + " '" + io[i].name +
            "' (set_tensor_address or bindings)");
      return false;
    }
  }
  try {
    if (dynamic) {
      ContextOutputSink sink(*this);
      device_->run_dynamic(addresses_, stream, sink);
      run_shapes_.assign(io.size(), {});
      for (size_t i = 0; i < io.size(); ++i) {
        run_shapes_[i] = io[i].is_input ? input_shapes_[i] : sink.shapes()[i];
        if (!io[i].is_input && allocators_[i]) allocators_[i]->notify_shape(io[i].name, run_shapes_[i]);
      }
      last_profile_.clear();  // no per-layer times: the network ran on the CPU
    } else if (profiling) {
      last_profile_ = device_->profile(addresses_, stream);
    } else {
      device_->enqueue(addresses_, stream);
    }
  } catch (const std::exception& e) {
    error(std::string("execute: ") + e.what());
    return false;
  }
  return true;
}

bool ExecutionContext::execute_bindings_async(const std::vector<void*>& bindings, void* stream) {
  if (bindings.size() != addresses_.size()) {
    error("execute: expected " + std::to_string(addresses_.size()) + " bindings, got " +
          std::to_string(bindings.size()));
    return false;
  }
  addresses_ = bindings;
  return execute_async(stream);
}

bool ExecutionContext::execute() {
  if (device_) {
    // Synchronous: the default stream, then wait for it.
    if (!execute_async(nullptr)) return false;
    try {
      device_->synchronize(nullptr);
    } catch (const std::exception& e) {
      error(std::string("execute: ") + e.what());
      return false;
    }
    return true;
  }
  if (!ensure_prepared()) return false;
  const auto& io = engine_->data().io;
  try {
    if (!exec_->dynamic() && !give_allocated_outputs()) return false;
    for (size_t i = 0; i < io.size(); ++i) {
      const Dims& s = exec_->io_shape(i);
      if (!io[i].is_input && allocators_[i]) continue;
      if (!dims_known(s)) {
        error("execute: output '" + io[i].name + "' has a data-dependent shape " + dims_str(s) +
              ": give it an output allocator (set_output_allocator, TensorRT's IOutputAllocator)");
        return false;
      }
      if (!addresses_[i] && volume(s) > 0) {
        error("execute: no address set for " + std::string(io[i].is_input ? "input" : "output") + " '" + io[i].name +
              "' (set_tensor_address or bindings)");
        return false;
      }
    }
    std::vector<Dims> out_shapes;
    if (exec_->dynamic()) {
      ContextOutputSink sink(*this);
      exec_->run(addresses_, arena_, &cpu::default_thread_pool(), &sink);
      run_shapes_.assign(io.size(), {});
      for (size_t i = 0; i < io.size(); ++i) run_shapes_[i] = io[i].is_input ? input_shapes_[i] : sink.shapes()[i];
      out_shapes = run_shapes_;
    } else {
      if (profiling) last_profile_.clear();
      exec_->run(addresses_, arena_, &cpu::default_thread_pool(), nullptr, profiling ? &last_profile_ : nullptr);
      for (size_t i = 0; i < io.size(); ++i) out_shapes.push_back(exec_->io_shape(i));
    }
    for (size_t i = 0; i < io.size(); ++i)
      if (!io[i].is_input && allocators_[i]) allocators_[i]->notify_shape(io[i].name, out_shapes[i]);
  } catch (const std::exception& e) {
    error(std::string("execute: ") + e.what());
    return false;
  }
  return true;
}

bool ExecutionContext::execute_bindings(const std::vector<void*>& bindings) {
  if (bindings.size() != addresses_.size()) {
    error("execute: expected " + std::to_string(addresses_.size()) + " bindings, got " +
          std::to_string(bindings.size()));
    return false;
  }
  addresses_ = bindings;
  return execute();
}

}  // namespace kiln
