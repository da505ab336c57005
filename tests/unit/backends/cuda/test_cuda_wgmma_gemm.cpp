// Kiln's wgmma + TMA GEMM kernel as a candidate of the MatrixMultiply kernel (src/backends/cuda/cublaslt/
// wgmma_gemm.*, sm90a/wgmma_gemm_kernel.*): which products it takes and why it refuses others, the split counts
// it times for GPT-2's and ViT's GEMMs and KILN_GEMM_WGMMA's values (no GPU needed); and on a compute capability
// 9.0 GPU every tile at every split count against the CPU kernel in float16 and bfloat16 (bias, residual, every
// activation kind the transformers use, 197 rows: a partial last row tile), and the kernel forced through the
// MatrixMultiply node, launched programmatically or not. Written without a GPU (twenty-first session).
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/cublaslt/wgmma_gemm.h"
#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/device.h"
#include "backends/cuda/device_buffer.h"
#include "backends/cuda/gemm_on_device.h"
#include "kiln/types.h"

namespace kiln {
namespace {

using namespace cudatest;

constexpr const char* kModeVar = "KILN_GEMM_WGMMA";
constexpr int kH200Sms = 132;

// ---- No GPU needed ----

// GPT-2's c_fc at batch 1 with its tanh-GELU.
cuda::WgmmaGemmProblem gpt2_c_fc() { return {token_rows(), 13}; }

std::string refusal(const cuda::WgmmaGemmProblem& p, int major = 9, int minor = 0) {
  const char* why = cuda::wgmma_gemm_refusal(p, major, minor);
  return why ? why : "(taken)";
}

TEST(WgmmaGemm, TakesTokenRowProductsOnSm90aAndSaysWhyNotOthers) {
  EXPECT_EQ(refusal(gpt2_c_fc()), "(taken)");
  auto refused = [](auto&& change, int major = 9, int minor = 0) {
    cuda::WgmmaGemmProblem q = gpt2_c_fc();
    change(q);
    return refusal(q, major, minor);
  };
  EXPECT_EQ(refused([](auto& q) { q.dtype = DataType::kBF16; }), "(taken)");
  EXPECT_EQ(refused([](auto& q) { q.m = 197; }), "(taken)") << "ViT's token rows";
  EXPECT_EQ(refused([](auto& q) { q.m = 1; }), "(taken)");
  EXPECT_EQ(refused([](auto& q) { q.dtype = DataType::kFLOAT; }), "not float16 or bfloat16");
  EXPECT_EQ(refused([](auto& q) { q.a_rows_packed = false; }), "a is not [M, K] with rows K apart");
  EXPECT_EQ(refused([](auto& q) { q.w_rows_of_k = false; }), "the weights are not [N, K] with rows K apart");
  EXPECT_EQ(refused([](auto& q) { q.n = 0; }), "no output");
  EXPECT_EQ(refused([](auto& q) { q.n = 100; }), "N not a multiple of 8 (the epilogue stores 16 bytes)");
  EXPECT_EQ(refused([](auto& q) { q.k = 96; }), "K not a multiple of 64");
  EXPECT_EQ(refused([](auto& q) { q.m = 513; }), "more than 512 rows: cuBLASLt's tiles fill the GPU");
  EXPECT_EQ(refused([](auto& q) { q.act = 14; }), "activation");
  EXPECT_EQ(refused([](auto&) {}, 8, 0), "built for sm_90a (compute capability 9.0) only");
  EXPECT_EQ(refused([](auto&) {}, 10, 0), "built for sm_90a (compute capability 9.0) only");
  EXPECT_EQ(refused([](auto&) {}, 9, 1), "built for sm_90a (compute capability 9.0) only");
}

// The split counts of `tile`'s configurations (each with multicast width 1 among them).
std::vector<int> split_counts(const cuda::WgmmaGemmProblem& p, cuda::WgmmaTile tile) {
  std::vector<int> out;
  for (const cuda::WgmmaConfig& c : cuda::wgmma_configs(p, tile, kH200Sms))
    if (c.multicast == 1) out.push_back(c.splits);
  return out;
}

// Splits keep two 64-K chunks each and the blocks within two an SM (264 on 132 SMs).
TEST(WgmmaGemm, SplitCountsForGpt2AndVit) {
  using V = std::vector<int>;
  cuda::WgmmaGemmProblem c_fc = gpt2_c_fc();  // 12 chunks
  EXPECT_EQ(split_counts(c_fc, {64, 64}), (V{1, 2})) << "96 tiles";
  EXPECT_EQ(split_counts(c_fc, {128, 128}), (V{1, 2, 4})) << "24 tiles; 8 splits: 1 chunk";
  cuda::WgmmaGemmProblem c_proj = gpt2_c_fc();
  c_proj.n = 768;
  c_proj.k = 3072;  // 48 chunks
  EXPECT_EQ(split_counts(c_proj, {64, 64}), (V{1, 2, 4, 8})) << "24 tiles";
  EXPECT_EQ(split_counts(c_proj, {128, 128}), (V{1, 2, 4, 8})) << "6 tiles";
  cuda::WgmmaGemmProblem vit_fc1 = gpt2_c_fc();
  vit_fc1.m = 197;
  EXPECT_EQ(split_counts(vit_fc1, {64, 64}), (V{1})) << "4 x 48 = 192 tiles";
  EXPECT_EQ(split_counts(vit_fc1, {128, 64}), (V{1, 2})) << "2 x 48 = 96 tiles";
}

// A cluster holds at most 8 blocks (splits x multicast width), and each block's share of a's tile is whole
// 8-row swizzle atoms.
TEST(WgmmaGemm, MulticastFitsTheCluster) {
  auto refused = [](cuda::WgmmaTile tile, int splits, int multicast) {
    const char* why = cuda::wgmma_multicast_refusal(tile, splits, multicast);
    return std::string(why ? why : "(taken)");
  };
  EXPECT_EQ(refused({64, 64}, 1, 1), "(taken)");
  EXPECT_EQ(refused({64, 64}, 2, 4), "(taken)") << "8 blocks";
  EXPECT_EQ(refused({64, 64}, 4, 4), "cluster of more than 8 blocks");
  EXPECT_EQ(refused({128, 128}, 8, 2), "cluster of more than 8 blocks");
  EXPECT_EQ(refused({64, 128}, 1, 3), "multicast width not 1, 2 or 4");
  EXPECT_EQ(refused({64, 128}, 1, 8), "multicast width not 1, 2 or 4");
  EXPECT_EQ(refused({128, 64}, 2, 4), "(taken)") << "32 rows a block";
}

// Every split count with each width that divides the row's tiles and fits the cluster, fewest splits first.
TEST(WgmmaGemm, ConfigurationsForGpt2) {
  using C = cuda::WgmmaConfig;
  using V = std::vector<C>;
  const cuda::WgmmaGemmProblem c_fc = gpt2_c_fc();  // 48 columns of 64, 24 of 128
  EXPECT_EQ(cuda::wgmma_configs(c_fc, {64, 64}, kH200Sms), (V{{1, 1}, {1, 2}, {1, 4}, {2, 1}, {2, 2}, {2, 4}}));
  cuda::WgmmaGemmProblem c_attn = gpt2_c_fc();
  c_attn.n = 2304;  // 18 columns of 128: not a multiple of 4
  EXPECT_EQ(cuda::wgmma_configs(c_attn, {128, 128}, kH200Sms),
            (V{{1, 1}, {1, 2}, {2, 1}, {2, 2}, {4, 1}, {4, 2}}));
  cuda::WgmmaGemmProblem c_proj = gpt2_c_fc();
  c_proj.n = 768;
  c_proj.k = 3072;  // 6 columns of 128, 8 splits
  EXPECT_EQ(cuda::wgmma_configs(c_proj, {128, 128}, kH200Sms),
            (V{{1, 1}, {1, 2}, {2, 1}, {2, 2}, {4, 1}, {4, 2}, {8, 1}}));
  EXPECT_EQ(C({2, 1}).name(), "x2") << "as recorded before multicast existed";
  EXPECT_EQ(C({2, 4}).name(), "x2 m4");
}

TEST(WgmmaGemm, SwitchIsOffUnlessSet) {
  using M = cuda::CandidateMode;
  const std::pair<const char*, M> values[] = {{nullptr, M::kOff}, {"0", M::kOff}, {"1", M::kAuto}, {"force", M::kForce}};
  for (const auto& [value, mode] : values) {
    ScopedEnv e(kModeVar, value);
    EXPECT_EQ(cuda::wgmma_gemm_mode(), mode) << (value ? value : "unset: off by default until measured");
  }
  ScopedEnv e(kModeVar, "fast");
  EXPECT_THROW(
      {
        try {
          cuda::wgmma_gemm_mode();
        } catch (const Error& err) {
          EXPECT_NE(std::string(err.what()).find(kModeVar), std::string::npos) << err.what();
          throw;
        }
      },
      Error);
}

TEST(WgmmaGemm, TileNames) {
  EXPECT_EQ(cuda::WgmmaTile({128, 64}).name(), "128x64");
  EXPECT_EQ(cuda::WgmmaTile({64, 128}).name(), "64x128");
}

// ---- On a GPU ----

bool is_sm90() {
  const cuda::DeviceInfo& d = cuda::current_device();
  return d.major == 9 && d.minor == 0;
}

// Every tile in every configuration it would time (split counts, multicast widths), launched straight, against the CPU: GPT-2's c_proj (K 3072)
// with bias and residual, ViT's fc1 (197 rows) with erf-GELU and c_attn-like 128 x 2304 with bias, in float16
// and bfloat16, each launched plainly and programmatically (the same output: the reduction's order is fixed).
TEST(CudaWgmmaGemm, EveryTileAndSplitCountMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  const cuda::DeviceInfo& dev = cuda::current_device();
  if (!is_sm90()) {  // no sm_90a image here: the MatrixMultiply kernel never offers the kernel
    EXPECT_EQ(refusal(gpt2_c_fc(), dev.major, dev.minor), "built for sm_90a (compute capability 9.0) only");
    return;
  }
  const GemmCase shapes[] = {{"GPT-2 c_proj", 128, 768, 3072, true, -1},
                          {"ViT fc1", 197, 3072, 768, false, 12},
                          {"GPT-2 c_attn", 128, 2304, 768, false, -1},
                          {"one row, ReLU", 1, 128, 128, true, 0}};
  int launched = 0;
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const GemmCase& sh : shapes) {
      const GemmOnDevice g(sh, dt);
      cuda::GemmKernelArgs args;
      args.a = g.a.get();
      args.w = g.w.get();
      args.bias = g.bias.get();
      args.residual = g.residual;
      args.y = g.y.get();
      args.m = sh.m;
      args.n = sh.n;
      args.k = sh.k;
      args.dtype = dt;
      args.act = sh.act;
      cuda::WgmmaGemmProblem p{token_rows(sh.m, sh.n, sh.k), sh.act};
      p.dtype = dt;
      ASSERT_EQ(refusal(p), "(taken)") << sh.label;
      for (cuda::WgmmaTile tile : cuda::kWgmmaTiles)
        for (const cuda::WgmmaConfig& config : cuda::wgmma_configs(p, tile, dev.sm_count)) {
          HostTensor first;
          for (bool programmatic : {false, true}) {
            const std::string what = std::string(sh.label) + " " + dtype_name(dt) + " on " + tile.name() + " " +
                                     config.name() + (programmatic ? " programmatic" : "");
            args.programmatic = programmatic;
            g.poison();
            std::string why;
            ASSERT_TRUE(cuda::launch_wgmma_gemm(test_stream(), args, tile, config, &why))
                << what << ": " << why;
            ASSERT_EQ(sync_within(test_stream(), 20, what), cudaSuccess) << what;
            const HostTensor got = g.output();
            EXPECT_TRUE(g.matches()) << what;
            if (!programmatic) {
              first = got;
            } else {
              EXPECT_EQ(std::memcmp(first.raw(), got.raw(), got.nbytes()), 0) << what << ": differs from the plain launch";
            }
            ++launched;
          }
        }
    }
  EXPECT_GT(launched, 2 * 4 * 4 * 2) << "every shape on every tile at least once";
}

// KILN_GEMM_WGMMA=force through the MatrixMultiply node (KILN_GEMM_SMALL_M=0, KILN_GEMM_SPLITK=0: Kiln's other
// kernels are not candidates): each eligible product takes the kernel once and matches the CPU; "0" and unset
// never take it.
TEST(CudaWgmmaGemm, ForcedThroughTheNodeMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv small_m("KILN_GEMM_SMALL_M", "0");
  ScopedEnv splitk("KILN_GEMM_SPLITK", "0");
  struct Case {
    Dims a, b;
    bool bias, residual;
    int64_t act;
  };
  const Case cases[] = {{{128, 768}, {3072, 768}, true, false, 13},
                        {{1, 197, 768}, {768, 768}, true, true, -1},
                        {{3, 64}, {64, 64}, false, false, 0}};
  for (const char* mode : {"force", "0", static_cast<const char*>(nullptr)})
    for (DataType dt : {DataType::kHALF, DataType::kBF16})
      for (const Case& c : cases) {
        ScopedEnv m(kModeVar, mode);
        ir::Graph g;
        ir::Node* n = g.add_node("MatrixMultiply", "m", {g.add_input("a", dt, c.a), g.add_input("b", dt, c.b)}, 1);
        n->attrs.set("op_b", int64_t{1});
        const Dims y =
            ir::infer_node(*n, {ir::TensorInfo{true, dt, c.a, nullptr}, ir::TensorInfo{true, dt, c.b, nullptr}})[0].shape;
        std::vector<HostTensor> in = {randf(c.a, dt, -1.0, 1.0), randf(c.b, dt, -0.05, 0.05)};
        if (c.bias || c.residual) in.push_back(c.bias ? randf({y.back()}, dt) : HostTensor());
        if (c.residual) in.push_back(randf(y, dt));
        Options opt;
        opt.library_handles = true;
        opt.atol = dt == DataType::kHALF ? 1e-3 : 8e-3;
        const int64_t before = cuda::wgmma_gemm_chosen();
        const std::string what = std::string(mode ? mode : "unset") + " " + dtype_name(dt) + " a " + dims_str(c.a);
        EXPECT_TRUE(check_op("MatrixMultiply", in, [&](ir::Attrs& at) {
          at.set("op_b", int64_t{1});
          if (c.act >= 0) at.set("activation", c.act);
        }, opt)) << what;
        const bool forced = mode && std::string(mode) == "force";
        EXPECT_EQ(cuda::wgmma_gemm_chosen() - before, forced && is_sm90() ? 1 : 0) << what;
      }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
