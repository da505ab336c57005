#include <algorithm>
#include <cstdio>
#include <sstream>

#include "backends/gpu_probe.h"
#include "kiln/runtime.h"
#include "plan/plan_reader.h"
#include "runtime/engine_data.h"
#include "runtime/executor.h"

namespace kiln {

Engine::Engine(std::shared_ptr<const EngineData> data, std::vector<uint8_t> plan_bytes, ILogger* logger)
    : data_(std::move(data)), plan_(std::move(plan_bytes)), logger_(logger) {}

Engine::~Engine() = default;

const std::string& Engine::name() const { return data_->name; }
const std::string& Engine::target() const { return data_->target; }
int Engine::num_io_tensors() const { return static_cast<int>(data_->io.size()); }
int Engine::num_optimization_profiles() const { return data_->num_profiles; }
uint64_t Engine::device_memory_size() const { return data_->device_memory_size; }

int Engine::num_layers() const {
  int n = 0;
  for (auto& node : data_->graph->nodes())
    if (node->op != "Constant") ++n;
  return n;
}

const std::string& Engine::io_name(int i) const {
  if (i < 0 || i >= num_io_tensors())
    throw Error("I/O tensor index " + std::to_string(i) + " is out of range [0, " + std::to_string(num_io_tensors()) +
                ")");
  return data_->io[i].name;
}

int Engine::io_index(const std::string& name) const {
  for (size_t i = 0; i < data_->io.size(); ++i)
    if (data_->io[i].name == name) return static_cast<int>(i);
  return -1;
}

TensorIOMode Engine::io_mode(const std::string& name) const {
  int i = io_index(name);
  if (i < 0) return TensorIOMode::kNONE;
  return data_->io[i].is_input ? TensorIOMode::kINPUT : TensorIOMode::kOUTPUT;
}

Dims Engine::io_shape(const std::string& name) const {
  int i = io_index(name);
  if (i < 0) throw Error("no I/O tensor named '" + name + "'");
  return data_->io[i].shape;
}

DataType Engine::io_dtype(const std::string& name) const {
  int i = io_index(name);
  if (i < 0) throw Error("no I/O tensor named '" + name + "'");
  return data_->io[i].dtype;
}

std::vector<Dims> Engine::profile_shapes(const std::string& name, int profile) const {
  int i = io_index(name);
  if (i < 0) throw Error("no I/O tensor named '" + name + "'");
  const auto& io = data_->io[i];
  if (!io.is_input) throw Error("'" + name + "' is an output; profiles describe inputs");
  if (profile < 0 || profile >= static_cast<int>(io.profiles.size()))
    throw Error("profile " + std::to_string(profile) + " is out of range: the engine has " +
                std::to_string(io.profiles.size()));
  const auto& p = io.profiles[profile];
  return {p.min, p.opt, p.max};
}

namespace {

std::string ratio(double a, double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", b > 0 ? a / b : 0.0);
  return buf;
}

}  // namespace

// Per profile, at its max shapes: the activation arena the static plan lays out against the liveness lower
// bound (the largest sum of tensors alive at once), i.e. what the arena's packing gives away.
std::string Engine::memory_report() const {
  std::string out;
  Executor probe(data_);
  for (int p = 0; p < std::max(1, data_->num_profiles); ++p) {
    std::vector<Dims> shapes;
    for (auto& io : data_->io)
      if (io.is_input) shapes.push_back(p < static_cast<int>(io.profiles.size()) ? io.profiles[p].max : io.shape);
    out += "  profile " + std::to_string(p) + " max shapes: ";
    try {
      probe.prepare(shapes);
      const auto arena = static_cast<double>(probe.arena_bytes()), bound = static_cast<double>(probe.arena_lower_bound());
      out += "arena " + std::to_string(probe.arena_bytes()) + " bytes, liveness lower bound " +
             std::to_string(probe.arena_lower_bound()) + " bytes (arena / bound = " + ratio(arena, bound) + ")\n";
    } catch (const std::exception& e) {
      out += std::string("not known before running (") + e.what() + ")\n";
    }
  }
  return out;
}

std::string Engine::describe() const {
  std::ostringstream s;
  s << "engine '" << data_->name << "' target " << data_->target << ", Kiln " << data_->kiln_version << "\n";
  if (!data_->target_libraries.empty()) s << "built with " << data_->target_libraries << "\n";
  if (data_->target != "cpu")
    s << "tactics: " << (data_->tactics ? data_->tactics->size() : 0) << " timed at build (cuBLASLt/cuDNN algorithms)\n";
  s << "I/O tensors:\n";
  for (auto& io : data_->io) {
    s << "  " << (io.is_input ? "input  " : "output ") << io.name << " " << dtype_name(io.dtype) << " "
      << dims_str(io.shape);
    for (size_t p = 0; p < io.profiles.size(); ++p)
      s << "  profile " << p << ": min " << dims_str(io.profiles[p].min) << " opt " << dims_str(io.profiles[p].opt)
        << " max " << dims_str(io.profiles[p].max);
    s << "\n";
  }
  s << "layers: " << num_layers() << "\n";
  for (auto& n : data_->graph->nodes()) {
    if (n->op == "Constant") continue;
    s << "  " << n->op << " '" << n->name << "'";
    if (n->attrs.has("fused")) s << " (fused: " << n->attrs.s("fused", "") << ")";  // layers the fusion passes merged in
    s << " -> ";
    for (size_t i = 0; i < n->outputs.size(); ++i)
      s << (i ? ", " : "") << dtype_name(n->outputs[i]->dtype) << dims_str(n->outputs[i]->shape);
    s << "\n";
  }
  s << "activation memory (device_memory_size): " << data_->device_memory_size << " bytes\n";
  s << memory_report();
  s << "weights: " << data_->weights_bytes << " bytes\n";
  s << "plan: " << plan_.size() << " bytes";
  if (data_->weights_bytes > 0)
    s << " (" << ratio(static_cast<double>(plan_.size()), static_cast<double>(data_->weights_bytes)) << "x the weights)";
  s << "\n";
  return s.str();
}

std::unique_ptr<ExecutionContext> Engine::create_execution_context() {
  return std::make_unique<ExecutionContext>(shared_from_this());
}

namespace {

// A plan runs only on the kind of device it was built for: a CPU plan anywhere, a GPU plan on a GPU of
// the same architecture (its kernels and tactics were chosen for it). Library versions that differ from
// the build's are allowed, with a warning: cuBLASLt/cuDNN keep their APIs within a major version.
void check_target(const EngineData& ed, ILogger* logger) {
  if (ed.target == "cpu") return;
  if (ed.target.rfind("cuda:", 0) != 0) throw Error("plan was built for an unknown target '" + ed.target + "'");
  if (!gpu::available())
    throw Error("plan was built for " + ed.target + " but " + gpu::unavailable_reason() +
                "; build a CPU plan (config.default_device_type = DeviceType.CPU) to run here");
  std::string here = gpu::target();
  if (here != ed.target)
    throw Error("plan was built for " + ed.target + " but this GPU is " + here + "; rebuild the engine on this GPU");
  std::string libs = gpu::library_versions();
  if (!ed.target_libraries.empty() && ed.target_libraries != libs)
    log_to(logger, Severity::kWARNING, "plan was built with " + ed.target_libraries + "; this process has " + libs);
}

}  // namespace

std::shared_ptr<Engine> Runtime::deserialize(const void* data, size_t size) {
  try {
    if (!data || size == 0) throw Error("plan is empty");
    auto ed = std::make_shared<EngineData>(plan::read_plan(data, size, ""));
    check_target(*ed, logger_);
    std::vector<uint8_t> bytes(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + size);
    return std::make_shared<Engine>(std::move(ed), std::move(bytes), logger_);
  } catch (const std::exception& e) {
    log_to(logger_, Severity::kERROR, std::string("deserialize_cuda_engine: ") + e.what());
    return nullptr;
  }
}

}  // namespace kiln
