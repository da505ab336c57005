#include "ir/attrs.h"

namespace kiln::ir {

int64_t Attrs::i(const std::string& k, int64_t def) const {
  auto it = m_.find(k);
  if (it == m_.end()) return def;
  if (auto p = std::get_if<int64_t>(&it->second)) return *p;
  if (auto p = std::get_if<double>(&it->second)) return static_cast<int64_t>(*p);
  throw Error("attribute '" + k + "' is not an integer");
}

double Attrs::f(const std::string& k, double def) const {
  auto it = m_.find(k);
  if (it == m_.end()) return def;
  if (auto p = std::get_if<double>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return static_cast<double>(*p);
  throw Error("attribute '" + k + "' is not a number");
}

std::string Attrs::s(const std::string& k, const std::string& def) const {
  auto it = m_.find(k);
  if (it == m_.end()) return def;
  if (auto p = std::get_if<std::string>(&it->second)) return *p;
  throw Error("attribute '" + k + "' is not a string");
}

std::vector<int64_t> Attrs::ints(const std::string& k, const std::vector<int64_t>& def) const {
  auto it = m_.find(k);
  if (it == m_.end()) return def;
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return {*p};
  throw Error("attribute '" + k + "' is not a list of integers");
}

std::vector<double> Attrs::floats(const std::string& k, const std::vector<double>& def) const {
  auto it = m_.find(k);
  if (it == m_.end()) return def;
  if (auto p = std::get_if<std::vector<double>>(&it->second)) return *p;
  if (auto p = std::get_if<double>(&it->second)) return {*p};
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return std::vector<double>(p->begin(), p->end());
  throw Error("attribute '" + k + "' is not a list of floats");
}

const HostTensor& Attrs::tensor(const std::string& k) const {
  auto it = m_.find(k);
  if (it == m_.end()) throw Error("missing tensor attribute '" + k + "'");
  if (auto p = std::get_if<HostTensor>(&it->second)) return *p;
  throw Error("attribute '" + k + "' is not a tensor");
}

int64_t Attrs::req_i(const std::string& k) const {
  if (!has(k)) throw Error("missing required attribute '" + k + "'");
  return i(k, 0);
}

std::vector<int64_t> Attrs::req_ints(const std::string& k) const {
  if (!has(k)) throw Error("missing required attribute '" + k + "'");
  return ints(k);
}

bool Attrs::operator==(const Attrs& o) const {
  if (m_.size() != o.m_.size()) return false;
  for (auto& [k, v] : m_) {
    auto it = o.m_.find(k);
    if (it == o.m_.end() || it->second.index() != v.index()) return false;
    bool same = std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          const T& b = std::get<T>(it->second);
          if constexpr (std::is_same_v<T, HostTensor>) return a.same_bytes(b);
          else return a == b;
        },
        v);
    if (!same) return false;
  }
  return true;
}

}  // namespace kiln::ir
