#include <cstdlib>

#include "kiln/runtime.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"

namespace kiln {

ExecutionContext::ExecutionContext(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {
  exec_ = std::make_unique<Executor>(engine_->shared_data());
  const auto& io = engine_->data().io;
  addresses_.assign(io.size(), nullptr);
  input_shapes_.resize(io.size());
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

bool ExecutionContext::ensure_prepared() {
  if (!shapes_dirty_ && exec_->prepared()) return true;
  if (!all_input_shapes_specified()) {
    const auto& io = engine_->data().io;
    for (size_t i = 0; i < io.size(); ++i)
      if (io[i].is_input && !dims_known(input_shapes_[i]))
        error("input '" + io[i].name + "' has dynamic shape " + dims_str(io[i].shape) +
              ": call set_input_shape first");
    return false;
  }
  std::vector<Dims> shapes;
  const auto& io = engine_->data().io;
  for (size_t i = 0; i < io.size(); ++i)
    if (io[i].is_input) shapes.push_back(input_shapes_[i]);
  try {
    exec_->prepare(shapes);
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
  return exec_->io_shape(i);
}

int64_t ExecutionContext::activation_bytes() const { return exec_->prepared() ? exec_->arena_bytes() : 0; }

bool ExecutionContext::execute() {
  if (!ensure_prepared()) return false;
  const auto& io = engine_->data().io;
  for (size_t i = 0; i < io.size(); ++i) {
    if (!addresses_[i] && volume(exec_->io_shape(i)) > 0) {
      error("execute: no address set for " + std::string(io[i].is_input ? "input" : "output") + " '" + io[i].name +
            "' (set_tensor_address or bindings)");
      return false;
    }
  }
  try {
    exec_->run(addresses_, arena_, &cpu::default_thread_pool());
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
