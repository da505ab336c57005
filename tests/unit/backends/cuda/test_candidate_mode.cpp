// candidate_mode: the values of a kernel's candidate switch (KILN_CONV_GEMM, KILN_CONV_NARROW), and the error
// for any other, which names the variable and the values it takes.
#ifdef KILN_WITH_CUDA
#include <string>

#include "backends/cuda/candidate_mode.h"
#include "backends/cuda/cuda_op_harness.h"

namespace kiln {
namespace {

using cuda::CandidateMode;
using cudatest::ScopedEnv;

constexpr const char* kVar = "KILN_TEST_CANDIDATE_SWITCH";

TEST(CandidateMode, Values) {
  struct Case {
    const char* value;  // nullptr: unset
    CandidateMode mode;
  };
  for (const Case& c : {Case{nullptr, CandidateMode::kAuto}, Case{"", CandidateMode::kAuto},
                        Case{"1", CandidateMode::kAuto}, Case{"0", CandidateMode::kOff},
                        Case{"force", CandidateMode::kForce}}) {
    ScopedEnv e(kVar, c.value);
    EXPECT_EQ(cuda::candidate_mode(kVar), c.mode) << (c.value ? c.value : "(unset)");
  }
}

TEST(CandidateMode, OtherValuesAreErrorsNamingTheSwitch) {
  for (const char* bad : {"off", "true", "Force", "2", " 1"}) {
    ScopedEnv e(kVar, bad);
    try {
      cuda::candidate_mode(kVar);
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const Error& ex) {
      const std::string what = ex.what();
      EXPECT_NE(what.find(std::string(kVar) + "=" + bad), std::string::npos) << what;
      EXPECT_NE(what.find("force"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
