#include "backends/cpu/kernel.h"

#include <map>

#include "ir/op_registry.h"

namespace kiln::cpu {

namespace {
std::map<std::string, KernelFn>& table() {
  static std::map<std::string, KernelFn> t;
  return t;
}

HostTensor view_of(const TensorRef& r) {
  return HostTensor::wrap(r.dtype, r.shape, nullptr, r.data);
}
}  // namespace

int64_t TensorRef::get_i64(int64_t i) const { return view_of(*this).get_i64(i); }
double TensorRef::get_f64(int64_t i) const { return view_of(*this).get_f64(i); }
std::vector<int64_t> TensorRef::to_i64() const { return view_of(*this).to_i64(); }

const TensorRef& KernelContext::input(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is required but missing");
  return in[i];
}

void KernelContext::set_output_shape(size_t i, const Dims& shape) {
  TensorRef& o = out.at(i);
  if (o.data && o.shape == shape) return;  // memory already sized by the runner
  if (!allocate_output)
    fail("output " + std::to_string(i) + " has a data-dependent shape " + dims_str(shape) +
         " that this runner cannot allocate at run time");
  o.shape = shape;
  o.data = allocate_output(i, shape);
}

void KernelContext::fail(const std::string& msg) const {
  throw Error("layer '" + node.name + "' (" + node.op + "): " + msg);
}

void register_kernel(const std::string& op, KernelFn fn) {
  auto& t = table();
  if (t.count(op)) throw Error("CPU kernel for '" + op + "' registered twice");
  t[op] = fn;
}

KernelFn find_kernel(const std::string& op) {
  auto& t = table();
  auto it = t.find(op);
  return it == t.end() ? nullptr : it->second;
}

std::vector<std::string> kernel_ops() {
  std::vector<std::string> v;
  for (auto& [k, f] : table()) v.push_back(k);
  return v;
}

}  // namespace kiln::cpu
