// The CUDA backend's per-engine state, in EngineData::backend: made on first use and shared by every
// execution context of the engine, never part of the plan. Holds the device copy of the weights
// (device_weights.h) and the finalized cuDNN plans the contexts share (cudnn/conv_plan_cache.h).
#pragma once
#include <memory>

#include "runtime/engine_data.h"

namespace kiln::cuda {

class ConvPlanCache;

// The engine's shared cuDNN plans; null when contexts do not share them (conv_plan_sharing_enabled, read here,
// so when a context is made). Throws kiln::Error for a bad KILN_CUDNN_SHARE_PLANS.
std::shared_ptr<ConvPlanCache> conv_plan_cache(const EngineData& engine);

}  // namespace kiln::cuda
