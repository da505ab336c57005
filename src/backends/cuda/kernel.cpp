#include "backends/cuda/kernel.h"

#include "backends/cuda/device.h"

#include <map>
#include <mutex>

namespace kiln::cuda {

namespace {
struct Entry {
  KernelFn fn;
  SupportsFn supports;
};
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}
}  // namespace

std::vector<int64_t> TensorRef::host_i64() const {
  if (!host) throw Error("a parameter tensor has no host copy (it is computed on the device)");
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dtype) {
      case DataType::kINT64: v[i] = static_cast<const int64_t*>(host)[i]; break;
      case DataType::kINT32: v[i] = static_cast<const int32_t*>(host)[i]; break;
      case DataType::kINT8: v[i] = static_cast<const int8_t*>(host)[i]; break;
      case DataType::kUINT8: case DataType::kBOOL: v[i] = static_cast<const uint8_t*>(host)[i]; break;
      default: throw Error(std::string("a parameter tensor has dtype ") + dtype_name(dtype) + ", expected integers");
    }
  }
  return v;
}

std::string tactic_key(const Resources& res, const std::string& kind, const std::string& library_version,
                       const std::string& problem) {
  const DeviceInfo& dev = res.device ? *res.device : current_device();
  return kind + "|" + dev.name + " " + dev.arch() + "|" + library_version + "|" + problem;
}

const TensorRef& KernelContext::input(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
  return in[i];
}

void KernelContext::fail(const std::string& msg) const {
  throw Error("layer '" + node.name + "' (" + node.op + "): " + msg);
}

void register_kernel(const std::string& op, KernelFn fn, SupportsFn supports) { registry()[op] = Entry{fn, supports}; }

KernelFn find_kernel(const std::string& op) {
  auto it = registry().find(op);
  return it == registry().end() ? nullptr : it->second.fn;
}

bool supports(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs) {
  auto it = registry().find(node.op);
  if (it == registry().end()) return false;
  return !it->second.supports || it->second.supports(node, inputs);
}

std::vector<std::string> kernel_ops() {
  std::vector<std::string> ops;
  for (auto& [k, v] : registry()) ops.push_back(k);
  return ops;
}

}  // namespace kiln::cuda
