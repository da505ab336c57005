// ChannelsLast's stem rewrite (stem_space_to_depth): a strided convolution of few channels becomes
// SpaceToDepthNhwc -> a stride-1 channels-last convolution with rearranged weights. Checked for its structure
// (the op's attributes, the new kernel and weights) and, on the CPU backend, for the same outputs on random
// inputs; convolutions outside its conditions keep the plain channels-last form.
#include <gtest/gtest.h>

#include "fusion_test_util.h"
#include "passes/channels_last.h"
#include "plan_round_trip.h"

using namespace kiln;

namespace {

using Ints = std::vector<int64_t>;

struct Stem {
  Dims x;               // input [N, C, H, W]
  int64_t k = 7;        // output maps
  Ints kernel{7, 7}, stride{2, 2}, pre{3, 3}, post{3, 3};
  int64_t groups = 1;
  Ints dilation;        // empty: 1
  bool bias_relu = false;
  bool residual = false;
  int64_t padding_mode = 0;
};

// x -> Convolution "stem" (-> output "y"), shapes inferred.
void build(ir::Graph& g, const Stem& s) {
  ir::Value* x = g.add_input("x", DataType::kFLOAT, s.x);
  const Dims wshape{s.k, s.x[1] / s.groups, s.kernel[0], s.kernel[1]};
  auto constant = [&](const std::string& name, const Dims& shape) {
    return g.add_constant(name, mtest::rand_float(shape, DataType::kFLOAT, 0.1, 1.0))->outputs[0];
  };
  std::vector<ir::Value*> ins{x, constant("stem_w", wshape)};
  if (s.bias_relu || s.residual) ins.push_back(s.bias_relu ? constant("stem_b", {s.k}) : nullptr);
  ir::Node* n = g.add_node("Convolution", "stem", ins, 1);
  n->attrs.set("num_output_maps", s.k);
  n->attrs.set("kernel", s.kernel);
  n->attrs.set("stride", s.stride);
  n->attrs.set("pre_padding", s.pre);
  n->attrs.set("post_padding", s.post);
  n->attrs.set("padding_mode", s.padding_mode);
  if (s.groups != 1) n->attrs.set("groups", s.groups);
  if (!s.dilation.empty()) n->attrs.set("dilation", s.dilation);
  if (s.bias_relu) {
    n->attrs.set("activation", int64_t{0});  // ReLU fused, as FuseConvEpilogue writes it
    n->attrs.set("fused", std::string("stem_relu"));
  }
  infer_graph_inplace(g);
  if (s.residual) {  // a residual of the output's shape, read from a second network input
    n->inputs.push_back(g.add_input("r", DataType::kFLOAT, n->outputs[0]->shape));
    infer_graph_inplace(g);
  }
  n->outputs[0]->name = "y";
  g.mark_output(n->outputs[0]);
}

const ir::Node* only(const ir::Graph& g, const std::string& op) {
  const ir::Node* found = nullptr;
  for (auto& n : g.nodes())
    if (n->op == op) {
      if (found) return nullptr;
      found = n.get();
    }
  return found;
}

// Runs ChannelsLast with the rewrite on (or off) and compares with the graph before (float32, 1e-4 relative).
::testing::AssertionResult rewrite(ir::Graph& g, bool on = true) {
  passes::ChannelsLast pass(on);
  bool changed = false;
  ::testing::AssertionResult r = fusetest::run_and_compare(g, pass, 1e-4, &changed);
  if (r && !changed) return ::testing::AssertionFailure() << "ChannelsLast changed nothing";
  return r;
}

// The rewritten stem's geometry: the op's attributes, the convolution's window and its weights' shape.
struct Expect {
  int64_t block, c_out;
  Ints pre, post, kernel;
};

void expect_rewritten(const ir::Graph& g, const Stem& s, const Expect& e) {
  const ir::Node* d = only(g, "SpaceToDepthNhwc");
  ASSERT_NE(d, nullptr) << "one SpaceToDepthNhwc:\n" << g.to_string();
  EXPECT_EQ(d->inputs[0]->name, "x") << "it reads the network input (NCHW) itself";
  EXPECT_EQ(d->attrs.i("block", 0), e.block);
  EXPECT_EQ(d->attrs.ints("pre_padding"), e.pre);
  EXPECT_EQ(d->attrs.ints("post_padding"), e.post);
  EXPECT_EQ(d->attrs.i("out_channels", 0), e.c_out);
  const ir::Node* c = g.find_node("stem");
  ASSERT_NE(c, nullptr) << "the convolution keeps its name";
  EXPECT_EQ(c->op, "Convolution");
  EXPECT_EQ(c->attrs.i("channels_last", 0), 1);
  EXPECT_EQ(c->inputs[0], d->outputs[0]);
  EXPECT_EQ(c->attrs.ints("kernel"), e.kernel);
  EXPECT_EQ(c->attrs.ints("stride"), (Ints{1, 1}));
  EXPECT_EQ(c->attrs.ints("pre_padding"), (Ints{0, 0}));
  EXPECT_EQ(c->attrs.ints("post_padding"), (Ints{0, 0}));
  EXPECT_EQ(ir::constant_value(c->inputs[1])->shape(), (Dims{s.k, e.kernel[0], e.kernel[1], e.c_out}));
  if (s.bias_relu) {
    EXPECT_EQ(c->attrs.i("activation", -1), 0) << "the epilogue stays";
    EXPECT_EQ(c->attrs.s("fused", ""), "stem_relu");
    ASSERT_GT(c->inputs.size(), 2u);
    ASSERT_NE(c->inputs[2]->producer, nullptr);
    EXPECT_EQ(c->inputs[2]->producer->name, "stem_b") << "the bias is the original's";
  }
  EXPECT_EQ(fusetest::count_op(g, "Shuffle"), s.residual ? 2u : 1u) << "no NCHW->NHWC transpose of x:\n"
                                                                    << g.to_string();
}

size_t channels_last_convs(const ir::Graph& g) {
  size_t c = 0;
  for (auto& n : g.nodes()) c += n->op == "Convolution" && n->attrs.i("channels_last", 0) == 1;
  return c;
}

}  // namespace

// ResNet's stem: 7x7, stride 2, padding 3 on RGB, bias and ReLU fused. One zero tap in front makes the kernel
// 8 taps (still 4 stride-1 taps) and the begin padding 4, a multiple of the stride: T = 16 + 4 - 1 = 19 blocks,
// 38 = 4 + 32 + 2.
TEST(StemSpaceToDepth, ResNetStem) {
  Stem s;
  s.x = {2, 3, 32, 32};
  s.bias_relu = true;
  ir::Graph g;
  build(g, s);
  const HostTensor w = ir::constant_value(g.find_node("stem_w")->outputs[0])->deep_copy();
  ASSERT_TRUE(rewrite(g));
  expect_rewritten(g, s, {2, 16, {4, 4}, {2, 2}, {4, 4}});
  EXPECT_EQ(g.outputs()[0]->shape, (Dims{2, 7, 16, 16}));
  // The weights: w'[k, a, b, (qh*2 + qw)*3 + c] = w[k, c, 2a + qh - 1, 2b + qw - 1]; the shifted-in tap (-1) and
  // channels 12..15 zero.
  const HostTensor* w2 = ir::constant_value(g.find_node("stem")->inputs[1]);
  ASSERT_NE(w2, nullptr);
  for (int64_t k : {0, 6})
    for (int64_t a = 0; a < 4; ++a)
      for (int64_t b = 0; b < 4; ++b)
        for (int64_t ch = 0; ch < 16; ++ch) {
          const int64_t q = ch / 3, c = ch % 3, r = 2 * a + q / 2 - 1, t = 2 * b + q % 2 - 1;
          const bool tap = ch < 12 && r >= 0 && t >= 0;  // 2a + q - 1 <= 6: every other tap is the original's
          const float want = tap ? w.data<float>()[((k * 3 + c) * 7 + r) * 7 + t] : 0.f;
          EXPECT_EQ(w2->data<float>()[((k * 4 + a) * 4 + b) * 16 + ch], want) << k << " " << a << " " << b << " " << ch;
        }
}

// One case per geometry the rewrite must get right: the op's padding, block and channels, the new window, the
// output (and, where it is the point, the output size before the rewrite).
struct GeometryCase {
  const char* what;
  Stem stem;
  Expect expect;
  Dims output;  // the network output's shape after the rewrite, where the case checks it (else empty)
  Dims before;  // the convolution's output shape before the rewrite, where the case checks it (else empty)
};

std::vector<GeometryCase> geometry_cases() {
  std::vector<GeometryCase> cases;
  Stem s;
  // H: 20 + 2 + 4 = 26 padded, out 10, T 13 = 26 / 2; W: begin padding 3 -> 4 (one zero tap in front),
  // 4 + 22 + 0 = 26, out 10, T 13.
  s.x = {1, 3, 20, 22};
  s.pre = {2, 3};
  s.post = {4, 1};
  s.bias_relu = true;
  cases.push_back({"asymmetric padding", s, {2, 16, {2, 4}, {4, 0}, {4, 4}}, {}, {}});
  // Odd sizes: 33 + 6 = 39 gives 17 outputs, T = 20 rows of blocks = 40 = 4 + 33 + 3 (begin padding 3 -> 4).
  s = Stem{};
  s.x = {2, 3, 33, 31};
  cases.push_back({"odd sizes extend the end padding", s, {2, 16, {4, 4}, {3, 3}, {4, 4}}, {2, 7, 17, 16}, {}});
  // EXPLICIT_ROUND_UP: 17 outputs of 32 + 6 (one more than rounding down); the last window reads zeros.
  s = Stem{};
  s.x = {1, 3, 32, 32};
  s.padding_mode = 1;
  cases.push_back({"round-up output size", s, {2, 16, {4, 4}, {4, 4}, {4, 4}}, {}, {1, 7, 17, 17}});
  // 5x5/2: H: 21 padded, 9 outputs, T = 9 + 3 - 1 = 11 -> 22 (post 3); W: 20, 8 outputs, T 10 -> 20 (post 2).
  s = Stem{};
  s.x = {2, 3, 17, 16};
  s.kernel = {5, 5};
  s.pre = s.post = {2, 2};
  s.bias_relu = true;
  cases.push_back({"5x5 stride 2", s, {2, 16, {2, 2}, {3, 2}, {3, 3}}, {}, {}});
  // MobileNet's and EfficientNet's 3x3/2 stem (32 maps), one zero tap in front (4 taps, begin padding 2). H:
  // 17 + 1 + 1, 9 outputs, T = 9 + 2 - 1 = 10 -> 20 (post 1); W: 16 + 1 + 1, 8 outputs, T 9 -> 18 (post 0). The
  // 2x2 kernel over 16 channels has 64
  // multiply-adds an output against 27, on tensor cores instead of a 3-channel window.
  s = Stem{};
  s.x = {2, 3, 17, 16};
  s.k = 32;
  s.kernel = {3, 3};
  s.pre = s.post = {1, 1};
  s.bias_relu = true;
  cases.push_back({"3x3 stride 2", s, {2, 16, {2, 2}, {1, 0}, {2, 2}}, {2, 32, 9, 8}, {}});
  // Stride 4 on one channel: 16 channels with no padding. H: 33 unpadded, 7 outputs, T = 8 -> 32: the last
  // row is read by no output and dropped (post -1); W: 30 + 1 + 1, 7 outputs, T 8 -> 32. Aligning W's begin
  // padding to 4 would need 3 zero taps, 10 in all: 3 stride-1 taps instead of 2, so it stays 1.
  s = Stem{};
  s.x = {1, 1, 33, 30};
  s.pre = {0, 1};
  s.post = {0, 1};
  s.stride = {4, 4};
  s.bias_relu = true;
  cases.push_back({"stride 4 on one channel crops the end", s, {4, 16, {0, 1}, {-1, 1}, {2, 2}}, {}, {}});
  // A residual input stays an input of the rewritten convolution.
  s = Stem{};
  s.x = {1, 3, 16, 16};
  s.residual = true;
  cases.push_back({"residual stays an input", s, {2, 16, {4, 4}, {2, 2}, {4, 4}}, {}, {}});
  return cases;
}

TEST(StemSpaceToDepth, Geometries) {
  for (const GeometryCase& c : geometry_cases()) {
    SCOPED_TRACE(c.what);
    ir::Graph g;
    build(g, c.stem);
    if (!c.before.empty()) {
      ASSERT_EQ(g.find_node("stem")->outputs[0]->shape, c.before);
    }
    ASSERT_TRUE(rewrite(g));
    expect_rewritten(g, c.stem, c.expect);
    if (!c.output.empty()) {
      EXPECT_EQ(g.outputs()[0]->shape, c.output);
    }
  }
}

// Outside the conditions: plain channels-last convolutions, numerics unchanged.
TEST(StemSpaceToDepth, LeavesOtherConvolutionsAlone) {
  std::vector<std::pair<std::string, Stem>> cases;
  Stem base;
  base.x = {1, 3, 16, 16};
  Stem c = base;
  c.kernel = {2, 2};  // a window no larger than the stride: each input pixel meets one tap (PatchifyConvolution's)
  c.pre = c.post = {0, 0};
  cases.emplace_back("2x2 stride 2", c);
  c = base;
  c.x = {1, 8, 16, 16};  // 8 x 2 x 2 = 32 channels: wide enough already
  cases.emplace_back("C=8 stride 2", c);
  c = base;
  c.x = {1, 2, 16, 16};  // 2 x 4 = 8 channels, but two groups
  c.groups = 2;
  c.k = 4;
  c.kernel = {5, 5};
  c.pre = c.post = {2, 2};
  cases.emplace_back("groups 2", c);
  c = base;
  c.dilation = {2, 2};
  c.pre = c.post = {6, 6};
  cases.emplace_back("dilation 2", c);
  c = base;
  c.stride = {2, 1};
  cases.emplace_back("strides 2x1", c);
  c = base;
  c.stride = {1, 1};
  cases.emplace_back("stride 1", c);
  for (const auto& [what, stem] : cases) {
    ir::Graph g;
    build(g, stem);
    ASSERT_TRUE(rewrite(g)) << what;
    EXPECT_EQ(fusetest::count_op(g, "SpaceToDepthNhwc"), 0u) << what;
    EXPECT_EQ(channels_last_convs(g), 1u) << what;
    EXPECT_EQ(g.find_node("stem")->attrs.ints("kernel"), stem.kernel) << what;
  }
  // The switch off: ResNet's stem stays a strided 7x7 convolution.
  Stem r = base;
  r.bias_relu = true;
  ir::Graph g;
  build(g, r);
  ASSERT_TRUE(rewrite(g, false));
  EXPECT_EQ(fusetest::count_op(g, "SpaceToDepthNhwc"), 0u);
  EXPECT_EQ(g.find_node("stem")->attrs.ints("stride"), (Ints{2, 2}));
}

// Two stems reading one input with the same geometry share one SpaceToDepthNhwc.
TEST(StemSpaceToDepth, OneOpPerInput) {
  ir::Graph g;
  Stem s;
  s.x = {1, 3, 16, 16};
  build(g, s);
  ir::Node* first = g.find_node("stem");
  ir::Node* second = g.add_node("Convolution", "stem2", {first->inputs[0], first->inputs[1]}, 1);
  second->attrs = first->attrs;
  second->outputs[0]->name = "y2";
  infer_graph_inplace(g);
  g.mark_output(second->outputs[0]);
  ASSERT_TRUE(rewrite(g));
  EXPECT_EQ(fusetest::count_op(g, "SpaceToDepthNhwc"), 1u) << g.to_string();
  EXPECT_EQ(channels_last_convs(g), 2u);
}

// The op survives a plan (its attributes and shape inference), and the plan's graph computes the same.
// Without the padding alignment (KILN_S2D_VECTOR=0 in the builder) the op keeps the convolution's padding.
TEST(StemSpaceToDepth, KeepsThePaddingWhenNotAligning) {
  Stem s;
  s.x = {2, 3, 32, 32};
  s.bias_relu = true;
  ir::Graph g;
  build(g, s);
  passes::ChannelsLast pass(true, false);
  bool changed = false;
  ASSERT_TRUE(fusetest::run_and_compare(g, pass, 1e-4, &changed));
  ASSERT_TRUE(changed);
  expect_rewritten(g, s, {2, 16, {3, 3}, {3, 3}, {4, 4}});
}

TEST(StemSpaceToDepth, SurvivesAPlan) {
  Stem s;
  s.x = {2, 3, 33, 31};
  s.bias_relu = true;
  ir::Graph g;
  build(g, s);
  passes::ChannelsLast pass(true);
  const std::vector<HostTensor> inputs = fusetest::random_inputs(g);
  ASSERT_TRUE(pass.run(g));
  infer_graph_inplace(g);
  const std::vector<HostTensor> want = fusetest::eval_graph(g, inputs);
  EngineData r = fusetest::through_plan(g, s.x);
  const ir::Node* d = only(*r.graph, "SpaceToDepthNhwc");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attrs.ints("post_padding"), (Ints{3, 3}));
  EXPECT_EQ(d->outputs[0]->shape, (Dims{2, 20, 19, 16})) << "NHWC";
  const std::vector<HostTensor> got = fusetest::eval_graph(*r.graph, inputs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].same_bytes(want[0]));
}

// Shape inference names what is wrong.
TEST(StemSpaceToDepth, ShapeInferenceChecks) {
  auto infer = [](Dims x, int64_t block, Ints pre, Ints post, int64_t c_out) {
    ir::Graph g;
    ir::Node* n = g.add_node("SpaceToDepthNhwc", "s2d", {g.add_input("x", DataType::kHALF, x)}, 1);
    n->attrs.set("block", block);
    n->attrs.set("pre_padding", pre);
    n->attrs.set("post_padding", post);
    n->attrs.set("out_channels", c_out);
    return ir::infer_node(*n, {ir::TensorInfo{true, DataType::kHALF, x, nullptr}});
  };
  const auto ok = infer({-1, 3, 224, 224}, 2, {3, 3}, {3, 3}, 16);
  EXPECT_EQ(ok[0].shape, (Dims{-1, 115, 115, 16}));
  EXPECT_EQ(ok[0].dtype, DataType::kHALF);
  EXPECT_EQ(infer({1, 3, -1, 8}, 2, {0, 0}, {0, 0}, 12)[0].shape, (Dims{1, -1, 4, 12}));
  EXPECT_THROW(infer({1, 3, 8, 8}, 2, {0, 0}, {0, 0}, 8), Error);     // 12 channels do not fit in 8
  EXPECT_THROW(infer({1, 3, 9, 8}, 2, {0, 0}, {0, 0}, 16), Error);    // 9 rows: not whole blocks
  EXPECT_THROW(infer({1, 3, 8, 8}, 2, {-1, 0}, {1, 0}, 16), Error);   // negative begin padding
  EXPECT_THROW(infer({1, 3, 8, 8}, 0, {0, 0}, {0, 0}, 16), Error);    // no block
  EXPECT_THROW(infer({3, 8, 8}, 2, {0, 0}, {0, 0}, 16), Error);       // not 4-D
}
