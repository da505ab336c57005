// How a kernel's optional timed candidate is used, read from its environment switch. The convolution kernel
// has two such candidates (the 1x1 cuBLASLt GEMM, KILN_CONV_GEMM; the narrow-input kernel, KILN_CONV_NARROW),
// and both switches take the same values:
//   unset or "1"  kAuto: one more candidate, timed against the other paths (the default);
//   "0"           kOff: never considered (A/B runs against the default);
//   "force"       kForce: taken whenever the node is eligible, nothing timed or recorded (tests).
#pragma once

namespace kiln::cuda {

enum class CandidateMode { kOff, kAuto, kForce };

// The switch `variable`'s mode; any other value throws kiln::Error naming the variable and the values.
CandidateMode candidate_mode(const char* variable);

}  // namespace kiln::cuda
