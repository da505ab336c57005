// Forward convolution through cuDNN's graph API (backend descriptors), the path cuDNN's fastest Hopper
// kernels are reachable by: the legacy cudnnConvolutionForward algorithms are several times slower there.
//
// One operation graph computes y = [relu]([conv(x, w)] [+ bias] [+ residual]) with float32 compute and
// float32 virtual intermediates; x, w, y, bias ([1, K, 1, 1]) and residual (y's shape) are real tensors of
// the I/O dtype. Engine heuristics (mode A, then FALLBACK when A yields nothing usable) rank engine
// configurations; each of the first few is finalized into an execution plan, skipping those that need more
// workspace than the context has or whose numerical notes break Kiln's promises (TF32 for float32 unless
// allowed, FFT/Winograd for float32, down-converted inputs, reduced-precision reductions, nondeterminism).
// Any cuDNN failure drops that candidate and is remembered as text; nothing here throws.
//
// Plans keep every descriptor they were built from alive. cudnnBackendExecute with a fixed variant pack is
// capturable in a CUDA graph; the variant pack (the addresses) is rebuilt only when an address changes.
#pragma once
#include <cudnn.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cudnn/conv_graph_desc.h"

namespace kiln::cuda {

// Which epilogue steps the graph itself computes (the rest is Kiln's epilogue kernel's).
struct ConvGraphEpilogue {
  bool bias = false, residual = false, relu = false;
  bool any() const { return bias || residual || relu; }
  std::string str() const;  // "conv+bias+residual+relu"
};

// Tensors of the graph; the index is also each one's position in ConvGraphProblem::align.
enum ConvGraphTensor { kGraphX = 0, kGraphW, kGraphY, kGraphBias, kGraphResidual, kGraphTensorCount };

// A forward convolution in the graph API's terms: dims in NCHW order (N, C, spatial...; weights K, C/groups,
// kernel...) with the memory layout carried by the strides (channels-last: C has stride 1). Two or three
// spatial dims: a 1-D convolution is described with a unit height first.
struct ConvGraphProblem {
  cudnnDataType_t io_type = CUDNN_DATA_FLOAT;  // x, w, y, bias, residual
  bool allow_tf32 = false;                     // float32 I/O: tensor-core (TF32) engines allowed
  std::vector<int64_t> x_dims, x_strides, w_dims, w_strides, y_dims, y_strides, bias_dims, bias_strides;
  std::vector<int64_t> pre_pad, post_pad, stride, dilation;  // one per spatial dim
  // The byte alignment promised for each tensor's base address (16 at most): engines may rely on it, so a
  // plan runs only on addresses that keep the promise (ConvGraphPlan::aligned).
  int64_t align[kGraphTensorCount] = {16, 16, 16, 16, 16};
};

// The largest power of two (16 at most) dividing the address; 16 for null.
int64_t address_alignment(const void* p);

struct ConvGraphPointers {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  const void* bias = nullptr;      // read only when the plan fuses the bias
  const void* residual = nullptr;  // read only when the plan fuses the residual
  void* workspace = nullptr;
};

struct ConvOpGraph;  // the descriptors a plan was built from (conv_graph.cpp)

// One finalized execution plan.
class ConvGraphPlan {
 public:
  ConvGraphPlan(std::shared_ptr<const ConvOpGraph> graph, BackendDesc config, BackendDesc plan, int64_t workspace,
                std::string name);
  ~ConvGraphPlan();
  ConvGraphPlan(const ConvGraphPlan&) = delete;
  ConvGraphPlan& operator=(const ConvGraphPlan&) = delete;

  const ConvGraphEpilogue& fused() const;
  int64_t workspace_bytes() const { return workspace_; }
  const std::string& name() const { return name_; }
  // The addresses keep the alignment the plan was built for (only tensors the graph reads or writes count).
  bool aligned(const ConvGraphPointers& p) const;
  // Enqueues the plan on the handle's stream. On failure returns the status and says why in *why.
  cudnnStatus_t execute(cudnnHandle_t handle, const ConvGraphPointers& p, std::string* why);

 private:
  std::shared_ptr<const ConvOpGraph> graph_;
  BackendDesc config_, plan_;
  int64_t workspace_ = 0;
  std::string name_;
  // The variant pack for the last addresses (x, w, y, [bias], [residual], then the workspace).
  BackendDesc pack_;
  std::vector<void*> pack_ptrs_;
};

// What building plans for one convolution may spend, shared by the builds for its epilogue variants (each
// build uses some of it up).
struct ConvGraphBudget {
  size_t workspace_bytes = 0;    // plans needing more are skipped
  int max_plans = 8;             // finalized plans kept per build, at most
  int attempts_left = 16;        // plan finalizations left
  int runtime_compiled_left = 2; // finalizations of engines that compile kernels (NVRTC, slow) left
  // Past this time a build stops as soon as it has one plan (runtime compilation can take a second each).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Execution plans for the problem with this epilogue, best heuristic rank first; empty (with the reasons
// appended to *why) when none could be built.
std::vector<std::unique_ptr<ConvGraphPlan>> build_conv_graph_plans(cudnnHandle_t handle, const ConvGraphProblem& problem,
                                                                   const ConvGraphEpilogue& epilogue,
                                                                   ConvGraphBudget* budget, std::string* why);

// KILN_CUDNN_GRAPH: unset or "0" off (the legacy API only; the default until the graph path's speed and
// first-run cost are measured on the H200); "1" or anything else: whichever of the two timed faster. For tests: "force" takes the graph path whenever it has a plan, and "force-fused" only plans with
// the node's whole epilogue in the graph (where cuDNN's pointwise fusion is not ReLU, the activation still
// runs in Kiln's kernel); both make a missing plan an error instead of a quiet fallback.
enum class ConvGraphMode { kOff, kAuto, kForce, kForceFused };
ConvGraphMode conv_graph_mode();
// KILN_CUDNN_GRAPH_LOG=1: one line on stderr per convolution and shape saying what was chosen and why.
bool conv_graph_log_enabled();

}  // namespace kiln::cuda
