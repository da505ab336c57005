// Finalized cuDNN graph plans shared by every execution context of one engine.
//
// Why: a context follows the plan's recorded choice for each convolution (conv_graph_record.h) and so
// finalizes that one plan, but finalizing is most of what a context's first run costs where cuDNN compiles
// its kernels at run time: MobileNetV2 at batch 128 took 3.3 s to a fresh context's first run on the H200
// (twenty-third session). Each further context paid it again, and so did each of the build's chain-timing
// executions (chain_tactics.h), 3-4 a near tie. With the cache, the first context of an engine that follows a
// record finalizes the plan and later ones share it (ConvGraphPlan::share): their own variant pack, the same
// finalized plan.
//
// Plans here are finalized with the cache's own cuDNN handle, made on first use on the current device and
// kept while any plan made with it lives; contexts execute them through their own handles (conv_graph.h says
// why that is allowed from cuDNN 9.8 on). Finalizing is serialized by the cache, as one handle must not be used
// by two threads at once. The cache lives in the engine's CUDA state (engine_state.h), so its plans go with the
// engine; the plans a context's first run times before choosing stay that context's own.
//
// KILN_CUDNN_SHARE_PLANS: unset or "1" shares (with cuDNN 9.8 or later; earlier releases never do), "0" gives
// each context its own plans as before (the A/B). Any other value is an error naming the variable.
//
// No cuDNN header is needed to use it (the kernel tests make one for their contexts).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

typedef struct cudnnContext* cudnnHandle_t;

namespace kiln::cuda {

class ConvGraphPlan;    // conv_graph.h
struct CudnnHandleOwner;  // conv_plan_cache.cpp

class ConvPlanCache {
 public:
  ConvPlanCache();
  ~ConvPlanCache();
  ConvPlanCache(const ConvPlanCache&) = delete;
  ConvPlanCache& operator=(const ConvPlanCache&) = delete;

  // The plan kept under `key` (which must name everything the plan depends on: the problem, the epilogue the
  // graph computes, the engine configuration, the workspace it may use), shared; else the one `build` finalizes
  // with the cache's handle, kept and shared. Null, with build's reason in *why, when it finalizes none; a
  // failure is not kept, so a later context tries again.
  using Build = std::function<std::unique_ptr<ConvGraphPlan>(cudnnHandle_t handle, std::string* why)>;
  std::unique_ptr<ConvGraphPlan> find_or_build(const std::string& key, const Build& build, std::string* why);

  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<CudnnHandleOwner> handle_;  // the cuDNN handle every plan here was finalized with
  std::map<std::string, std::unique_ptr<ConvGraphPlan>> plans_;  // each kept plan's first holder
};

// Whether contexts share finalized plans (KILN_CUDNN_SHARE_PLANS, and the cuDNN release; the top of the file).
// Throws kiln::Error for a value other than unset, "0" or "1".
bool conv_plan_sharing_enabled();

}  // namespace kiln::cuda
