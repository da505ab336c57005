// Kiln's narrow-input tensor-core convolution (src/backends/cuda/kernels/narrow_conv_mma.*), a candidate of the
// convolution kernel: which nodes are eligible (no GPU needed), KILN_CONV_NARROW's and KILN_CONV_NARROW_TILE's
// values, and on a GPU the kernel forced, timed and off against the CPU kernel in float16 and bfloat16, in both
// warp tilings (rows4, rows2): ResNet-50's stem after space-to-depth (4x4, 16 -> 64, bias + ReLU) and
// MobileNet's (2x2, 16 -> 32, ReLU6), output sizes that end inside a tile (heights that end inside a warp's
// 4 rows too), 32- and 64-channel blocks (K 32, 64, 96, 128), a residual, no epilogue, the 1x16 and 16x1
// extremes of the window the kernel's shared memory is sized for, and a node outside its conditions left to
// cuDNN.
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/conv_kernel_checks.h"
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cudnn/conv_graph_record.h"
#include "backends/cuda/fake_conv_node.h"
#include "backends/cuda/kernels/narrow_conv_mma.h"
#include "kiln/types.h"

namespace kiln {
namespace {

using namespace cudatest;

struct NarrowCase {
  const char* label;
  Dims x;  // [N, H, W, C]
  int64_t k = 0, kh = 1, kw = 1;
  bool bias = false, residual = false;
  int64_t act = -1;  // 0 ReLU, 8 clip as ReLU6, 3 leaky ReLU (alpha 0.1: read at run time), -1 none
};

std::string describe(const NarrowCase& c, DataType dt) {
  return std::string(c.label) + " " + dtype_name(dt) + " x " + dims_str(c.x) + " K " + std::to_string(c.k) + " " +
         std::to_string(c.kh) + "x" + std::to_string(c.kw);
}

Dims y_shape(const NarrowCase& c) { return {c.x[0], c.x[1] - c.kh + 1, c.x[2] - c.kw + 1, c.k}; }

void set_attrs(ir::Attrs& a, const NarrowCase& c) {
  a.set("num_output_maps", c.k);
  a.set("kernel", std::vector<int64_t>{c.kh, c.kw});
  a.set("pre_padding", std::vector<int64_t>{0, 0});
  a.set("post_padding", std::vector<int64_t>{0, 0});
  a.set("stride", std::vector<int64_t>{1, 1});
  a.set("groups", int64_t{1});
  a.set("channels_last", int64_t{1});
  if (c.act >= 0) a.set("activation", c.act);
  if (c.act == 8) {  // ReLU6
    a.set("act_alpha", 0.0);
    a.set("act_beta", 6.0);
  }
  if (c.act == 3) a.set("act_alpha", 0.1);  // leaky ReLU
}

// Runs the case through the Convolution kernel against the CPU; *chosen: how many choices took the narrow
// kernel meanwhile (one node, one shape: 0 or 1).
::testing::AssertionResult check(const NarrowCase& c, DataType dt, int64_t* chosen) {
  return check_conv_counting(conv_inputs(dt, c.x, c.k, c.kh, c.kw, y_shape(c), c.bias, c.residual),
                             [&](ir::Attrs& a) { set_attrs(a, c); }, &cuda::ConvGraphCounters::narrow_chosen, chosen);
}

const std::vector<NarrowCase>& eligible_cases() {
  static const std::vector<NarrowCase> cases = {
      {"ResNet stem", {2, 21, 37, 16}, 64, 4, 4, true, false, 0},       // 18 x 34 outputs: tiles end inside
      {"MobileNet stem", {1, 17, 19, 16}, 32, 2, 2, true, false, 8},    // ReLU6
      {"K 96, 3x3, no epilogue", {1, 9, 20, 16}, 96, 3, 3},              // three 32-channel blocks
      {"K 128, 1x1, residual", {3, 5, 5, 16}, 128, 1, 1, true, true, 0},  // two 64-channel blocks
      {"1x16 window", {1, 8, 40, 16}, 32, 1, 16},
      {"16x1 window", {1, 20, 9, 16}, 64, 16, 1, false, true, -1},       // residual without a bias
      {"Leaky ReLU", {2, 10, 18, 16}, 64, 2, 2, true, false, 3},         // the kernel that reads the type
      // Heights that end inside a warp's rows in rows4 (a tile's rows 0-3 and 4-7): 6 and 13 outputs (the last
      // warp row half with 2 and 1 rows), and 7 with 64 channels (K 96 above has 7 with 32).
      {"3x1, 6 rows", {2, 8, 21, 16}, 96, 3, 1, true, false, 0},           // 6 x 21 outputs
      {"1x5, 13 rows", {1, 13, 35, 16}, 64, 1, 5, true, true, 8},          // 13 x 31, residual, ReLU6
      {"4x4, 6 rows, K 32", {1, 9, 23, 16}, 32, 4, 4, true, false, 0},     // 6 x 20: the stem's taps, KT 32
      {"2x2, 7 rows", {1, 8, 13, 16}, 64, 2, 2, false, true, -1},          // 7 x 12, narrower than a tile
      // 1216 tiles, more than 4 blocks on each of 132 SMs: blocks compute 2-3 tiles each, so the next tile's
      // window is copied while one is computed (on a GPU with more SMs, some blocks still take two).
      {"Many tiles per block", {4, 151, 251, 16}, 32, 2, 2, true, false, 0},
  };
  return cases;
}

// The warp tilings (KILN_CONV_NARROW_TILE, read when a node chooses its path): each GPU test runs in both.
constexpr const char* kTilings[] = {"rows4", "rows2"};

// KILN_CONV_NARROW=force: every eligible case takes the kernel and matches the CPU.
TEST(CudaNarrowConv, ForcedMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CONV_NARROW", "force");
  for (const char* tiling : kTilings) {
    ScopedEnv tile("KILN_CONV_NARROW_TILE", tiling);
    for (DataType dt : {DataType::kHALF, DataType::kBF16})
      for (const NarrowCase& c : eligible_cases()) {
        int64_t chosen = -1;
        EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt) << " tiling " << tiling;
        EXPECT_EQ(chosen, 1) << describe(c, dt) << " tiling " << tiling << ": the narrow kernel was not taken";
      }
  }
}

// The default (timed against cuDNN's paths) and KILN_CONV_NARROW=0 (never): whatever runs is right, and "0"
// never takes the kernel.
TEST(CudaNarrowConv, TimedAndOffMatchCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const char* tiling : kTilings) {
    ScopedEnv tile("KILN_CONV_NARROW_TILE", tiling);
    for (const char* m : {static_cast<const char*>(nullptr), "0"}) {
      ScopedEnv mode("KILN_CONV_NARROW", m);
      for (const NarrowCase& c : eligible_cases()) {
        const std::string what = describe(c, DataType::kHALF) + " mode " + (m ? m : "timed") + " tiling " + tiling;
        int64_t chosen = -1;
        EXPECT_TRUE(check(c, DataType::kHALF, &chosen)) << what;
        if (m) {
          EXPECT_EQ(chosen, 0) << what << ": KILN_CONV_NARROW=0 took the kernel";
        }
      }
    }
  }
}

// Outside the conditions (8 input channels; K not a multiple of 32; float32): forcing leaves the node to the
// usual choice, without an error, and the result is right.
TEST(CudaNarrowConv, ForcedLeavesIneligibleNodesToCudnn) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CONV_NARROW", "force");
  const std::vector<std::pair<NarrowCase, DataType>> cases = {
      {{"8 channels", {1, 9, 9, 8}, 32, 2, 2}, DataType::kHALF},
      {{"K 48", {1, 9, 9, 16}, 48, 2, 2}, DataType::kHALF},
      {{"float32", {1, 9, 9, 16}, 32, 2, 2}, DataType::kFLOAT},
  };
  for (const auto& [c, dt] : cases) {
    int64_t chosen = -1;
    EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt);
    EXPECT_EQ(chosen, 0) << describe(c, dt);
  }
}

// ---- Without a GPU: eligibility ----

// A node of the case at fake device addresses, for narrow_conv_geometry.
struct FakeNode : FakeConvNode {
  FakeNode(const NarrowCase& c, DataType dt)
      : FakeConvNode(dt, c.x, {c.k, c.kh, c.kw, c.x[3]}, y_shape(c), c.bias, c.residual,
                     [&](ir::Attrs& a) { set_attrs(a, c); }) {}
};

TEST(NarrowConvGeometry, EligibleCasesAreTaken) {
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const NarrowCase& c : eligible_cases()) {
      FakeNode f(c, dt);
      cuda::NarrowConvGeometry geo;
      std::string why;
      ASSERT_TRUE(cuda::narrow_conv_geometry(*f.ctx, true, &geo, &why)) << describe(c, dt) << ": " << why;
      const Dims y = y_shape(c);
      EXPECT_EQ(geo.N, c.x[0]);
      EXPECT_EQ(geo.H, c.x[1]);
      EXPECT_EQ(geo.W, c.x[2]);
      EXPECT_EQ(geo.K, c.k);
      EXPECT_EQ(geo.OH, y[1]);
      EXPECT_EQ(geo.OW, y[2]);
      EXPECT_EQ(geo.kh, c.kh);
      EXPECT_EQ(geo.kw, c.kw);
      // The activation is read with the geometry (not at each launch): ReLU6 is Clip(0, 6), leaky ReLU's alpha 0.1.
      EXPECT_EQ(geo.act, c.act) << describe(c, dt);
      EXPECT_FLOAT_EQ(geo.alpha, c.act == 3 ? 0.1f : 0.0f) << describe(c, dt);
      if (c.act == 8) {
        EXPECT_FLOAT_EQ(geo.beta, 6.0f) << describe(c, dt);
      }
      EXPECT_TRUE(cuda::narrow_conv_aligned(*f.ctx));
    }
}

TEST(NarrowConvGeometry, RefusesWithAReason) {
  const NarrowCase base{"base", {1, 9, 9, 16}, 32, 2, 2, true, false, 0};
  auto refused = [](FakeNode& f, bool unit, const std::string& reason) {
    cuda::NarrowConvGeometry geo;
    std::string why;
    EXPECT_FALSE(cuda::narrow_conv_geometry(*f.ctx, unit, &geo, &why)) << reason;
    EXPECT_NE(why.find(reason), std::string::npos) << "'" << why << "' should say " << reason;
  };
  {
    FakeNode f(base, DataType::kHALF);
    refused(f, false, "stride 1");
  }
  {
    FakeNode f(base, DataType::kFLOAT);
    refused(f, true, "float16 or bfloat16");
  }
  {
    NarrowCase c = base;
    c.x[3] = 8;
    FakeNode f(c, DataType::kHALF);
    refused(f, true, "not 16");
  }
  {
    NarrowCase c = base;
    c.k = 40;
    FakeNode f(c, DataType::kHALF);
    refused(f, true, "multiple of 32");
  }
  {
    NarrowCase c = base;
    c.x = {1, 9, 9, 16};
    c.kh = c.kw = 5;  // 25 taps
    FakeNode f(c, DataType::kHALF);
    refused(f, true, "16 filter taps");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.node->attrs.set("groups", int64_t{2});
    refused(f, true, "grouped");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.node->attrs.set("channels_last", int64_t{0});
    refused(f, true, "channels-last");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->out[0].shape = {1, 9, 9, 32};  // the size of a padded convolution
    refused(f, true, "unpadded stride-1");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.ctx->in[2].shape = {16};
    refused(f, true, "bias");
  }
  {
    FakeNode f(base, DataType::kHALF);
    f.node->attrs.set("activation", int64_t{999});
    refused(f, true, "activation");
  }
  // Misaligned addresses: eligible, but not aligned (the kernel's 16-byte loads).
  FakeNode f(base, DataType::kHALF);
  f.ctx->in[0].data = reinterpret_cast<void*>(0x10008);
  EXPECT_FALSE(cuda::narrow_conv_aligned(*f.ctx));
}

// The switch's values are candidate_mode's (test_candidate_mode.cpp); this one reads KILN_CONV_NARROW.
TEST(NarrowConvGeometry, ReadsItsSwitch) {
  ScopedEnv m("KILN_CONV_NARROW", "0");
  EXPECT_EQ(cuda::narrow_conv_mode(), cuda::NarrowConvMode::kOff);
}

// ---- Without a GPU: KILN_CONV_NARROW_TILE ----

using cuda::NarrowConvTile;
constexpr const char* kTileVar = "KILN_CONV_NARROW_TILE";

// The tiling narrow_conv_geometry resolves for case c under the current KILN_CONV_NARROW_TILE.
NarrowConvTile resolved_tile(const NarrowCase& c) {
  FakeNode f(c, DataType::kHALF);
  cuda::NarrowConvGeometry geo;
  std::string why;
  EXPECT_TRUE(cuda::narrow_conv_geometry(*f.ctx, true, &geo, &why)) << why;
  return geo.tile;
}

// Each value as parsed, and as the geometry resolves it for ResNet's stem (4x4, 64 channels: auto takes
// rows4) and MobileNet's (2x2, 32 channels: auto takes rows2). The launch reads nothing more.
TEST(NarrowConvTile, Values) {
  const NarrowCase resnet{"4x4 stem", {1, 9, 9, 16}, 64, 4, 4, true, false, 0};
  const NarrowCase mobilenet{"2x2 stem", {1, 9, 9, 16}, 32, 2, 2, true, false, 8};
  struct Case {
    const char* value;  // nullptr: unset
    NarrowConvTile tile, resnet, mobilenet;
  };
  using T = NarrowConvTile;
  for (const Case& c : {Case{nullptr, T::kAuto, T::kRows4, T::kRows2}, Case{"", T::kAuto, T::kRows4, T::kRows2},
                        Case{"auto", T::kAuto, T::kRows4, T::kRows2}, Case{"rows4", T::kRows4, T::kRows4, T::kRows4},
                        Case{"rows2", T::kRows2, T::kRows2, T::kRows2}}) {
    const std::string what = c.value ? std::string("'") + c.value + "'" : "(unset)";
    // Start from another tiling, so a parse that leaves *out alone fails.
    NarrowConvTile parsed = c.tile == NarrowConvTile::kRows4 ? NarrowConvTile::kRows2 : NarrowConvTile::kRows4;
    EXPECT_TRUE(cuda::parse_narrow_conv_tile(c.value, &parsed)) << what;
    EXPECT_EQ(parsed, c.tile) << what;
    ScopedEnv e(kTileVar, c.value);
    EXPECT_EQ(resolved_tile(resnet), c.resnet) << what;
    EXPECT_EQ(resolved_tile(mobilenet), c.mobilenet) << what;
  }
}

// Any other value fails the node when its geometry is read (naming the switch, the value, the accepted
// values and the layer), before anything reaches the GPU: this runs on the fake node's addresses.
TEST(NarrowConvTile, OtherValuesFailTheNodeNamingTheSwitch) {
  const NarrowCase c{"stem", {1, 9, 9, 16}, 32, 2, 2, true, false, 0};
  for (const char* bad : {"rows3", "foo", "ROWS4", "rows4 ", "2"}) {
    NarrowConvTile parsed;
    EXPECT_FALSE(cuda::parse_narrow_conv_tile(bad, &parsed)) << "'" << bad << "'";
    ScopedEnv e(kTileVar, bad);
    FakeNode f(c, DataType::kHALF);
    cuda::NarrowConvGeometry geo;
    std::string why;
    try {
      cuda::narrow_conv_geometry(*f.ctx, true, &geo, &why);
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const Error& ex) {
      const std::string what = ex.what();
      EXPECT_NE(what.find(std::string(kTileVar) + "=" + bad), std::string::npos) << what;
      EXPECT_NE(what.find("auto"), std::string::npos) << what;
      EXPECT_NE(what.find("rows4"), std::string::npos) << what;
      EXPECT_NE(what.find("rows2"), std::string::npos) << what;
      EXPECT_NE(what.find("'conv'"), std::string::npos) << what;  // the layer
    }
  }
}

// auto: rows4 for 64-channel blocks with 3 or more rows of taps (ResNet's 4x4 stem), rows2 elsewhere (the
// H200's measurements in narrow_conv_tile_for's comment).
TEST(NarrowConvTile, AutoTakesRows4WhereItSavesLoads) {
  EXPECT_EQ(cuda::narrow_conv_tile_for(64, 4), NarrowConvTile::kRows4);
  EXPECT_EQ(cuda::narrow_conv_tile_for(64, 3), NarrowConvTile::kRows4);
  EXPECT_EQ(cuda::narrow_conv_tile_for(64, 2), NarrowConvTile::kRows2);
  EXPECT_EQ(cuda::narrow_conv_tile_for(64, 1), NarrowConvTile::kRows2);
  EXPECT_EQ(cuda::narrow_conv_tile_for(32, 4), NarrowConvTile::kRows2);
  EXPECT_EQ(cuda::narrow_conv_tile_for(32, 2), NarrowConvTile::kRows2);
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
