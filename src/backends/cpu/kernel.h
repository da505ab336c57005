// The CPU backend's kernel interface. One kernel per IR op, registered by op name with
// KILN_REGISTER_CPU_KERNEL in src/backends/cpu/kernels/<family>.cpp. A kernel reads the node's attributes,
// its inputs' data and shapes, and writes outputs whose shapes the runtime already inferred and whose
// memory it already allocated.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/thread_pool.h"
#include "ir/graph.h"
#include "ir/op_registry.h"  // KILN_CAT

namespace kiln::cpu {

struct TensorRef {
  bool present = false;
  DataType dtype = DataType::kFLOAT;
  Dims shape;
  void* data = nullptr;

  int64_t numel() const { return volume(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <class T> T* as() const { return static_cast<T*>(data); }
  // Reads element i of an integer or float tensor (for small shape/parameter tensors).
  int64_t get_i64(int64_t i) const;
  double get_f64(int64_t i) const;
  std::vector<int64_t> to_i64() const;
};

struct KernelContext {
  const ir::Node& node;
  std::vector<TensorRef> in;   // one per node input; absent optional inputs have present == false
  std::vector<TensorRef> out;  // one per node output, shapes set, memory allocated
  ThreadPool* pool;
  // Set by runners that can size outputs while running (the dynamic executor, host evaluation): gives
  // output i memory for `shape`. Kernels whose output shapes depend on input values call set_output_shape.
  std::function<void*(size_t, const Dims&)> allocate_output = nullptr;

  const ir::Attrs& attrs() const { return node.attrs; }
  // For data-dependent outputs (NonZero, Unique, ...): fixes output i's shape once the kernel knows it and
  // points out[i] at memory for it. Fails naming the layer when the runner cannot allocate at run time.
  void set_output_shape(size_t i, const Dims& shape);
  const TensorRef& input(size_t i) const;  // throws when absent
  bool has_input(size_t i) const { return i < in.size() && in[i].present; }
  [[noreturn]] void fail(const std::string& msg) const;  // "layer 'x' (Op): msg"
};

using KernelFn = void (*)(KernelContext&);

void register_kernel(const std::string& op, KernelFn fn);
KernelFn find_kernel(const std::string& op);
std::vector<std::string> kernel_ops();

}  // namespace kiln::cpu

#define KILN_REGISTER_CPU_KERNEL(op, fn) \
  static const bool KILN_CAT(kiln_cpu_kernel_registered_, __LINE__) = (::kiln::cpu::register_kernel(op, fn), true)
