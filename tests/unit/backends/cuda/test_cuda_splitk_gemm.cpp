// Kiln's split-K convolution kernel as a candidate of the MatrixMultiply kernel (src/backends/cuda/cublaslt/
// splitk_gemm.*): which products it takes on each tile and why it refuses others, its 1x1-convolution geometry
// and the split counts timed for GPT-2's GEMMs (no GPU needed), KILN_GEMM_SPLITK's and KILN_GEMM_SPLITK_TILE's
// values, and on a GPU the kernel forced (on each tile), timed and off against the CPU kernel in float16 and
// bfloat16: GPT-2's c_attn, c_fc and c_proj and ViT's 197 token rows (a partial last tile) at batch 1, A's batch
// folded into the rows, a single row, every epilogue part (bias, residual, ReLU, erf- and tanh-GELU), every tile
// at every split count it would time, products outside its conditions left to cuBLASLt, and a misaligned run of
// a node that took it.
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/cublaslt/splitk_gemm.h"
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/device.h"
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/gemm_on_device.h"
#include "backends/cuda/kernels/splitk_conv_mma.h"
#include "backends/cuda/matmul_at_offsets.h"
#include "kiln/types.h"

namespace kiln {
namespace {

using namespace cudatest;

constexpr const char* kModeVar = "KILN_GEMM_SPLITK";
constexpr const char* kSmallMVar = "KILN_GEMM_SMALL_M";
constexpr int kH200Sms = 132;  // 132 x kSplitKBlocksPerSm (3) = 396 tiles at most

// ---- No GPU needed ----

// GPT-2's c_fc at batch 1: 128 token rows x 768 by weights [3072, 768]; tiles 2 x 96 = 192.
cuda::SplitKGemmProblem c_fc() {
  cuda::SplitKGemmProblem p{token_rows(), 13};  // tanh-GELU
  return p;
}

constexpr const char* kTileVar = "KILN_GEMM_SPLITK_TILE";
constexpr cuda::SplitKTile kWide64{128, 64}, kSquare64{64, 64};

std::string refusal(const cuda::SplitKGemmProblem& p, int sms = kH200Sms, int major = 9,
                    cuda::SplitKTile tile = cuda::kSplitKConvTile) {
  const char* why = cuda::splitk_gemm_refusal(p, sms, major, tile);
  return why ? why : "(taken)";
}

TEST(SplitKGemm, TakesTokenRowProductsAndSaysWhyNotOthers) {
  EXPECT_EQ(refusal(c_fc()), "(taken)");
  cuda::SplitKGemmProblem bf = c_fc();
  bf.dtype = DataType::kBF16;
  bf.act = -1;
  EXPECT_EQ(refusal(bf), "(taken)") << "bfloat16, no activation";

  auto refused = [](auto&& change, int sms = kH200Sms, int major = 9) {
    cuda::SplitKGemmProblem q = c_fc();
    change(q);
    return refusal(q, sms, major);
  };
  EXPECT_EQ(refused([](auto& q) { q.dtype = DataType::kFLOAT; }), "not float16 or bfloat16");
  EXPECT_EQ(refused([](auto& q) { q.a_rows_packed = false; }), "a is not [M, K] with rows K apart");
  EXPECT_EQ(refused([](auto& q) { q.w_rows_of_k = false; }), "the weights are not [N, K] with rows K apart");
  EXPECT_EQ(refused([](auto& q) { q.m = 0; }), "no output");
  EXPECT_EQ(refused([](auto& q) { q.n = 0; }), "no output");
  EXPECT_EQ(refused([](auto& q) { q.k = 96; }), "K not a multiple of 64");
  EXPECT_EQ(refused([](auto& q) { q.k = 32; }), "K not a multiple of 64");
  EXPECT_EQ(refused([](auto& q) { q.n = 48; }), "N not a multiple of 32");
  EXPECT_EQ(refused([](auto& q) { q.k = int64_t{1} << 29; }), "too large");
  EXPECT_EQ(refused([](auto& q) { q.n = int64_t{65536} * 32; }), "too large") << "65536 column tiles: the grid";
  // 14 lies between tanh-GELU (13) and HardSwish (64): no activation of the epilogue's.
  EXPECT_EQ(refused([](auto& q) { q.act = 999; }), "activation");
  EXPECT_EQ(refused([](auto& q) { q.act = 14; }), "activation");
  EXPECT_EQ(refused([](auto&) {}, kH200Sms, 8), "thread block clusters need sm_90 or newer");
  // Tiles: ceil(m / 64) row tiles x n / 32 column tiles, at most 132 SMs x 3 = 396 at one split.
  auto sized = [](int64_t m, int64_t n, int sms = kH200Sms) {
    cuda::SplitKGemmProblem q = c_fc();
    q.m = m;
    q.n = n;
    return refusal(q, sms);
  };
  const std::string full = "its tiles fill the GPU at one split";
  EXPECT_EQ(sized(16384, 768), full) << "256 x 24 = 6144 tiles";
  // The boundary: one row tile x 396 column tiles fits, x 397 does not; 65 rows (2 row tiles, the second of one
  // row) x 198 column tiles is 396 again, 129 rows (3 row tiles) 594.
  EXPECT_EQ(sized(64, 396 * 32), "(taken)") << "1 x 396 tiles";
  EXPECT_EQ(sized(64, 397 * 32), full) << "1 x 397 tiles";
  EXPECT_EQ(sized(65, 198 * 32), "(taken)") << "2 x 198 tiles";
  EXPECT_EQ(sized(129, 198 * 32), full) << "3 x 198 tiles";
  // The same 396 tiles on a GPU of 131 SMs (393 blocks at one split) are too many.
  EXPECT_EQ(sized(64, 396 * 32, 131), full) << "396 tiles on 131 SMs";
}

// The wider tiles: N a multiple of their 64 columns; at most 132 x 2 tiles at one split; the other conditions as
// on the 64 x 32 tile.
TEST(SplitKGemm, WideTilesTakeWhatTheyDivideAndFit) {
  EXPECT_EQ(cuda::splitk_blocks_per_sm(cuda::kSplitKConvTile), cuda::kSplitKBlocksPerSm);
  EXPECT_EQ(cuda::splitk_blocks_per_sm(kSquare64), 2);
  EXPECT_EQ(cuda::splitk_blocks_per_sm(kWide64), 2);
  EXPECT_EQ(cuda::splitk_blocks_per_sm(cuda::SplitKTile{32, 32}), 0) << "a tile the kernel is not built for";
  EXPECT_EQ(cuda::splitk_blocks_per_sm(cuda::SplitKTile{128, 128}), 0) << "timed in the eighteenth session, dropped";
  auto sized = [](int64_t m, int64_t n, cuda::SplitKTile tile, int sms = kH200Sms) {
    cuda::SplitKGemmProblem q = c_fc();
    q.m = m;
    q.n = n;
    return refusal(q, sms, 9, tile);
  };
  // c_fc's tiles and the fewest SMs they fit at one split: 64 x 64 2 x 48 = 96 at 2 an SM, 128 x 64 48 at 2.
  const std::pair<cuda::SplitKTile, int> fewest[] = {{kSquare64, 48}, {kWide64, 24}};
  for (const auto& [t, sms] : fewest) {
    EXPECT_EQ(sized(128, 3072, t), "(taken)") << t.name() << ": c_fc";
    EXPECT_EQ(sized(197, 768, t), "(taken)") << t.name() << ": ViT's projections";
    EXPECT_EQ(sized(128, 3072, t, sms), "(taken)") << t.name() << ": c_fc on " << sms << " SMs";
    EXPECT_EQ(sized(128, 3072, t, sms - 1), "its tiles fill the GPU at one split") << t.name() << " on " << sms - 1;
    cuda::SplitKGemmProblem q = c_fc();
    q.dtype = DataType::kFLOAT;
    EXPECT_EQ(refusal(q, kH200Sms, 9, t), "not float16 or bfloat16") << t.name();
    EXPECT_EQ(refusal(c_fc(), kH200Sms, 8, t), "thread block clusters need sm_90 or newer") << t.name();
  }
  EXPECT_EQ(sized(128, 96, kWide64), "N not a multiple of 64");
  EXPECT_EQ(sized(128, 96, kSquare64), "N not a multiple of 64");
  EXPECT_EQ(sized(128, 3072 + 64, kWide64), "(taken)");
  const std::string full = "its tiles fill the GPU at one split";
  // 128 x 64: 48 column tiles x 5 row tiles = 240 <= 264; x 6 = 288.
  EXPECT_EQ(sized(640, 3072, kWide64), "(taken)") << "5 x 48 tiles";
  EXPECT_EQ(sized(641, 3072, kWide64), full) << "6 x 48 tiles";
  // 64 x 64: 2 x 48 = 96 <= 264 for c_fc; 6 row tiles (321-384 rows) x 48 = 288 > 264.
  EXPECT_EQ(sized(320, 3072, kSquare64), "(taken)") << "5 x 48 tiles";
  EXPECT_EQ(sized(321, 3072, kSquare64), full) << "6 x 48 tiles";
  // Where the 64 x 32 tile is refused for filling the GPU, a wider one may still apply: 512 x 3072 is 8 x 96 = 768
  // tiles of 64 x 32, 4 x 48 = 192 of 128 x 64.
  EXPECT_EQ(sized(512, 3072, cuda::kSplitKConvTile), full);
  EXPECT_EQ(sized(512, 3072, kWide64), "(taken)");
}

TEST(SplitKGemm, GeometryIsAOneByOneConvolutionOfMPixels) {
  cuda::SplitKGemmProblem p = c_fc();
  p.m = 197;
  p.act = 3;  // leaky ReLU, with its parameter copied
  p.alpha = 0.1f;
  p.beta = 0.5f;
  ScopedEnv pdl("KILN_PDL", nullptr);
  const cuda::SplitKConvGeometry g = cuda::splitk_gemm_geometry(p);
  EXPECT_EQ(g.N, 1);
  EXPECT_EQ(g.H, 1);
  EXPECT_EQ(g.W, 197);
  EXPECT_EQ(g.C, 768);
  EXPECT_EQ(g.K, 3072);
  EXPECT_EQ(g.OH, 1);
  EXPECT_EQ(g.OW, 197);
  EXPECT_EQ(g.kh, 1);
  EXPECT_EQ(g.kw, 1);
  EXPECT_EQ(g.window.pad_h, 0);
  EXPECT_EQ(g.window.pad_w, 0);
  EXPECT_EQ(g.window.stride_h, 1);
  EXPECT_EQ(g.window.stride_w, 1);
  EXPECT_EQ(g.window.dil_h, 1);
  EXPECT_EQ(g.window.dil_w, 1);
  EXPECT_EQ(g.act, 3);
  EXPECT_FLOAT_EQ(g.alpha, 0.1f);
  EXPECT_FLOAT_EQ(g.beta, 0.5f);
  EXPECT_EQ(g.fixed_splits, 0) << "KILN_CONV_SPLITK_SPLITS is the convolution's, not the GEMM's";
  EXPECT_TRUE(g.programmatic) << "KILN_PDL unset";
  EXPECT_EQ(g.pixels(), 197);
  EXPECT_EQ(g.chunks(), 12);
  EXPECT_EQ(g.tiles(), 4 * 96);
  EXPECT_TRUE(g.tile == cuda::kSplitKConvTile) << g.tile.name();
  const cuda::SplitKConvGeometry wide = cuda::splitk_gemm_geometry(p, kWide64);
  EXPECT_TRUE(wide.tile == kWide64) << wide.tile.name();
  EXPECT_EQ(wide.tiles(), 2 * 48) << "197 rows: 2 row tiles of 128";
  EXPECT_EQ(cuda::splitk_gemm_geometry(p, kSquare64).tiles(), 4 * 48);
  ScopedEnv off("KILN_PDL", "0");
  EXPECT_FALSE(cuda::splitk_gemm_geometry(p).programmatic) << "KILN_PDL=0";
}

// splitk_conv_candidates on 132 SMs (room 396 blocks): 1, then s = 2, 4, 8 while tiles x s/2 < 396 and
// chunks / s >= 2.
TEST(SplitKGemm, SplitCountsForGpt2AndVit) {
  auto splits = [](int64_t m, int64_t n, int64_t k) {
    cuda::SplitKGemmProblem p = c_fc();
    p.m = m;
    p.n = n;
    p.k = k;
    EXPECT_EQ(refusal(p), "(taken)") << m << " x " << n << " x " << k;
    return cuda::splitk_conv_candidates(cuda::splitk_gemm_geometry(p), kH200Sms);
  };
  // c_fc: tiles 2 x 96 = 192, chunks 12. 2: 192 < 396, 6 chunks; 4: 384 < 396, 3 chunks; 8: 768 >= 396.
  EXPECT_EQ(splits(128, 3072, 768), (std::vector<int>{1, 2, 4}));
  // c_proj: tiles 2 x 24 = 48, chunks 48. 2: 48; 4: 96; 8: 192 < 396, 6 chunks.
  EXPECT_EQ(splits(128, 768, 3072), (std::vector<int>{1, 2, 4, 8}));
  // c_attn: tiles 2 x 72 = 144, chunks 12. 2: 144; 4: 288 < 396, 3 chunks; 8: 576 >= 396.
  EXPECT_EQ(splits(128, 2304, 768), (std::vector<int>{1, 2, 4}));
  // ViT's fc1 at 197 rows: tiles 4 x 96 = 384, chunks 12. 2: 384 < 396; 4: 768 >= 396.
  EXPECT_EQ(splits(197, 3072, 768), (std::vector<int>{1, 2}));
  // K 128: 2 chunks, one a split at 2 splits (fewer than 2): 1 alone.
  EXPECT_EQ(splits(1, 32, 128), (std::vector<int>{1}));
  // K 256: 4 chunks, 2 a split at 2, 1 at 4.
  EXPECT_EQ(splits(1, 32, 256), (std::vector<int>{1, 2}));
}

// The same rule on the wider tiles: room 132 x 2 = 264 blocks.
TEST(SplitKGemm, SplitCountsOnTheWideTiles) {
  auto splits = [](int64_t m, int64_t n, int64_t k, cuda::SplitKTile tile) {
    cuda::SplitKGemmProblem p = c_fc();
    p.m = m;
    p.n = n;
    p.k = k;
    EXPECT_EQ(refusal(p, kH200Sms, 9, tile), "(taken)") << m << " x " << n << " x " << k << " on " << tile.name();
    return cuda::splitk_conv_candidates(cuda::splitk_gemm_geometry(p, tile), kH200Sms);
  };
  // c_proj on 128 x 64: 12 tiles, 48 chunks: 2, 4, 8 (48 < 264, 6 chunks).
  EXPECT_EQ(splits(128, 768, 3072, kWide64), (std::vector<int>{1, 2, 4, 8}));
  // c_fc on 128 x 64: 48 tiles. 2: 48; 4: 96 < 264, 3 chunks; 8: 1 chunk.
  EXPECT_EQ(splits(128, 3072, 768, kWide64), (std::vector<int>{1, 2, 4}));
  // ViT's fc1 on 128 x 64: 2 x 48 = 96 tiles. 2: 96; 4: 192 < 264, 3 chunks; 8: 1 chunk.
  EXPECT_EQ(splits(197, 3072, 768, kWide64), (std::vector<int>{1, 2, 4}));
  // 5 x 48 = 240 tiles on 128 x 64: 2 at 240 < 264, 4 at 480 >= 264.
  EXPECT_EQ(splits(640, 3072, 768, kWide64), (std::vector<int>{1, 2}));
  // c_fc on 64 x 64: 2 x 48 = 96 tiles. 2: 96; 4: 192 < 264, 3 chunks; 8: 1 chunk.
  EXPECT_EQ(splits(128, 3072, 768, kSquare64), (std::vector<int>{1, 2, 4}));
  // ViT's fc1 on 64 x 64: 4 x 48 = 192 tiles. 2: 192 < 264; 4: 384 >= 264.
  EXPECT_EQ(splits(197, 3072, 768, kSquare64), (std::vector<int>{1, 2}));
  // c_proj on 64 x 64: 2 x 12 = 24 tiles, 48 chunks: every count (8: 96 < 264, 6 chunks).
  EXPECT_EQ(splits(128, 768, 3072, kSquare64), (std::vector<int>{1, 2, 4, 8}));
}

TEST(SplitKGemm, TileSwitchValues) {
  auto names = [] {
    std::string out;
    for (cuda::SplitKTile t : cuda::splitk_gemm_tiles()) {
      if (!out.empty()) out += ' ';
      out += t.name();
    }
    return out;
  };
  {
    ScopedEnv e(kTileVar, nullptr);
    EXPECT_EQ(names(), "64x32 64x64 128x64");
  }
  {
    ScopedEnv e(kTileVar, "");
    EXPECT_EQ(names(), "64x32 64x64 128x64");
  }
  for (const char* one : {"64x32", "64x64", "128x64"}) {
    ScopedEnv e(kTileVar, one);
    EXPECT_EQ(names(), one);
  }
  for (const char* bad : {"128", "64X32", "128x128"}) {
    ScopedEnv e(kTileVar, bad);
    try {
      cuda::splitk_gemm_tiles();
      ADD_FAILURE() << kTileVar << "=" << bad << " was accepted";
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(kTileVar), std::string::npos) << err.what();
      EXPECT_NE(std::string(err.what()).find("128x64"), std::string::npos) << err.what();
    }
  }
}

TEST(SplitKGemm, SwitchValues) {
  {
    ScopedEnv e(kModeVar, nullptr);
    EXPECT_EQ(cuda::splitk_gemm_mode(), cuda::CandidateMode::kAuto);
  }
  {
    ScopedEnv e(kModeVar, "0");
    EXPECT_EQ(cuda::splitk_gemm_mode(), cuda::CandidateMode::kOff);
  }
  {
    ScopedEnv e(kModeVar, "force");
    EXPECT_EQ(cuda::splitk_gemm_mode(), cuda::CandidateMode::kForce);
  }
  ScopedEnv e(kModeVar, "fast");
  try {
    cuda::splitk_gemm_mode();
    ADD_FAILURE() << "KILN_GEMM_SPLITK=fast was accepted";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find(kModeVar), std::string::npos) << err.what();
  }
}

// ---- On a GPU ----

// The kernel needs thread block clusters (sm_90): below, forcing it must leave every product to cuBLASLt.
bool has_clusters() { return cuda::current_device().major >= 9; }

struct MmCase {
  const char* label;
  Dims a, b;  // b is [N, K] (op_b = 1) unless transposed_b is false
  bool bias = false, residual = false;
  int64_t act = -1;  // 0 ReLU, 12 erf-GELU, 13 tanh-GELU, -1 none
  bool transposed_b = true;
};

std::string describe(const MmCase& c, DataType dt) {
  return std::string(c.label) + " " + dtype_name(dt) + " a " + dims_str(c.a) + " b " + dims_str(c.b) + " bias " +
         std::to_string(c.bias) + " residual " + std::to_string(c.residual) + " act " + std::to_string(c.act);
}

// The product as matmul_kernel sees it (A's batch folded into the rows), for splitk_gemm_refusal.
cuda::SplitKGemmProblem problem_of(const MmCase& c, DataType dt) {
  cuda::SplitKGemmProblem p;
  p.dtype = dt;
  p.k = c.a.back();
  p.m = volume(c.a) / p.k;
  p.n = c.transposed_b ? c.b[0] : c.b.back();
  p.a_rows_packed = true;
  p.w_rows_of_k = c.transposed_b && c.b.size() == 2;
  p.act = static_cast<int>(c.act);
  return p;
}

// Runs the case's MatrixMultiply against the CPU; *chosen: how many times the split-K kernel was chosen.
//
// Tolerances (check_op's compare: |got - ref| <= tol x max|ref| + atol, tol 2e-3 in float16 and 1.6e-2 in
// bfloat16): a in [-1, 1] and weights in [-0.05, 0.05] make each product term's variance 2.8e-4, so a sum over
// K = 3072 has a standard deviation near 0.9 and max|ref| over a few hundred thousand outputs (with bias and
// residual in +-[0.1, 2]) lies around 4-8, far inside float16's range. The kernel sums in float32 (each split's
// partial tile, then the splits in a fixed order): that error is ~1e-6 of the sum, against the output's one
// rounding to the dtype, at most half an ulp of the element (2^-11 of it in float16, 2^-8 in bfloat16), itself at
// most that fraction of max|ref|: well inside tol x max|ref|, so the relative tolerance stays the harness's. The
// absolute allowance is the small-M test's, for a case whose outputs are all small (1 row, K 64, no bias).
// float32 keeps the harness's 1e-5 relative tolerance and no allowance: cuBLASLt's float32 GEMM against the CPU's.
::testing::AssertionResult check(const MmCase& c, DataType dt, int64_t* chosen) {
  ir::Graph g;
  ir::Node* n = g.add_node("MatrixMultiply", "m", {g.add_input("a", dt, c.a), g.add_input("b", dt, c.b)}, 1);
  n->attrs.set("op_b", int64_t{c.transposed_b ? 1 : 0});
  const Dims y = ir::infer_node(*n, {ir::TensorInfo{true, dt, c.a, nullptr}, ir::TensorInfo{true, dt, c.b, nullptr}})[0].shape;
  std::vector<HostTensor> in = {randf(c.a, dt, -1.0, 1.0), randf(c.b, dt, -0.05, 0.05)};
  if (c.bias || c.residual) in.push_back(c.bias ? randf({y.back()}, dt) : HostTensor());
  if (c.residual) in.push_back(randf(y, dt));
  Options opt;
  opt.library_handles = true;
  opt.atol = dt == DataType::kHALF ? 1e-3 : dt == DataType::kBF16 ? 8e-3 : 0.0;
  const int64_t before = cuda::splitk_gemm_chosen();
  ::testing::AssertionResult r = check_op("MatrixMultiply", in, [&](ir::Attrs& at) {
    at.set("op_b", int64_t{c.transposed_b ? 1 : 0});
    if (c.act >= 0) at.set("activation", c.act);
  }, opt);
  *chosen = cuda::splitk_gemm_chosen() - before;
  return r;
}

// GPT-2's c_attn, c_fc and c_proj and ViT-B/16's fc1 at batch 1, and the corners: every case fits 132 SMs (the
// most tiles: ViT's 4 x 96 = 384 <= 396).
const std::vector<MmCase>& eligible_cases() {
  static const std::vector<MmCase> cases = {
      {"GPT-2 c_attn", {128, 768}, {2304, 768}, true, false, -1},
      {"GPT-2 c_fc", {128, 768}, {3072, 768}, true, false, 13},
      {"GPT-2 c_proj", {128, 3072}, {768, 3072}, true, true, -1},
      {"ViT fc1 (197 rows: a last tile of 5)", {197, 768}, {3072, 768}, true, false, 12},
      {"A's batch folded: [1, 197, 768]", {1, 197, 768}, {768, 768}, true, false, -1},
      {"A's batch folded: [2, 3, 64]", {2, 3, 64}, {32, 64}, true, false, -1},
      {"1 row", {1, 64}, {32, 64}},
      {"ReLU with a residual, no bias", {100, 256}, {64, 256}, false, true, 0},
      {"130 rows (a last 128-row tile of 2), 128 columns, ReLU", {130, 512}, {128, 512}, true, true, 0},
  };
  return cases;
}

// KILN_GEMM_SPLITK=force (KILN_GEMM_SMALL_M=0, so the small-M kernel, forced or timed first, cannot take the
// cases of at most 8 rows), on each tile alone (KILN_GEMM_SPLITK_TILE): every product that tile applies to takes
// the kernel, with the most splits it would time, one choice a node, and matches the CPU; the rest are
// cuBLASLt's and match too.
TEST(CudaSplitKGemm, ForcedMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv small_m(kSmallMVar, "0");
  ScopedEnv mode(kModeVar, "force");
  const cuda::DeviceInfo& dev = cuda::current_device();
  for (cuda::SplitKTile tile : cuda::kSplitKTiles) {
    ScopedEnv only(kTileVar, tile.name().c_str());
    for (DataType dt : {DataType::kHALF, DataType::kBF16})
      for (const MmCase& c : eligible_cases()) {
        const std::string what = describe(c, dt) + " on " + tile.name();
        // On the H200 every case fits the 64 x 32 tile, and those whose N the wide tile divides fit it; a GPU of
        // fewer SMs leaves those whose tiles fill it to cuBLASLt, and one below sm_90 all of them (the refusal
        // names clusters).
        const cuda::SplitKGemmProblem p = problem_of(c, dt);
        const std::string why = refusal(p, dev.sm_count, dev.major, tile);
        if (dev.sm_count >= kH200Sms && dev.major >= 9 && p.n % tile.n == 0) {
          EXPECT_EQ(why, "(taken)") << what;
        }
        int64_t chosen = -1;
        EXPECT_TRUE(check(c, dt, &chosen)) << what;
        EXPECT_EQ(chosen, why == "(taken)" ? 1 : 0) << what << " on " << dev.sm_count << " SMs: " << why;
      }
  }
}

// Every tile at every split count it would time (not only the most, which forcing takes), launched straight
// through try_launch_splitk against the CPU: c_proj (K 3072: 48 chunks, more than a 4-stage ring at every count)
// with bias and residual, and ViT's fc1 (197 rows: a partial last row tile) with erf-GELU, in float16 and
// bfloat16. On sm_90 only: below, there is no kernel to launch (the GEMM view refuses every product there, which
// ForcedMatchesCpu checks).
TEST(CudaSplitKGemm, EveryTileAndSplitCountMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  const cuda::DeviceInfo& dev = cuda::current_device();
  if (!has_clusters()) {
    EXPECT_NE(refusal(c_fc(), dev.sm_count, dev.major), "(taken)");
    return;
  }
  const GemmCase shapes[] = {{"GPT-2 c_proj", 128, 768, 3072, true, -1}, {"ViT fc1", 197, 3072, 768, false, 12}};
  int launched = 0;
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const GemmCase& sh : shapes) {
      const GemmOnDevice g(sh, dt);
      ASSERT_EQ(g.uploaded, cudaSuccess) << sh.label;
      const cuda::ConvTensors t{g.a.get(), g.w.get(), g.bias.get(), g.residual, g.y.get()};
      cuda::SplitKGemmProblem p{token_rows(sh.m, sh.n, sh.k), sh.act};
      p.dtype = dt;
      for (cuda::SplitKTile tile : cuda::kSplitKTiles) {
        ASSERT_EQ(refusal(p, dev.sm_count, dev.major, tile), "(taken)") << sh.label << " on " << tile.name();
        const cuda::SplitKConvGeometry geometry = cuda::splitk_gemm_geometry(p, tile);
        for (int splits : cuda::splitk_conv_candidates(geometry, dev.sm_count)) {
          const std::string what = std::string(sh.label) + " " + dtype_name(dt) + " on " + tile.name() + " x" +
                                   std::to_string(splits);
          ASSERT_EQ(g.poison(), cudaSuccess) << what;
          std::string why;
          ASSERT_TRUE(cuda::try_launch_splitk(test_stream(), t, dt, false, geometry, splits, &why)) << what << ": " << why;
          ASSERT_EQ(cudaStreamSynchronize(test_stream()), cudaSuccess) << what;
          EXPECT_TRUE(g.matches()) << what;
          ++launched;
        }
      }
    }
  // 2 dtypes x (c_proj: 4 counts on each of 3 tiles; ViT's fc1: 2 on 64 x 32 and 64 x 64, 3 on 128 x 64).
  EXPECT_EQ(launched, 2 * (3 * 4 + 2 + 2 + 3)) << "a count or tile went missing";
}

// The default (timed against cuBLASLt's choice) and KILN_GEMM_SPLITK=0 (never) on c_fc: whatever runs is right,
// one node chooses once at most, and "0" never takes the kernel. Runs on any GPU (below sm_90 the kernel is
// never a candidate).
TEST(CudaSplitKGemm, TimedAndOffMatchCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv small_m(kSmallMVar, "0");
  const MmCase c = {"GPT-2 c_fc", {128, 768}, {3072, 768}, true, false, 13};
  for (const char* m : {static_cast<const char*>(nullptr), "0"})
    for (DataType dt : {DataType::kHALF, DataType::kBF16}) {
      ScopedEnv mode(kModeVar, m);
      const std::string what = describe(c, dt) + " mode " + (m ? m : "timed");
      int64_t chosen = -1;
      EXPECT_TRUE(check(c, dt, &chosen)) << what;
      EXPECT_LE(chosen, 1) << what << ": one node of one shape chose more than once";
      if (m) {
        EXPECT_EQ(chosen, 0) << what << ": KILN_GEMM_SPLITK=0 took the kernel";
      }
    }
}

// Outside its conditions (N 48; weights [K, N]; float32): forcing leaves the product to cuBLASLt, without an
// error, and the result is right. Runs on any GPU.
TEST(CudaSplitKGemm, ForcedLeavesIneligibleProductsToCublasLt) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv small_m(kSmallMVar, "0");
  ScopedEnv mode(kModeVar, "force");
  const std::vector<std::pair<MmCase, DataType>> cases = {
      {{"N 48", {128, 768}, {48, 768}, true}, DataType::kHALF},
      {{"weights [K, N]", {128, 768}, {768, 256}, true, false, -1, false}, DataType::kHALF},
      {{"float32", {128, 256}, {64, 256}, true}, DataType::kFLOAT},
  };
  for (const auto& [c, dt] : cases) {
    int64_t chosen = -1;
    EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt);
    EXPECT_EQ(chosen, 0) << describe(c, dt) << ": taken outside its conditions";
  }
}

// A node that took the kernel (forced, so the choice does not depend on this GPU's timings) and then runs with
// a 2 bytes off alignment (a caller's buffer moved): that run takes cuBLASLt's path, right (the kernel's 16-byte
// loads there would fault, and the stream would fail), and the next aligned run is right again.
TEST(CudaSplitKGemm, MisalignedRunTakesCublasLtAndKeepsTheChoice) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv small_m(kSmallMVar, "0");
  ScopedEnv mode(kModeVar, "force");
  MatmulAtOffsets mm({128, 768}, {3072, 768});
  auto run = [&](size_t a_offset, int64_t* chosen) { return mm.run(a_offset, cuda::splitk_gemm_chosen, chosen); };
  int64_t chosen = -1;
  ASSERT_TRUE(run(0, &chosen)) << "first run";
  // Below sm_90 there is no kernel to take: every run is cuBLASLt's, and still right.
  ASSERT_EQ(chosen, has_clusters() ? 1 : 0) << "forced on " << cuda::current_device().arch();
  EXPECT_TRUE(run(2, &chosen)) << "the misaligned run";
  EXPECT_EQ(chosen, 0) << "a run counted a second choice";
  EXPECT_TRUE(run(0, &chosen)) << "aligned again";
  EXPECT_EQ(chosen, 0) << "a run counted a second choice";
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
