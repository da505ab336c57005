// KILN_CUDNN_SHARE_PLANS (cudnn/conv_plan_cache.h): "0" gives each context its own cuDNN plans, unset or "1"
// shares them (where cuDNN is 9.8 or later), and any other value is an error naming the variable. Runs
// without a GPU; the sharing itself is CudaConvGraph.ContextsShareTheRecordedPlan's (a GPU test).
#ifdef KILN_WITH_CUDA
#include <string>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cudnn/conv_plan_cache.h"

namespace kiln {
namespace {

using cudatest::ScopedEnv;

constexpr const char* kVar = "KILN_CUDNN_SHARE_PLANS";

TEST(ConvPlanSharing, ZeroTurnsItOffAndOneIsTheDefault) {
  bool by_default = false;
  {
    ScopedEnv e(kVar, nullptr);
    by_default = cuda::conv_plan_sharing_enabled();
  }
  for (const char* same : {"", "1"}) {
    ScopedEnv e(kVar, same);
    EXPECT_EQ(cuda::conv_plan_sharing_enabled(), by_default) << "'" << same << "'";
  }
  ScopedEnv off(kVar, "0");
  EXPECT_FALSE(cuda::conv_plan_sharing_enabled());
}

TEST(ConvPlanSharing, OtherValuesAreErrorsNamingTheSwitch) {
  for (const char* bad : {"off", "true", "2", " 1"}) {
    ScopedEnv e(kVar, bad);
    try {
      cuda::conv_plan_sharing_enabled();
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const Error& ex) {
      const std::string what = ex.what();
      EXPECT_NE(what.find(std::string(kVar) + "=" + bad), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
