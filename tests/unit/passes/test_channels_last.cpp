// ChannelsLast: convolutions become channels-last with transposes only at region edges, and the graph
// computes the same outputs (checked on the CPU backend on random inputs).
#include <gtest/gtest.h>

#include "fusion_test_util.h"
#include "passes/channels_last.h"
#include "plan_round_trip.h"

using namespace kiln;

namespace {

ir::Value* conv(ir::Graph& g, ir::Value* x, int64_t cin, int64_t cout, int64_t k, const std::string& name,
                bool bias = true) {
  int64_t pad = k / 2;
  auto* w = g.add_constant(name + "_w", mtest::rand_float({cout, cin, k, k}, DataType::kFLOAT, 0.1, 1.0));
  std::vector<ir::Value*> ins{x, w->outputs[0]};
  if (bias) ins.push_back(g.add_constant(name + "_b", mtest::rand_float({cout}, DataType::kFLOAT, 0.1, 1.0))->outputs[0]);
  auto* n = g.add_node("Convolution", name, ins, 1);
  n->attrs.set("num_output_maps", cout);
  n->attrs.set("kernel", std::vector<int64_t>{k, k});
  n->attrs.set("pre_padding", std::vector<int64_t>{pad, pad});
  n->attrs.set("post_padding", std::vector<int64_t>{pad, pad});
  n->outputs[0]->shape = {x->shape[0], cout, x->shape[2], x->shape[3]};
  return n->outputs[0];
}

ir::Value* relu(ir::Graph& g, ir::Value* x, const std::string& name) {
  auto* n = g.add_node("Activation", name, {x}, 1);
  n->attrs.set("type", int64_t{0});
  n->outputs[0]->shape = x->shape;
  return n->outputs[0];
}

ir::Value* binary(ir::Graph& g, int64_t op, ir::Value* a, ir::Value* b, const std::string& name) {
  auto* n = g.add_node("ElementWise", name, {a, b}, 1);
  n->attrs.set("op", op);
  n->outputs[0]->shape = a->shape.size() >= b->shape.size() ? a->shape : b->shape;
  return n->outputs[0];
}

size_t transposes(const ir::Graph& g) {
  size_t t = 0;
  for (auto& n : g.nodes()) t += n->op == "Shuffle" && !n->attrs.ints("first_transpose").empty();
  return t;
}

size_t channels_last_convs(const ir::Graph& g) {
  size_t c = 0;
  for (auto& n : g.nodes()) c += n->op == "Convolution" && n->attrs.i("channels_last", 0) == 1;
  return c;
}

// A 2-D Pooling of x (padding `pad` on both sides, stride 2, floor or ceil mode).
ir::Value* pool(ir::Graph& g, ir::Value* x, int64_t type, int64_t k, int64_t pad, bool ceil_mode,
                const std::string& name) {
  auto* n = g.add_node("Pooling", name, {x}, 1);
  n->attrs.set("type", type);
  n->attrs.set("window", std::vector<int64_t>{k, k});
  n->attrs.set("stride", std::vector<int64_t>{2, 2});
  n->attrs.set("pre_padding", std::vector<int64_t>{pad, pad});
  n->attrs.set("post_padding", std::vector<int64_t>{pad, pad});
  n->attrs.set("padding_mode", int64_t{ceil_mode ? 1 : 0});
  n->attrs.set("exclude_pad", int64_t{0});
  auto out = [&](int64_t in) {
    int64_t span = in + 2 * pad - k;
    int64_t o = (ceil_mode ? (span + 1) / 2 : span / 2) + 1;
    return ceil_mode && (o - 1) * 2 >= in + pad ? o - 1 : o;
  };
  n->outputs[0]->shape = {x->shape[0], x->shape[1], out(x->shape[2]), out(x->shape[3])};
  return n->outputs[0];
}

size_t channels_last_pools(const ir::Graph& g) {
  size_t c = 0;
  for (auto& n : g.nodes()) c += n->op == "Pooling" && n->attrs.i("channels_last", 0) == 1;
  return c;
}

// ResNet's stem: conv -> relu -> pool -> conv -> relu, the output named "y".
void resnet_stem(ir::Graph& g, int64_t pool_type, int64_t k, int64_t pad, bool ceil_mode) {
  auto* x = g.add_input("x", DataType::kFLOAT, {2, 3, 11, 10});
  auto* stem = relu(g, conv(g, x, 3, 8, 3, "stem"), "stem_relu");
  auto* p = pool(g, stem, pool_type, k, pad, ceil_mode, "stem_pool");
  auto* y = relu(g, conv(g, p, 8, 8, 3, "conv2"), "conv2_relu");
  y->name = "y";
  g.mark_output(y);
}

}  // namespace

TEST(ChannelsLast, PoolingBetweenConvolutionsRunsChannelsLast) {
  struct Variant {
    int64_t type, k, pad;
    bool ceil_mode;
  };
  for (Variant v : {Variant{0, 3, 1, false}, Variant{1, 3, 1, false}, Variant{0, 2, 0, true}, Variant{1, 3, 1, true}}) {
    ir::Graph g;
    resnet_stem(g, v.type, v.k, v.pad, v.ceil_mode);
    passes::ChannelsLast pass;
    ASSERT_TRUE(fusetest::run_and_compare(g, pass)) << "pool type " << v.type << " ceil " << v.ceil_mode;
    EXPECT_EQ(channels_last_convs(g), 2u);
    EXPECT_EQ(channels_last_pools(g), 1u) << g.to_string();
    EXPECT_EQ(fusetest::count_op(g, "Pooling"), 1u);
    EXPECT_EQ(transposes(g), 2u) << "only the network's input and output change layout:\n" << g.to_string();
    ASSERT_NE(g.find_node("stem_pool"), nullptr) << "the pooling keeps its name";
    EXPECT_EQ(g.find_node("stem_pool")->attrs.i("channels_last", 0), 1);
    EXPECT_EQ(g.outputs()[0]->name, "y");
  }
}

TEST(ChannelsLast, PoolingOfAnNchwValueStaysNchw) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {1, 3, 8, 8});
  auto* p = pool(g, x, 0, 3, 1, false, "input_pool");  // reads the network input: nothing to gain
  auto* y = conv(g, p, 3, 4, 3, "conv");
  g.mark_output(y);
  passes::ChannelsLast pass;
  ASSERT_TRUE(fusetest::run_and_compare(g, pass));
  EXPECT_EQ(channels_last_convs(g), 1u);
  EXPECT_EQ(channels_last_pools(g), 0u);
  EXPECT_EQ(transposes(g), 2u) << g.to_string();
}

TEST(ChannelsLast, ChannelsLastPoolingSurvivesAPlan) {
  ir::Graph g;
  resnet_stem(g, 0, 3, 1, false);
  passes::ChannelsLast pass;
  const std::vector<HostTensor> inputs = fusetest::random_inputs(g);
  ASSERT_TRUE(pass.run(g));
  infer_graph_inplace(g);
  const std::vector<HostTensor> want = fusetest::eval_graph(g, inputs);
  EngineData r = fusetest::through_plan(g, {2, 3, 11, 10});
  const ir::Node* p = r.graph->find_node("stem_pool");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->attrs.i("channels_last", 0), 1);
  EXPECT_EQ(p->outputs[0]->shape, (Dims{2, 6, 5, 8})) << "stored NHWC";
  const std::vector<HostTensor> got = fusetest::eval_graph(*r.graph, inputs);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].same_bytes(want[0]));
}

TEST(ChannelsLast, ResidualBlockKeepsTransposesAtTheEdges) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2, 4, 6, 5});
  auto* y1 = relu(g, conv(g, x, 4, 8, 3, "conv1"), "relu1");
  auto* y2 = conv(g, y1, 8, 8, 1, "conv2", false);
  auto* bn = g.add_constant("bn_scale", mtest::rand_float({1, 8, 1, 1}, DataType::kFLOAT, 0.5, 1.5));
  auto* scaled = binary(g, 1, y2, bn->outputs[0], "bn_mul");   // per-channel constant
  auto* sum = binary(g, 0, scaled, y1, "residual_add");          // both operands channels-last
  auto* r = relu(g, sum, "relu2");
  auto* half = g.add_constant("half", HostTensor::from_f32({0.5f}, {1}));
  auto* out = binary(g, 1, r, half->outputs[0], "scalar_mul");   // a scalar operand
  auto* pool = g.add_node("GlobalPooling", "pool", {out}, 1);
  pool->attrs.set("type", int64_t{1});
  pool->outputs[0]->shape = {2, 8, 1, 1};
  pool->outputs[0]->name = "y";
  g.mark_output(pool->outputs[0]);
  passes::ChannelsLast pass;
  bool changed = false;
  ASSERT_TRUE(fusetest::run_and_compare(g, pass, 1e-5, &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(channels_last_convs(g), 2u);
  EXPECT_EQ(fusetest::count_op(g, "GlobalPooling"), 0u) << "global pooling became a Reduce over H and W";
  EXPECT_EQ(fusetest::count_op(g, "Reduce"), 1u);
  EXPECT_EQ(transposes(g), 2u) << "one transpose in, one out:\n" << g.to_string();
  ASSERT_EQ(g.outputs().size(), 1u);
  EXPECT_EQ(g.outputs()[0]->name, "y");
  EXPECT_EQ(g.outputs()[0]->shape, (Dims{2, 8, 1, 1}));
  ASSERT_NE(g.find_node("conv1"), nullptr) << "layers keep their names";
}

TEST(ChannelsLast, ChannelConcatAndConvOutputAsNetworkOutput) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {1, 3, 5, 5});
  auto* a = conv(g, x, 3, 4, 3, "a");
  auto* b = conv(g, x, 3, 2, 1, "b");
  auto* cat = g.add_node("Concatenation", "cat", {a, b}, 1);
  cat->attrs.set("axis", int64_t{1});
  cat->outputs[0]->shape = {1, 6, 5, 5};
  auto* c = conv(g, cat->outputs[0], 6, 3, 3, "c");
  c->name = "out";
  g.mark_output(c);
  passes::ChannelsLast pass;
  ASSERT_TRUE(fusetest::run_and_compare(g, pass));
  EXPECT_EQ(channels_last_convs(g), 3u);
  EXPECT_EQ(transposes(g), 2u) << g.to_string();
  EXPECT_EQ(g.outputs()[0]->name, "out");
  EXPECT_EQ(g.outputs()[0]->shape, (Dims{1, 3, 5, 5}));
}

TEST(ChannelsLast, LeavesNonConstantWeightsAndOtherRanksAlone) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {1, 2, 4, 4});
  auto* w = g.add_input("w", DataType::kFLOAT, {3, 2, 3, 3});
  auto* n = g.add_node("Convolution", "dynamic_w", {x, w}, 1);
  n->attrs.set("num_output_maps", int64_t{3});
  n->attrs.set("kernel", std::vector<int64_t>{3, 3});
  n->outputs[0]->shape = {1, 3, 2, 2};
  g.mark_output(n->outputs[0]);
  auto* x1 = g.add_input("x1", DataType::kFLOAT, {1, 2, 7});
  auto* w1 = g.add_constant("w1", mtest::rand_float({3, 2, 3}, DataType::kFLOAT, 0.1, 1.0));
  auto* c1 = g.add_node("Convolution", "conv1d", {x1, w1->outputs[0]}, 1);
  c1->attrs.set("num_output_maps", int64_t{3});
  c1->attrs.set("kernel", std::vector<int64_t>{3});
  c1->outputs[0]->shape = {1, 3, 5};
  g.mark_output(c1->outputs[0]);
  passes::ChannelsLast pass;
  EXPECT_FALSE(pass.run(g));
  EXPECT_EQ(channels_last_convs(g), 0u);
}
