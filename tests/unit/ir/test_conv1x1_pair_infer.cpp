// Conv1x1Pair's shape/type inference (ir/ops/conv1x1_pair.h): y1 and y2 shapes, unknown dims carried through,
// each refusal with a message that names the input and what it should be; and conv1x1_pair_part's halves, whose
// attributes Convolution's own inference accepts with the pair's operands.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/conv1x1_pair.h"

namespace kiln {
namespace {

using ir::TensorInfo;

TensorInfo t(Dims s, DataType dt = DataType::kHALF) { return TensorInfo{true, dt, std::move(s), nullptr}; }

// x [2, 5, 7, 8] -> 16 channels (bias, residual) -> 4 channels (bias), float16.
std::vector<TensorInfo> operands() {
  return {t({2, 5, 7, 8}), t({16, 1, 1, 8}), t({16}), t({2, 5, 7, 16}), t({4, 1, 1, 16}), t({4})};
}

struct PairNode {
  ir::Graph g;
  ir::Node* n;
  PairNode() { n = g.add_node("Conv1x1Pair", "pair", {}, 2); }
};

std::vector<TensorInfo> infer(const std::vector<TensorInfo>& in, int64_t act2 = 0) {
  PairNode p;
  p.n->attrs.set("activation", int64_t{0});
  p.n->attrs.set("activation2", act2);
  return ir::infer_node(*p.n, in);
}

// The message inference fails with, or "" when it does not fail.
std::string error_of(const std::vector<TensorInfo>& in, int64_t act2 = 0) {
  try {
    infer(in, act2);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Conv1x1PairInfer, OutputsY1AndY2) {
  const std::vector<TensorInfo> out = infer(operands());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape, (Dims{2, 5, 7, 16}));
  EXPECT_EQ(out[1].shape, (Dims{2, 5, 7, 4}));
  EXPECT_EQ(out[0].dtype, DataType::kHALF);
  EXPECT_EQ(out[1].dtype, DataType::kHALF);
}

TEST(Conv1x1PairInfer, OptionalInputsMayBeAbsentOrLeftOff) {
  std::vector<TensorInfo> in = operands();
  in[ir::kPairB1] = TensorInfo::absent();
  in[ir::kPairR1] = TensorInfo::absent();
  in[ir::kPairB2] = TensorInfo::absent();
  EXPECT_EQ(infer(in)[1].shape, (Dims{2, 5, 7, 4}));
  in.pop_back();  // b2 left off: five inputs
  EXPECT_EQ(infer(in)[1].shape, (Dims{2, 5, 7, 4}));
}

TEST(Conv1x1PairInfer, UnknownDimsPropagate) {
  std::vector<TensorInfo> in = operands();
  in[ir::kPairX] = t({-1, 5, -1, 8});
  in[ir::kPairR1] = t({-1, 5, -1, 16});
  std::vector<TensorInfo> out = infer(in);
  EXPECT_EQ(out[0].shape, (Dims{-1, 5, -1, 16}));
  EXPECT_EQ(out[1].shape, (Dims{-1, 5, -1, 4}));
  // C1 unknown in w1: w2 (and the residual) say it.
  in = operands();
  in[ir::kPairW1] = t({-1, 1, 1, 8});
  in[ir::kPairB1] = t({-1});
  out = infer(in);
  EXPECT_EQ(out[0].shape, (Dims{2, 5, 7, 16}));
}

TEST(Conv1x1PairInfer, NamesWhatDoesNotMatch) {
  struct Case {
    const char* what;
    size_t input;
    TensorInfo info;
    std::vector<std::string> says;  // substrings of the message
  };
  const std::vector<Case> cases = {
      {"C0 of w1", ir::kPairW1, t({16, 1, 1, 6}),
       {"w1's input channel count [16, 1, 1, 6] is 6", "C0 [2, 5, 7, 8] is 8"}},
      {"C1 of w2", ir::kPairW2, t({4, 1, 1, 12}),
       {"w2's input channel count [4, 1, 1, 12] is 12", "C1 [16, 1, 1, 8] is 16"}},
      {"b1 count", ir::kPairB1, t({12}), {"b1 (input 2)", "expected 16", "C1"}},
      {"b2 count", ir::kPairB2, t({16}), {"b2 (input 5)", "expected 4", "C2"}},
      {"r1 channels", ir::kPairR1, t({2, 5, 7, 12}), {"r1's channel count [2, 5, 7, 12] is 12", "16"}},
      {"r1 spatial", ir::kPairR1, t({2, 5, 6, 16}),
       {"r1 (input 3) has shape [2, 5, 6, 16]", "y1's shape [2, 5, 7, 16]"}},
      {"r1 rank", ir::kPairR1, t({2, 35, 16}), {"r1 (input 3) must be 4-D"}},
      {"3x3 weights", ir::kPairW2, t({4, 3, 3, 16}), {"w2 (input 4) must be 1x1 weights [C2, 1, 1, C1]"}},
      {"x rank", ir::kPairX, t({2, 35, 8}), {"x (input 0) must be 4-D [N, H, W, C0]"}},
      {"dtype", ir::kPairW2, t({4, 1, 1, 16}, DataType::kFLOAT), {"w2 (input 4) is float32, expected x's float16"}},
  };
  for (const Case& c : cases) {
    std::vector<TensorInfo> in = operands();
    in[c.input] = c.info;
    const std::string msg = error_of(in);
    ASSERT_FALSE(msg.empty()) << c.what << ": inference accepted it";
    EXPECT_NE(msg.find("layer 'pair' (Conv1x1Pair)"), std::string::npos) << msg;
    for (const std::string& s : c.says) EXPECT_NE(msg.find(s), std::string::npos) << c.what << ": " << msg;
  }
}

TEST(Conv1x1PairInfer, RefusesIntegersAMissingW2AndUnknownActivations) {
  std::vector<TensorInfo> in = operands();
  for (TensorInfo& i : in) i.dtype = DataType::kINT32;
  EXPECT_NE(error_of(in).find("x (input 0) is int32"), std::string::npos) << error_of(in);
  in = operands();
  in.resize(3);
  EXPECT_NE(error_of(in).find("w2 (input 4), the second convolution's weights, is missing"), std::string::npos)
      << error_of(in);
  EXPECT_NE(error_of(operands(), 42).find("unknown 'activation2' 42"), std::string::npos) << error_of(operands(), 42);
}

TEST(Conv1x1PairPart, IsAChannelsLast1x1ConvolutionConvolutionInferenceAccepts) {
  ir::Graph g;
  std::vector<ir::Value*> vals;
  const std::vector<TensorInfo> in = operands();
  for (size_t i = 0; i < in.size(); ++i)
    vals.push_back(g.add_input("in" + std::to_string(i), in[i].dtype, in[i].shape));
  ir::Node* pair = g.add_node("Conv1x1Pair", "pair(a, b)", vals, 2);
  pair->attrs.set("activation", int64_t{3});
  pair->attrs.set("act_alpha", 0.2);
  pair->attrs.set("activation2", int64_t{0});
  pair->attrs.set("first_name", "conv_a");
  pair->attrs.set("second_name", "conv_b");
  pair->attrs.set("first_fused", "add,leaky");
  pair->attrs.set("allow_tf32", int64_t{0});
  pair->precision = DataType::kHALF;
  pair->output_types[1] = DataType::kHALF;

  const ir::Node a = ir::conv1x1_pair_part(*pair, 0);
  const ir::Node b = ir::conv1x1_pair_part(*pair, 1);
  EXPECT_EQ(a.op, "Convolution");
  EXPECT_EQ(a.name, "conv_a");
  EXPECT_EQ(b.name, "conv_b");
  EXPECT_TRUE(a.inputs.empty() && a.outputs.empty()) << "attributes and name only";
  for (const ir::Node* n : {&a, &b}) {
    EXPECT_EQ(n->attrs.i("channels_last", 0), 1);
    EXPECT_EQ(n->attrs.ints("kernel"), (std::vector<int64_t>{1, 1}));
    EXPECT_EQ(n->attrs.ints("stride"), (std::vector<int64_t>{1, 1}));
    EXPECT_EQ(n->attrs.ints("dilation"), (std::vector<int64_t>{1, 1}));
    EXPECT_EQ(n->attrs.ints("pre_padding"), (std::vector<int64_t>{0, 0}));
    EXPECT_EQ(n->attrs.ints("post_padding"), (std::vector<int64_t>{0, 0}));
    EXPECT_EQ(n->attrs.i("groups", -1), 1);
    EXPECT_EQ(n->attrs.i("padding_mode", -1), 0);
    EXPECT_EQ(n->attrs.i("allow_tf32", -1), 0);
    EXPECT_EQ(n->precision, DataType::kHALF);
  }
  EXPECT_EQ(a.attrs.i("num_output_maps", -1), 16);
  EXPECT_EQ(b.attrs.i("num_output_maps", -1), 4);
  EXPECT_EQ(a.attrs.i("activation", -1), 3);
  EXPECT_DOUBLE_EQ(a.attrs.f("act_alpha", 0), 0.2);
  EXPECT_EQ(a.attrs.s("fused", ""), "add,leaky");
  EXPECT_EQ(b.attrs.i("activation", -1), 0);
  EXPECT_FALSE(b.attrs.has("act_alpha"));
  EXPECT_FALSE(b.attrs.has("fused"));
  ASSERT_EQ(a.output_types.size(), 1u);
  EXPECT_FALSE(a.output_types[0].has_value());
  EXPECT_EQ(b.output_types[0], DataType::kHALF);

  // Convolution's inference takes the halves' attributes with the pair's operands and gives y1 and y2.
  ir::Node a_in = a, b_in = b;
  a_in.inputs = {vals[0], vals[1], vals[2], vals[3]};
  a_in.outputs = {pair->outputs[0]};
  const std::vector<TensorInfo> y1 = ir::infer_node(a_in, {in[0], in[1], in[2], in[3]});
  EXPECT_EQ(y1[0].shape, (Dims{2, 5, 7, 16}));
  b_in.inputs = {pair->outputs[0], vals[4], vals[5]};
  b_in.outputs = {pair->outputs[1]};
  const std::vector<TensorInfo> y2 = ir::infer_node(b_in, {y1[0], in[4], in[5]});
  EXPECT_EQ(y2[0].shape, (Dims{2, 5, 7, 4}));

  // Without the original names: the pair's, marked.
  pair->attrs.erase("first_name");
  EXPECT_EQ(ir::conv1x1_pair_part(*pair, 0).name, "pair(a, b)/first");
  EXPECT_THROW(ir::conv1x1_pair_part(*pair, 2), Error);
}

}  // namespace kiln
