// Test harness for Kiln's own CUDA kernels: builds one IR node, runs the CPU kernel (the reference) on
// float32 copies of the inputs and the CUDA kernel on device copies in the dtype under test, and compares.
//
//  - Inputs are random (seeded, never all zero; the mtest helpers), given in the dtype under test.
//  - The reference converts float16/bfloat16 inputs to float32 (the CPU kernels compute in float32), unless
//    the case says the CPU kernel takes them as they are (Cast).
//  - Device outputs are poisoned before each run (0xFF, then 0x7B bytes on a second run), so an element the
//    kernel forgets shows up as a mismatch; both runs must agree bit for bit (unless nondeterministic).
//  - Tolerances by output dtype, relative to max |reference|: float32 1e-5, float16 2e-3, bfloat16 1.6e-2;
//    integers and bool exact; NaN never passes unless the case allows it (then only against NaN).
//  - cuda::supports() must accept the node.
// Tests skip with a message where no CUDA device is present (the development machines have none).
#pragma once
#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "backends/cpu/eval.h"
#include "backends/cpu/math_kernel_test_util.h"
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/library_handles.h"
#include "backends/gpu_probe.h"
#include "ir/op_registry.h"
#include "scoped_env.h"

#define KILN_REQUIRE_CUDA_DEVICE()                                                          \
  do {                                                                                      \
    if (!::kiln::gpu::available()) GTEST_SKIP() << "no CUDA device: " << ::kiln::gpu::unavailable_reason(); \
  } while (0)

namespace kiln::cudatest {

using mtest::rand_bool;
using mtest::rand_float;
using mtest::rand_ints;

struct Options {
  bool cpu_as_f32 = true;      // reference on float32 copies of float16/bfloat16 inputs
  bool host_copies = true;     // give the kernel host copies of the inputs (as the runtime does for constants)
  bool deterministic = true;   // both poisoned runs must agree bit for bit
  bool nan_ok = false;         // NaN in the reference may match NaN in the result
  double tol = -1;             // relative tolerance override (relative to max |ref|)
  double atol = 0;             // an absolute allowance on top, for results formed by cancellation
  int num_outputs = 1;
  bool library_handles = false;  // attach cuDNN and cuBLASLt handles and a workspace (kernels that call them)
  cuda::KernelFn kernel = nullptr;  // run this instead of the op's registered kernel (one path of several)
};

inline double default_tol(DataType dt) {
  switch (dt) {
    case DataType::kFLOAT: return 1e-5;
    case DataType::kHALF: return 2e-3;
    case DataType::kBF16: return 1.6e-2;
    default: return 0;
  }
}

// A float32 copy of a float16/bfloat16 tensor (others unchanged).
inline HostTensor as_f32(const HostTensor& t) {
  if (t.empty() || (t.dtype() != DataType::kHALF && t.dtype() != DataType::kBF16)) return t;
  HostTensor f(DataType::kFLOAT, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) f.mutable_data<float>()[i] = static_cast<float>(t.get_f64(i));
  return f;
}

// Random float tensor in dtype dt (values in +-[lo, hi]).
inline HostTensor randf(Dims shape, DataType dt = DataType::kFLOAT, double lo = 0.1, double hi = 2.0, bool positive = false) {
  return rand_float(std::move(shape), dt, lo, hi, positive);
}

inline cudaStream_t test_stream() {
  static cudaStream_t s = [] {
    cudaStream_t st = nullptr;
    if (cudaStreamCreate(&st) != cudaSuccess) throw Error("cudaStreamCreate failed");
    return st;
  }();
  return s;
}

// Compares a result with the reference: every element within tol * max|ref| + atol (or exactly for tol 0).
inline ::testing::AssertionResult compare(const HostTensor& got, const HostTensor& ref, double tol, bool nan_ok,
                                          double atol = 0) {
  if (got.shape() != ref.shape())
    return ::testing::AssertionFailure() << "shape " << dims_str(got.shape()) << " vs reference " << dims_str(ref.shape());
  double maxref = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double r = ref.get_f64(i);
    if (std::isfinite(r)) maxref = std::max(maxref, std::fabs(r));
  }
  const double bound = tol * std::max(maxref, 1e-30) + atol;
  int bad = 0;
  std::ostringstream msg;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.get_f64(i), r = ref.get_f64(i);
    bool ok;
    if (std::isnan(g) || std::isnan(r)) ok = nan_ok && std::isnan(g) && std::isnan(r);
    else if (std::isinf(g) || std::isinf(r)) ok = g == r;
    else ok = g == r || std::fabs(g - r) <= bound;
    if (!ok) {
      if (bad < 6) msg << " [" << i << "] got " << g << " want " << r << ";";
      ++bad;
    }
  }
  if (bad)
    return ::testing::AssertionFailure() << bad << " of " << got.numel() << " elements differ (tol " << tol
                                         << " x max|ref| " << maxref << " + " << atol << "):" << msg.str();
  return ::testing::AssertionSuccess();
}

using testenv::ScopedEnv;  // scoped_env.h

// A CUDA graph captured from what enqueue() puts on a stream, instantiated, for tests that check a kernel
// can be captured and replayed (no allocation, synchronization or host read of device data while
// capturing), as the executor replays static-shape contexts.
class CapturedGraph {
 public:
  // Captures on `s` (thread-local mode); throws kiln::Error naming the step that failed.
  CapturedGraph(cudaStream_t s, const std::function<void()>& enqueue) {
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) throw Error("begin capture failed");
    cudaGraph_t graph = nullptr;
    try {
      enqueue();
    } catch (...) {
      cudaStreamEndCapture(s, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    const cudaError_t end = cudaStreamEndCapture(s, &graph);
    if (end != cudaSuccess || !graph) throw Error(std::string("capture failed: ") + cudaGetErrorString(end));
    const cudaError_t inst = cudaGraphInstantiate(&exec_, graph, 0);
    cudaGraphDestroy(graph);
    if (inst != cudaSuccess) throw Error(std::string("instantiate failed: ") + cudaGetErrorString(inst));
  }
  ~CapturedGraph() {
    if (exec_) cudaGraphExecDestroy(exec_);
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  // Replays the graph on s and waits for it; throws kiln::Error when either fails.
  void replay(cudaStream_t s) const {
    cudaError_t e = cudaGraphLaunch(exec_, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) throw Error(std::string("graph replay failed: ") + cudaGetErrorString(e));
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

// Captures `enqueue` on a non-blocking stream of its own (as the executor captures, away from the stream the
// eager runs used), with res.stream pointing at it meanwhile since kernels enqueue on their context's stream;
// res.stream is restored whatever happens. Replay the graph on any stream.
inline std::unique_ptr<CapturedGraph> capture_on_own_stream(cuda::Resources& res, const std::function<void()>& enqueue) {
  cudaStream_t s = res.stream, cs = nullptr;
  if (cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking) != cudaSuccess) throw Error("cudaStreamCreate failed");
  res.stream = cs;
  std::unique_ptr<CapturedGraph> graph;
  try {
    graph = std::make_unique<CapturedGraph>(cs, enqueue);
  } catch (...) {
    res.stream = s;
    cudaStreamDestroy(cs);
    throw;
  }
  res.stream = s;
  cudaStreamDestroy(cs);
  return graph;
}

// One set of library handles (cuBLASLt, cuDNN, a workspace) for the whole test binary, made at first use, for
// tests of kernels that call the libraries.
inline cuda::LibraryHandles& shared_library_handles() {
  static cuda::LibraryHandles h;
  return h;
}

// The CPU kernel's outputs for `op` with `attrs` on `inputs` (empty HostTensor = omitted), on float32 copies
// of float16/bfloat16 inputs when as_float32: the reference every CUDA kernel test compares against.
inline std::vector<HostTensor> cpu_reference(const std::string& op, const ir::Attrs& attrs,
                                             const std::vector<HostTensor>& inputs, int num_outputs = 1,
                                             bool as_float32 = true) {
  std::vector<HostTensor> ref_in;
  for (const HostTensor& t : inputs) ref_in.push_back(as_float32 ? as_f32(t) : t);
  ir::Graph rg;
  std::vector<ir::Value*> rvals;
  std::vector<const HostTensor*> rptrs;
  for (size_t i = 0; i < ref_in.size(); ++i) {
    rvals.push_back(ref_in[i].empty() ? nullptr : rg.add_input("in" + std::to_string(i), ref_in[i].dtype(), ref_in[i].shape()));
    rptrs.push_back(ref_in[i].empty() ? nullptr : &ref_in[i]);
  }
  ir::Node* rnode = rg.add_node(op, "node", rvals, num_outputs);
  rnode->attrs = attrs;
  return cpu::eval_node(*rnode, rptrs);
}

// Runs `op` on the GPU and on the CPU and compares every output. Inputs: empty HostTensor = omitted.
inline ::testing::AssertionResult check_op(const std::string& op, const std::vector<HostTensor>& inputs,
                                           const std::function<void(ir::Attrs&)>& attrs = {}, Options opt = {}) {
  try {
    // The node, in the dtypes under test.
    ir::Graph g;
    std::vector<ir::Value*> vals;
    std::vector<ir::TensorInfo> infos(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].empty()) {
        vals.push_back(nullptr);
        infos[i].present = false;
        continue;
      }
      vals.push_back(g.add_input("in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()));
      infos[i].dtype = inputs[i].dtype();
      infos[i].shape = inputs[i].shape();
      infos[i].value = &inputs[i];
    }
    ir::Node* node = g.add_node(op, "node", vals, opt.num_outputs);
    if (attrs) attrs(node->attrs);
    const std::vector<ir::TensorInfo> outs = ir::infer_node(*node, infos);
    if (!cuda::supports(*node, infos)) return ::testing::AssertionFailure() << "cuda::supports() says no";
    cuda::KernelFn fn = opt.kernel ? opt.kernel : cuda::find_kernel(op);
    if (!fn) return ::testing::AssertionFailure() << "no CUDA kernel for " << op;

    // The reference.
    const std::vector<HostTensor> ref = cpu_reference(op, node->attrs, inputs, opt.num_outputs, opt.cpu_as_f32);

    // Device inputs and outputs.
    cudaStream_t s = test_stream();
    std::vector<cuda::DeviceBuffer> dev_in;
    cuda::Resources res;
    res.stream = s;
    if (opt.library_handles) shared_library_handles().attach(res);
    cuda::KernelContext ctx{*node, {}, {}, res};
    for (const HostTensor& t : inputs) {
      cuda::TensorRef r;
      if (!t.empty()) {
        dev_in.emplace_back(std::max<size_t>(t.nbytes(), 1));
        if (t.nbytes() && cudaMemcpy(dev_in.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
          return ::testing::AssertionFailure() << "cudaMemcpy of an input failed";
        r.present = true;
        r.dtype = t.dtype();
        r.shape = t.shape();
        r.data = dev_in.back().get();
        r.host = opt.host_copies ? t.raw() : nullptr;
      }
      ctx.in.push_back(r);
    }
    std::vector<cuda::DeviceBuffer> dev_out;
    for (const ir::TensorInfo& o : outs) {
      if (!dims_known(o.shape)) return ::testing::AssertionFailure() << "output shape " << dims_str(o.shape) << " unknown";
      dev_out.emplace_back(std::max<size_t>(static_cast<size_t>(volume(o.shape)) * dtype_size(o.dtype), 1));
      ctx.out.push_back(cuda::TensorRef{true, o.dtype, o.shape, dev_out.back().get(), nullptr});
    }
    std::vector<std::vector<HostTensor>> runs;
    for (int poison : {0xFF, 0x7B}) {
      for (size_t i = 0; i < outs.size(); ++i)
        if (cudaMemsetAsync(dev_out[i].get(), poison, dev_out[i].size(), s) != cudaSuccess)
          return ::testing::AssertionFailure() << "cudaMemset failed";
      fn(ctx);
      const cudaError_t e = cudaStreamSynchronize(s);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(e);
      std::vector<HostTensor> got;
      for (size_t i = 0; i < outs.size(); ++i) {
        HostTensor h(outs[i].dtype, outs[i].shape);
        if (h.nbytes() && cudaMemcpy(h.mutable_raw(), dev_out[i].get(), h.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
          return ::testing::AssertionFailure() << "cudaMemcpy of an output failed";
        got.push_back(h);
      }
      runs.push_back(got);
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      if (opt.deterministic && !runs[0][i].same_bytes(runs[1][i]))
        return ::testing::AssertionFailure() << "output " << i << " differs between two runs (unwritten elements?)";
      const double tol = opt.tol >= 0 ? opt.tol : default_tol(outs[i].dtype);
      for (const auto& run : runs) {
        ::testing::AssertionResult r = compare(run[i], ref.at(i), tol, opt.nan_ok, opt.atol);
        if (!r) return ::testing::AssertionFailure() << "output " << i << ": " << r.message();
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

// The float dtypes every float kernel is tested in.
inline const std::vector<DataType>& float_types() {
  static const std::vector<DataType> t = {DataType::kFLOAT, DataType::kHALF, DataType::kBF16};
  return t;
}

}  // namespace kiln::cudatest

#endif  // KILN_WITH_CUDA
