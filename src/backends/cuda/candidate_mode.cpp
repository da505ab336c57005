#include "backends/cuda/candidate_mode.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "kiln/types.h"

namespace kiln::cuda {

CandidateMode candidate_mode(const char* variable) {
  const char* v = std::getenv(variable);
  if (!v || !*v || std::strcmp(v, "1") == 0) return CandidateMode::kAuto;
  if (std::strcmp(v, "0") == 0) return CandidateMode::kOff;
  if (std::strcmp(v, "force") == 0) return CandidateMode::kForce;
  throw Error(std::string(variable) + "=" + v +
              ": expected 0 (never), 1 (the default: timed against the other paths) or force (whenever eligible)");
}

}  // namespace kiln::cuda
