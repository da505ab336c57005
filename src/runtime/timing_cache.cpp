// Serialized layout (little-endian):
//   magic "KLTC" | version u32 (1) | count u32 | count x (key_len u32 | key bytes | tactic_len u32 | tactic bytes)
// Keys are unique and at most kMaxKey bytes, tactics at most kMaxTactic: a corrupt length is caught before
// any allocation.
#include "kiln/timing_cache.h"

#include <cstring>

#include "kiln/types.h"

namespace kiln {

namespace {

constexpr char kMagic[4] = {'K', 'L', 'T', 'C'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxKey = 4096, kMaxTactic = 1 << 16;

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(b_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  std::string bytes(uint32_t max, const char* what) {
    uint32_t n = u32(what);
    if (n > max)
      throw Error(std::string("timing cache is corrupt: ") + what + " of " + std::to_string(n) + " bytes (at most " +
                  std::to_string(max) + ")");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  bool at_end() const { return pos_ == b_.size(); }
  size_t pos() const { return pos_; }

 private:
  void need(size_t n, const char* what) const {
    if (b_.size() - pos_ < n)
      throw Error(std::string("timing cache is truncated: ") + what + " at byte " + std::to_string(pos_) + " needs " +
                  std::to_string(n) + " bytes, " + std::to_string(b_.size() - pos_) + " left");
  }
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
};

}  // namespace

TimingCache::TimingCache(const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return;
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, 4) != 0)
    throw Error("not a Kiln timing cache (it does not start with \"KLTC\")");
  std::vector<uint8_t> rest(bytes.begin() + 4, bytes.end());
  Reader r(rest);
  uint32_t version = r.u32("the version");
  if (version != kVersion)
    throw Error("timing cache format version " + std::to_string(version) + " is not supported (this Kiln reads " +
                std::to_string(kVersion) + ")");
  uint32_t count = r.u32("the record count");
  for (uint32_t i = 0; i < count; ++i) {
    std::string key = r.bytes(kMaxKey, "a key");
    std::string tactic = r.bytes(kMaxTactic, "a tactic");
    if (!entries_.emplace(std::move(key), std::move(tactic)).second)
      throw Error("timing cache is corrupt: record " + std::to_string(i) + " repeats a key");
  }
  if (!r.at_end())
    throw Error("timing cache has " + std::to_string(rest.size() - r.pos()) + " bytes of trailing data");
}

TimingCache::TimingCache(const TimingCache& other) {
  std::lock_guard<std::mutex> lock(other.mu_);
  entries_ = other.entries_;
}

TimingCache& TimingCache::operator=(const TimingCache& other) {
  if (this == &other) return *this;
  std::map<std::string, std::string> copy;
  {
    std::lock_guard<std::mutex> lock(other.mu_);
    copy = other.entries_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_ = std::move(copy);
  return *this;
}

std::optional<std::string> TimingCache::find(const std::string& key) {
  std::shared_ptr<TimingCache> fallback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
    fallback = fallback_;
  }
  if (!fallback) return std::nullopt;
  std::optional<std::string> found = fallback->find(key);  // no lock held: the two caches never lock together
  if (found) record(key, *found);
  return found;
}

void TimingCache::set_fallback(std::shared_ptr<TimingCache> fallback) {
  if (fallback.get() == this) throw Error("a timing cache cannot be its own fallback");
  std::lock_guard<std::mutex> lock(mu_);
  fallback_ = std::move(fallback);
}

namespace {
// A record the serialized format can hold (its lengths are stored in fixed-width fields).
void check_record_sizes(const std::string& key, const std::string& tactic) {
  if (key.size() > kMaxKey || tactic.size() > kMaxTactic)
    throw Error("timing cache: a record's key (" + std::to_string(key.size()) + " bytes) or tactic (" +
                std::to_string(tactic.size()) + " bytes) is too long");
}
}  // namespace

void TimingCache::record(const std::string& key, const std::string& tactic) {
  check_record_sizes(key, tactic);
  std::lock_guard<std::mutex> lock(mu_);
  entries_.emplace(key, tactic);
}

void TimingCache::replace(const std::string& key, const std::string& tactic) {
  check_record_sizes(key, tactic);
  std::lock_guard<std::mutex> lock(mu_);
  entries_[key] = tactic;
}

void TimingCache::combine(const TimingCache& other) {
  if (this == &other) return;
  TimingCache copy(other);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, v] : copy.entries_) entries_.emplace(k, v);
}

void TimingCache::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

size_t TimingCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::vector<uint8_t> TimingCache::serialize() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  put_u32(out, kVersion);
  put_u32(out, static_cast<uint32_t>(entries_.size()));
  for (auto& [k, v] : entries_) {
    put_u32(out, static_cast<uint32_t>(k.size()));
    out.insert(out.end(), k.begin(), k.end());
    put_u32(out, static_cast<uint32_t>(v.size()));
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace kiln
