// Convolution through cuDNN's graph API (src/backends/cuda/cudnn/conv_graph.*) against the CPU kernel:
// channels-last (NHWC, KRSC weights) and NCHW, float32 / float16 / bfloat16, 1x1, 3x3, 7x7 stride 2, grouped
// and depthwise, 1-D and 3-D, with and without bias / residual / ReLU (and another activation, which Kiln's
// epilogue kernel applies after the graph).
//
// Each case runs the kernel four times on one context: twice eagerly with the output poisoned differently
// (both runs must agree bit for bit: no element left unwritten), once with every tensor moved to new
// addresses (the cached variant pack must follow them), and once captured in a CUDA graph and replayed
// (the executor replays convolutions that way). KILN_CUDNN_GRAPH selects the path: unset or "1" (the
// default: timed choice, whichever wins), "force" (a graph plan, fused or not, or an error), "force-fused"
// (the plan with the whole epilogue in the graph, or an error) and "0" (the legacy API alone). These cases
// run without a timing cache, so every one times; SecondContextFollowsTheRecordedChoice checks the records.
#ifdef KILN_WITH_CUDA
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cudnn/conv_graph_record.h"
#include "backends/cuda/cudnn/conv_plan_cache.h"
#include "backends/cuda/library_handles.h"
#include "kiln/timing_cache.h"

namespace kiln {
namespace {

using namespace cudatest;

struct ConvCase {
  const char* label;
  Dims x, w;  // as stored: channels-last x [N, H, W, C] and w [K, kh, kw, C/g]; NCHW x and w [K, C/g, k...]
  int64_t groups = 1, stride = 1, pad = 0;
  bool nhwc = false;
};

struct Epilogue {
  bool bias = false, residual = false;
  int64_t act = -1;  // ActivationType: 0 ReLU, 1 sigmoid, 8 clip (as ReLU6: Clip(0, 6)), -1 none
};

std::string describe(const ConvCase& c, const Epilogue& e, DataType dt) {
  return std::string(c.label) + (c.nhwc ? " NHWC " : " NCHW ") + dtype_name(dt) + " x " + dims_str(c.x) + " w " +
         dims_str(c.w) + " groups " + std::to_string(c.groups) + " stride " + std::to_string(c.stride) + " bias " +
         std::to_string(e.bias) + " residual " + std::to_string(e.residual) + " act " + std::to_string(e.act);
}

void set_attrs(ir::Attrs& a, const ConvCase& c, const Epilogue& e) {
  const size_t nsp = c.x.size() - 2;
  a.set("pre_padding", std::vector<int64_t>(nsp, c.pad));
  a.set("post_padding", std::vector<int64_t>(nsp, c.pad));
  a.set("stride", std::vector<int64_t>(nsp, c.stride));
  a.set("groups", c.groups);
  if (c.nhwc) a.set("channels_last", int64_t{1});
  if (e.act >= 0) a.set("activation", e.act);
  if (e.act == 8) {  // ReLU6: the graph's ReLU with an upper clip
    a.set("act_alpha", 0.0);
    a.set("act_beta", 6.0);
  }
}

// The node's output shape (for the residual) from shape inference.
Dims output_shape(const ConvCase& c, DataType dt) {
  ir::Graph g;
  std::vector<ir::Value*> vals = {g.add_input("x", dt, c.x), g.add_input("w", dt, c.w)};
  ir::Node* n = g.add_node("Convolution", "conv", vals, 1);
  set_attrs(n->attrs, c, Epilogue{});
  std::vector<ir::TensorInfo> infos = {ir::TensorInfo{true, dt, c.x, nullptr}, ir::TensorInfo{true, dt, c.w, nullptr}};
  return ir::infer_node(*n, infos).at(0).shape;
}

double tolerance(DataType dt) {
  switch (dt) {
    case DataType::kHALF: return 4e-3;
    case DataType::kBF16: return 2.5e-2;
    default: return 2e-5;
  }
}

// Device copies of the inputs.
struct DeviceInputs {
  std::vector<cuda::DeviceBuffer> buffers;
  void upload(const std::vector<HostTensor>& inputs) {
    buffers.clear();
    for (const HostTensor& t : inputs) {
      buffers.emplace_back(std::max<size_t>(t.nbytes(), 1));
      if (!t.empty() && cudaMemcpy(buffers.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
        throw Error("cudaMemcpy of an input failed");
    }
  }
};

HostTensor download(const cuda::TensorRef& y) {
  HostTensor h(y.dtype, y.shape);
  if (cudaMemcpy(h.mutable_raw(), y.data, h.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
    throw Error("cudaMemcpy of the output failed");
  return h;
}

// A Convolution node of the case over random inputs, with the CPU kernel's result for them.
struct PreparedConv {
  ir::Graph g;
  ir::Node* node = nullptr;
  std::vector<HostTensor> inputs;  // x, w, [bias], [residual] (an absent bias before a residual is empty)
  ir::TensorInfo out;
  HostTensor ref;
  size_t ybytes = 0;
};

// Throws kiln::Error saying what is wrong when the node cannot be built or the CUDA backend refuses it.
std::unique_ptr<PreparedConv> prepare_conv(const ConvCase& c, const Epilogue& e, DataType dt) {
  auto pc = std::make_unique<PreparedConv>();
  const Dims yshape = output_shape(c, dt);
  std::vector<HostTensor>& inputs = pc->inputs;
  inputs = {randf(c.x, dt), randf(c.w, dt, 0.05, 0.3), e.bias ? randf({c.w[0]}, dt) : HostTensor(),
            e.residual ? randf(yshape, dt) : HostTensor()};
  if (!e.residual) inputs.pop_back();
  if (!e.bias && !e.residual) inputs.pop_back();

  std::vector<ir::Value*> vals;
  std::vector<ir::TensorInfo> infos;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool present = !inputs[i].empty();
    vals.push_back(present ? pc->g.add_input("in" + std::to_string(i), dt, inputs[i].shape()) : nullptr);
    ir::TensorInfo info;
    info.present = present;
    if (present) info = ir::TensorInfo{true, dt, inputs[i].shape(), &inputs[i]};
    infos.push_back(info);
  }
  ir::Node* node = pc->node = pc->g.add_node("Convolution", "conv", vals, 1);
  set_attrs(node->attrs, c, e);
  pc->out = ir::infer_node(*node, infos).at(0);
  node->outputs[0]->shape = pc->out.shape;
  node->outputs[0]->dtype = pc->out.dtype;
  if (pc->out.shape != yshape) throw Error("output shape " + dims_str(pc->out.shape));
  if (!cuda::supports(*node, infos)) throw Error("cuda::supports() says no");
  pc->ybytes = std::max<size_t>(static_cast<size_t>(volume(pc->out.shape)) * dtype_size(pc->out.dtype), 1);

  // The reference: the CPU kernel on float32 copies (it runs channels-last as its NCHW twin).
  std::vector<HostTensor> ref_in;
  std::vector<const HostTensor*> rptrs;
  for (const HostTensor& t : inputs) ref_in.push_back(as_f32(t));
  ir::Graph rg;
  std::vector<ir::Value*> rvals;
  for (size_t i = 0; i < ref_in.size(); ++i) {
    rvals.push_back(ref_in[i].empty() ? nullptr : rg.add_input("in" + std::to_string(i), ref_in[i].dtype(), ref_in[i].shape()));
    rptrs.push_back(ref_in[i].empty() ? nullptr : &ref_in[i]);
  }
  ir::Node* rnode = rg.add_node("Convolution", "conv", rvals, 1);
  rnode->attrs = node->attrs;
  pc->ref = cpu::eval_node(*rnode, rptrs).at(0);
  return pc;
}

// Points the context's inputs at the device copies `d` and its output at `y`.
void bind_conv(cuda::KernelContext& ctx, const PreparedConv& pc, DataType dt, DeviceInputs& d, cuda::DeviceBuffer& y) {
  ctx.in.clear();
  for (size_t i = 0; i < pc.inputs.size(); ++i) {
    cuda::TensorRef r;
    if (!pc.inputs[i].empty()) r = cuda::TensorRef{true, dt, pc.inputs[i].shape(), d.buffers[i].get(), pc.inputs[i].raw()};
    ctx.in.push_back(r);
  }
  ctx.out.assign(1, cuda::TensorRef{true, pc.out.dtype, pc.out.shape, y.get(), nullptr});
}

// Runs the case on the GPU four ways (see the top of the file) and compares each result with the CPU.
::testing::AssertionResult check_conv(const ConvCase& c, const Epilogue& e, DataType dt) {
  try {
    const std::unique_ptr<PreparedConv> pc = prepare_conv(c, e, dt);
    const std::vector<HostTensor>& inputs = pc->inputs;
    const HostTensor& ref = pc->ref;
    cuda::KernelFn fn = cuda::find_kernel("Convolution");
    if (!fn) return ::testing::AssertionFailure() << "no CUDA kernel for Convolution";

    cudaStream_t s = test_stream();
    cuda::Resources res;
    res.stream = s;
    shared_library_handles().attach(res);
    cuda::KernelContext ctx{*pc->node, {}, {}, res};
    DeviceInputs dev;
    dev.upload(inputs);
    auto bind = [&](DeviceInputs& d, cuda::DeviceBuffer& y) { bind_conv(ctx, *pc, dt, d, y); };
    const size_t ybytes = pc->ybytes;
    cuda::DeviceBuffer y1(ybytes);
    bind(dev, y1);
    auto run_eager = [&](int poison) -> HostTensor {
      if (cudaMemsetAsync(ctx.out[0].data, poison, ybytes, s) != cudaSuccess) throw Error("cudaMemset failed");
      fn(ctx);
      const cudaError_t err = cudaStreamSynchronize(s);
      if (err != cudaSuccess) throw Error(std::string("kernel failed: ") + cudaGetErrorString(err));
      return download(ctx.out[0]);
    };
    std::vector<std::pair<const char*, HostTensor>> results;
    results.emplace_back("first run", run_eager(0xFF));
    results.emplace_back("second run", run_eager(0x7B));
    if (!results[0].second.same_bytes(results[1].second))
      return ::testing::AssertionFailure() << "the two runs differ (unwritten elements?)";

    // New addresses for every tensor (the old ones stay allocated, so they cannot be reused by accident).
    DeviceInputs moved;
    moved.upload(inputs);
    cuda::DeviceBuffer y2(ybytes);
    bind(moved, y2);
    results.emplace_back("run at new addresses", run_eager(0xFF));

    // Captured and replayed, as the executor does after its first eager run.
    const std::unique_ptr<CapturedGraph> graph = capture_on_own_stream(res, [&] { fn(ctx); });
    cudaMemsetAsync(y2.get(), 0x7B, ybytes, s);
    graph->replay(s);
    results.emplace_back("captured replay", download(ctx.out[0]));

    for (const auto& [what, got] : results) {
      ::testing::AssertionResult r = compare(got, ref, tolerance(dt), false);
      if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& ex) {
    return ::testing::AssertionFailure() << "threw: " << ex.what();
  }
}

// The convolution shapes, channels-last (x [N, H, W, C], w [K, kh, kw, C/g]); nchw() gives the NCHW twin.
std::vector<ConvCase> nhwc_cases() {
  return {
      {"1x1", {2, 7, 7, 32}, {64, 1, 1, 32}, 1, 1, 0, true},
      {"3x3", {1, 9, 9, 16}, {32, 3, 3, 16}, 1, 1, 1, true},
      {"7x7 stride 2", {1, 16, 16, 8}, {16, 7, 7, 8}, 1, 2, 3, true},
      {"depthwise 3x3", {2, 8, 8, 32}, {32, 3, 3, 1}, 32, 1, 1, true},
      {"grouped 3x3 stride 2", {1, 10, 10, 16}, {32, 3, 3, 4}, 4, 2, 1, true},
  };
}

ConvCase nchw(ConvCase c) {
  c.nhwc = false;
  c.x = {c.x[0], c.x[3], c.x[1], c.x[2]};
  c.w = {c.w[0], c.w[3], c.w[1], c.w[2]};
  return c;
}

std::vector<ConvCase> both_layouts() {
  std::vector<ConvCase> all;
  for (const ConvCase& c : nhwc_cases()) {
    all.push_back(c);
    all.push_back(nchw(c));
  }
  return all;
}

const std::vector<Epilogue>& epilogues() {
  static const std::vector<Epilogue> e = {
      {false, false, -1},  // plain convolution
      {true, false, -1},   // bias
      {true, false, 0},    // bias + ReLU
      {true, true, 0},     // bias + residual + ReLU (ResNet's block end)
      {false, true, -1},   // residual alone
      {true, true, 1},     // bias + residual + sigmoid (the activation runs in Kiln's kernel)
      {true, false, 8},    // bias + ReLU6 (MobileNet; the graph's ReLU with an upper clip)
  };
  return e;
}

// The timed choice (KILN_CUDNN_GRAPH=1, the default): whichever path wins must be right. Every shape in both layouts and every
// dtype, each with one epilogue, shifted between layouts and dtypes so every epilogue meets each of them.
TEST(CudaConvGraph, TimedChoiceMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CUDNN_GRAPH", "1");
  const std::vector<ConvCase> cases = both_layouts();  // each shape NHWC, then NCHW
  for (size_t d = 0; d < float_types().size(); ++d)
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const Epilogue& e = epilogues()[(ci / 2 + 2 * d + (ci % 2) * 3) % epilogues().size()];
      EXPECT_TRUE(check_conv(cases[ci], e, float_types()[d])) << describe(cases[ci], e, float_types()[d]);
    }
}

// The graph path forced (a plan, fused or bare + Kiln's epilogue, or an error), so it is checked even where
// the legacy algorithm would win the timing: every shape, layout and dtype with half of the epilogues each,
// alternating between neighbouring shapes and dtypes (every epilogue meets every layout and dtype).
TEST(CudaConvGraph, ForcedGraphPathMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CUDNN_GRAPH", "force");
  const std::vector<ConvCase> cases = both_layouts();  // each shape NHWC, then NCHW
  for (size_t d = 0; d < float_types().size(); ++d)
    for (size_t ci = 0; ci < cases.size(); ++ci)
      for (size_t j = 0; j < epilogues().size(); ++j) {
        if ((j + ci / 2 + d) % 2 != 0) continue;
        const Epilogue& e = epilogues()[j];
        EXPECT_TRUE(check_conv(cases[ci], e, float_types()[d])) << describe(cases[ci], e, float_types()[d]);
      }
}

// The fused graph itself (conv + bias [+ residual] [+ ReLU] as one cuDNN graph) where cuDNN's runtime
// fusion supports it on sm80+: channels-last float16 / bfloat16 with channel counts a multiple of 8. A
// failure saying "no cuDNN graph plan" means cuDNN offered no fused engine for that pattern.
TEST(CudaConvGraph, ForcedFusedGraphMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CUDNN_GRAPH", "force-fused");
  const std::vector<ConvCase> cases = {nhwc_cases()[0], nhwc_cases()[1]};  // 1x1 and 3x3, dense
  const std::vector<Epilogue> fused = {{true, false, 0}, {true, true, 0}, {true, false, -1}, {false, true, 0}};
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (const ConvCase& c : cases)
      for (const Epilogue& e : fused) EXPECT_TRUE(check_conv(c, e, dt)) << describe(c, e, dt);
}

// 1-D (described to cuDNN with a unit height) and 3-D convolutions, NCHW, through the timed choice and the
// forced graph path.
TEST(CudaConvGraph, OneAndThreeSpatialDims) {
  KILN_REQUIRE_CUDA_DEVICE();
  const std::vector<ConvCase> cases = {
      {"1-D", {2, 8, 20}, {16, 8, 3}, 1, 1, 1, false},
      {"1-D stride 2", {1, 16, 31}, {16, 16, 5}, 1, 2, 2, false},
      {"3-D", {1, 8, 5, 6, 5}, {16, 8, 3, 3, 3}, 1, 1, 1, false},
  };
  for (const char* m : {static_cast<const char*>(nullptr), "force"}) {
    ScopedEnv mode("KILN_CUDNN_GRAPH", m);
    for (DataType dt : float_types())
      for (const ConvCase& c : cases)
        for (const Epilogue& e : {Epilogue{true, true, 0}, Epilogue{}})
          EXPECT_TRUE(check_conv(c, e, dt)) << describe(c, e, dt) << " mode " << (m ? m : "timed");
  }
}

// KILN_CUDNN_GRAPH=0: the legacy API alone, still right.
TEST(CudaConvGraph, LegacyPathWhenDisabled) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CUDNN_GRAPH", "0");
  for (DataType dt : float_types())
    for (const ConvCase& c : both_layouts())
      EXPECT_TRUE(check_conv(c, Epilogue{true, true, 0}, dt)) << describe(c, Epilogue{true, true, 0}, dt);
}

// A context's first run records the timed choice in the timing cache; another context (its own cuDNN
// handle, workspace and per-node state, as a second execution context of one engine) with the same cache
// follows the record: nothing timed, at most the recorded plan finalized, the first context's result bit
// for bit (the same plan, or the same legacy algorithm) and right against the CPU. KILN_CUDNN_GRAPH unset:
// the default.
TEST(CudaConvGraph, SecondContextFollowsTheRecordedChoice) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CUDNN_GRAPH", nullptr);
  struct Case {
    ConvCase c;
    Epilogue e;
    DataType dt;
  };
  const std::vector<Case> cases = {
      {nhwc_cases()[1], {true, true, 0}, DataType::kHALF},   // 3x3 + bias + residual + ReLU: the fused graph
      {nhwc_cases()[3], {true, false, 0}, DataType::kBF16},  // depthwise 3x3 + bias + ReLU
      {nchw(nhwc_cases()[0]), {}, DataType::kFLOAT},         // NCHW float32 1x1, nothing to fuse
      {nhwc_cases()[2], {true, false, 1}, DataType::kHALF},  // 7x7 stride 2 + bias + sigmoid (Kiln's kernel)
  };
  cuda::KernelFn fn = cuda::find_kernel("Convolution");
  ASSERT_NE(fn, nullptr);
  for (const Case& k : cases) {
    const std::string what = describe(k.c, k.e, k.dt);
    try {
      const std::unique_ptr<PreparedConv> pc = prepare_conv(k.c, k.e, k.dt);
      cudaStream_t s = test_stream();
      DeviceInputs dev;
      dev.upload(pc->inputs);
      TimingCache cache;
      // One context's first run: fresh per-node state, the shared cache.
      auto first_run = [&](const cuda::LibraryHandles& h, cuda::DeviceBuffer& y) -> HostTensor {
        cuda::Resources res;
        res.stream = s;
        h.attach(res);
        res.tactics = &cache;
        cuda::KernelContext ctx{*pc->node, {}, {}, res};
        bind_conv(ctx, *pc, k.dt, dev, y);
        if (cudaMemsetAsync(y.get(), 0xFF, pc->ybytes, s) != cudaSuccess) throw Error("cudaMemset failed");
        fn(ctx);
        const cudaError_t err = cudaStreamSynchronize(s);
        if (err != cudaSuccess) throw Error(std::string("kernel failed: ") + cudaGetErrorString(err));
        return download(ctx.out[0]);
      };
      const cuda::ConvGraphCounters c0 = cuda::conv_graph_counters();
      cuda::DeviceBuffer y1(pc->ybytes);
      const HostTensor first = first_run(shared_library_handles(), y1);
      const cuda::ConvGraphCounters c1 = cuda::conv_graph_counters();
      EXPECT_EQ(c1.choices_timed - c0.choices_timed, 1) << what;
      EXPECT_EQ(c1.choices_from_record - c0.choices_from_record, 0) << what;
      EXPECT_EQ(cache.size(), 2u) << what << ": expected cudnnFind's record and the graph path's";

      const cuda::LibraryHandles other;  // the second context's own cuDNN handle and workspace
      cuda::DeviceBuffer y2(pc->ybytes);
      const HostTensor second = first_run(other, y2);
      const cuda::ConvGraphCounters c2 = cuda::conv_graph_counters();
      EXPECT_EQ(c2.choices_timed - c1.choices_timed, 0) << what << ": the second context timed again";
      EXPECT_EQ(c2.choices_from_record - c1.choices_from_record, 1) << what;
      EXPECT_LE(c2.plans_finalized - c1.plans_finalized, 1) << what << ": more than the recorded plan finalized";
      EXPECT_EQ(cache.size(), 2u) << what;
      EXPECT_TRUE(second.same_bytes(first)) << what << ": the second context's result differs from the first's";
      EXPECT_TRUE(compare(first, pc->ref, tolerance(k.dt), false)) << what << " (first context)";
      EXPECT_TRUE(compare(second, pc->ref, tolerance(k.dt), false)) << what << " (second context)";
    } catch (const std::exception& ex) {
      ADD_FAILURE() << what << " threw: " << ex.what();
    }
  }
}

// Contexts of one engine share the finalized plan their record names (conv_plan_cache.h): the context that
// first follows the record finalizes it into the engine's cache; every later one finalizes nothing, executes
// the same plan through its own handle and gets the first context's result bit for bit. Then two such
// contexts run the plan at once from two threads on two streams, and every result is still that one.
// The case is a ResNet-like 3x3 whose timing the graph path wins over the legacy call (the split-K kernel,
// its other candidate, is off): a record of another path leaves no plan to share, and the test says so.
TEST(CudaConvGraph, ContextsShareTheRecordedPlan) {
  KILN_REQUIRE_CUDA_DEVICE();
  ScopedEnv mode("KILN_CUDNN_GRAPH", nullptr);
  ScopedEnv splitk("KILN_CONV_SPLITK", "0");
  const ConvCase c{"3x3 64 channels", {4, 28, 28, 64}, {64, 3, 3, 64}, 1, 1, 1, true};
  const Epilogue e{true, true, 0};
  const DataType dt = DataType::kHALF;
  const std::string what = describe(c, e, dt);
  cuda::KernelFn fn = cuda::find_kernel("Convolution");
  ASSERT_NE(fn, nullptr);
  try {
    const std::unique_ptr<PreparedConv> pc = prepare_conv(c, e, dt);
    DeviceInputs dev;
    dev.upload(pc->inputs);
    TimingCache cache;
    cuda::ConvPlanCache plans;
    // One context: its own node state, handle and workspace; the engine's timing cache and (unless null)
    // shared plans. Runs the node `runs` times on stream s and returns the last result.
    auto context_runs = [&](const cuda::LibraryHandles& h, cuda::ConvPlanCache* shared, cudaStream_t s,
                            cuda::DeviceBuffer& y, int runs) -> HostTensor {
      cuda::Resources res;
      res.stream = s;
      h.attach(res);
      res.tactics = &cache;
      res.conv_plans = shared;
      cuda::KernelContext ctx{*pc->node, {}, {}, res};
      bind_conv(ctx, *pc, dt, dev, y);
      for (int i = 0; i < runs; ++i) {
        if (cudaMemsetAsync(y.get(), 0xFF, pc->ybytes, s) != cudaSuccess) throw Error("cudaMemset failed");
        fn(ctx);
      }
      const cudaError_t err = cudaStreamSynchronize(s);
      if (err != cudaSuccess) throw Error(std::string("kernel failed: ") + cudaGetErrorString(err));
      return download(ctx.out[0]);
    };
    cuda::DeviceBuffer y0(pc->ybytes);
    const HostTensor timed = context_runs(shared_library_handles(), nullptr, test_stream(), y0, 1);  // records
    ASSERT_TRUE(compare(timed, pc->ref, tolerance(dt), false)) << what;

    const cuda::ConvGraphCounters c1 = cuda::conv_graph_counters();
    const cuda::LibraryHandles second_handles;
    cuda::DeviceBuffer y1(pc->ybytes);
    const HostTensor second = context_runs(second_handles, &plans, test_stream(), y1, 1);
    const cuda::ConvGraphCounters c2 = cuda::conv_graph_counters();
    ASSERT_EQ(plans.size(), 1u) << what << ": no plan kept; the timing chose a path other than the graph's, so "
                                << "this case cannot show sharing";
    EXPECT_EQ(c2.plans_finalized - c1.plans_finalized, 1) << what << ": the first follower finalizes the plan";
    EXPECT_EQ(c2.choices_from_record - c1.choices_from_record, 1) << what;

    const cuda::LibraryHandles third_handles;
    cuda::DeviceBuffer y2(pc->ybytes);
    const HostTensor third = context_runs(third_handles, &plans, test_stream(), y2, 1);
    const cuda::ConvGraphCounters c3 = cuda::conv_graph_counters();
    EXPECT_EQ(c3.plans_finalized - c2.plans_finalized, 0) << what << ": a later context finalized a plan again";
    EXPECT_EQ(plans.size(), 1u) << what;
    EXPECT_TRUE(second.same_bytes(timed)) << what << ": the first follower's result differs from the timed run's";
    EXPECT_TRUE(third.same_bytes(second)) << what << ": the sharing context's result differs";

    // Two sharing contexts at once, each on its own thread and stream, 200 runs each.
    std::vector<std::string> errors(2);
    std::vector<HostTensor> results(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        cudaStream_t s = nullptr;
        try {
          if (cudaStreamCreate(&s) != cudaSuccess) throw Error("cudaStreamCreate failed");
          const cuda::LibraryHandles h;
          cuda::DeviceBuffer y(pc->ybytes);
          results[t] = context_runs(h, &plans, s, y, 200);
        } catch (const std::exception& ex) {
          errors[t] = ex.what();
        }
        if (s) cudaStreamDestroy(s);
      });
    for (std::thread& th : threads) th.join();
    const cuda::ConvGraphCounters c4 = cuda::conv_graph_counters();
    for (int t = 0; t < 2; ++t) {
      ASSERT_TRUE(errors[t].empty()) << what << ": thread " << t << ": " << errors[t];
      EXPECT_TRUE(results[t].same_bytes(second)) << what << ": thread " << t << "'s result differs";
    }
    EXPECT_EQ(c4.plans_finalized - c3.plans_finalized, 0) << what << ": the threads' contexts finalized plans";
  } catch (const std::exception& ex) {
    FAIL() << what << " threw: " << ex.what();
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
