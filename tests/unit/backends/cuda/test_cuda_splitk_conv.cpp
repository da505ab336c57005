// Kiln's split-K implicit-GEMM convolution (src/backends/cuda/kernels/splitk_conv_mma.*), a candidate of the
// convolution kernel: which nodes are eligible and why others are not (no GPU needed), KILN_CONV_SPLITK_SPLITS's
// values, the split counts worth timing for ResNet-50's batch-1 shapes, and on a GPU the kernel forced at
// each split count (1, 2, 4, 8 and the free choice), timed and off against the CPU kernel in float16 and
// bfloat16: 3x3 layers at stride 1 and 2, 1x1 downsamples and residual blocks, dilation, non-square windows and
// strides, pixel counts that end inside a 64-pixel tile or span images, 3 channel tiles, every epilogue kind
// (none, bias, residual without a bias, ReLU, ReLU6, leaky ReLU read at run time), and nodes outside its
// conditions left to the usual paths.
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/conv_kernel_checks.h"
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cudnn/conv_graph_record.h"
#include "backends/cuda/device.h"
#include "backends/cuda/fake_conv_node.h"
#include "backends/cuda/kernels/splitk_conv_mma.h"
#include "kiln/types.h"

namespace kiln {
namespace {

using namespace cudatest;

constexpr const char* kModeVar = "KILN_CONV_SPLITK";
constexpr const char* kSplitsVar = "KILN_CONV_SPLITK_SPLITS";

// The kernel needs thread block clusters: below sm_90 the convolution never takes it, and the tests that expect
// it taken expect it not taken there (and every result still right).
bool has_clusters() { return cuda::current_device().major >= 9; }

struct SplitKCase {
  const char* label = "";
  Dims x;  // [N, H, W, C]
  int64_t k = 0, kh = 1, kw = 1;
  int64_t pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;  // symmetric padding
  bool bias = false, residual = false;
  int64_t act = -1;  // 0 ReLU, 8 clip as ReLU6, 3 leaky ReLU (alpha 0.1: read at run time), -1 none

  // The reduction's chunks of 64 channels of one tap (SplitKConvGeometry::chunks).
  int64_t chunks() const { return kh * kw * (x[3] / 64); }
};

std::string describe(const SplitKCase& c, DataType dt) {
  return std::string(c.label) + " " + dtype_name(dt) + " x " + dims_str(c.x) + " K " + std::to_string(c.k) + " " +
         std::to_string(c.kh) + "x" + std::to_string(c.kw) + " pad " + std::to_string(c.pad_h) + "," +
         std::to_string(c.pad_w) + " stride " + std::to_string(c.stride_h) + "," + std::to_string(c.stride_w) +
         " dilation " + std::to_string(c.dil_h) + "," + std::to_string(c.dil_w);
}

void set_attrs(ir::Attrs& a, const SplitKCase& c) {
  a.set("num_output_maps", c.k);
  a.set("kernel", std::vector<int64_t>{c.kh, c.kw});
  a.set("pre_padding", std::vector<int64_t>{c.pad_h, c.pad_w});
  a.set("post_padding", std::vector<int64_t>{c.pad_h, c.pad_w});
  a.set("stride", std::vector<int64_t>{c.stride_h, c.stride_w});
  a.set("dilation", std::vector<int64_t>{c.dil_h, c.dil_w});
  a.set("groups", int64_t{1});
  a.set("channels_last", int64_t{1});
  if (c.act >= 0) a.set("activation", c.act);
  if (c.act == 8) {  // ReLU6
    a.set("act_alpha", 0.0);
    a.set("act_beta", 6.0);
  }
  if (c.act == 3) a.set("act_alpha", 0.1);  // leaky ReLU
}

// y's shape as shape inference gives it (the node's own, not a formula of this test's).
Dims y_shape(const SplitKCase& c, DataType dt) {
  ir::Graph g;
  std::vector<ir::Value*> vals = {g.add_input("x", dt, c.x), g.add_input("w", dt, {c.k, c.kh, c.kw, c.x[3]})};
  ir::Node* n = g.add_node("Convolution", "conv", vals, 1);
  set_attrs(n->attrs, c);
  std::vector<ir::TensorInfo> infos = {ir::TensorInfo{true, dt, c.x, nullptr},
                                       ir::TensorInfo{true, dt, {c.k, c.kh, c.kw, c.x[3]}, nullptr}};
  return ir::infer_node(*n, infos).at(0).shape;
}

// The window as the convolution kernel computes it for cuDNN (and passes to splitk_conv_geometry).
cuda::SplitKWindow window_of(const SplitKCase& c) {
  cuda::SplitKWindow w;
  w.pad_h = static_cast<int>(c.pad_h);
  w.pad_w = static_cast<int>(c.pad_w);
  w.stride_h = static_cast<int>(c.stride_h);
  w.stride_w = static_cast<int>(c.stride_w);
  w.dil_h = static_cast<int>(c.dil_h);
  w.dil_w = static_cast<int>(c.dil_w);
  return w;
}

// Runs the case through the Convolution kernel against the CPU (check_op's tolerances: 2e-3 of max |ref| in
// float16, 1.6e-2 in bfloat16; conv_inputs' small weights keep the reductions, up to 5 x 5 x 64 = 1600 deep, well
// inside float16's range); *chosen: how many choices took the split-K kernel meanwhile (one node, one shape: 0
// or 1).
::testing::AssertionResult check(const SplitKCase& c, DataType dt, int64_t* chosen) {
  return check_conv_counting(conv_inputs(dt, c.x, c.k, c.kh, c.kw, y_shape(c, dt), c.bias, c.residual),
                             [&](ir::Attrs& a) { set_attrs(a, c); }, &cuda::ConvGraphCounters::splitk_chosen, chosen);
}

// Output sizes (OH x OW per image, pixels = N * OH * OW, in 64-pixel tiles) and chunks (kh * kw * C / 64) worked
// out by hand; each case's chunks decide which fixed split counts it takes (a count above them is refused).
const std::vector<SplitKCase>& eligible_cases() {
  static const std::vector<SplitKCase> cases = {
      // 7x7 = 49 pixels (one tile, ending inside it), chunks 9 * 2 = 18. ResNet's layer4 3x3, narrower.
      {.label = "ResNet 3x3", .x = {1, 7, 7, 128}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1,
       .bias = true, .act = 0},
      // (13 + 2 - 3) / 2 + 1 = 7: 49 pixels, chunks 9. ResNet's first 3x3 of layer2-4.
      {.label = "3x3 stride 2", .x = {1, 13, 13, 64}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1,
       .stride_h = 2, .stride_w = 2, .bias = true, .act = 0},
      // (14 - 1) / 2 + 1 = 7: 49 pixels, 4 channel tiles, chunks 4. A downsample: bias, no activation.
      {.label = "1x1 stride 2 downsample", .x = {1, 14, 14, 256}, .k = 128, .kh = 1, .kw = 1, .stride_h = 2,
       .stride_w = 2, .bias = true},
      // 2 x 49 = 98 pixels: the first tile spans both images, the second ends inside. Chunks 2.
      {.label = "1x1 residual + ReLU", .x = {2, 7, 7, 128}, .k = 64, .kh = 1, .kw = 1, .bias = true,
       .residual = true, .act = 0},
      // 12 + 4 - (2 * 2 + 1) + 1 = 12: 144 pixels (3 tiles, the last 16), chunks 9. ReLU6.
      {.label = "dilation 2", .x = {1, 12, 12, 64}, .k = 32, .kh = 3, .kw = 3, .pad_h = 2, .pad_w = 2, .dil_h = 2,
       .dil_w = 2, .bias = true, .act = 8},
      // 10 x (16 + 2 - 3 + 1) = 10 x 16 = 160 pixels (3 tiles), chunks 3 * 2 = 6: a window and padding that
      // differ between rows and columns.
      {.label = "1x3 pad (0,1)", .x = {1, 10, 16, 128}, .k = 64, .kh = 1, .kw = 3, .pad_w = 1, .bias = true,
       .act = 0},
      // (11 + 2 - 3) / 2 + 1 = 6 rows x 8 columns = 48 pixels, chunks 3: strides that differ (rows and
      // columns swapped would give another size), a residual without a bias.
      {.label = "3x1 stride (2,1)", .x = {1, 11, 8, 64}, .k = 32, .kh = 3, .kw = 1, .pad_h = 1, .stride_h = 2,
       .residual = true, .act = 0},
      // 2 x 9 x 11 = 198 pixels: 4 tiles, the last with 6, tiles spanning images. Chunks 9.
      {.label = "198 pixels", .x = {2, 9, 11, 64}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = true,
       .act = 0},
      // 8x8 = 64 pixels (exactly one tile), 3 channel tiles of 32, chunks 9; bias + residual, no activation.
      {.label = "K 96", .x = {1, 8, 8, 64}, .k = 96, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = true,
       .residual = true},
      // 7 x 9 = 63 pixels, chunks 18: the kernel that reads the activation at run time.
      {.label = "leaky ReLU", .x = {1, 7, 9, 128}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = true,
       .act = 3},
      // 36 pixels, chunks 9: no bias, no residual, no activation.
      {.label = "no epilogue", .x = {1, 6, 6, 64}, .k = 32, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1},
      // (8 + 2 - 3) / 2 + 1 = 4: 3 x 16 = 48 pixels, one tile over three images. Chunks 18.
      {.label = "batch 3 stride 2", .x = {3, 8, 8, 128}, .k = 32, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1,
       .stride_h = 2, .stride_w = 2, .bias = true, .act = 0},
      // 2 x 6 x 6 = 72 pixels (2 tiles, the second with 8), chunks 25: most taps of the border pixels fall in
      // the padding.
      {.label = "5x5 pad 2 batch 2", .x = {2, 6, 6, 64}, .k = 64, .kh = 5, .kw = 5, .pad_h = 2, .pad_w = 2,
       .bias = true, .act = 0},
  };
  return cases;
}

// ---- On a GPU ----

// KILN_CONV_SPLITK=force at each split count: a case whose reduction has at least that many chunks takes the
// kernel (exactly one choice) and matches the CPU; one with fewer is refused and left to the usual paths, still
// right. Unset: the most splits splitk_conv_candidates gives, always taken. Below sm_90 nothing is taken.
TEST(CudaSplitKConv, ForcedMatchesCpuAtEverySplitCount) {
  KILN_REQUIRE_CUDA_DEVICE();
  const bool clusters = has_clusters();
  ScopedEnv mode(kModeVar, "force");
  for (const char* splits : {static_cast<const char*>(nullptr), "1", "2", "4", "8"}) {
    ScopedEnv s(kSplitsVar, splits);
    const int64_t count = splits ? std::stoll(splits) : 1;
    for (DataType dt : {DataType::kHALF, DataType::kBF16})
      for (const SplitKCase& c : eligible_cases()) {
        const std::string what = describe(c, dt) + " splits " + (splits ? splits : "(free)") + " chunks " +
                                 std::to_string(c.chunks());
        int64_t chosen = -1;
        EXPECT_TRUE(check(c, dt, &chosen)) << what;
        const bool taken = clusters && c.chunks() >= count;
        EXPECT_EQ(chosen, taken ? 1 : 0)
            << what << (taken ? ": the split-K kernel was not taken" : ": taken below sm_90 or with more splits than chunks");
      }
  }
}

// The default (timed against cuDNN's paths) and KILN_CONV_SPLITK=0 (never): whatever runs is right, and "0"
// never takes the kernel. Runs on any GPU (below sm_90 the kernel is never a candidate).
TEST(CudaSplitKConv, TimedAndOffMatchCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv s(kSplitsVar, nullptr);
  for (const char* m : {static_cast<const char*>(nullptr), "0"}) {
    ScopedEnv mode(kModeVar, m);
    for (const SplitKCase& c : eligible_cases()) {
      const std::string what = describe(c, DataType::kHALF) + " mode " + (m ? m : "timed");
      int64_t chosen = -1;
      EXPECT_TRUE(check(c, DataType::kHALF, &chosen)) << what;
      EXPECT_LE(chosen, 1) << what << ": one node of one shape chose more than once";
      if (m) {
        EXPECT_EQ(chosen, 0) << what << ": KILN_CONV_SPLITK=0 took the kernel";
      }
    }
  }
}

// Outside the conditions (32 input channels; K not a multiple of 32; float32): forcing leaves the node to the
// usual choice, without an error, and the result is right.
TEST(CudaSplitKConv, ForcedLeavesIneligibleNodesToTheUsualPath) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode(kModeVar, "force");
  ScopedEnv s(kSplitsVar, nullptr);
  const std::vector<std::pair<SplitKCase, DataType>> cases = {
      {{.label = "32 channels", .x = {1, 9, 9, 32}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = true,
        .act = 0},
       DataType::kHALF},
      {{.label = "K 48", .x = {1, 9, 9, 64}, .k = 48, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .bias = true},
       DataType::kHALF},
      // A 1x1 stride-2 window: cuDNN's float32 paths for it have no Winograd or FFT, so float32's 1e-5 holds.
      {{.label = "float32", .x = {1, 14, 14, 64}, .k = 64, .kh = 1, .kw = 1, .stride_h = 2, .stride_w = 2,
        .bias = true, .act = 0},
       DataType::kFLOAT},
  };
  for (const auto& [c, dt] : cases) {
    int64_t chosen = -1;
    EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt);
    EXPECT_EQ(chosen, 0) << describe(c, dt);
  }
}

// A bad KILN_CONV_SPLITK_SPLITS fails an eligible node, forced or timed, naming the switch, the value and the
// layer (check_op's node is 'node'), rather than quietly taking another path: on any GPU (the switch is read
// before the device is asked about clusters).
TEST(CudaSplitKConv, BadSplitCountFailsTheNode) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv s(kSplitsVar, "3");
  for (const char* m : {static_cast<const char*>(nullptr), "force"}) {
    ScopedEnv mode(kModeVar, m);
    int64_t chosen = -1;
    const ::testing::AssertionResult r = check(eligible_cases()[0], DataType::kHALF, &chosen);
    const std::string what = std::string("mode ") + (m ? m : "timed");
    ASSERT_FALSE(r) << what << ": KILN_CONV_SPLITK_SPLITS=3 was accepted";
    const std::string msg = r.message();
    EXPECT_NE(msg.find(std::string(kSplitsVar) + "=3"), std::string::npos) << what << ": " << msg;
    EXPECT_NE(msg.find("'node'"), std::string::npos) << what << ": " << msg;
    EXPECT_EQ(chosen, 0) << what;
  }
}

// ---- Without a GPU: eligibility ----

// A node of the case at fake device addresses, for splitk_conv_geometry.
struct FakeNode : FakeConvNode {
  FakeNode(const SplitKCase& c, DataType dt)
      : FakeConvNode(dt, c.x, {c.k, c.kh, c.kw, c.x[3]}, y_shape(c, dt), c.bias, c.residual,
                     [&](ir::Attrs& a) { set_attrs(a, c); }) {}
};

TEST(SplitKConvGeometry, EligibleCasesAreTaken) {
  ScopedEnv s(kSplitsVar, nullptr);
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const SplitKCase& c : eligible_cases()) {
      FakeNode f(c, dt);
      cuda::SplitKConvGeometry geo;
      std::string why;
      ASSERT_TRUE(cuda::splitk_conv_geometry(*f.ctx, window_of(c), &geo, &why)) << describe(c, dt) << ": " << why;
      const Dims y = y_shape(c, dt);
      EXPECT_EQ(geo.N, c.x[0]) << describe(c, dt);
      EXPECT_EQ(geo.H, c.x[1]) << describe(c, dt);
      EXPECT_EQ(geo.W, c.x[2]) << describe(c, dt);
      EXPECT_EQ(geo.C, c.x[3]) << describe(c, dt);
      EXPECT_EQ(geo.K, c.k) << describe(c, dt);
      EXPECT_EQ(geo.OH, y[1]) << describe(c, dt);
      EXPECT_EQ(geo.OW, y[2]) << describe(c, dt);
      EXPECT_EQ(geo.kh, c.kh) << describe(c, dt);
      EXPECT_EQ(geo.kw, c.kw) << describe(c, dt);
      EXPECT_EQ(geo.window.pad_h, c.pad_h) << describe(c, dt);
      EXPECT_EQ(geo.window.pad_w, c.pad_w) << describe(c, dt);
      EXPECT_EQ(geo.window.stride_h, c.stride_h) << describe(c, dt);
      EXPECT_EQ(geo.window.stride_w, c.stride_w) << describe(c, dt);
      EXPECT_EQ(geo.window.dil_h, c.dil_h) << describe(c, dt);
      EXPECT_EQ(geo.window.dil_w, c.dil_w) << describe(c, dt);
      EXPECT_EQ(geo.fixed_splits, 0) << describe(c, dt) << ": KILN_CONV_SPLITK_SPLITS is unset";
      // The activation is read with the geometry (not at each launch): ReLU6 is Clip(0, 6), leaky ReLU's alpha 0.1.
      EXPECT_EQ(geo.act, c.act) << describe(c, dt);
      EXPECT_FLOAT_EQ(geo.alpha, c.act == 3 ? 0.1f : 0.0f) << describe(c, dt);
      if (c.act == 8) {
        EXPECT_FLOAT_EQ(geo.beta, 6.0f) << describe(c, dt);
      }
      EXPECT_EQ(geo.chunks(), c.chunks()) << describe(c, dt);
      EXPECT_TRUE(cuda::splitk_conv_aligned(*f.ctx)) << describe(c, dt);
    }
}

TEST(SplitKConvGeometry, RefusesWithAReason) {
  ScopedEnv s(kSplitsVar, nullptr);
  // 9x9 -> 9x9 (pad 1), chunks 9, bias and residual.
  const SplitKCase base{.label = "base", .x = {1, 9, 9, 64}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1,
                        .bias = true, .residual = true, .act = 0};
  auto refused = [](FakeNode& f, const cuda::SplitKWindow& window, const std::string& reason) {
    cuda::SplitKConvGeometry geo;
    std::string why;
    EXPECT_FALSE(cuda::splitk_conv_geometry(*f.ctx, window, &geo, &why)) << reason;
    EXPECT_NE(why.find(reason), std::string::npos) << "'" << why << "' should say " << reason;
  };
  const cuda::SplitKWindow window = window_of(base);
  {
    FakeNode f(base, DataType::kHALF);  // the base is eligible: each refusal below is its one change
    cuda::SplitKConvGeometry geo;
    std::string why;
    EXPECT_TRUE(cuda::splitk_conv_geometry(*f.ctx, window, &geo, &why)) << why;
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.node->attrs.set("channels_last", int64_t{0});
    refused(f, window, "not channels-last");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.node->attrs.set("groups", int64_t{2});
    refused(f, window, "grouped");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[1].present = false;
    refused(f, window, "no x and w");
  }
  {
    FakeNode f(base, DataType::kFLOAT);
    refused(f, window, "not float16 or bfloat16");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[1].dtype = DataType::kBF16;
    refused(f, window, "mixed dtypes");
  }
  {
    FakeNode f(base, DataType::kBF16);
    f.ctx->out[0].dtype = DataType::kHALF;
    refused(f, window, "mixed dtypes");
  }
  {
    // 5-D with the first four dims unchanged, so no check before the rank's reads past a 4-D shape.
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[0].shape = {1, 9, 9, 64, 1};
    refused(f, window, "not 2-D");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[1].shape = {64, 3, 3, 64, 1};
    refused(f, window, "not 2-D");
  }
  for (int64_t channels : {16, 32, 96, 160}) {
    SplitKCase c = base;
    c.x[3] = channels;
    FakeNode f(c, DataType::kHALF);
    refused(f, window, "input channels not a multiple of 64");
  }
  for (int64_t k : {16, 48, 80}) {
    SplitKCase c = base;
    c.k = k;
    FakeNode f(c, DataType::kHALF);
    refused(f, window, "output channels not a multiple of 32");
  }
  {
    // y is the unpadded convolution's 7x7, the window says padding 1 (9x9): the window and y disagree.
    FakeNode f(base, DataType::kHALF);
    f.ctx->out[0].shape = {1, 7, 7, 64};
    f.ctx->in[3].shape = {1, 7, 7, 64};
    refused(f, window, "padding");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[3].shape = {1, 9, 8, 64};
    refused(f, window, "residual");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[2].shape = {32};
    refused(f, window, "bias");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.node->attrs.set("activation", int64_t{999});
    refused(f, window, "activation");
  }
  // Past the kernel's int arithmetic (splitk_within_limits; the shapes are never allocated): a row of 2^29
  // pixels, and 2^31 output pixels of rows and images each within it.
  for (const Dims& x : {Dims{1, 1, int64_t{1} << 29, 64}, Dims{8, 1, int64_t{1} << 28, 64}}) {
    const SplitKCase c{.label = "large", .x = x, .k = 64, .kh = 1, .kw = 1};
    FakeNode f(c, DataType::kHALF);
    refused(f, window_of(c), "too large");
  }
  {
    // Just inside: 2^31 - 128 output pixels.
    const SplitKCase c{.label = "largest", .x = {8, 1, (int64_t{1} << 28) - 16, 64}, .k = 64, .kh = 1, .kw = 1};
    FakeNode f(c, DataType::kHALF);
    cuda::SplitKConvGeometry geo;
    std::string why;
    EXPECT_TRUE(cuda::splitk_conv_geometry(*f.ctx, window_of(c), &geo, &why)) << why;
  }
  // A bias or residual of another dtype: refused (which words say so is the implementation's).
  for (int input : {2, 3}) {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[input].dtype = DataType::kBF16;
    cuda::SplitKConvGeometry geo;
    std::string why;
    EXPECT_FALSE(cuda::splitk_conv_geometry(*f.ctx, window, &geo, &why)) << "input " << input << " in bfloat16";
    EXPECT_FALSE(why.empty()) << "input " << input;
  }
  {
    // 1x1 over 64 channels: one chunk, so two splits are more than it has.
    const SplitKCase c{.label = "1x1", .x = {1, 9, 9, 64}, .k = 64, .kh = 1, .kw = 1, .bias = true};
    ScopedEnv two(kSplitsVar, "2");
    FakeNode f(c, DataType::kHALF);
    refused(f, window_of(c), kSplitsVar);
  }
}

// Misaligned addresses: eligible, but not aligned (16-byte loads and stores of x, w, y and the residual; 8-byte
// loads of the bias).
TEST(SplitKConvGeometry, Alignment) {
  const SplitKCase c{.label = "base", .x = {1, 9, 9, 64}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1,
                     .bias = true, .residual = true, .act = 0};
  {
    FakeNode f(c, DataType::kHALF);
    EXPECT_TRUE(cuda::splitk_conv_aligned(*f.ctx));
    f.ctx->in[2].data = static_cast<char*>(f.ctx->in[2].data) + 8;
    EXPECT_TRUE(cuda::splitk_conv_aligned(*f.ctx)) << "the bias needs only 8 bytes";
    f.ctx->in[2].data = static_cast<char*>(f.ctx->in[2].data) - 4;
    EXPECT_FALSE(cuda::splitk_conv_aligned(*f.ctx)) << "bias at 4 bytes";
  }
  for (int input : {0, 1, 3}) {
    FakeNode f(c, DataType::kHALF);
    f.ctx->in[input].data = static_cast<char*>(f.ctx->in[input].data) + 8;
    EXPECT_FALSE(cuda::splitk_conv_aligned(*f.ctx)) << "input " << input << " at 8 bytes";
  }
  FakeNode f(c, DataType::kHALF);
  f.ctx->out[0].data = static_cast<char*>(f.ctx->out[0].data) + 8;
  EXPECT_FALSE(cuda::splitk_conv_aligned(*f.ctx)) << "y at 8 bytes";
}

// The switch's values are candidate_mode's (test_candidate_mode.cpp); this one reads KILN_CONV_SPLITK.
TEST(SplitKConvGeometry, ReadsItsSwitch) {
  {
    ScopedEnv m(kModeVar, "0");
    EXPECT_EQ(cuda::splitk_conv_mode(), cuda::SplitKConvMode::kOff);
  }
  {
    ScopedEnv m(kModeVar, "force");
    EXPECT_EQ(cuda::splitk_conv_mode(), cuda::SplitKConvMode::kForce);
  }
  ScopedEnv m(kModeVar, nullptr);
  EXPECT_EQ(cuda::splitk_conv_mode(), cuda::SplitKConvMode::kAuto);
}

// ---- Without a GPU: KILN_CONV_SPLITK_SPLITS ----

// ResNet-50's layer4 3x3 at batch 1: 7x7 -> 7x7 over 512 channels, chunks 9 * 8 = 72 (every count fits).
const SplitKCase kLayer4{.label = "layer4 3x3", .x = {1, 7, 7, 512}, .k = 512, .kh = 3, .kw = 3, .pad_h = 1,
                         .pad_w = 1, .bias = true, .act = 0};

// Each accepted value as parsed, and as the geometry takes it into fixed_splits (and then the only candidate).
TEST(SplitKSplits, Values) {
  struct Case {
    const char* value;  // nullptr: unset
    int splits;
  };
  for (const Case& c : {Case{nullptr, 0}, Case{"", 0}, Case{"1", 1}, Case{"2", 2}, Case{"4", 4}, Case{"8", 8}}) {
    const std::string what = c.value ? std::string("'") + c.value + "'" : "(unset)";
    int parsed = c.splits == 0 ? 3 : 0;  // another value, so a parse that leaves *out alone fails
    EXPECT_TRUE(cuda::parse_splitk_splits(c.value, &parsed)) << what;
    EXPECT_EQ(parsed, c.splits) << what;
    ScopedEnv e(kSplitsVar, c.value);
    FakeNode f(kLayer4, DataType::kHALF);
    cuda::SplitKConvGeometry geo;
    std::string why;
    ASSERT_TRUE(cuda::splitk_conv_geometry(*f.ctx, window_of(kLayer4), &geo, &why)) << what << ": " << why;
    EXPECT_EQ(geo.fixed_splits, c.splits) << what;
    if (c.splits) {
      EXPECT_EQ(cuda::splitk_conv_candidates(geo, 132), std::vector<int>{c.splits}) << what;
    }
  }
}

// Any other value fails the node when its geometry is read (naming the switch, the value and the layer), before
// anything reaches the GPU: this runs on the fake node's addresses.
TEST(SplitKSplits, OtherValuesFailTheNodeNamingTheSwitch) {
  for (const char* bad : {"0", "3", "16", "9", "x", "02", "2 ", " 2", "+2", "-1", "8x", "1.0", "two"}) {
    int parsed = 0;
    EXPECT_FALSE(cuda::parse_splitk_splits(bad, &parsed)) << "'" << bad << "'";
    ScopedEnv e(kSplitsVar, bad);
    FakeNode f(kLayer4, DataType::kHALF);
    cuda::SplitKConvGeometry geo;
    std::string why;
    try {
      cuda::splitk_conv_geometry(*f.ctx, window_of(kLayer4), &geo, &why);
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const Error& ex) {
      const std::string what = ex.what();
      EXPECT_NE(what.find(std::string(kSplitsVar) + "=" + bad), std::string::npos) << what;
      EXPECT_NE(what.find("'conv'"), std::string::npos) << what;  // the layer
    }
  }
}

// A count above the reduction's chunks refuses the node (naming the switch); at or below, it is taken.
TEST(SplitKSplits, ACountAboveTheChunksRefusesTheNode) {
  struct Case {
    SplitKCase c;
    const char* splits;
    bool taken;
  };
  // Chunks: 1x1 over 64 channels 1; 1x1 over 256 channels 4; 1x3 over 128 channels 6; 3x3 over 64 channels 9.
  const SplitKCase c1{.label = "1x1 C64", .x = {1, 7, 7, 64}, .k = 64};
  const SplitKCase c4{.label = "1x1 C256", .x = {1, 7, 7, 256}, .k = 64};
  const SplitKCase c6{.label = "1x3 C128", .x = {1, 7, 7, 128}, .k = 64, .kh = 1, .kw = 3, .pad_w = 1};
  const SplitKCase c9{.label = "3x3 C64", .x = {1, 7, 7, 64}, .k = 64, .kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1};
  for (const Case& t : {Case{c1, "1", true}, Case{c1, "2", false}, Case{c1, "8", false}, Case{c4, "4", true},
                        Case{c4, "8", false}, Case{c6, "4", true}, Case{c6, "8", false}, Case{c9, "8", true}}) {
    const std::string what = describe(t.c, DataType::kHALF) + " splits " + t.splits;
    ScopedEnv e(kSplitsVar, t.splits);
    FakeNode f(t.c, DataType::kHALF);
    cuda::SplitKConvGeometry geo;
    std::string why;
    EXPECT_EQ(cuda::splitk_conv_geometry(*f.ctx, window_of(t.c), &geo, &why), t.taken) << what << ": " << why;
    if (t.taken) {
      EXPECT_EQ(geo.fixed_splits, std::stoi(t.splits)) << what;
    } else {
      EXPECT_NE(why.find(kSplitsVar), std::string::npos) << what << ": '" << why << "'";
    }
  }
}

// ---- Without a GPU: the split counts worth timing ----

cuda::SplitKConvGeometry shape(int64_t N, int64_t OH, int64_t OW, int64_t C, int64_t K, int k) {
  cuda::SplitKConvGeometry g;
  g.N = N;
  g.OH = OH;
  g.OW = OW;
  g.H = OH;  // unread by the counts (they go by pixels, chunks and tiles)
  g.W = OW;
  g.C = C;
  g.K = K;
  g.kh = g.kw = k;
  return g;
}

// The rule: {1}, then 2, 4, 8 in turn while tiles * (the count before) < SMs * kSplitKBlocksPerSm (3) and chunks / (the new count)
// >= 2, stopping at the first that fails. On 132 SMs (an H200) the device holds 396 blocks. Each expectation
// worked out by hand (pixel tiles of 64 x channel tiles of 32 = tiles; kh * kw * C / 64 = chunks).
TEST(SplitKCandidates, ResNet50Batch1On132Sms) {
  struct Case {
    const char* label;
    cuda::SplitKConvGeometry g;
    int64_t tiles, chunks;
    std::vector<int> want;
  };
  const std::vector<Case> cases = {
      // 3136 pixels = 49 tiles x 2 = 98; chunks 9. 2: 98 < 396, 9/2 = 4. 4: 196 < 396, 9/4 = 2. 8: 392 < 396
      // but 9/8 = 1.
      {"layer1 3x3", shape(1, 56, 56, 64, 64, 3), 98, 9, {1, 2, 4}},
      // 98 tiles, chunks 4. 2: 98 < 396, 4/2 = 2. 4: 4/4 = 1.
      {"layer1 1x1 256->64", shape(1, 56, 56, 256, 64, 1), 98, 4, {1, 2}},
      // 49 x 8 = 392 tiles, chunks 1. 2: 392 < 396 but 1/2 = 0.
      {"layer1 1x1 64->256", shape(1, 56, 56, 64, 256, 1), 392, 1, {1}},
      // 784 pixels = 13 tiles x 4 = 52; chunks 18. 2: 52, 9. 4: 104, 4. 8: 208 < 396, 18/8 = 2.
      {"layer2 3x3 stride 2", shape(1, 28, 28, 128, 128, 3), 52, 18, {1, 2, 4, 8}},
      // 52 tiles, chunks 8. 2: 4. 4: 104 < 396, 2. 8: 8/8 = 1.
      {"layer2 1x1 512->128", shape(1, 28, 28, 512, 128, 1), 52, 8, {1, 2, 4}},
      // 13 x 16 = 208 tiles, chunks 4. 2: 208 < 396, 2. 4: 416 is not < 396 (and 4/4 = 1).
      {"layer2 downsample 256->512", shape(1, 28, 28, 256, 512, 1), 208, 4, {1, 2}},
      // 208 tiles, chunks 2. 2: 2/2 = 1.
      {"layer2 1x1 128->512", shape(1, 28, 28, 128, 512, 1), 208, 2, {1}},
      // 196 pixels = 4 tiles x 8 = 32; chunks 36. 8: 32 x 4 = 128 < 396, 36/8 = 4.
      {"layer3 3x3", shape(1, 14, 14, 256, 256, 3), 32, 36, {1, 2, 4, 8}},
      // 32 tiles, chunks 16. 8: 128 < 396, 16/8 = 2 (just).
      {"layer3 1x1 1024->256", shape(1, 14, 14, 1024, 256, 1), 32, 16, {1, 2, 4, 8}},
      // 4 x 32 = 128 tiles, chunks 8. 4: 256 < 396, 8/4 = 2. 8: 512 is not < 396 (and 8/8 = 1).
      {"layer3 downsample 512->1024", shape(1, 14, 14, 512, 1024, 1), 128, 8, {1, 2, 4}},
      // 49 pixels = 1 tile x 16 = 16; chunks 72. 8: 64 < 396, 9.
      {"layer4 3x3", shape(1, 7, 7, 512, 512, 3), 16, 72, {1, 2, 4, 8}},
      // 16 tiles, chunks 32.
      {"layer4 1x1 2048->512", shape(1, 7, 7, 2048, 512, 1), 16, 32, {1, 2, 4, 8}},
      // 64 tiles, chunks 8. 4: 128 < 396, 2. 8: 8/8 = 1.
      {"layer4 1x1 512->2048", shape(1, 7, 7, 512, 2048, 1), 64, 8, {1, 2, 4}},
      // 64 tiles, chunks 16. 8: 256 < 396, 16/8 = 2.
      {"layer4 downsample 1024->2048", shape(1, 7, 7, 1024, 2048, 1), 64, 16, {1, 2, 4, 8}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.g.tiles(), c.tiles) << c.label;
    EXPECT_EQ(c.g.chunks(), c.chunks) << c.label;
    EXPECT_EQ(cuda::splitk_conv_candidates(c.g, 132), c.want) << c.label;
  }
}

// Where the blocks already fill the device: the bound is strict (tiles x count < SMs x kSplitKBlocksPerSm), and it is the count
// before the new one that is checked.
TEST(SplitKCandidates, StopWhenTheDeviceIsFull) {
  ASSERT_EQ(cuda::kSplitKBlocksPerSm, 3) << "the expectations below are worked out for 3 blocks an SM";
  // 66 x 128 = 8448 pixels = 132 tiles x 2 = 264; chunks 36. 2: 264 < 396. 4: 264 x 2 = 528, not < 396.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 66, 128, 256, 64, 3), 132), (std::vector<int>{1, 2}));
  // 98 x 64 pixels = 98 tiles x 2 = 196: 4: 392 < 396. 8: 196 x 4 = 784.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 98, 64, 256, 64, 3), 132), (std::vector<int>{1, 2, 4}));
  // 99 x 64 pixels = 99 tiles x 2 = 198: 4: 198 x 2 = 396, not < 396.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 99, 64, 256, 64, 3), 132), (std::vector<int>{1, 2}));
  // 197 pixel tiles x 2 = 394 tiles: 2: 394 < 396. 4: 788.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 197, 64, 256, 64, 3), 132), (std::vector<int>{1, 2}));
  // 198 pixel tiles x 2 = 396 tiles: 2: 396 x 1, not < 396.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 198, 64, 256, 64, 3), 132), (std::vector<int>{1}));
  // Batch 8 of layer1's 3x3: 392 pixel tiles x 2 = 784 tiles.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(8, 56, 56, 64, 64, 3), 132), (std::vector<int>{1}));
  // The SM count matters: layer4's 3x3 (16 tiles) on 5 SMs (15 blocks): 2: 16 x 1, not < 15.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 7, 7, 512, 512, 3), 5), (std::vector<int>{1}));
  // ... on 6 SMs (18 blocks): 2: 16 < 18, 4: 32 not < 18.
  EXPECT_EQ(cuda::splitk_conv_candidates(shape(1, 7, 7, 512, 512, 3), 6), (std::vector<int>{1, 2}));
}

// The chunk bound is integer division: 15 chunks (1x5 over 192 channels) take 4 (15/4 = 3) but not 8 (15/8 = 1).
TEST(SplitKCandidates, EverySplitKeepsTwoChunks) {
  cuda::SplitKConvGeometry g = shape(1, 7, 7, 192, 64, 1);
  g.kw = 5;
  ASSERT_EQ(g.chunks(), 15);
  EXPECT_EQ(cuda::splitk_conv_candidates(g, 132), (std::vector<int>{1, 2, 4}));
  g = shape(1, 7, 7, 1024, 64, 1);  // 16 chunks: 8 splits of exactly 2
  ASSERT_EQ(g.chunks(), 16);
  EXPECT_EQ(cuda::splitk_conv_candidates(g, 132), (std::vector<int>{1, 2, 4, 8}));
}

// fixed_splits alone when set, whatever the device and the shape would allow.
TEST(SplitKCandidates, FixedSplitsAlone) {
  for (int s : {1, 2, 4, 8}) {
    cuda::SplitKConvGeometry g = shape(1, 7, 7, 512, 512, 3);  // free choice {1, 2, 4, 8}
    g.fixed_splits = s;
    EXPECT_EQ(cuda::splitk_conv_candidates(g, 132), std::vector<int>{s}) << s;
    g = shape(8, 56, 56, 64, 64, 3);  // free choice {1}: the device is full
    g.fixed_splits = s;
    EXPECT_EQ(cuda::splitk_conv_candidates(g, 132), std::vector<int>{s}) << s;
  }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
