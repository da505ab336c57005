// Builds generated CUDA source with plain string appends. Not an ostringstream on purpose: iostream
// formatting consults the process-wide C++ locale, which the host application owns (Python and its
// extension modules can set it); on the GPU machine, number formatting through an ostringstream inside
// the Python process crashed in the locale's facets while the same code ran in a plain C++ test binary.
// Integers go through std::to_string, which does not depend on the C++ locale.
#pragma once
#include <string>
#include <type_traits>

namespace kiln::cuda {

class SourceWriter {
 public:
  SourceWriter& operator<<(const std::string& x) {
    s_ += x;
    return *this;
  }
  SourceWriter& operator<<(const char* x) {
    s_ += x;
    return *this;
  }
  SourceWriter& operator<<(char c) {
    s_ += c;
    return *this;
  }
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char>, int> = 0>
  SourceWriter& operator<<(T v) {
    s_ += std::to_string(v);
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

}  // namespace kiln::cuda
