// FuseConv1x1Pair: graphs of channels-last 1x1 convolutions before and after the pass (which nodes, which
// values, which attributes), the whole graph's outputs on random inputs before vs after on the CPU, bit for bit
// (the pair's CPU kernel is the two convolutions), the patterns it must leave alone, the backend predicate's
// say, and the pass's place in the GPU pipeline with its switch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/gpu_probe.h"
#include "builder/pipeline.h"
#include "ir/ops/conv1x1_pair.h"
#include "passes/fuse_conv1x1_pair.h"
#include "passes/fusion_test_util.h"
#include "passes/pipeline_positions.h"
#include "scoped_env.h"

using namespace kiln;
using Net = fusetest::Builder;  // kiln::Builder is the TensorRT-style builder
using fusetest::count_op;

namespace {

using testenv::ScopedEnv;

struct ConvSpec {
  int64_t c_in = 8, c_out = 16;
  bool bias = true;
  ir::Value* residual = nullptr;
  int64_t activation = -1;  // ActivationType, -1 none
  int64_t kernel = 1, stride = 1;
  bool constant_weights = true;
};

// A channels-last Convolution (as passes/channels_last and the conv epilogue fusion leave it) of x [N, H, W, C].
ir::Node* conv(Net& b, ir::Value* x, const std::string& name, const ConvSpec& s = {}) {
  const Dims ws = {s.c_out, s.kernel, s.kernel, s.c_in};
  ir::Value* w = s.constant_weights ? b.rand_cst(ws, 0.05, 0.5) : b.input(ws);
  std::vector<ir::Value*> ins = {x, w, s.bias ? b.rand_cst({s.c_out}, 0.1, 1.0) : nullptr};
  if (s.residual) ins.push_back(s.residual);
  ir::Node* n = b.node("Convolution", ins, name);
  n->attrs.set("channels_last", int64_t{1});
  n->attrs.set("num_output_maps", s.c_out);
  n->attrs.set("kernel", std::vector<int64_t>{s.kernel, s.kernel});
  n->attrs.set("stride", std::vector<int64_t>{s.stride, s.stride});
  const int64_t pad = s.kernel / 2;
  n->attrs.set("pre_padding", std::vector<int64_t>{pad, pad});
  n->attrs.set("post_padding", std::vector<int64_t>{pad, pad});
  if (s.activation >= 0) n->attrs.set("activation", s.activation);
  return n;
}

// ResNet's shape of the pattern, small: x [2, 5, 7, 8] -> A 8->16 (+ residual, ReLU) -> B 16->8 (ReLU).
struct PairGraph {
  Net b;
  ir::Value *x = nullptr, *r = nullptr;
  ir::Node *a = nullptr, *bconv = nullptr;
};

void make_pair(PairGraph& p, const ConvSpec& second_changes = {}, bool a_constant = true) {
  p.x = p.b.input({2, 5, 7, 8});
  p.r = p.b.input({2, 5, 7, 16});
  ConvSpec sa;
  sa.residual = p.r;
  sa.activation = 0;
  sa.constant_weights = a_constant;
  p.a = conv(p.b, p.x, "conv_a", sa);
  ConvSpec sb = second_changes;
  sb.c_in = 16;
  sb.c_out = 8;
  if (sb.activation < 0) sb.activation = 0;
  p.bconv = conv(p.b, p.a->outputs[0], "conv_b", sb);
}

// Bit-for-bit equality of two tensors (dtype, shape and bytes).
::testing::AssertionResult same_bits(const HostTensor& got, const HostTensor& want) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape())
    return ::testing::AssertionFailure() << dtype_name(got.dtype()) << dims_str(got.shape()) << " vs "
                                         << dtype_name(want.dtype()) << dims_str(want.shape());
  if (std::memcmp(got.raw(), want.raw(), got.nbytes()) != 0) return ::testing::AssertionFailure() << "bytes differ";
  return ::testing::AssertionSuccess();
}

// Runs the pass as the builder does (to a fixed point), checks it is then idempotent and that shape inference
// accepts the result, and that every graph output is the same bits as before on random inputs.
::testing::AssertionResult fuse_exactly(ir::Graph& g, passes::Pass& pass, bool* changed) {
  std::unique_ptr<ir::Graph> before = g.clone();
  const std::vector<HostTensor> inputs = fusetest::random_inputs(g);
  const std::vector<HostTensor> want = fusetest::eval_graph(*before, inputs);
  *changed = false;
  for (int i = 0; i < 4 && pass.run(g); ++i) *changed = true;
  if (pass.run(g)) return ::testing::AssertionFailure() << "not idempotent";
  try {
    infer_graph_inplace(g);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "shape inference fails after the pass: " << e.what() << "\n"
                                         << g.to_string();
  }
  const std::vector<HostTensor> got = fusetest::eval_graph(g, inputs);
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "output count changed";
  for (size_t i = 0; i < got.size(); ++i)
    if (auto r = same_bits(got[i], want[i]); !r)
      return ::testing::AssertionFailure() << "output " << i << ": " << r.message();
  return ::testing::AssertionSuccess();
}

ir::Node* only_pair(const ir::Graph& g) {
  for (auto& n : g.nodes())
    if (n->op == "Conv1x1Pair") return n.get();
  return nullptr;
}

}  // namespace

TEST(FuseConv1x1Pair, FusesABottleneckPairBitForBit) {
  // A's output is also read by an Add (as the next block's residual would be) that is a network output.
  PairGraph p;
  make_pair(p);
  ir::Value* y1 = p.a->outputs[0];
  ir::Value* y2 = p.bconv->outputs[0];
  p.b.output(p.b.add(y1, p.b.input({2, 5, 7, 16}), "other_reader"));
  p.b.output(y2);
  p.b.infer();
  const std::string y2_name = y2->name;
  passes::FuseConv1x1Pair pass;
  bool changed = false;
  ASSERT_TRUE(fuse_exactly(p.b.g, pass, &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(count_op(p.b.g, "Convolution"), 0u);
  ir::Node* pair = only_pair(p.b.g);
  ASSERT_NE(pair, nullptr) << p.b.g.to_string();
  EXPECT_EQ(pair->name, "pair(conv_a, conv_b)");
  ASSERT_EQ(pair->inputs.size(), 6u) << "x, w1, b1, r1, w2, b2";
  EXPECT_EQ(pair->inputs[ir::kPairX], p.x);
  EXPECT_EQ(pair->inputs[ir::kPairR1], p.r);
  ASSERT_EQ(pair->outputs.size(), 2u);
  EXPECT_EQ(pair->outputs[0], y1) << "y1 stays the value A's readers read";
  EXPECT_EQ(pair->outputs[1], y2);
  EXPECT_EQ(p.b.g.find_node("other_reader")->inputs[0], y1);
  EXPECT_EQ(p.b.g.outputs()[1], y2);
  EXPECT_EQ(y2->name, y2_name) << "network outputs keep their names";
  EXPECT_EQ(pair->attrs.s("first_name", ""), "conv_a");
  EXPECT_EQ(pair->attrs.s("second_name", ""), "conv_b");
  EXPECT_EQ(pair->attrs.i("activation", -1), 0);
  EXPECT_EQ(pair->attrs.i("activation2", -1), 0);
  EXPECT_EQ(pair->attrs.s("fused", ""), "conv_a,conv_b");
}

TEST(FuseConv1x1Pair, KeepsBothOutputsAsNamedNetworkOutputsAndTheEpiloguesAttributes) {
  // y1 itself is a network output; the convolutions have absorbed layers and A a leaky ReLU with its alpha,
  // B no biases.
  PairGraph p;
  ConvSpec sb;
  sb.bias = false;
  make_pair(p, sb);
  p.a->attrs.set("activation", int64_t{3});
  p.a->attrs.set("act_alpha", 0.125);
  p.a->attrs.set("fused", "add_a,leaky_a");
  p.bconv->attrs.set("fused", "relu_b");
  ir::Value* y1 = p.a->outputs[0];
  ir::Value* y2 = p.bconv->outputs[0];
  y1->name = "block1_out";
  y2->name = "block2_reduce";
  p.b.output(y1);
  p.b.output(y2);
  p.b.infer();
  passes::FuseConv1x1Pair pass;
  bool changed = false;
  ASSERT_TRUE(fuse_exactly(p.b.g, pass, &changed));
  ASSERT_TRUE(changed);
  ir::Node* pair = only_pair(p.b.g);
  ASSERT_NE(pair, nullptr);
  ASSERT_EQ(p.b.g.outputs().size(), 2u);
  EXPECT_EQ(p.b.g.outputs()[0]->name, "block1_out");
  EXPECT_EQ(p.b.g.outputs()[1]->name, "block2_reduce");
  EXPECT_EQ(p.b.g.outputs()[0]->producer, pair);
  EXPECT_EQ(p.b.g.outputs()[1]->producer, pair);
  ASSERT_EQ(pair->inputs.size(), 6u);
  EXPECT_EQ(pair->inputs[ir::kPairB2], nullptr) << "B had no bias";
  EXPECT_EQ(pair->attrs.i("activation", -1), 3);
  EXPECT_DOUBLE_EQ(pair->attrs.f("act_alpha", 0), 0.125);
  EXPECT_FALSE(pair->attrs.has("act2_alpha"));
  EXPECT_EQ(pair->attrs.s("first_fused", ""), "add_a,leaky_a");
  EXPECT_EQ(pair->attrs.s("second_fused", ""), "relu_b");
  EXPECT_EQ(pair->attrs.s("fused", ""), "conv_a,add_a,leaky_a,conv_b,relu_b");
  const ir::Node first = ir::conv1x1_pair_part(*pair, 0);
  EXPECT_EQ(first.name, "conv_a");
  EXPECT_DOUBLE_EQ(first.attrs.f("act_alpha", 0), 0.125);
  EXPECT_EQ(first.attrs.s("fused", ""), "add_a,leaky_a");
}

TEST(FuseConv1x1Pair, LeavesWhatIsNoPair) {
  struct Case {
    const char* what;
    ConvSpec second;
    bool a_constant = true;
    bool pin_b = false;
  };
  ConvSpec three_by_three;
  three_by_three.kernel = 3;
  ConvSpec strided;
  strided.stride = 2;
  const std::vector<Case> cases = {
      {"B 3x3", three_by_three},
      {"B strided", strided},
      {"A's weights not constant", {}, false},
      {"B pinned to another precision", {}, true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    PairGraph p;
    make_pair(p, c.second, c.a_constant);
    if (c.pin_b) p.bconv->precision = DataType::kFLOAT;
    p.b.output(p.bconv->outputs[0]);
    p.b.infer();
    passes::FuseConv1x1Pair pass;
    EXPECT_TRUE(fusetest::unchanged_by(p.b.g, pass, 0));
  }
  {
    SCOPED_TRACE("B has a residual");
    PairGraph p;
    make_pair(p);
    p.bconv->inputs.push_back(p.b.input({2, 5, 7, 8}));
    p.b.output(p.bconv->outputs[0]);
    p.b.infer();
    passes::FuseConv1x1Pair pass;
    EXPECT_TRUE(fusetest::unchanged_by(p.b.g, pass, 0));
  }
  {
    SCOPED_TRACE("not channels-last");
    PairGraph p;
    make_pair(p);
    p.b.output(p.bconv->outputs[0]);
    p.b.infer();
    p.a->attrs.set("channels_last", int64_t{0});  // after inference: only the pass's match is under test
    passes::FuseConv1x1Pair pass;
    EXPECT_TRUE(fusetest::not_rewritten_by(p.b.g, pass));
  }
}

TEST(FuseConv1x1Pair, APredicateThatSaysNoKeepsTheConvolutions) {
  PairGraph p;
  make_pair(p);
  p.b.output(p.bconv->outputs[0]);
  p.b.infer();
  int asked = 0;
  passes::FuseConv1x1Pair pass([&](const ir::Node& n, const std::vector<ir::TensorInfo>& in) {
    ++asked;
    EXPECT_EQ(n.op, "Conv1x1Pair");
    EXPECT_EQ(in.size(), 6u);
    EXPECT_EQ(n.outputs.size(), 2u);
    if (in.size() == 6) {
      EXPECT_EQ(in[ir::kPairX].shape, (Dims{2, 5, 7, 8}));
      EXPECT_NE(in[ir::kPairW1].value, nullptr) << "constant weights come with their values";
      EXPECT_EQ(in[ir::kPairW2].shape, (Dims{8, 1, 1, 16}));
      EXPECT_TRUE(in[ir::kPairR1].present);
    }
    return false;
  });
  EXPECT_TRUE(fusetest::unchanged_by(p.b.g, pass, 0));
  EXPECT_GE(asked, 1);
}

TEST(FuseConv1x1Pair, AChainMakesOnePairAndSeveralReadersTheFirstTheBackendTakes) {
  {
    SCOPED_TRACE("A -> B -> C");
    PairGraph p;
    make_pair(p);
    ConvSpec sc;
    sc.c_in = 8;
    sc.c_out = 4;
    ir::Node* c = conv(p.b, p.bconv->outputs[0], "conv_c", sc);
    p.b.output(c->outputs[0]);
    p.b.infer();
    passes::FuseConv1x1Pair pass;
    bool changed = false;
    ASSERT_TRUE(fuse_exactly(p.b.g, pass, &changed));
    EXPECT_EQ(count_op(p.b.g, "Conv1x1Pair"), 1u);
    ASSERT_EQ(count_op(p.b.g, "Convolution"), 1u);
    ir::Node* pair = only_pair(p.b.g);
    EXPECT_EQ(pair->attrs.s("second_name", ""), "conv_b") << "the first in topological order";
    EXPECT_EQ(p.b.g.find_node("conv_c")->inputs[0], pair->outputs[1]);
  }
  for (bool refuse_first : {false, true}) {
    SCOPED_TRACE(refuse_first ? "the backend refuses B1" : "y1 read by B1 and B2");
    PairGraph p;
    make_pair(p);  // conv_b is B1
    ConvSpec s2;
    s2.c_in = 16;
    s2.c_out = 4;
    ir::Node* b2 = conv(p.b, p.a->outputs[0], "conv_b2", s2);
    p.b.output(p.bconv->outputs[0]);
    p.b.output(b2->outputs[0]);
    p.b.infer();
    passes::FuseConv1x1Pair pass([&](const ir::Node& n, const std::vector<ir::TensorInfo>&) {
      return !refuse_first || n.attrs.s("second_name", "") != "conv_b";
    });
    bool changed = false;
    ASSERT_TRUE(fuse_exactly(p.b.g, pass, &changed));
    ir::Node* pair = only_pair(p.b.g);
    ASSERT_NE(pair, nullptr);
    EXPECT_EQ(count_op(p.b.g, "Convolution"), 1u);
    const std::string other = refuse_first ? "conv_b" : "conv_b2";
    EXPECT_EQ(pair->attrs.s("second_name", ""), refuse_first ? "conv_b2" : "conv_b");
    ASSERT_NE(p.b.g.find_node(other), nullptr);
    EXPECT_EQ(p.b.g.find_node(other)->inputs[0], pair->outputs[0]) << "the other reader reads y1";
  }
}

TEST(FuseConv1x1PairPipeline, RunsInHalfPrecisionGpuBuildsOnceDtypesAndLayoutAreFinal) {
  ScopedEnv unset("KILN_FUSE_CONV_PAIR", nullptr);
  ScopedEnv nk("KILN_GEMM_WEIGHTS_NK", nullptr);
  ScopedEnv pointwise("KILN_FUSE_POINTWISE", nullptr);
  for (bool bf16 : {false, true}) {
    GpuPipelineOptions o;
    (bf16 ? o.bf16 : o.fp16) = true;
    const std::vector<std::string> names = fusetest::pass_names(gpu_pipeline(o));
    const ptrdiff_t at = fusetest::pass_position(names, "fuse-conv1x1-pair");
    ASSERT_GE(at, 0) << (bf16 ? "bf16" : "fp16");
    EXPECT_EQ(std::count(names.begin(), names.end(), "fuse-conv1x1-pair"), 1);
    EXPECT_GT(at, fusetest::pass_position(names, "fuse-conv-epilogue")) << "the epilogues are part of the pair";
    EXPECT_GT(at, fusetest::pass_position(names, "channels-last"));
    EXPECT_GT(at, fusetest::pass_position(names, "lower-precision")) << "dtypes must be final";
    EXPECT_GT(at, fusetest::pass_position(names, "transpose-gemm-weights"));
    EXPECT_LT(at, fusetest::pass_position(names, "fuse-pointwise"));
  }
  EXPECT_EQ(fusetest::pass_position(fusetest::pass_names(gpu_pipeline(GpuPipelineOptions{})), "fuse-conv1x1-pair"), -1)
      << "float32 builds";
  EXPECT_EQ(fusetest::pass_position(fusetest::pass_names(cpu_pipeline()), "fuse-conv1x1-pair"), -1);
}

TEST(FuseConv1x1PairPipeline, SwitchKeepsTheTwoConvolutions) {
  GpuPipelineOptions o;
  o.fp16 = true;
  {
    ScopedEnv off("KILN_FUSE_CONV_PAIR", "0");
    EXPECT_EQ(fusetest::pass_position(fusetest::pass_names(gpu_pipeline(o)), "fuse-conv1x1-pair"), -1);
  }
  {
    ScopedEnv on("KILN_FUSE_CONV_PAIR", "1");  // any other value keeps the default
    EXPECT_GE(fusetest::pass_position(fusetest::pass_names(gpu_pipeline(o)), "fuse-conv1x1-pair"), 0);
  }
}

TEST(FuseConv1x1PairPipeline, AFloat16GpuBuildPairsResNetsLayer1Convolutions) {
  // An NCHW float32 network as ONNX gives it: conv 64->256 + residual add + ReLU, then conv 256->64 + ReLU, both
  // outputs network outputs. The GPU pipeline makes the layout channels-last, fuses the epilogues, lowers to
  // float16, and the pair pass asks the CUDA backend (gpu::supports), whose fused kernel takes ResNet's layer1
  // shapes: so this needs the CUDA backend built (no GPU), and follows that kernel's conditions.
  if (!gpu::built_with_cuda()) GTEST_SKIP() << "the CUDA backend decides which pairs fuse; not built here";
  for (const char* sw : {static_cast<const char*>(nullptr), "0"}) {
    SCOPED_TRACE(sw ? "KILN_FUSE_CONV_PAIR=0" : "default");
    ScopedEnv e("KILN_FUSE_CONV_PAIR", sw);
    Net b;
    ir::Value* x = b.input({2, 64, 8, 8});
    ir::Value* r = b.input({2, 256, 8, 8});
    auto nchw_conv = [&](ir::Value* in, int64_t c, int64_t k, const std::string& name) {
      ir::Node* n = b.node("Convolution", {in, b.rand_cst({k, c, 1, 1}, 0.01, 0.1), b.rand_cst({k})}, name);
      n->attrs.set("kernel", std::vector<int64_t>{1, 1});
      return n->outputs[0];
    };
    ir::Value* a = b.act(b.add(nchw_conv(x, 64, 256, "conv_a"), r, "res"), 0, "relu_a");
    ir::Value* y = b.act(nchw_conv(a, 256, 64, "conv_b"), 0, "relu_b");
    b.output(y);
    b.output(a);
    b.infer();
    const std::string y_name = y->name, a_name = a->name;
    GpuPipelineOptions o;
    o.fp16 = true;
    run_pipeline(b.g, gpu_pipeline(o), nullptr);
    EXPECT_EQ(count_op(b.g, "Conv1x1Pair"), sw ? 0u : 1u) << b.g.to_string();
    EXPECT_EQ(count_op(b.g, "Convolution"), sw ? 2u : 0u) << b.g.to_string();
    ASSERT_EQ(b.g.outputs().size(), 2u);
    EXPECT_EQ(b.g.outputs()[0]->name, y_name);
    EXPECT_EQ(b.g.outputs()[1]->name, a_name);
    EXPECT_NO_THROW(infer_graph_inplace(b.g));
  }
}
