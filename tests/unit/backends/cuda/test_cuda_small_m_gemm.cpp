// Kiln's small-M GEMM (src/backends/cuda/kernels/small_m_gemm.*), a candidate of the MatrixMultiply kernel:
// which products it takes and why it refuses others (no GPU needed), and on a GPU the kernel forced, timed and
// off against the CPU kernel in float16 and bfloat16: ResNet-50's and MobileNetV2's classifiers at batch 1,
// 1 to 8 rows, K of one piece a thread and of several (with a partial last step), column counts that end
// inside a block's 4, A's batch folded into the rows, a vector A, every epilogue (bias, residual, the
// activations the passes fuse), and products outside its conditions left to cuBLASLt.
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/kernels/small_m_gemm.h"
#include "backends/cuda/matmul_at_offsets.h"
#include "kiln/types.h"

namespace kiln {
namespace {

using namespace cudatest;

constexpr const char* kModeVar = "KILN_GEMM_SMALL_M";

// ---- No GPU needed ----

cuda::SmallMProblem eligible() {
  cuda::SmallMProblem p;
  p.dtype = DataType::kHALF;
  p.m = 1;
  p.n = 1000;
  p.k = 2048;
  p.a_rows_packed = true;
  p.w_rows_of_k = true;
  p.a_address = 0x10000;
  p.w_address = 0x20000;
  return p;
}

TEST(SmallMGemm, TakesClassifierHeadsAndSaysWhyNotOthers) {
  EXPECT_EQ(cuda::small_m_gemm_refusal(eligible()), nullptr);
  cuda::SmallMProblem p = eligible();
  p.dtype = DataType::kBF16;
  p.m = 8;
  p.k = 8;
  p.n = 1;
  EXPECT_EQ(cuda::small_m_gemm_refusal(p), nullptr) << "bfloat16, 8 rows, one piece of K, one column";

  auto refusal = [](auto&& change) {
    cuda::SmallMProblem q = eligible();
    change(q);
    const char* why = cuda::small_m_gemm_refusal(q);
    return std::string(why ? why : "(taken)");
  };
  EXPECT_EQ(refusal([](auto& q) { q.dtype = DataType::kFLOAT; }), "not float16 or bfloat16");
  EXPECT_EQ(refusal([](auto& q) { q.a_rows_packed = false; }), "a is not [M, K] with rows K apart");
  EXPECT_EQ(refusal([](auto& q) { q.w_rows_of_k = false; }), "the weights are not [N, K] with rows K apart");
  EXPECT_EQ(refusal([](auto& q) { q.m = 9; }), "more than 8 rows");
  EXPECT_EQ(refusal([](auto& q) { q.m = 0; }), "more than 8 rows");
  EXPECT_EQ(refusal([](auto& q) { q.n = 0; }), "no output columns");
  EXPECT_EQ(refusal([](auto& q) { q.k = 12; }), "K not a multiple of 8");
  EXPECT_EQ(refusal([](auto& q) { q.k = 4; }), "K not a multiple of 8");
  EXPECT_EQ(refusal([](auto& q) { q.k = int64_t{1} << 31; }), "K or N too large");
  EXPECT_EQ(refusal([](auto& q) { q.n = int64_t{1} << 33; }), "K or N too large");
  EXPECT_EQ(refusal([](auto& q) { q.a_address += 8; }), "a or the weights not 16-byte aligned");
  EXPECT_EQ(refusal([](auto& q) { q.w_address += 2; }), "a or the weights not 16-byte aligned");
}

TEST(SmallMGemm, SwitchValues) {
  {
    ScopedEnv e(kModeVar, nullptr);
    EXPECT_EQ(cuda::small_m_gemm_mode(), cuda::CandidateMode::kAuto);
  }
  {
    ScopedEnv e(kModeVar, "0");
    EXPECT_EQ(cuda::small_m_gemm_mode(), cuda::CandidateMode::kOff);
  }
  {
    ScopedEnv e(kModeVar, "force");
    EXPECT_EQ(cuda::small_m_gemm_mode(), cuda::CandidateMode::kForce);
  }
  ScopedEnv e(kModeVar, "fast");
  try {
    cuda::small_m_gemm_mode();
    ADD_FAILURE() << "KILN_GEMM_SMALL_M=fast was accepted";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find(kModeVar), std::string::npos) << err.what();
  }
}

// ---- On a GPU ----

struct MmCase {
  const char* label;
  Dims a, b;         // b is [N, K] (op_b = 1) unless transposed_b is false
  bool transposed_b = true;
};

// Runs a MatrixMultiply (bias [N] and a residual of the output's shape where asked, the activation `act` with
// ReLU6's and leaky ReLU's parameters) against the CPU; *chosen: how many times the small-M kernel was chosen.
::testing::AssertionResult check(const MmCase& c, DataType dt, bool bias, bool residual, int64_t act, int64_t* chosen) {
  ir::Graph g;
  ir::Node* n = g.add_node("MatrixMultiply", "m", {g.add_input("a", dt, c.a), g.add_input("b", dt, c.b)}, 1);
  n->attrs.set("op_b", int64_t{c.transposed_b ? 1 : 0});
  const Dims y = ir::infer_node(*n, {ir::TensorInfo{true, dt, c.a, nullptr}, ir::TensorInfo{true, dt, c.b, nullptr}})[0].shape;
  // Small weights: sums over K = 4096 stay well inside float16's range.
  std::vector<HostTensor> in = {randf(c.a, dt, -1.0, 1.0), randf(c.b, dt, -0.05, 0.05)};
  if (bias || residual) in.push_back(bias ? randf({y.back()}, dt) : HostTensor());
  if (residual) in.push_back(randf(y, dt));
  Options opt;
  opt.library_handles = true;
  // A relative tolerance measures the sum's rounding against max |ref|; outputs near zero after cancellation
  // get the absolute allowance of a float32 sum over K rounded once to the dtype.
  opt.atol = dt == DataType::kHALF ? 1e-3 : 8e-3;
  const int64_t before = cuda::small_m_gemm_chosen();
  ::testing::AssertionResult r = check_op("MatrixMultiply", in, [&](ir::Attrs& at) {
    at.set("op_b", int64_t{c.transposed_b ? 1 : 0});
    if (act >= 0) at.set("activation", act);
    if (act == 8) {
      at.set("act_alpha", 0.0);
      at.set("act_beta", 6.0);
    }
    if (act == 3) at.set("act_alpha", 0.1);
  }, opt);
  *chosen = cuda::small_m_gemm_chosen() - before;
  return r;
}

std::string describe(const MmCase& c, DataType dt) {
  return std::string(c.label) + " " + dtype_name(dt) + " a " + dims_str(c.a) + " b " + dims_str(c.b);
}

const std::vector<MmCase>& eligible_cases() {
  static const std::vector<MmCase> cases = {
      {"ResNet-50 fc at batch 1", {1, 2048}, {1000, 2048}},
      {"MobileNetV2 classifier at batch 2", {2, 1280}, {1000, 1280}},
      {"one piece of K, one column", {1, 8}, {1, 8}},
      {"3 rows, 9 pieces, 13 columns", {3, 72}, {13, 72}},
      {"8 rows, 257 pieces (a partial second step)", {8, 2056}, {37, 2056}},
      {"5 rows, 2 steps a thread", {5, 4096}, {10, 4096}},
      {"4 rows, 6 columns", {4, 512}, {6, 512}},
      {"7 rows", {7, 264}, {11, 264}},
      {"A's batch folded into 6 rows", {2, 3, 1, 64}, {40, 64}},
      {"a vector A", {64}, {24, 64}},
  };
  return cases;
}

// KILN_GEMM_SMALL_M=force: every eligible product takes the kernel (one choice a node), with every epilogue
// kind, and matches the CPU.
TEST(CudaSmallMGemm, ForcedMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode(kModeVar, "force");
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const MmCase& c : eligible_cases())
      for (int parts = 0; parts < 4; ++parts) {
        const bool bias = parts & 1, residual = parts & 2;
        const int64_t act = parts == 3 ? 0 : -1;
        const std::string what = describe(c, dt) + " bias " + std::to_string(bias) + " residual " +
                                 std::to_string(residual) + " act " + std::to_string(act);
        int64_t chosen = -1;
        EXPECT_TRUE(check(c, dt, bias, residual, act, &chosen)) << what;
        EXPECT_EQ(chosen, 1) << what << ": the small-M kernel was not taken";
      }
}

// Every activation the passes fuse, each in the kernel's own epilogue (erf-GELU exactly, leaky ReLU and ReLU6
// with their parameters).
TEST(CudaSmallMGemm, ForcedEveryActivation) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode(kModeVar, "force");
  const MmCase c = {"3 rows", {3, 1024}, {50, 1024}};
  for (int64_t act : {0, 8, 1, 2, 3, 65, 64, 12, 13}) {
    int64_t chosen = -1;
    EXPECT_TRUE(check(c, DataType::kHALF, true, false, act, &chosen)) << "act " << act;
    EXPECT_EQ(chosen, 1) << "act " << act;
  }
}

// The default (timed against cuBLASLt's choice) and KILN_GEMM_SMALL_M=0 (never): whatever runs is right, one
// node chooses once at most, and "0" never takes the kernel.
TEST(CudaSmallMGemm, TimedAndOffMatchCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const char* m : {static_cast<const char*>(nullptr), "0"}) {
    ScopedEnv mode(kModeVar, m);
    for (const MmCase& c : eligible_cases()) {
      const std::string what = describe(c, DataType::kHALF) + " mode " + (m ? m : "timed");
      int64_t chosen = -1;
      EXPECT_TRUE(check(c, DataType::kHALF, true, false, -1, &chosen)) << what;
      EXPECT_LE(chosen, 1) << what;
      if (m) {
        EXPECT_EQ(chosen, 0) << what << ": KILN_GEMM_SMALL_M=0 took the kernel";
      }
    }
  }
}

// Outside its conditions (float32; weights [K, N]; 9 rows; K not a multiple of 8; a batch of weights):
// forcing leaves the product to cuBLASLt, without an error, and the result is right.
TEST(CudaSmallMGemm, ForcedLeavesIneligibleProductsToCublasLt) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode(kModeVar, "force");
  const std::vector<std::pair<MmCase, DataType>> cases = {
      {{"float32", {1, 256}, {16, 256}}, DataType::kFLOAT},
      {{"weights [K, N]", {1, 256}, {256, 16}, false}, DataType::kHALF},
      {{"9 rows", {9, 256}, {16, 256}}, DataType::kHALF},
      {{"K 12", {2, 12}, {16, 12}}, DataType::kHALF},
      {{"a batch of weights", {2, 1, 64}, {2, 16, 64}}, DataType::kHALF},
  };
  for (const auto& [c, dt] : cases) {
    int64_t chosen = -1;
    EXPECT_TRUE(check(c, dt, true, false, -1, &chosen)) << describe(c, dt);
    EXPECT_EQ(chosen, 0) << describe(c, dt) << ": taken outside its conditions";
  }
}

// A node that took the kernel (forced, so the choice does not depend on this GPU's timings) and then runs with
// a 2 bytes off alignment (a caller's buffer moved): that run takes cuBLASLt's path, right (the kernel's 16-byte
// loads there would fault, and the stream would fail), and the next aligned run is right again.
TEST(CudaSmallMGemm, MisalignedRunTakesCublasLtAndKeepsTheChoice) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode(kModeVar, "force");
  MatmulAtOffsets mm({1, 2048}, {1000, 2048});
  auto run = [&](size_t a_offset, int64_t* chosen) { return mm.run(a_offset, cuda::small_m_gemm_chosen, chosen); };
  int64_t chosen = -1;
  ASSERT_TRUE(run(0, &chosen)) << "first run";
  ASSERT_EQ(chosen, 1) << "the forced kernel was not taken";
  EXPECT_TRUE(run(2, &chosen)) << "the misaligned run";
  EXPECT_EQ(chosen, 0) << "a run counted a second choice";
  EXPECT_TRUE(run(0, &chosen)) << "aligned again";
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
