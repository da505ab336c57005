// The build log's line for the chain timing of near ties (runtime/chain_timing_report.h).
#include <gtest/gtest.h>

#include "runtime/chain_timing_report.h"

namespace kiln {
namespace {

TEST(ChainTimingSummary, NothingToDecideSaysNothing) { EXPECT_EQ(chain_timing_summary({}), ""); }

TEST(ChainTimingSummary, CountsTimeAndTheSwitch) {
  ChainTimingReport r;
  r.decided = 6;
  r.changed = 2;
  r.seconds = 1.24;
  EXPECT_EQ(chain_timing_summary(r),
            "chain timing: 6 near tie(s) timed in the model's chain in 1.2 s, 2 kept another tactic than timing alone "
            "chose (KILN_GEMM_CHAIN_TIES=0 turns it off)");
}

TEST(ChainTimingSummary, SaysWhatWasLeftUndecided) {
  ChainTimingReport r;
  r.left = 3;  // none decided: the budget was spent, or no memory for the executions
  const std::string s = chain_timing_summary(r);
  EXPECT_NE(s.find("0 near tie(s)"), std::string::npos) << s;
  EXPECT_NE(s.find("3 left to timing alone"), std::string::npos) << s;
}

}  // namespace
}  // namespace kiln
