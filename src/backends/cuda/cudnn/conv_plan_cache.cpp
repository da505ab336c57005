#include "backends/cuda/cudnn/conv_plan_cache.h"

#include <cudnn.h>

#include <cstdlib>
#include <cstring>

#include "backends/cuda/cudnn/conv_graph.h"
#include "kiln/types.h"

namespace kiln::cuda {

namespace {

// The first release whose documentation has plans executed through a handle other than the one that made
// them (deviceless ahead-of-time compilation).
constexpr size_t kFirstSharingRelease = 90800;

constexpr const char* kVariable = "KILN_CUDNN_SHARE_PLANS";

}  // namespace

// Owns a cuDNN handle: destroyed with the last plan finalized with it (and the cache).
struct CudnnHandleOwner {
  cudnnHandle_t handle = nullptr;
  ~CudnnHandleOwner() {
    if (handle) cudnnDestroy(handle);
  }
};

ConvPlanCache::ConvPlanCache() = default;
ConvPlanCache::~ConvPlanCache() = default;  // the plans first, then (with the last of them) the handle

std::unique_ptr<ConvGraphPlan> ConvPlanCache::find_or_build(const std::string& key, const Build& build,
                                                            std::string* why) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = plans_.find(key); it != plans_.end()) return it->second->share();
  if (!handle_) {
    auto owner = std::make_shared<CudnnHandleOwner>();
    const cudnnStatus_t s = cudnnCreate(&owner->handle);
    if (s != CUDNN_STATUS_SUCCESS) {
      owner->handle = nullptr;
      *why += std::string("the shared plans' cuDNN handle: ") + cudnnGetErrorString(s) + "; ";
      return nullptr;
    }
    handle_ = std::move(owner);
  }
  std::unique_ptr<ConvGraphPlan> plan = build(handle_->handle, why);
  if (!plan) return nullptr;
  plan->keep_alive(handle_);
  std::unique_ptr<ConvGraphPlan> shared = plan->share();
  plans_.emplace(key, std::move(plan));
  return shared;
}

size_t ConvPlanCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_.size();
}

bool conv_plan_sharing_enabled() {
  const char* v = std::getenv(kVariable);
  bool wanted = true;
  if (v && *v) {
    if (std::strcmp(v, "0") == 0) wanted = false;
    else if (std::strcmp(v, "1") != 0)
      throw Error(std::string(kVariable) + "=" + v +
                  ": expected 1 (the default: execution contexts of one engine share finalized cuDNN plans) or 0 "
                  "(each context finalizes its own)");
  }
  return wanted && cudnnGetVersion() >= kFirstSharingRelease;
}

}  // namespace kiln::cuda
