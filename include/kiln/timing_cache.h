// TensorRT's ITimingCache: the tactics (library algorithms) that GPU kernels chose by timing, each keyed by
// the exact problem it solves (op, shapes, dtypes, layout, GPU, library version). A build seeded with a
// cache reuses its records instead of timing again, and adds what it timed; a plan carries the records of
// its own layers, so its contexts start without timing. serialize() and the bytes constructor round-trip
// through a versioned, checked format (layout in src/runtime/timing_cache.cpp).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class TimingCache {
 public:
  TimingCache() = default;
  // Throws kiln::Error naming what is wrong when `bytes` is not a serialized cache (empty bytes: empty cache).
  explicit TimingCache(const std::vector<uint8_t>& bytes);
  TimingCache(const TimingCache& other);
  TimingCache& operator=(const TimingCache& other);

  // This cache's record of the key, else the fallback's (copied here, so that a plan's cache built over a
  // seeded timing cache ends up with exactly the records its layers used).
  std::optional<std::string> find(const std::string& key);
  void set_fallback(std::shared_ptr<TimingCache> fallback);
  // Keeps the first record of a key: a tactic, once timed, stays (concurrent contexts may time the same
  // problem; either result is a valid choice).
  void record(const std::string& key, const std::string& tactic);
  // Sets the key's record whatever it held: for the build's chain timing (backends/cuda/chain_tactics.cpp),
  // which tries each of a few tactics that tied when timed alone, and keeps the one the whole model runs fastest
  // with.
  void replace(const std::string& key, const std::string& tactic);
  // Adds the other cache's records whose keys this one lacks.
  void combine(const TimingCache& other);
  void reset();
  size_t size() const;
  std::vector<uint8_t> serialize() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> entries_;
  std::shared_ptr<TimingCache> fallback_;
};

}  // namespace kiln
