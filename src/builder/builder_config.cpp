#include "kiln/builder.h"

namespace kiln {

bool OptimizationProfile::set_shape(const std::string& input, const Dims& min, const Dims& opt, const Dims& max) {
  if (min.size() != opt.size() || opt.size() != max.size()) {
    last_error = "set_shape('" + input + "'): min " + dims_str(min) + ", opt " + dims_str(opt) + " and max " +
                 dims_str(max) + " must have the same rank";
    return false;
  }
  for (size_t i = 0; i < min.size(); ++i) {
    if (min[i] < 0 || !(min[i] <= opt[i] && opt[i] <= max[i])) {
      last_error = "set_shape('" + input + "'): need 0 <= min <= opt <= max in every dimension, got min " +
                   dims_str(min) + ", opt " + dims_str(opt) + ", max " + dims_str(max);
      return false;
    }
  }
  shapes_[input] = {min, opt, max};
  return true;
}

std::vector<Dims> OptimizationProfile::get_shape(const std::string& input) const {
  auto it = shapes_.find(input);
  return it == shapes_.end() ? std::vector<Dims>{} : it->second;
}

BuilderConfig::BuilderConfig() {
  pools_[MemoryPoolType::kWORKSPACE] = 1ull << 40;  // effectively unlimited until the user sets it
  pools_[MemoryPoolType::kTACTIC_SHARED_MEMORY] = 48 * 1024;
  set_flag(BuilderFlag::kTF32);
}

uint64_t BuilderConfig::get_memory_pool_limit(MemoryPoolType pool) const {
  auto it = pools_.find(pool);
  return it == pools_.end() ? 0 : it->second;
}

int BuilderConfig::add_optimization_profile(const OptimizationProfile& p) {
  if (!p.is_valid()) return -1;
  profiles_.push_back(p);
  return static_cast<int>(profiles_.size()) - 1;
}

}  // namespace kiln
