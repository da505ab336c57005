// The epilogue-input check Kiln's own convolution paths share (src/backends/cuda/conv_epilogue_inputs.h): no GPU
// needed. Each wrong input is named; absent inputs are fine.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <string>

#include "backends/cuda/conv_epilogue_inputs.h"
#include "backends/cuda/fake_conv_node.h"

namespace kiln {
namespace {

using cudatest::FakeConvNode;

// x [1, 5, 5, 64], w [32, 1, 1, 64], y [1, 5, 5, 32], with or without a bias and a residual.
FakeConvNode node(bool bias, bool residual) {
  return FakeConvNode(DataType::kHALF, {1, 5, 5, 64}, {32, 1, 1, 64}, {1, 5, 5, 32}, bias, residual,
                      [](ir::Attrs& a) { a.set("channels_last", int64_t{1}); });
}

std::string refusal(const FakeConvNode& f, DataType dt = DataType::kHALF, int64_t k = 32) {
  const char* r = cuda::conv_epilogue_inputs_refusal(*f.ctx, dt, k);
  return r ? r : "";
}

TEST(ConvEpilogueInputs, PresentOrAbsentInputsThatFit) {
  for (bool bias : {false, true})
    for (bool residual : {false, true}) {
      FakeConvNode f = node(bias, residual);
      EXPECT_EQ(refusal(f), "") << "bias " << bias << " residual " << residual;
    }
}

TEST(ConvEpilogueInputs, NamesWhatIsWrong) {
  {
    FakeConvNode f = node(true, false);
    f.ctx->in[2].shape = {16};
    EXPECT_EQ(refusal(f), "bias not [K] of y's dtype");
  }
  {
    FakeConvNode f = node(true, false);
    f.ctx->in[2].dtype = DataType::kFLOAT;
    EXPECT_EQ(refusal(f), "bias not [K] of y's dtype");
  }
  {
    FakeConvNode f = node(true, false);
    EXPECT_EQ(refusal(f, DataType::kHALF, 64), "bias not [K] of y's dtype") << "K is the caller's";
  }
  {
    FakeConvNode f = node(false, true);
    f.ctx->in[3].shape = {1, 5, 5, 16};
    EXPECT_EQ(refusal(f), "residual not of y's shape and dtype");
  }
  {
    FakeConvNode f = node(true, true);
    f.ctx->in[3].dtype = DataType::kBF16;
    EXPECT_EQ(refusal(f), "residual not of y's shape and dtype");
  }
  {
    FakeConvNode f = node(true, true);
    EXPECT_EQ(refusal(f, DataType::kBF16), "bias not [K] of y's dtype") << "dt is y's dtype, the caller's";
  }
}

}  // namespace
}  // namespace kiln
#endif
