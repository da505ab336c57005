#include "cli_common.h"

#include <charconv>
#include <cstdio>
#include <limits>
#include <random>

#include "ir/host_tensor.h"  // float_to_half / float_to_bf16

namespace kiln::cli {

// ---------------------------------------------------------------------------------------------------
// ArgParser

ArgParser::ArgParser(std::string verb) : verb_(std::move(verb)) { flag("-h,--help"); }

static std::pair<std::string, std::string> split_names(const std::string& names) {
  auto comma = names.find(',');
  if (comma == std::string::npos) return {"", names};
  return {names.substr(0, comma), names.substr(comma + 1)};
}

void ArgParser::flag(const std::string& names) {
  auto [s, l] = split_names(names);
  specs_.push_back(Spec{s, l, false, false});
}

void ArgParser::option(const std::string& names, bool repeatable) {
  auto [s, l] = split_names(names);
  specs_.push_back(Spec{s, l, true, repeatable});
}

const ArgParser::Spec* ArgParser::find(const std::string& name) const {
  for (auto& s : specs_)
    if (name == s.long_name || (!s.short_name.empty() && name == s.short_name)) return &s;
  return nullptr;
}

const ArgParser::Spec& ArgParser::declared(const std::string& long_name) const {
  const Spec* s = find(long_name);
  // A programming error in a verb, not a user error.
  if (!s) throw std::logic_error("kiln " + verb_ + ": option " + long_name + " was never declared");
  return *s;
}

void ArgParser::parse(const std::vector<std::string>& args) {
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (only_positional || a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    std::string name = a, value;
    bool inline_value = false;
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
    }
    const Spec* s = find(name);
    if (!s) {
      // "-5" style values belong to no option here; treat anything else starting with '-' as a typo.
      throw UsageError("unknown option '" + name + "' for 'kiln " + verb_ + "'");
    }
    if (!s->takes_value) {
      if (inline_value) throw UsageError("option " + s->long_name + " takes no value");
      values_[s->long_name].push_back("");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError("option " + name + " needs a value");
      value = args[++i];
    }
    auto& vals = values_[s->long_name];
    if (!vals.empty() && !s->repeatable) throw UsageError("option " + s->long_name + " is given more than once");
    vals.push_back(value);
  }
}

bool ArgParser::has(const std::string& long_name) const {
  declared(long_name);
  return values_.count(long_name) != 0;
}

std::string ArgParser::get(const std::string& long_name, const std::string& fallback) const {
  declared(long_name);
  auto it = values_.find(long_name);
  return it == values_.end() || it->second.empty() ? fallback : it->second.back();
}

const std::vector<std::string>& ArgParser::all(const std::string& long_name) const {
  static const std::vector<std::string> kNone;
  declared(long_name);
  auto it = values_.find(long_name);
  return it == values_.end() ? kNone : it->second;
}

// ---------------------------------------------------------------------------------------------------
// CliLogger

void CliLogger::log(Severity severity, const char* msg) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mu_);
    if (severity <= Severity::kERROR) ++errors_;
    if (severity > min_) return;
    if (severity <= Severity::kERROR && shown_errors_.size() < 256) shown_errors_.emplace_back(msg ? msg : "");
    const char* tag = severity == Severity::kINTERNAL_ERROR ? "F"
                      : severity == Severity::kERROR        ? "E"
                      : severity == Severity::kWARNING      ? "W"
                      : severity == Severity::kINFO         ? "I"
                                                            : "V";
    std::fflush(stdout);
    std::fprintf(stderr, "[%s] %s\n", tag, msg ? msg : "");
    std::fflush(stderr);
  } catch (...) {
  }
}

bool CliLogger::error_shown(const std::string& msg) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& m : shown_errors_)
    if (m == msg || m.find(msg) != std::string::npos) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Parsing

static bool parse_i64(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (*b == '+') ++b;
  auto r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e;
}

Dims parse_dims(const std::string& s, const std::string& option) {
  Dims d;
  if (s.empty() || s == "scalar") return d;
  size_t start = 0;
  while (true) {
    size_t x = s.find_first_of("xX", start);
    std::string part = s.substr(start, x == std::string::npos ? std::string::npos : x - start);
    int64_t v;
    if (!parse_i64(part, v) || v < 0)
      throw UsageError(option + ": bad dimension '" + part + "' in '" + s +
                       "' (expected non-negative integers separated by 'x', e.g. 1x3x224x224)");
    d.push_back(v);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return d;
}

std::vector<std::pair<std::string, Dims>> parse_shape_list(const std::vector<std::string>& values,
                                                           const std::string& option) {
  std::vector<std::pair<std::string, Dims>> out;
  for (const auto& value : values) {
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? value.size() + 1 : comma + 1;
      if (item.empty()) continue;
      size_t colon = item.rfind(':');
      if (colon == std::string::npos || colon == 0)
        throw UsageError(option + ": '" + item + "' is not NAME:DIMS (e.g. input:1x3x224x224)");
      std::string name = item.substr(0, colon);
      if (name.size() >= 2 && name.front() == '\'' && name.back() == '\'') name = name.substr(1, name.size() - 2);
      Dims d = parse_dims(item.substr(colon + 1), option);
      for (auto& [n, _] : out)
        if (n == name) throw UsageError(option + ": tensor '" + name + "' is given more than once");
      out.emplace_back(name, d);
    }
  }
  return out;
}

int64_t parse_int(const std::string& s, const std::string& option, int64_t min, int64_t max) {
  int64_t v;
  if (!parse_i64(s, v)) throw UsageError(option + ": '" + s + "' is not an integer");
  if (v < min || v > max)
    throw UsageError(option + ": " + s + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return v;
}

uint64_t parse_bytes(const std::string& s, const std::string& option) {
  std::string num = s;
  uint64_t mult = 1;
  auto ends = [&](const std::string& suf) {
    if (num.size() > suf.size() && num.compare(num.size() - suf.size(), suf.size(), suf) == 0) {
      num.resize(num.size() - suf.size());
      return true;
    }
    return false;
  };
  if (!ends("iB")) ends("B");
  if (ends("K") || ends("k")) mult = 1ull << 10;
  else if (ends("M") || ends("m")) mult = 1ull << 20;
  else if (ends("G") || ends("g")) mult = 1ull << 30;
  else if (ends("T") || ends("t")) mult = 1ull << 40;
  int64_t v;
  if (!parse_i64(num, v) || v < 0)
    throw UsageError(option + ": '" + s + "' is not a byte count (e.g. 1073741824, 512M, 1G)");
  if (static_cast<uint64_t>(v) > std::numeric_limits<uint64_t>::max() / mult)
    throw UsageError(option + ": '" + s + "' is too large");
  return static_cast<uint64_t>(v) * mult;
}

// ---------------------------------------------------------------------------------------------------
// Formatting

std::string dims_x(const Dims& d) {
  if (d.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(d[i]);
  }
  return s;
}

std::string format_bytes(uint64_t n) {
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return std::to_string(n) + " bytes";
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s (%llu bytes)", v, units[u], static_cast<unsigned long long>(n));
  return buf;
}

std::string format_ms(double ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f ms", ms);
  return buf;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += sep;
    s += v[i];
  }
  return s;
}

static uint64_t name_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void fill_random(uint8_t* dst, DataType dt, int64_t n, uint64_t seed, const std::string& name) {
  std::mt19937_64 rng(seed ^ name_hash(name));
  // Mapped by hand (not std::uniform_*_distribution) so that a seed gives the same data everywhere.
  auto unit = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };  // [0, 1)
  auto uf = [&] { return static_cast<float>(2.0 * unit() - 1.0); };
  auto ui = [&] { return static_cast<int64_t>(rng() % 100); };
  for (int64_t i = 0; i < n; ++i) {
    switch (dt) {
      case DataType::kFLOAT: reinterpret_cast<float*>(dst)[i] = uf(); break;
      case DataType::kDOUBLE: reinterpret_cast<double*>(dst)[i] = 2.0 * unit() - 1.0; break;
      case DataType::kHALF: reinterpret_cast<uint16_t*>(dst)[i] = float_to_half(uf()); break;
      case DataType::kBF16: reinterpret_cast<uint16_t*>(dst)[i] = float_to_bf16(uf()); break;
      case DataType::kINT8: reinterpret_cast<int8_t*>(dst)[i] = static_cast<int8_t>(ui()); break;
      case DataType::kUINT8: dst[i] = static_cast<uint8_t>(ui()); break;
      case DataType::kINT32: reinterpret_cast<int32_t*>(dst)[i] = static_cast<int32_t>(ui()); break;
      case DataType::kINT64: reinterpret_cast<int64_t*>(dst)[i] = ui(); break;
      case DataType::kBOOL: dst[i] = static_cast<uint8_t>(rng() & 1); break;
      default:
        throw Error("input '" + name + "' has dtype " + dtype_name(dt) + ", for which random data cannot be made");
    }
  }
}


}  // namespace kiln::cli
