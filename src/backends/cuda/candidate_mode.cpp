#include "backends/cuda/candidate_mode.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "kiln/types.h"

namespace kiln::cuda {

CandidateMode candidate_mode(const char* variable, CandidateMode unset) {
  const char* v = std::getenv(variable);
  if (!v || !*v) return unset;
  if (std::strcmp(v, "1") == 0) return CandidateMode::kAuto;
  if (std::strcmp(v, "0") == 0) return CandidateMode::kOff;
  if (std::strcmp(v, "force") == 0) return CandidateMode::kForce;
  throw Error(std::string(variable) + "=" + v + ": expected 0 (never), 1 (timed against the other paths" +
              (unset == CandidateMode::kAuto ? ", the default" : "") + ") or force (whenever eligible)" +
              (unset == CandidateMode::kOff ? "; unset is 0" : ""));
}

}  // namespace kiln::cuda
