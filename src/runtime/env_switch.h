// Kiln's KILN_* environment switches: testing and measuring aids (turn a fusion, a tactic family or CUDA
// graphs off to compare; force a path), read where they apply. A switch is set when its variable holds
// exactly the given value; unset or any other value leaves the default.
#pragma once
#include <cstdlib>
#include <cstring>

namespace kiln {

inline bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}

}  // namespace kiln
