// 1x1 channels-last convolutions as one cuBLASLt GEMM (src/backends/cuda/cudnn/conv_gemm_path.*), the
// convolution kernel's GEMM path: which nodes are eligible and the GEMM's operand mapping (no GPU needed),
// KILN_CONV_GEMM's values, and on a GPU the path forced / timed / off against the CPU kernel in float16,
// bfloat16 and float32 (bias, bias + ReLU, bias + residual + ReLU, residual alone, no epilogue; M = N*H*W
// not a multiple of 8; ResNet's 64 -> 256 and 256 -> 64 and small channel counts), a ReLU6 node left to
// cuDNN even when forced, and a recorded "gemm" choice followed by a second context without timing.
//
// The residual is always a buffer of its own: Kiln's memory planner never places a node's output over an
// input the same node reads (their lifetimes overlap at that step), so y == residual does not occur.
#ifdef KILN_WITH_CUDA
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cudnn/conv_gemm_path.h"
#include "backends/cuda/cudnn/conv_graph_record.h"
#include "backends/cuda/fake_conv_node.h"
#include "backends/cuda/library_handles.h"
#include "kiln/timing_cache.h"

namespace kiln {
namespace {

using namespace cudatest;

struct GemmCase {
  const char* label;
  Dims x;  // [N, H, W, C]
  int64_t k = 0;
  bool bias = false, residual = false;
  int64_t act = -1;  // 0 ReLU, 8 clip as ReLU6, -1 none
};

std::string describe(const GemmCase& c, DataType dt) {
  return std::string(c.label) + " " + dtype_name(dt) + " x " + dims_str(c.x) + " K " + std::to_string(c.k) +
         " bias " + std::to_string(c.bias) + " residual " + std::to_string(c.residual) + " act " + std::to_string(c.act);
}

void set_attrs(ir::Attrs& a, const GemmCase& c) {
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
}

Dims y_shape(const GemmCase& c) { return {c.x[0], c.x[1], c.x[2], c.k}; }
Dims w_shape(const GemmCase& c) { return {c.k, 1, 1, c.x[3]}; }

double tolerance(DataType dt) {  // as test_cuda_conv_graph.cpp's
  switch (dt) {
    case DataType::kHALF: return 4e-3;
    case DataType::kBF16: return 2.5e-2;
    default: return 2e-5;
  }
}

// ---- Eligibility and the operand mapping (no GPU: fake addresses, nothing dereferenced) ----

// A node of the case at fake device addresses (base + 0x100000 * i), for conv_gemm_shape.
struct FakeNode : FakeConvNode {
  FakeNode(const GemmCase& c, DataType dt, uintptr_t base = 0x10000)
      : FakeConvNode(dt, c.x, w_shape(c), y_shape(c), c.bias, c.residual, [&](ir::Attrs& a) { set_attrs(a, c); },
                     base) {}
};

const cuda::ConvWindow kUnitWindow{{0, 0}, {1, 1}, {1, 1}};

TEST(ConvGemmPath, OperandMappingOfAnEligibleNode) {
  // ResNet-50's layer1 conv3 at batch 2: x [2, 56, 56, 64], w [256, 1, 1, 64], bias + residual + ReLU.
  FakeNode f({"resnet conv3", {2, 56, 56, 64}, 256, true, true, 0}, DataType::kHALF);
  cuda::GemmShape s;
  std::string why;
  ASSERT_TRUE(cuda::conv_gemm_shape(*f.ctx, kUnitWindow, &s, &why)) << why;
  // Row-major Y[M, K] = X[M, C] * W[K, C]^T: A = x (not transposed, row stride C), B = w transposed (stored
  // [K, C], row stride C), D = y (row stride K).
  EXPECT_FALSE(s.trans_a);
  EXPECT_TRUE(s.trans_b);
  EXPECT_EQ(s.m, 2 * 56 * 56);
  EXPECT_EQ(s.n, 256);
  EXPECT_EQ(s.k, 64);
  EXPECT_EQ(s.lda, 64);
  EXPECT_EQ(s.ldb, 64);
  EXPECT_EQ(s.ldc, 256);
  EXPECT_EQ(s.batch, 1);
  EXPECT_EQ(s.dtype, DataType::kHALF);
  EXPECT_EQ(s.epilogue, cuda::Epilogue::kBiasRelu);
  EXPECT_EQ(s.align, 256);
  EXPECT_TRUE(cuda::conv_gemm_aligned(*f.ctx, s));
  // A residual without a bias, and nothing at all: the matching epilogues.
  FakeNode r({"residual", {1, 7, 7, 8}, 16, false, true, -1}, DataType::kBF16);
  ASSERT_TRUE(cuda::conv_gemm_shape(*r.ctx, kUnitWindow, &s, &why)) << why;
  EXPECT_EQ(s.epilogue, cuda::Epilogue::kNone);
  EXPECT_EQ(s.m, 49);
  FakeNode relu({"relu", {1, 7, 7, 8}, 16, false, false, 0}, DataType::kFLOAT);
  ASSERT_TRUE(cuda::conv_gemm_shape(*relu.ctx, kUnitWindow, &s, &why)) << why;
  EXPECT_EQ(s.epilogue, cuda::Epilogue::kRelu);
  EXPECT_FALSE(s.allow_tf32);  // float32 keeps full products unless the node allows TF32
  relu.node->attrs.set("allow_tf32", int64_t{1});
  ASSERT_TRUE(cuda::conv_gemm_shape(*relu.ctx, kUnitWindow, &s, &why)) << why;
  EXPECT_TRUE(s.allow_tf32);
}

TEST(ConvGemmPath, AlignmentFollowsTheAddresses) {
  FakeNode f({"bias", {1, 7, 7, 8}, 16, true, false, -1}, DataType::kHALF, 0x10000 + 2);
  cuda::GemmShape s;
  std::string why;
  ASSERT_TRUE(cuda::conv_gemm_shape(*f.ctx, kUnitWindow, &s, &why)) << why;
  EXPECT_EQ(s.align, 2);
  FakeNode aligned({"bias", {1, 7, 7, 8}, 16, true, false, -1}, DataType::kHALF);
  ASSERT_TRUE(cuda::conv_gemm_shape(*aligned.ctx, kUnitWindow, &s, &why)) << why;
  EXPECT_EQ(s.align, 256);
  aligned.ctx->in[2].data = reinterpret_cast<void*>(0x30008);  // the bias only 8-byte aligned this time
  EXPECT_FALSE(cuda::conv_gemm_aligned(*aligned.ctx, s));
}

TEST(ConvGemmPath, IneligibleNodesAreRefused) {
  const GemmCase ok{"ok", {1, 7, 7, 8}, 16, true, false, 0};
  cuda::GemmShape s;
  std::string why;
  {
    FakeNode f(ok, DataType::kHALF);
    EXPECT_TRUE(cuda::conv_gemm_shape(*f.ctx, kUnitWindow, &s, &why)) << why;
  }
  auto refused = [&](FakeNode& f, const cuda::ConvWindow& w, const char* what) {
    EXPECT_FALSE(cuda::conv_gemm_shape(*f.ctx, w, &s, &why)) << what;
    EXPECT_FALSE(why.empty()) << what;
  };
  {
    GemmCase c = ok;
    c.act = 8;  // ReLU6: no cuBLASLt epilogue clips
    FakeNode f(c, DataType::kHALF);
    refused(f, kUnitWindow, "ReLU6");
  }
  {
    GemmCase c = ok;
    c.act = 1;  // sigmoid
    FakeNode f(c, DataType::kHALF);
    refused(f, kUnitWindow, "sigmoid");
  }
  {
    FakeNode f(ok, DataType::kHALF);
    f.node->attrs.set("channels_last", int64_t{0});
    refused(f, kUnitWindow, "NCHW");
  }
  {
    FakeNode f(ok, DataType::kHALF);
    f.node->attrs.set("groups", int64_t{2});
    refused(f, kUnitWindow, "grouped");
  }
  {
    FakeNode f(ok, DataType::kHALF);
    f.ctx->in[1].shape = {16, 3, 3, 8};
    refused(f, kUnitWindow, "3x3 kernel");
  }
  for (const cuda::ConvWindow& w : {cuda::ConvWindow{{1, 1}, {1, 1}, {1, 1}}, cuda::ConvWindow{{0, 0}, {2, 2}, {1, 1}},
                                    cuda::ConvWindow{{0, 0}, {1, 1}, {1, 2}}, cuda::ConvWindow{{0}, {1}, {1}}}) {
    FakeNode f(ok, DataType::kHALF);
    refused(f, w, "padded, strided, dilated or 1-D window");
  }
  {
    FakeNode f(ok, DataType::kHALF);
    f.ctx->out[0].shape = {1, 4, 4, 16};  // y not x's spatial size
    refused(f, kUnitWindow, "output shape");
  }
  {
    FakeNode f(ok, DataType::kINT8);
    refused(f, kUnitWindow, "int8");
  }
  {
    FakeNode f(ok, DataType::kHALF);
    f.ctx->in[2].shape = {8};  // bias not [K]
    refused(f, kUnitWindow, "bias length");
  }
}

// The unit window (the GEMM path's and the narrow-input kernel's): no padding, stride 1, no dilation, in
// every spatial dim.
TEST(ConvGemmPath, UnitWindow) {
  EXPECT_TRUE((cuda::ConvWindow{{0, 0}, {1, 1}, {1, 1}}.unit()));
  EXPECT_FALSE((cuda::ConvWindow{{0, 1}, {1, 1}, {1, 1}}.unit()));
  EXPECT_FALSE((cuda::ConvWindow{{0, 0}, {1, 2}, {1, 1}}.unit()));
  EXPECT_FALSE((cuda::ConvWindow{{0, 0}, {1, 1}, {2, 1}}.unit()));
}

// The switch's values are candidate_mode's (test_candidate_mode.cpp); this one reads KILN_CONV_GEMM.
TEST(ConvGemmPath, ReadsItsSwitch) {
  ScopedEnv e("KILN_CONV_GEMM", "0");
  EXPECT_EQ(cuda::conv_gemm_mode(), cuda::ConvGemmMode::kOff);
}

// ---- On the GPU ----

// A node of the case over random inputs on the device, with the CPU kernel's result for them.
struct Prepared {
  ir::Graph g;
  ir::Node* node = nullptr;
  std::vector<HostTensor> inputs;  // x, w, [bias], [residual] (an absent bias before a residual is empty)
  std::vector<cuda::DeviceBuffer> dev;
  HostTensor ref;
  Dims y;
  size_t ybytes = 0;
};

std::unique_ptr<Prepared> prepare(const GemmCase& c, DataType dt) {
  auto p = std::make_unique<Prepared>();
  p->y = y_shape(c);
  p->inputs = {randf(c.x, dt), randf(w_shape(c), dt, 0.05, 0.3), c.bias ? randf({c.k}, dt) : HostTensor(),
               c.residual ? randf(p->y, dt) : HostTensor()};
  if (!c.residual) p->inputs.pop_back();
  if (!c.bias && !c.residual) p->inputs.pop_back();
  std::vector<ir::Value*> vals;
  std::vector<ir::TensorInfo> infos;
  for (size_t i = 0; i < p->inputs.size(); ++i) {
    const HostTensor& t = p->inputs[i];
    vals.push_back(t.empty() ? nullptr : p->g.add_input("in" + std::to_string(i), dt, t.shape()));
    infos.push_back(t.empty() ? ir::TensorInfo{false, dt, {}, nullptr} : ir::TensorInfo{true, dt, t.shape(), &t});
  }
  p->node = p->g.add_node("Convolution", "conv", vals, 1);
  set_attrs(p->node->attrs, c);
  const ir::TensorInfo out = ir::infer_node(*p->node, infos).at(0);
  if (out.shape != p->y) throw Error("inferred output shape " + dims_str(out.shape));
  p->node->outputs[0]->shape = out.shape;
  p->node->outputs[0]->dtype = out.dtype;
  if (!cuda::supports(*p->node, infos)) throw Error("cuda::supports() says no");
  p->ybytes = static_cast<size_t>(volume(p->y)) * dtype_size(dt);
  for (const HostTensor& t : p->inputs) {
    p->dev.emplace_back(std::max<size_t>(t.nbytes(), 1));
    if (!t.empty() && cudaMemcpy(p->dev.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
      throw Error("cudaMemcpy of an input failed");
  }
  // The reference: the CPU kernel on float32 copies.
  std::vector<HostTensor> ref_in;
  for (const HostTensor& t : p->inputs) ref_in.push_back(as_f32(t));
  ir::Graph rg;
  std::vector<ir::Value*> rvals;
  std::vector<const HostTensor*> rptrs;
  for (size_t i = 0; i < ref_in.size(); ++i) {
    rvals.push_back(ref_in[i].empty() ? nullptr : rg.add_input("in" + std::to_string(i), DataType::kFLOAT, ref_in[i].shape()));
    rptrs.push_back(ref_in[i].empty() ? nullptr : &ref_in[i]);
  }
  ir::Node* rnode = rg.add_node("Convolution", "conv", rvals, 1);
  rnode->attrs = p->node->attrs;
  p->ref = cpu::eval_node(*rnode, rptrs).at(0);
  return p;
}

void bind(cuda::KernelContext& ctx, const Prepared& p, DataType dt, void* y) {
  ctx.in.clear();
  for (size_t i = 0; i < p.inputs.size(); ++i)
    ctx.in.push_back(p.inputs[i].empty() ? cuda::TensorRef{}
                                         : cuda::TensorRef{true, dt, p.inputs[i].shape(), p.dev[i].get(), p.inputs[i].raw()});
  ctx.out.assign(1, cuda::TensorRef{true, dt, p.y, y, nullptr});
}

HostTensor run_once(cuda::KernelContext& ctx, DataType dt, const Prepared& p, int poison) {
  cudaStream_t s = ctx.stream();
  if (cudaMemsetAsync(ctx.out[0].data, poison, p.ybytes, s) != cudaSuccess) throw Error("cudaMemset failed");
  cuda::find_kernel("Convolution")(ctx);
  const cudaError_t err = cudaStreamSynchronize(s);
  if (err != cudaSuccess) throw Error(std::string("kernel failed: ") + cudaGetErrorString(err));
  HostTensor h(dt, p.y);
  if (cudaMemcpy(h.mutable_raw(), ctx.out[0].data, h.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
    throw Error("cudaMemcpy of the output failed");
  return h;
}

// Runs the case on one context: twice eagerly with different poison (no element left unwritten), at a new
// output address, and captured + replayed; each against the CPU. *gemm_chosen: how many choices took the
// GEMM path meanwhile (one context, one shape: 0 or 1).
::testing::AssertionResult check(const GemmCase& c, DataType dt, int64_t* gemm_chosen) {
  try {
    const std::unique_ptr<Prepared> p = prepare(c, dt);
    cuda::Resources res;
    res.stream = test_stream();
    shared_library_handles().attach(res);
    cuda::KernelContext ctx{*p->node, {}, {}, res};
    const int64_t before = cuda::conv_graph_counters().gemm_chosen;
    cuda::DeviceBuffer y1(p->ybytes), y2(p->ybytes);
    bind(ctx, *p, dt, y1.get());
    std::vector<std::pair<const char*, HostTensor>> results;
    results.emplace_back("first run", run_once(ctx, dt, *p, 0xFF));
    results.emplace_back("second run", run_once(ctx, dt, *p, 0x7B));
    if (!results[0].second.same_bytes(results[1].second))
      return ::testing::AssertionFailure() << "the two runs differ (unwritten elements?)";
    bind(ctx, *p, dt, y2.get());
    results.emplace_back("run at a new output address", run_once(ctx, dt, *p, 0xFF));
    // Captured on a stream of its own, replayed on the test stream.
    const cudaStream_t s = res.stream;
    const std::unique_ptr<CapturedGraph> graph =
        capture_on_own_stream(res, [&] { cuda::find_kernel("Convolution")(ctx); });
    cudaMemsetAsync(y2.get(), 0x7B, p->ybytes, s);
    graph->replay(s);
    HostTensor replayed(dt, p->y);
    if (cudaMemcpy(replayed.mutable_raw(), y2.get(), replayed.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
      throw Error("cudaMemcpy of the output failed");
    results.emplace_back("captured replay", std::move(replayed));
    *gemm_chosen = cuda::conv_graph_counters().gemm_chosen - before;
    for (const auto& [what, got] : results) {
      ::testing::AssertionResult r = compare(got, p->ref, tolerance(dt), false);
      if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& ex) {
    return ::testing::AssertionFailure() << "threw: " << ex.what();
  }
}

const std::vector<GemmCase>& eligible_cases() {
  static const std::vector<GemmCase> cases = {
      {"8->16 bias", {2, 5, 5, 8}, 16, true, false, -1},            // M = 50: not a multiple of 8
      {"8->16 bias+relu", {1, 7, 7, 8}, 16, true, false, 0},        // M = 49
      {"64->256 bias+residual+relu", {2, 14, 14, 64}, 256, true, true, 0},  // ResNet's block end
      {"256->64 bias+relu", {1, 7, 7, 256}, 64, true, false, 0},    // ResNet's bottleneck entry, M = 49
      {"64->256 residual", {1, 8, 8, 64}, 256, false, true, -1},    // residual without a bias
      {"16->24 nothing", {1, 3, 3, 16}, 24, false, false, -1},      // MobileNet-like, no epilogue
  };
  return cases;
}

// KILN_CONV_GEMM=force: every eligible case takes the GEMM path and matches the CPU.
TEST(CudaConvGemm, ForcedGemmMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CONV_GEMM", "force");
  for (DataType dt : float_types())
    for (const GemmCase& c : eligible_cases()) {
      int64_t chosen = -1;
      EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt);
      EXPECT_EQ(chosen, 1) << describe(c, dt) << ": the GEMM path was not taken";
    }
}

// The default (timed against cuDNN's paths) and KILN_CONV_GEMM=0 (never): whatever runs is right, and "0"
// never takes the GEMM path.
TEST(CudaConvGemm, TimedAndOffMatchCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (const char* m : {static_cast<const char*>(nullptr), "0"}) {
    ScopedEnv mode("KILN_CONV_GEMM", m);
    for (DataType dt : {DataType::kHALF, DataType::kBF16})
      for (const GemmCase& c : eligible_cases()) {
        int64_t chosen = -1;
        EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt) << " mode " << (m ? m : "timed");
        if (m) {
          EXPECT_EQ(chosen, 0) << describe(c, dt) << ": KILN_CONV_GEMM=0 took the GEMM path";
        }
      }
  }
}

// A ReLU6 (or sigmoid) node is not eligible: forcing the GEMM path leaves it to the usual timed choice
// (no error), and the result is right.
TEST(CudaConvGemm, ForcedGemmLeavesIneligibleNodesToCudnn) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CONV_GEMM", "force");
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const GemmCase& c : {GemmCase{"relu6", {1, 7, 7, 32}, 64, true, false, 8},
                              GemmCase{"sigmoid", {1, 7, 7, 32}, 64, true, true, 1}}) {
      int64_t chosen = -1;
      EXPECT_TRUE(check(c, dt, &chosen)) << describe(c, dt);
      EXPECT_EQ(chosen, 0) << describe(c, dt) << ": an ineligible node took the GEMM path";
    }
}

// The timing cache with every "cudnn-graph" record's choice replaced by `choice`, through the serialized
// layout (src/runtime/timing_cache.cpp: "KLTC" | version u32 | count u32 | (key_len u32 | key | tactic_len
// u32 | tactic)...). *replaced: how many records were.
TimingCache with_graph_choice(const TimingCache& cache, const std::string& choice, int* replaced) {
  const std::vector<uint8_t> in = cache.serialize();
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(in.at(at + i)) << (8 * i);
    return v;
  };
  auto put = [](std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  std::vector<uint8_t> out(in.begin(), in.begin() + 12);
  const uint32_t count = u32(8);
  size_t pos = 12;
  *replaced = 0;
  for (uint32_t e = 0; e < count; ++e) {
    const uint32_t klen = u32(pos);
    const std::string key(in.begin() + pos + 4, in.begin() + pos + 4 + klen);
    pos += 4 + klen;
    const uint32_t tlen = u32(pos);
    std::string tactic(in.begin() + pos + 4, in.begin() + pos + 4 + tlen);
    pos += 4 + tlen;
    if (key.rfind("cudnn-graph|", 0) == 0) {
      tactic = choice;
      ++*replaced;
    }
    put(out, klen);
    out.insert(out.end(), key.begin(), key.end());
    put(out, static_cast<uint32_t>(tactic.size()));
    out.insert(out.end(), tactic.begin(), tactic.end());
  }
  return TimingCache(out);
}

// A recorded "gemm" choice: a second context (its own handles and per-node state) follows it without timing
// anything (neither the convolution's paths nor cuBLASLt's algorithms: the GEMM's record is in the cache from
// the first context, which timed the GEMM path as a candidate) and finalizes no cuDNN plan.
TEST(CudaConvGemm, SecondContextFollowsARecordedGemmChoice) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CONV_GEMM", nullptr);
  ScopedEnv graph_mode("KILN_CUDNN_GRAPH", nullptr);
  for (const GemmCase& c : {eligible_cases()[2], eligible_cases()[1]}) {
    const DataType dt = DataType::kHALF;
    const std::string what = describe(c, dt);
    try {
      const std::unique_ptr<Prepared> p = prepare(c, dt);
      auto first_run = [&](const cuda::LibraryHandles& h, TimingCache& cache) {
        cuda::Resources res;
        res.stream = test_stream();
        h.attach(res);
        res.tactics = &cache;
        cuda::KernelContext ctx{*p->node, {}, {}, res};
        cuda::DeviceBuffer y(p->ybytes);
        bind(ctx, *p, dt, y.get());
        return run_once(ctx, dt, *p, 0xFF);
      };
      TimingCache timed;
      const cuda::ConvGraphCounters c0 = cuda::conv_graph_counters();
      const HostTensor first = first_run(shared_library_handles(), timed);
      const cuda::ConvGraphCounters c1 = cuda::conv_graph_counters();
      EXPECT_EQ(c1.choices_timed - c0.choices_timed, 1) << what;
      // cudnnFind's record, the path's, and cuBLASLt's algorithm for the GEMM timed as a candidate.
      EXPECT_EQ(timed.size(), 3u) << what;
      EXPECT_TRUE(compare(first, p->ref, tolerance(dt), false)) << what << " (first context)";

      int replaced = 0;
      TimingCache recorded = with_graph_choice(timed, "gemm", &replaced);
      ASSERT_EQ(replaced, 1) << what;
      const cuda::LibraryHandles other;
      const HostTensor second = first_run(other, recorded);
      const cuda::ConvGraphCounters c2 = cuda::conv_graph_counters();
      EXPECT_EQ(c2.choices_timed - c1.choices_timed, 0) << what << ": the second context timed again";
      EXPECT_EQ(c2.choices_from_record - c1.choices_from_record, 1) << what;
      EXPECT_EQ(c2.gemm_chosen - c1.gemm_chosen, 1) << what << ": the recorded GEMM path was not taken";
      EXPECT_EQ(c2.plans_finalized - c1.plans_finalized, 0) << what << ": a cuDNN plan was finalized";
      EXPECT_EQ(recorded.size(), 3u) << what << ": the second context recorded something new";
      EXPECT_TRUE(compare(second, p->ref, tolerance(dt), false)) << what << " (second context)";
    } catch (const std::exception& ex) {
      ADD_FAILURE() << what << " threw: " << ex.what();
    }
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
