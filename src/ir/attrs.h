// Node attributes: a small ordered map from name to a tagged value. Every op keeps its parameters
// here, so passes, the plan writer and the Python layer handle all ops the same way.
#pragma once
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "ir/host_tensor.h"

namespace kiln::ir {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>, HostTensor>;

class Attrs {
 public:
  bool has(const std::string& k) const { return m_.count(k) != 0; }
  void erase(const std::string& k) { m_.erase(k); }

  int64_t i(const std::string& k, int64_t def) const;
  double f(const std::string& k, double def) const;
  std::string s(const std::string& k, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& k, const std::vector<int64_t>& def = {}) const;
  std::vector<double> floats(const std::string& k, const std::vector<double>& def = {}) const;
  const HostTensor& tensor(const std::string& k) const;  // throws when absent

  // Strict getters: throw kiln::Error naming the attribute when absent.
  int64_t req_i(const std::string& k) const;
  std::vector<int64_t> req_ints(const std::string& k) const;

  void set(const std::string& k, int64_t v) { m_[k] = v; }
  void set(const std::string& k, int v) { m_[k] = static_cast<int64_t>(v); }
  void set(const std::string& k, bool v) { m_[k] = static_cast<int64_t>(v); }
  void set(const std::string& k, double v) { m_[k] = v; }
  void set(const std::string& k, float v) { m_[k] = static_cast<double>(v); }
  void set(const std::string& k, std::string v) { m_[k] = std::move(v); }
  void set(const std::string& k, const char* v) { m_[k] = std::string(v); }
  void set(const std::string& k, std::vector<int64_t> v) { m_[k] = std::move(v); }
  void set(const std::string& k, std::vector<double> v) { m_[k] = std::move(v); }
  void set(const std::string& k, HostTensor v) { m_[k] = std::move(v); }
  void set_value(const std::string& k, AttrValue v) { m_[k] = std::move(v); }

  const std::map<std::string, AttrValue>& all() const { return m_; }
  bool operator==(const Attrs& o) const;

 private:
  std::map<std::string, AttrValue> m_;
};

}  // namespace kiln::ir
