// Where a pass stands in a pipeline, for the tests that pin a pass's place (after the pass that writes what it
// reads, before the one that would take it away) and its switch.
#pragma once
#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace kiln::fusetest {

inline std::vector<std::string> pass_names(const std::vector<std::unique_ptr<passes::Pass>>& pipeline) {
  std::vector<std::string> r;
  for (auto& p : pipeline) r.push_back(p->name());
  return r;
}

// The index of `name` in `names`, or -1 when the pipeline does not run it.
inline ptrdiff_t pass_position(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : it - names.begin();
}

}  // namespace kiln::fusetest
