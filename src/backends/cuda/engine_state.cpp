#include "backends/cuda/engine_state.h"

#include "backends/cuda/cudnn/conv_plan_cache.h"
#include "backends/cuda/device_weights.h"

namespace kiln::cuda {

namespace {

struct CudaEngineState {
  std::shared_ptr<const DeviceWeights> weights;
  std::shared_ptr<ConvPlanCache> conv_plans;
};

// The engine's state, made on first use; the caller holds the engine's backend mutex.
CudaEngineState& state_of(const EngineData& engine) {
  std::shared_ptr<void>& slot = engine.backend->state;
  if (!slot) slot = std::make_shared<CudaEngineState>();
  return *static_cast<CudaEngineState*>(slot.get());
}

}  // namespace

std::shared_ptr<const DeviceWeights> device_weights(const EngineData& engine) {
  std::lock_guard<std::mutex> lock(engine.backend->mutex);
  CudaEngineState& s = state_of(engine);
  if (!s.weights) s.weights = std::make_shared<DeviceWeights>(*engine.graph);
  return s.weights;
}

std::shared_ptr<ConvPlanCache> conv_plan_cache(const EngineData& engine) {
  if (!conv_plan_sharing_enabled()) return nullptr;
  std::lock_guard<std::mutex> lock(engine.backend->mutex);
  CudaEngineState& s = state_of(engine);
  if (!s.conv_plans) s.conv_plans = std::make_shared<ConvPlanCache>();
  return s.conv_plans;
}

}  // namespace kiln::cuda
