// The CUDA backend's kernel interface. One kernel function per IR op, registered by op name with
// KILN_REGISTER_CUDA_KERNEL in src/backends/cuda/kernels/<family>.cu. A kernel enqueues its work on
// ctx.stream() and never synchronizes: the executor has inferred every output shape and allocated the
// device memory already. Small parameter tensors (constants, shape arithmetic the runtime computed on
// the host) are also readable on the host through TensorRef::host, so kernels need not copy them back.
//
// A kernel that handles only some variants of its op (dtypes, modes) registers a `supports` predicate;
// the builder then runs unsupported nodes on the CPU backend (with copies) and says so in the log.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"  // KILN_CAT, TensorInfo

typedef struct cublasLtContext* cublasLtHandle_t;
namespace kiln { class TimingCache; }
typedef struct cudnnContext* cudnnHandle_t;

namespace kiln::cuda {

struct DeviceInfo;
class TacticTies;
class ConvPlanCache;

struct TensorRef {
  bool present = false;
  DataType dtype = DataType::kFLOAT;
  Dims shape;
  void* data = nullptr;        // device memory
  const void* host = nullptr;  // host copy when the runtime has one (constants, host-computed values)

  int64_t numel() const { return volume(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <class T> T* as() const { return static_cast<T*>(data); }
  // The host copy as int64 values (integer tensors); throws naming the tensor when there is none.
  std::vector<int64_t> host_i64() const;
};

// Whether p is a multiple of `bytes`: a kernel's vector loads and stores need their width's alignment, and
// addresses may change from run to run (the caller's buffers), so kernels check them per run.
inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// What kernels share within one execution context: its stream, library handles and scratch space.
struct Resources {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;
  void* workspace = nullptr;  // device scratch for cuBLASLt/cuDNN, `workspace_bytes` long
  size_t workspace_bytes = 0;
  const DeviceInfo* device = nullptr;
  // Tactics timed before (the plan's, the build's timing cache) and where newly timed ones go; kernels that
  // time library algorithms look their problem up first (tactic_key below). Null: time, keep nothing.
  TimingCache* tactics = nullptr;
  // The build's timing run (unless KILN_GEMM_CHAIN_TIES=0): where a kernel that times its candidates puts the ones
  // that tie (tactic_ties.h), for the chain timing to decide. Null everywhere else.
  TacticTies* ties = nullptr;
  // The finalized cuDNN plans the engine's contexts share (cudnn/conv_plan_cache.h); null: each context
  // finalizes its own (KILN_CUDNN_SHARE_PLANS=0, the kernel tests).
  ConvPlanCache* conv_plans = nullptr;
  // State a kernel keeps per node between runs of this context (library descriptors, the algorithm it
  // chose for the current shapes). Owned by the context; see node_state<T>() below.
  std::unordered_map<const ir::Node*, std::shared_ptr<void>> node_state;
  // Programmatic dependent launch (programmatic_launch.h). The nodes whose kernel was launched
  // programmatically at their latest run (that kernel waits for the one before it): the executor clears a
  // node's entry before its step and the kernel notes itself (note_programmatic_launch). And whether the
  // kernel being enqueued may let the next one start early: set by the executor per step, true only where the
  // next kernel on this stream is one of those (or KILN_PDL_TRIGGER=all). started_early: the kernel before
  // this one was told so (the node was expected to launch programmatically).
  std::unordered_set<const ir::Node*> programmatic_nodes;
  bool next_kernel_may_start = false;
  bool started_early = false;
};

struct KernelContext {
  const ir::Node& node;
  std::vector<TensorRef> in;   // one per node input; absent optional inputs have present == false
  std::vector<TensorRef> out;  // one per node output
  Resources& res;

  cudaStream_t stream() const { return res.stream; }
  const ir::Attrs& attrs() const { return node.attrs; }
  const TensorRef& input(size_t i) const;  // throws when absent
  bool has_input(size_t i) const { return i < in.size() && in[i].present; }
  [[noreturn]] void fail(const std::string& msg) const;  // "layer 'x' (Op): msg"
};

// The per-context state of this kernel's node, default-constructed on first use.
template <class T> T& node_state(KernelContext& ctx) {
  auto& slot = ctx.res.node_state[&ctx.node];
  if (!slot) slot = std::make_shared<T>();
  return *static_cast<T*>(slot.get());
}

// A timing-cache key for a kernel's problem: "<kind>|<GPU name> <sm_XY>|<library version>|<problem>", so a
// record is reused only on the same GPU model with the same library build.
std::string tactic_key(const Resources& res, const std::string& kind, const std::string& library_version,
                       const std::string& problem);

using KernelFn = void (*)(KernelContext&);
// Whether the kernel handles this node with these input types/shapes (shapes may hold -1).
using SupportsFn = bool (*)(const ir::Node&, const std::vector<ir::TensorInfo>& inputs);

void register_kernel(const std::string& op, KernelFn fn, SupportsFn supports = nullptr);
KernelFn find_kernel(const std::string& op);
// A kernel exists for the op and accepts this node (its predicate, if any, says yes).
bool supports(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs);
std::vector<std::string> kernel_ops();

// Blocks of 256 threads over n elements, capped so a grid-stride loop covers the rest.
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 16) blocks = 65535LL * 16;
  return static_cast<unsigned>(blocks);
}

}  // namespace kiln::cuda

#define KILN_REGISTER_CUDA_KERNEL(op, ...) \
  static const bool KILN_CAT(kiln_cuda_kernel_registered_, __LINE__) = (::kiln::cuda::register_kernel(op, __VA_ARGS__), true)
