// Building: Builder turns a Network and a BuilderConfig into a serialized plan.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/logger.h"
#include "kiln/network.h"
#include "kiln/timing_cache.h"
#include "kiln/types.h"

namespace kiln {

enum class MemoryPoolType : int32_t {
  kWORKSPACE = 0, kDLA_MANAGED_SRAM = 1, kDLA_LOCAL_DRAM = 2, kDLA_GLOBAL_DRAM = 3, kTACTIC_DRAM = 4,
  kTACTIC_SHARED_MEMORY = 5
};

// Values follow TensorRT's BuilderFlag numbering.
enum class BuilderFlag : int32_t {
  kFP16 = 0, kINT8 = 1, kDEBUG = 2, kGPU_FALLBACK = 3, kREFIT = 5, kDISABLE_TIMING_CACHE = 6, kTF32 = 7,
  kSPARSE_WEIGHTS = 8, kSAFETY_SCOPE = 9, kOBEY_PRECISION_CONSTRAINTS = 10, kPREFER_PRECISION_CONSTRAINTS = 11,
  kDIRECT_IO = 12, kREJECT_EMPTY_ALGORITHMS = 13, kVERSION_COMPATIBLE = 14, kEXCLUDE_LEAN_RUNTIME = 15,
  kFP8 = 16, kERROR_ON_TIMING_CACHE_MISS = 17, kBF16 = 18
};

enum class DeviceType : int32_t { kGPU = 0, kDLA = 1, kCPU = 64 };

class OptimizationProfile {
 public:
  // Returns false (and keeps the profile unchanged) when min <= opt <= max does not hold.
  bool set_shape(const std::string& input, const Dims& min, const Dims& opt, const Dims& max);
  bool has(const std::string& input) const { return shapes_.count(input) != 0; }
  std::vector<Dims> get_shape(const std::string& input) const;  // [min, opt, max] or empty
  bool is_valid() const { return !shapes_.empty() && valid_; }
  const std::map<std::string, std::vector<Dims>>& shapes() const { return shapes_; }
  std::string last_error;

 private:
  std::map<std::string, std::vector<Dims>> shapes_;
  bool valid_ = true;
};

// TensorRT 10's IProgressMonitor: the builder reports nested phases and their steps while it builds, so a
// person (or `kiln build`'s progress bar) can follow a long build. Calls come from the building thread.
class IProgressMonitor {
 public:
  virtual ~IProgressMonitor() = default;
  // parent_phase is nullptr for a top-level phase.
  virtual void phase_start(const char* phase_name, const char* parent_phase, int32_t num_steps) noexcept = 0;
  // Step `step` (0-based) of the phase is done. Returning false cancels the build: build_serialized_network
  // then fails and logs that the monitor canceled it.
  virtual bool step_complete(const char* phase_name, int32_t step) noexcept = 0;
  virtual void phase_finish(const char* phase_name) noexcept = 0;
};

class BuilderConfig {
 public:
  BuilderConfig();
  void set_memory_pool_limit(MemoryPoolType pool, uint64_t bytes) { pools_[pool] = bytes; }
  uint64_t get_memory_pool_limit(MemoryPoolType pool) const;
  void set_flag(BuilderFlag f) { flags_ |= 1ull << static_cast<int>(f); }
  void clear_flag(BuilderFlag f) { flags_ &= ~(1ull << static_cast<int>(f)); }
  bool get_flag(BuilderFlag f) const { return (flags_ >> static_cast<int>(f)) & 1; }
  uint64_t flags() const { return flags_; }
  void set_flags(uint64_t f) { flags_ = f; }
  int add_optimization_profile(const OptimizationProfile& p);  // index, or -1 when invalid
  const std::vector<OptimizationProfile>& profiles() const { return profiles_; }
  DeviceType default_device_type = DeviceType::kGPU;
  int builder_optimization_level = 3;
  int avg_timing_iterations = 1;
  int profiling_verbosity = 0;
  IProgressMonitor* progress_monitor = nullptr;  // not owned
  // Seeds a GPU build's tactics and receives the ones it times (unless kDISABLE_TIMING_CACHE). Shared, so
  // one cache serves several builds (TensorRT's config.set_timing_cache).
  std::shared_ptr<TimingCache> timing_cache;

 private:
  std::map<MemoryPoolType, uint64_t> pools_;
  uint64_t flags_ = 0;
  std::vector<OptimizationProfile> profiles_;
};

class Builder {
 public:
  explicit Builder(ILogger* logger) : logger_(logger) {}
  ILogger* logger() const { return logger_; }
  std::unique_ptr<Network> create_network(uint32_t flags = 0) { return std::make_unique<Network>(logger_, flags); }
  // The serialized plan, or an empty vector when the build fails (the reason is logged).
  std::vector<uint8_t> build_serialized_network(Network& network, const BuilderConfig& config);
  bool platform_has_fast_fp16() const { return false; }
  bool platform_has_fast_int8() const { return false; }
  bool platform_has_tf32() const { return false; }
  int max_threads = 0;

 private:
  ILogger* logger_;
};

}  // namespace kiln
