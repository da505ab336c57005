// Forward convolution through cuDNN's graph API (backend descriptors), the path cuDNN's fastest Hopper
// kernels are reachable by: the legacy cudnnConvolutionForward algorithms are several times slower there.
//
// One operation graph computes y = [relu or relu6]([conv(x, w)] [+ bias] [+ residual]) with float32
// compute and float32 virtual intermediates; x, w, y, bias ([1, K, 1, 1]) and residual (y's shape) are real tensors of
// the I/O dtype. Engine heuristics (mode A, then FALLBACK when A yields nothing usable) rank engine
// configurations; each of the first few is finalized into an execution plan, skipping those that need more
// workspace than the context has or whose numerical notes break Kiln's promises (TF32 for float32 unless
// allowed, FFT/Winograd for float32, down-converted inputs, reduced-precision reductions, nondeterminism).
// Any cuDNN failure drops that candidate and is remembered as text; nothing here throws.
//
// Plans keep every descriptor they were built from alive. cudnnBackendExecute with a fixed variant pack is
// capturable in a CUDA graph; the variant pack (the addresses) is rebuilt only when an address changes.
//
// A finalized plan may be shared by the execution contexts of one engine (conv_plan_cache.h): what each
// context owns is a ConvGraphPlan, its variant pack and the handle it executes through; the finalized plan
// under it (ConvPlanCore) may be another context's too. cuDNN 9.8 and later execute a plan through any handle
// on a device like the one it was made for (the "deviceless ahead-of-time compilation" documentation: plans
// deserialized without a handle run through the caller's); its thread-safety promise covers handles only, so
// one plan is never executed by two threads at once here (a mutex a plan, held for the enqueue alone).
#pragma once
#include <cudnn.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cudnn/conv_graph_desc.h"
#include "backends/cuda/cudnn/conv_graph_problem.h"

namespace kiln::cuda {

// The cuDNN data type of the graph's real tensors (float32, float16, bfloat16).
cudnnDataType_t cudnn_io_type(DataType t);

struct ConvGraphPointers {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  const void* bias = nullptr;      // read only when the plan fuses the bias
  const void* residual = nullptr;  // read only when the plan fuses the residual
  void* workspace = nullptr;
};

struct ConvOpGraph;   // the descriptors a plan was built from (conv_graph.cpp)
struct ConvPlanCore;  // the finalized plan, shareable between contexts (conv_graph.cpp)

// One finalized execution plan, as one context uses it.
class ConvGraphPlan {
 public:
  ConvGraphPlan(std::shared_ptr<const ConvOpGraph> graph, BackendDesc config, BackendDesc plan, int64_t workspace,
                std::string engine_config, std::string name);
  ~ConvGraphPlan();
  ConvGraphPlan(const ConvGraphPlan&) = delete;
  ConvGraphPlan& operator=(const ConvGraphPlan&) = delete;

  // The same finalized plan for another context: its own variant pack, nothing finalized again.
  std::unique_ptr<ConvGraphPlan> share() const;
  // Keeps `owner` (the cuDNN handle the plan was finalized with) alive as long as the finalized plan is.
  void keep_alive(std::shared_ptr<const void> owner);

  const ConvGraphEpilogue& fused() const;
  int64_t workspace_bytes() const { return workspace_; }
  // Which engine configuration this is (conv_graph_record.h: what a timing-cache record names).
  const std::string& engine_config() const { return engine_config_; }
  const std::string& name() const { return name_; }  // the configuration, runtime compilation, the epilogue
  // The addresses keep the alignment the plan was built for (only tensors the graph reads or writes count).
  bool aligned(const ConvGraphPointers& p) const;
  // Enqueues the plan on the handle's stream. On failure returns the status and says why in *why.
  cudnnStatus_t execute(cudnnHandle_t handle, const ConvGraphPointers& p, std::string* why);

 private:
  ConvGraphPlan(std::shared_ptr<ConvPlanCore> core, int64_t workspace, std::string engine_config, std::string name);

  std::shared_ptr<ConvPlanCore> core_;
  int64_t workspace_ = 0;
  std::string engine_config_, name_;
  // The variant pack for the last addresses (x, w, y, [bias], [residual], then the workspace): this context's.
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
// appended to *why) when none could be built. With `only_config` (a ConvGraphPlan::engine_config() text, as
// a timing-cache record names it) every other engine configuration is passed over before finalizing, so
// at most that one plan is finalized: the heuristic queries and the graph's descriptors are all it costs
// besides.
std::vector<std::unique_ptr<ConvGraphPlan>> build_conv_graph_plans(cudnnHandle_t handle, const ConvGraphProblem& problem,
                                                                   const ConvGraphEpilogue& epilogue,
                                                                   ConvGraphBudget* budget, std::string* why,
                                                                   const std::string* only_config = nullptr);

// KILN_CUDNN_GRAPH: unset (the default) or "1": whichever of the graph path and the legacy API timed faster,
// the choice recorded in the timing cache (the plan's, at build time) so later contexts only finalize the
// recorded plan; "0": the legacy API alone. For tests: "force" takes the graph path whenever it has a plan,
// and "force-fused" only plans with the node's whole epilogue in the graph (where cuDNN's pointwise fusion is
// not ReLU, the activation still runs in Kiln's kernel); both make a missing plan an error instead of a quiet
// fallback, and neither reads nor writes timing-cache records. Any other value is an error.
enum class ConvGraphMode { kOff, kAuto, kForce, kForceFused };
ConvGraphMode conv_graph_mode();
// KILN_CUDNN_GRAPH_LOG=1: one line on stderr per convolution and shape saying what was chosen and why, whether
// from a timing-cache record or by timing, and how long choosing took.
bool conv_graph_log_enabled();

}  // namespace kiln::cuda
