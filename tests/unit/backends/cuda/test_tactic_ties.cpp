// The rules of the build's chain timing (backends/cuda/tactic_ties.h) that need no GPU: which timed candidates
// tie, which tactic the model's times keep, the margin switch, and the registry. The timing itself runs in
// tests/gpu/test_gpu_chain_ties.py.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends/cuda/tactic_ties.h"
#include "kiln/types.h"
#include "scoped_env.h"

namespace kiln {
namespace {

using Timed = std::vector<std::pair<std::string, float>>;
using Strings = std::vector<std::string>;

TEST(NearTies, GptTwoMlpProjection) {
  // Call 6 of the twentieth session, mlp c_proj: cuBLASLt 7.9 us, the split-K tiles less their 0.5 us credit.
  const Timed timed = {{"cuBLASLt", 7.9e-3f},         {"64x32 x4", 8.7e-3f}, {"64x64 x4", 8.0e-3f},
                       {"64x64 x8", 8.2e-3f},         {"128x64 x4", 10.4e-3f}, {"128x64 x8", 7.9e-3f},
                       {"128x64 x1", 29.7e-3f}};
  EXPECT_EQ(cuda::near_ties(timed, 0.05f, 3), (Strings{"cuBLASLt", "128x64 x8", "64x64 x4"}))
      << "fastest first; of equal times the one timed first, as the kernel chooses";
  EXPECT_EQ(cuda::near_ties(timed, 0.05f, 10), (Strings{"cuBLASLt", "128x64 x8", "64x64 x4", "64x64 x8"}));
  EXPECT_EQ(cuda::near_ties(timed, 0.f, 10), (Strings{"cuBLASLt", "128x64 x8"}));
}

TEST(NearTies, VitAttentionProjectionIsTriedAtTheDefaultMargin) {
  // Call 4 of the twenty-first session, ViT-B/16's 197 x 768 x 768 with the residual: cuBLASLt 5.2 us, the
  // split-K tiles less their 0.5 us credit. Kiln's 64x64 x4, 15% behind alone, ran the model 1.4% faster.
  const Timed timed = {{"cuBLASLt", 5.2e-3f}, {"64x32 x1", 6.1e-3f}, {"64x64 x2", 6.1e-3f},
                       {"64x64 x4", 6.0e-3f}, {"128x64 x4", 6.1e-3f}, {"128x64 x1", 11.0e-3f}};
  EXPECT_EQ(cuda::near_ties(timed, cuda::kChainTieMargin, cuda::kChainTieMaxTactics),
            (Strings{"cuBLASLt", "64x64 x4", "64x32 x1"}));
  EXPECT_EQ(cuda::near_ties(timed, 0.05f, 3), (Strings{"cuBLASLt"})) << "the old 5% left it out";
  // GPT-2's c_fc (128 x 3072 x 768): cuBLASLt 5.7 us, Kiln's best 9.2 less 0.5 (53% behind): no tie.
  EXPECT_EQ(cuda::near_ties({{"cuBLASLt", 5.7e-3f}, {"64x32 x2", 8.7e-3f}}, cuda::kChainTieMargin, 3),
            (Strings{"cuBLASLt"}));
}

TEST(NearTies, FailedCandidatesAndClearWinners) {
  EXPECT_EQ(cuda::near_ties({{"a", -1.f}, {"b", 5.f}, {"c", 5.1f}}, 0.05f, 3), (Strings{"b", "c"}))
      << "a failed candidate is never tried";
  EXPECT_EQ(cuda::near_ties({{"a", 4.f}, {"b", 5.f}}, 0.05f, 3), (Strings{"a"})) << "no tie: one tactic";
  EXPECT_TRUE(cuda::near_ties({{"a", -1.f}}, 0.05f, 3).empty());
  EXPECT_TRUE(cuda::near_ties({}, 0.05f, 3).empty());
}

TEST(ChainChoice, KeepsTheAloneChoiceUnlessAnotherIsClearlyFaster) {
  // Call 6's model times (ms): 128x64 x8 (chosen alone) against 64x64 x4.
  EXPECT_EQ(cuda::chain_choice({{0.3837f, 0.3876f, 0.3843f, 0.3861f, 0.3831f, 0.3813f},
                                {0.3793f, 0.3804f, 0.3789f, 0.3797f, 0.3796f, 0.3787f}}),
            1u);
  EXPECT_EQ(cuda::chain_choice({{0.400f, 0.401f}, {0.3995f, 0.3992f}}), 0u) << "0.2% is within the noise";
  EXPECT_EQ(cuda::chain_choice({{0.400f}, {0.390f}, {0.380f}, {0.395f}}), 2u) << "the lowest median";
  EXPECT_EQ(cuda::chain_choice({{0.400f}, {}}), 0u) << "a tactic with no times";
  EXPECT_EQ(cuda::chain_choice({}), 0u);
}

TEST(ChainChoice, MedianOfRounds) {
  EXPECT_FLOAT_EQ(cuda::median_ms({3.f, 1.f, 2.f}), 2.f);
  EXPECT_FLOAT_EQ(cuda::median_ms({4.f, 1.f, 2.f, 3.f}), 2.5f);
  EXPECT_FLOAT_EQ(cuda::median_ms({}), 0.f);
}

TEST(ChainTies, SwitchAndMarginValues) {
  {
    testenv::ScopedEnv unset("KILN_GEMM_CHAIN_TIES", nullptr);
    EXPECT_TRUE(cuda::chain_ties_enabled()) << "on by default";
  }
  {
    testenv::ScopedEnv on("KILN_GEMM_CHAIN_TIES", "1");
    EXPECT_TRUE(cuda::chain_ties_enabled());
  }
  {
    testenv::ScopedEnv off("KILN_GEMM_CHAIN_TIES", "0");
    EXPECT_FALSE(cuda::chain_ties_enabled());
  }
  {
    testenv::ScopedEnv unset("KILN_GEMM_CHAIN_TIE_MARGIN", nullptr);
    EXPECT_FLOAT_EQ(cuda::chain_tie_margin(), cuda::kChainTieMargin);
  }
  {
    testenv::ScopedEnv wide("KILN_GEMM_CHAIN_TIE_MARGIN", "0.5");
    EXPECT_FLOAT_EQ(cuda::chain_tie_margin(), 0.5f);
  }
  {
    testenv::ScopedEnv unset("KILN_GEMM_CHAIN_BUDGET_S", nullptr);
    EXPECT_DOUBLE_EQ(cuda::chain_budget_s(), cuda::kChainBudgetS);
  }
  {
    testenv::ScopedEnv small("KILN_GEMM_CHAIN_BUDGET_S", "2.5");
    EXPECT_DOUBLE_EQ(cuda::chain_budget_s(), 2.5);
  }
  {
    testenv::ScopedEnv none("KILN_GEMM_CHAIN_BUDGET_S", "0");
    EXPECT_DOUBLE_EQ(cuda::chain_budget_s(), 0.0);
  }
  // A bad value is an error naming the variable, not a silent default.
  auto rejects = [](const char* var, std::initializer_list<const char*> values, auto read) {
    for (const char* bad : values) {
      testenv::ScopedEnv v(var, bad);
      try {
        read();
        ADD_FAILURE() << var << "=" << bad << " accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(var), std::string::npos) << e.what();
      }
    }
  };
  rejects("KILN_GEMM_CHAIN_BUDGET_S", {"x", "-1", "3601", "2s", "nan"}, [] { cuda::chain_budget_s(); });
  rejects("KILN_GEMM_CHAIN_TIE_MARGIN", {"x", "-0.1", "11", "0.05%"}, [] { cuda::chain_tie_margin(); });
}

// The budget goes to the ties with most at stake: a problem's time alone x the layers that share its record.
// GPT-2's c_fc (5.5 us, 12 layers) comes before a 20 us problem of one layer; equal stakes keep their order.
TEST(ChainTies, TakeRanksTiesByTheirStake) {
  cuda::TacticTies ties;
  ties.add({"head", {"a", "b"}, {}, 0.020f});
  ties.add({"c_fc", {"a", "b"}, {}, 0.0055f});
  for (int i = 0; i < 11; ++i) ties.note_use("c_fc");
  ties.note_use("no tie");  // a recorded problem without a tie changes nothing
  ties.add({"small", {"a", "b"}, {}, 0.004f});
  ties.add({"small too", {"a", "b"}, {}, 0.004f});
  ties.add({"unknown time", {"a", "b"}});
  EXPECT_EQ(ties.layers("c_fc"), 12);
  std::vector<std::string> order;
  for (const cuda::TacticTie& t : ties.take()) order.push_back(t.key);
  EXPECT_EQ(order, (Strings{"c_fc", "head", "small", "small too", "unknown time"}));
  EXPECT_EQ(ties.layers("c_fc"), 0) << "take starts the count again";
}

// A tie is started, and its executions made, only while they can end within the budget.
TEST(ChainTies, ATieThatWouldEndPastTheBudgetIsLeft) {
  EXPECT_TRUE(cuda::chain_fits_budget(0, 0, 4, 20)) << "the first tie: the cost of an execution is not known yet";
  EXPECT_TRUE(cuda::chain_fits_budget(1.2, 0.05, 4, 20)) << "a transformer at batch 1";
  EXPECT_FALSE(cuda::chain_fits_budget(13.5, 3.3, 4, 20)) << "MobileNetV2 at b128, after its first tie";
  EXPECT_TRUE(cuda::chain_fits_budget(3.3, 3.3, 3, 20)) << "the rest of its first tie";
  EXPECT_FALSE(cuda::chain_fits_budget(3.3, 3.3, 3, 2)) << "the GPU tests' 2 s: left after the first execution";
  EXPECT_TRUE(cuda::chain_fits_budget(16, 1, 4, 20)) << "ends exactly at the budget";
  EXPECT_FALSE(cuda::chain_fits_budget(0, 0, 4, 0)) << "a budget of 0 decides no tie";
  EXPECT_FALSE(cuda::chain_fits_budget(20, 0, 4, 20)) << "the budget spent";
}

TEST(ChainTies, RegistryKeepsTheOrderAndTakeEmptiesIt) {
  cuda::TacticTies ties;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&ties, t] {
      const std::string key = std::to_string(t);  // (not "k" + ...: g++ 12 warns wrongly of overlapping copies)
      for (int i = 0; i < 50; ++i) ties.add({key, {"a", "b"}});
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ties.take().size(), 200u);
  EXPECT_TRUE(ties.take().empty());
  ties.add({"first", {"a", "b"}});
  ties.add({"second", {"c", "d"}});
  const std::vector<cuda::TacticTie> got = ties.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].key, "first");
  EXPECT_EQ(got[1].tactics, (Strings{"c", "d"}));
}

// A round of replays is ~8 ms whatever the batch: 20 replays of GPT-2 at batch 1, one of a large batch.
TEST(ChainTies, ReplaysPerRoundFollowTheModelsTime) {
  EXPECT_EQ(cuda::replays_per_round(0.39f), 20);
  EXPECT_EQ(cuda::replays_per_round(0.1f), 20);  // capped
  EXPECT_EQ(cuda::replays_per_round(1.0f), 8);
  EXPECT_EQ(cuda::replays_per_round(3.0f), 3);   // rounded up
  EXPECT_EQ(cuda::replays_per_round(10.f), 1);
  EXPECT_EQ(cuda::replays_per_round(500.f), 1);  // at least one
  EXPECT_EQ(cuda::replays_per_round(0.f), 20);   // no time measured: the most
  EXPECT_EQ(cuda::replays_per_round(-1.f), 20);
}

// A tie names its tactics by their labels where the records are not text (cuBLASLt's algorithms are bytes).
TEST(ChainTies, LabelsNameTheTacticsWhereGiven) {
  const cuda::TacticTie own{"k", {"split-K kernel 64x64 x4", "cuBLASLt"}, {}};
  EXPECT_EQ(own.label(1), "cuBLASLt");
  const cuda::TacticTie lt{"k", {std::string("\x01\x00\x02", 3), std::string("\x03\x00", 2)}, {"algo 66 tile 15", "algo 66 tile 92"}};
  EXPECT_EQ(lt.label(0), "algo 66 tile 15");
  EXPECT_EQ(lt.label(1), "algo 66 tile 92");
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
