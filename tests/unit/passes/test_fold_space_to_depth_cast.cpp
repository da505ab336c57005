// FoldSpaceToDepthCast: a float32 -> float16/bfloat16 Cast in front of SpaceToDepthNhwc (what LowerPrecision
// leaves in front of ResNet's rewritten stem) becomes the op's 'output_dtype'. Checked for the structure, for
// bit-identical outputs on the CPU backend (random values, and the values where rounding matters), through a
// plan, and left alone where the Cast must stay (another reader, a network output, another source dtype).
// Also the op's shape inference of 'output_dtype'.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

#include "fusion_test_util.h"
#include "passes/fold_space_to_depth_cast.h"
#include "plan_round_trip.h"

using namespace kiln;

namespace {

using Ints = std::vector<int64_t>;

struct Stem {
  Dims x{2, 3, 33, 31};
  DataType source = DataType::kFLOAT;  // x's dtype, the Cast's input
  DataType low = DataType::kHALF;      // the Cast's output, the op's input
  bool cast_read_twice = false;        // the Cast's output also feeds a second output "y2"
  bool cast_is_output = false;         // the Cast's output is a network output itself
};

ir::Node* add_cast(ir::Graph& g, const std::string& name, ir::Value* v, DataType to) {
  ir::Node* c = g.add_node("Cast", name, {v}, 1);
  c->attrs.set("to", static_cast<int64_t>(to));
  return c;
}

// x -> Cast "x__to_low" -> SpaceToDepthNhwc "s2d" (ResNet's stem geometry, the odd-size variant) -> Cast to
// float32 -> output "y", shapes inferred. The Cast back is exact, so equal float32 outputs mean equal bits.
void build(ir::Graph& g, const Stem& s) {
  ir::Value* x = g.add_input("x", s.source, s.x);
  ir::Value* low = add_cast(g, "x__to_low", x, s.low)->outputs[0];
  ir::Node* d = g.add_node("SpaceToDepthNhwc", "s2d", {low}, 1);
  d->attrs.set("block", int64_t{2});
  d->attrs.set("pre_padding", Ints{3, 3});
  d->attrs.set("post_padding", Ints{4, 4});
  d->attrs.set("out_channels", int64_t{16});
  ir::Value* y = add_cast(g, "to_float", d->outputs[0], DataType::kFLOAT)->outputs[0];
  y->name = "y";
  g.mark_output(y);
  if (s.cast_read_twice) {
    ir::Value* y2 = add_cast(g, "low_to_float", low, DataType::kFLOAT)->outputs[0];
    y2->name = "y2";
    g.mark_output(y2);
  }
  if (s.cast_is_output) g.mark_output(low);
  infer_graph_inplace(g);
}

// Evaluates g before and after the pass on `x`; the pass must fold, and the outputs must be equal bit for bit.
::testing::AssertionResult folds_bit_identically(ir::Graph& g, const HostTensor& x) {
  std::unique_ptr<ir::Graph> before = g.clone();
  passes::FoldSpaceToDepthCast pass;
  if (!pass.run(g)) return ::testing::AssertionFailure() << "nothing folded:\n" << g.to_string();
  if (pass.run(g)) return ::testing::AssertionFailure() << "not idempotent";
  infer_graph_inplace(g);
  const HostTensor want = fusetest::eval_graph(*before, {x})[0];
  const HostTensor got = fusetest::eval_graph(g, {x})[0];
  if (!got.same_bytes(want)) return ::testing::AssertionFailure() << "the outputs differ:\n" << g.to_string();
  return ::testing::AssertionSuccess();
}

void expect_folded(const ir::Graph& g, DataType low) {
  const ir::Node* d = g.find_node("s2d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->inputs[0]->name, "x") << "the op reads the float32 input itself";
  EXPECT_EQ(d->inputs[0]->dtype, DataType::kFLOAT);
  EXPECT_EQ(d->attrs.i("output_dtype", -1), static_cast<int64_t>(low));
  EXPECT_EQ(d->outputs[0]->dtype, low);
  EXPECT_EQ(g.find_node("x__to_low"), nullptr) << "the Cast is gone:\n" << g.to_string();
  EXPECT_EQ(fusetest::count_op(g, "Cast"), 1u) << "only the Cast back to float32";
}


}  // namespace

TEST(FoldSpaceToDepthCast, FoldsTheCastIntoTheOp) {
  for (DataType low : {DataType::kHALF, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(low));
    Stem s;
    s.low = low;
    ir::Graph g;
    build(g, s);
    ASSERT_TRUE(folds_bit_identically(g, mtest::rand_float(s.x, DataType::kFLOAT, 0.1, 2.0)));
    expect_folded(g, low);
    EXPECT_EQ(g.find_node("s2d")->outputs[0]->shape, (Dims{2, 20, 19, 16}));
  }
}

// The CPU kernel's conversion rounds as the CPU Cast kernel does, on the values where that matters.
TEST(FoldSpaceToDepthCast, BitIdenticalOnHardValues) {
  for (DataType low : {DataType::kHALF, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(low));
    Stem s;
    s.x = {1, 3, 41, 39};
    s.low = low;
    ir::Graph g;
    build(g, s);
    ASSERT_TRUE(folds_bit_identically(g, mtest::conversion_hard_values(s.x)));
  }
}

// The folded op survives a plan (the attribute, and shape inference giving the converted dtype).
TEST(FoldSpaceToDepthCast, SurvivesAPlan) {
  Stem s;
  ir::Graph g;
  build(g, s);
  const HostTensor x = mtest::rand_float(s.x, DataType::kFLOAT, 0.1, 2.0);
  const HostTensor want = fusetest::eval_graph(g, {x})[0];
  passes::FoldSpaceToDepthCast pass;
  ASSERT_TRUE(pass.run(g));
  EngineData r = fusetest::through_plan(g, s.x);
  const ir::Node* d = r.graph->find_node("s2d");
  ASSERT_NE(d, nullptr);
  expect_folded(*r.graph, DataType::kHALF);
  const std::vector<HostTensor> got = fusetest::eval_graph(*r.graph, {x});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].same_bytes(want));
}

TEST(FoldSpaceToDepthCast, KeepsACastThatMustStay) {
  std::vector<std::pair<std::string, Stem>> cases;
  Stem c;
  c.cast_read_twice = true;
  cases.emplace_back("the Cast has another reader", c);
  c = Stem{};
  c.cast_is_output = true;
  cases.emplace_back("the Cast is a network output", c);
  c = Stem{};
  c.source = DataType::kDOUBLE;
  cases.emplace_back("float64 -> float16", c);
  c = Stem{};
  c.source = DataType::kBF16;
  cases.emplace_back("bfloat16 -> float16", c);
  c = Stem{};
  c.low = DataType::kINT32;
  cases.emplace_back("float32 -> int32", c);
  for (const auto& [what, stem] : cases) {
    SCOPED_TRACE(what);
    ir::Graph g;
    build(g, stem);
    passes::FoldSpaceToDepthCast pass;
    EXPECT_TRUE(fusetest::unchanged_by(g, pass, 0));
    ASSERT_NE(g.find_node("x__to_low"), nullptr);
    EXPECT_EQ(g.find_node("s2d")->inputs[0], g.find_node("x__to_low")->outputs[0]);
    EXPECT_FALSE(g.find_node("s2d")->attrs.has("output_dtype"));
  }
}

// 'output_dtype': the input's own dtype, or float32 -> float16/bfloat16; anything else names both dtypes.
TEST(FoldSpaceToDepthCast, OutputDtypeInference) {
  auto infer = [](DataType in, std::optional<int64_t> out) {
    ir::Graph g;
    const Dims x{1, 3, 8, 8};
    ir::Node* n = g.add_node("SpaceToDepthNhwc", "s2d", {g.add_input("x", in, x)}, 1);
    n->attrs.set("block", int64_t{2});
    n->attrs.set("pre_padding", Ints{0, 0});
    n->attrs.set("post_padding", Ints{0, 0});
    n->attrs.set("out_channels", int64_t{16});
    if (out) n->attrs.set("output_dtype", *out);
    return ir::infer_node(*n, {ir::TensorInfo{true, in, x, nullptr}})[0].dtype;
  };
  auto as_int = [](DataType t) { return std::optional<int64_t>(static_cast<int64_t>(t)); };
  EXPECT_EQ(infer(DataType::kFLOAT, std::nullopt), DataType::kFLOAT);
  EXPECT_EQ(infer(DataType::kHALF, std::nullopt), DataType::kHALF);
  EXPECT_EQ(infer(DataType::kFLOAT, as_int(DataType::kHALF)), DataType::kHALF);
  EXPECT_EQ(infer(DataType::kFLOAT, as_int(DataType::kBF16)), DataType::kBF16);
  EXPECT_EQ(infer(DataType::kHALF, as_int(DataType::kHALF)), DataType::kHALF);
  EXPECT_EQ(infer(DataType::kINT64, as_int(DataType::kINT64)), DataType::kINT64);
  auto message = [&](DataType in, int64_t out) -> std::string {
    try {
      infer(in, out);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string widen = message(DataType::kHALF, static_cast<int64_t>(DataType::kFLOAT));
  EXPECT_NE(widen.find("float16"), std::string::npos) << widen;
  EXPECT_NE(widen.find("float32"), std::string::npos) << widen;
  EXPECT_NE(message(DataType::kFLOAT, static_cast<int64_t>(DataType::kINT8)).find("int8"), std::string::npos);
  EXPECT_NE(message(DataType::kFLOAT, static_cast<int64_t>(DataType::kDOUBLE)), "(no error)");
  EXPECT_NE(message(DataType::kBF16, static_cast<int64_t>(DataType::kHALF)), "(no error)");
  EXPECT_NE(message(DataType::kFLOAT, 999), "(no error)");
}
