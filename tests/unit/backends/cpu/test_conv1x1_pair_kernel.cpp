// The CPU kernel of Conv1x1Pair against the two channels-last Convolution nodes it stands for, run one after the
// other: the same bits for y1 and y2, with and without biases, residual and activations. The CPU convolution is
// float32 only, so a float16 pair fails as its Convolutions would, saying which half.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/math_kernel_test_util.h"
#include "ir/ops/conv1x1_pair.h"

namespace kiln {
namespace {

using mtest::rand_float;

struct Case {
  const char* what;
  Dims x;
  int64_t c1, c2;
  bool bias1, residual, bias2;
  int64_t act1, act2;  // ActivationType, -1 none
  double alpha1 = 0.0;  // LEAKY_RELU's slope when act1 is 3
};

void same_bits(const HostTensor& got, const HostTensor& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  EXPECT_EQ(std::memcmp(got.raw(), want.raw(), got.nbytes()), 0) << what << ": bytes differ";
}

// One channels-last 1x1 Convolution, as the graph had it before the fusion.
HostTensor convolution(const std::vector<const HostTensor*>& ins, int64_t act, double alpha) {
  return mtest::run1("Convolution", ins, [&](ir::Attrs& a) {
    a.set("channels_last", int64_t{1});
    a.set("kernel", std::vector<int64_t>{1, 1});
    if (act >= 0) a.set("activation", act);
    if (act == 3) a.set("act_alpha", alpha);
  });
}

}  // namespace

TEST(Conv1x1PairKernel, IsTheTwoConvolutionsBitForBit) {
  const std::vector<Case> cases = {
      {"bottleneck: biases, residual, ReLUs", {2, 5, 7, 8}, 16, 8, true, true, true, 0, 0},
      {"no biases, no residual, no activations", {1, 3, 4, 5}, 12, 3, false, false, false, -1, -1},
      {"leaky ReLU first, no second bias", {3, 2, 6, 16}, 32, 16, true, true, false, 3, 0, 0.1},
      {"sigmoid second, one pixel", {1, 1, 1, 4}, 7, 9, true, false, true, 0, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Dims y1s = {c.x[0], c.x[1], c.x[2], c.c1};
    const HostTensor x = rand_float(c.x), w1 = rand_float({c.c1, 1, 1, c.x[3]}, DataType::kFLOAT, 0.05, 0.5),
                     b1 = rand_float({c.c1}), r1 = rand_float(y1s),
                     w2 = rand_float({c.c2, 1, 1, c.c1}, DataType::kFLOAT, 0.05, 0.5), b2 = rand_float({c.c2});
    const HostTensor* pb1 = c.bias1 ? &b1 : nullptr;
    const HostTensor* pr1 = c.residual ? &r1 : nullptr;
    const HostTensor* pb2 = c.bias2 ? &b2 : nullptr;
    const HostTensor y1 = convolution({&x, &w1, pb1, pr1}, c.act1, c.alpha1);
    const HostTensor y2 = convolution({&y1, &w2, pb2}, c.act2, 0);
    // All six inputs (absent ones nullptr), as the pass writes the node; and b2 left off when absent.
    for (bool five : {false, true}) {
      if (five && c.bias2) continue;
      std::vector<const HostTensor*> ins = {&x, &w1, pb1, pr1, &w2, pb2};
      if (five) ins.pop_back();
      const std::vector<HostTensor> got = mtest::run_op("Conv1x1Pair", ins, [&](ir::Attrs& a) {
        if (c.act1 >= 0) a.set("activation", c.act1);
        if (c.act1 == 3) a.set("act_alpha", c.alpha1);
        if (c.act2 >= 0) a.set("activation2", c.act2);
        a.set("first_name", "conv_a");
        a.set("second_name", "conv_b");
      }, 2);
      ASSERT_EQ(got.size(), 2u);
      same_bits(got[0], y1, "y1");
      same_bits(got[1], y2, "y2");
    }
  }
}

TEST(Conv1x1PairKernel, Float16FailsLikeItsConvolutionsNamingTheHalf) {
  // The CPU Convolution kernel is float32 only (the GPU runs half-precision pairs), so there is no float16
  // equality to check: the pair must fail as clearly as the Convolution does.
  const DataType h = DataType::kHALF;
  const HostTensor x = rand_float({1, 2, 2, 4}, h), w1 = rand_float({8, 1, 1, 4}, h), w2 = rand_float({4, 1, 1, 8}, h);
  try {
    mtest::run_op("Conv1x1Pair", {&x, &w1, nullptr, nullptr, &w2, nullptr}, [](ir::Attrs& a) {
      a.set("first_name", "conv_a");
    }, 2);
    FAIL() << "a float16 pair ran on the CPU";
  } catch (const Error& e) {
    const std::string msg = e.what();
    const std::string says = "layer 'node' (Conv1x1Pair): first convolution: layer 'conv_a' (Convolution)";
    EXPECT_NE(msg.find(says), std::string::npos) << msg;
    EXPECT_NE(msg.find("float32"), std::string::npos) << msg;
  }
}

}  // namespace kiln
