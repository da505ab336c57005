// FuseGatherAddend: an embedding Gather (rows along axis 0) and the SUM after it become one Gather with an
// addend (input 2). Graph before/after for each addend shape and operand order, the whole graph's outputs bit
// for bit before and after on random inputs (CPU backend), every refusal, the fused node through a plan, through
// LowerPrecision, and the pipelines (where the pass runs, and KILN_FUSE_GATHER_ADDEND=0).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "builder/pipeline.h"
#include "passes/fuse_gather_addend.h"
#include "passes/fusion_test_util.h"
#include "passes/lower_precision.h"
#include "passes/pipeline_positions.h"
#include "passes/plan_round_trip.h"
#include "scoped_env.h"

using namespace kiln;
using Net = fusetest::Builder;  // kiln::Builder is the TensorRT-style builder
using fusetest::count_layers;
using fusetest::count_op;
using fusetest::pass_names;
using fusetest::pass_position;

namespace {

using testenv::ScopedEnv;

constexpr int64_t kVocab = 50, kWidth = 16;

ir::Value* gather(Net& b, ir::Value* table, ir::Value* ids, const std::string& name, int64_t axis = 0) {
  ir::Node* n = b.node("Gather", {table, ids}, name);
  n->attrs.set("axis", axis);
  return n->outputs[0];
}

// Random inputs for g: integer inputs are indices in [-kVocab, kVocab) (negatives count from the end).
std::vector<HostTensor> inputs_for(const ir::Graph& g, const std::vector<Dims>& real_shapes = {}) {
  std::vector<HostTensor> r;
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const ir::Value* v = g.inputs()[i];
    const Dims shape = i < real_shapes.size() ? real_shapes[i] : v->shape;
    if (v->dtype == DataType::kINT64 || v->dtype == DataType::kINT32)
      r.push_back(mtest::rand_ints(shape, v->dtype, -kVocab, kVocab - 1));
    else
      r.push_back(mtest::rand_float(shape, v->dtype));
  }
  return r;
}

// Runs the pass as the builder does (until no change, at most 4 times), checks it fused, is then idempotent,
// that shape inference accepts the result, and that the outputs are the same bytes as before on `inputs`.
::testing::AssertionResult fuses_bit_identically(ir::Graph& g, const std::vector<HostTensor>& inputs) {
  std::unique_ptr<ir::Graph> before = g.clone();
  const std::vector<HostTensor> want = fusetest::eval_graph(*before, inputs);
  passes::FuseGatherAddend pass;
  bool any = false;
  for (int i = 0; i < 4 && pass.run(g); ++i) any = true;
  if (!any) return ::testing::AssertionFailure() << "nothing fused\n" << g.to_string();
  if (pass.run(g)) return ::testing::AssertionFailure() << "not idempotent\n" << g.to_string();
  try {
    infer_graph_inplace(g);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "shape inference fails after the pass: " << e.what() << "\n"
                                         << g.to_string();
  }
  const std::vector<HostTensor> got = fusetest::eval_graph(g, inputs);
  for (size_t i = 0; i < want.size(); ++i)
    if (!got.at(i).same_bytes(want[i]))
      return ::testing::AssertionFailure() << "output " << i << " differs\n" << g.to_string();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult fuses_bit_identically(ir::Graph& g) { return fuses_bit_identically(g, inputs_for(g)); }

// The pass leaves g as it was.
::testing::AssertionResult refused(ir::Graph& g) {
  passes::FuseGatherAddend pass;
  return fusetest::not_rewritten_by(g, pass);
}

// The Gathers of g that carry an addend.
std::vector<ir::Node*> fused_gathers(const ir::Graph& g) {
  std::vector<ir::Node*> r;
  for (auto& n : g.nodes())
    if (n->op == "Gather" && n->inputs.size() == 3) r.push_back(n.get());
  return r;
}

}  // namespace

TEST(FuseGatherAddend, TokenAndPositionEmbeddingBecomeOneGatherEitherOperandOrder) {
  for (bool gathered_first : {true, false}) {
    SCOPED_TRACE(gathered_first ? "gathered + position" : "position + gathered");
    Net b;
    ir::Value* ids = b.input({1, 7}, DataType::kINT64);
    ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), ids, "wte");
    ir::Value* pos = b.rand_cst({1, 7, kWidth});
    ir::Value* h = gathered_first ? b.add(y, pos, "pos_add") : b.add(pos, y, "pos_add");
    h->name = "h";
    b.output(h);
    b.infer();
    ASSERT_TRUE(fuses_bit_identically(b.g));
    EXPECT_EQ(count_layers(b.g), 1u);
    const ir::Node* g = b.g.find_node("wte");
    ASSERT_NE(g, nullptr);
    ASSERT_EQ(g->inputs.size(), 3u);
    EXPECT_EQ(g->inputs[1], ids);
    EXPECT_EQ(g->inputs[2], pos);
    EXPECT_EQ(g->attrs.s("fused", ""), "pos_add");
    EXPECT_EQ(b.g.outputs()[0], g->outputs[0]);
    EXPECT_EQ(b.g.outputs()[0]->name, "h");
  }
}

TEST(FuseGatherAddendPipeline, ReadersAnEarlierRewriteLeftDeadDoNotCountAsUses) {
  // GPT-2's export also reads the token embedding's Shape, for an attention mask; once attention is fused
  // nothing reads that Shape, but it still read the gathered rows when this pass ran (the fusion did not fire
  // on the H200's GPT-2, twentieth session). run_pipeline sweeps such layers after the rewrite that left them.
  Net b;
  ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), b.input({1, 7}, DataType::kINT64), "wte");
  b.output(b.add(y, b.rand_cst({1, 7, kWidth}), "pos_add"));
  b.infer();
  const std::vector<HostTensor> in = inputs_for(b.g);
  const std::vector<HostTensor> want = fusetest::eval_graph(b.g, in);
  std::vector<std::unique_ptr<passes::Pass>> pipeline;
  pipeline.push_back(std::make_unique<fusetest::LeavesADeadShape>(y));
  pipeline.push_back(std::make_unique<passes::FuseGatherAddend>());
  run_pipeline(b.g, pipeline, nullptr);
  EXPECT_EQ(count_layers(b.g), 1u) << b.g.to_string();
  EXPECT_EQ(b.g.find_node("dead_shape"), nullptr);
  EXPECT_EQ(fused_gathers(b.g).size(), 1u);
  EXPECT_TRUE(fusetest::eval_graph(b.g, in)[0].same_bytes(want[0]));
}

TEST(FuseGatherAddend, AddendsBroadcastAlongLeadingDims) {
  // Indices [3, 7]: the addend as the output [3, 7, E], one sequence's [1, 7, E] or [7, E], one row for all.
  for (Dims a : {Dims{3, 7, kWidth}, Dims{1, 7, kWidth}, Dims{7, kWidth}, Dims{1, 1, kWidth}, Dims{kWidth}})
    for (bool constant : {true, false}) {
      SCOPED_TRACE(dims_str(a) + (constant ? " constant" : " input"));
      Net b;
      ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), b.input({3, 7}, DataType::kINT64), "wte");
      ir::Value* addend = constant ? b.rand_cst(a) : b.input(a);
      b.output(b.act(b.add(addend, y), 0));  // the sum is no network output here
      b.infer();
      ASSERT_TRUE(fuses_bit_identically(b.g));
      EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
      ASSERT_EQ(fused_gathers(b.g).size(), 1u);
      EXPECT_EQ(fused_gathers(b.g)[0]->inputs[2], addend);
    }
}

TEST(FuseGatherAddend, RowsOfATableOfThreeDimsAndInt32Indices) {
  Net b;
  ir::Value* y = gather(b, b.rand_cst({kVocab, 3, 8}), b.input({2, 5}, DataType::kINT32), "emb", -3);
  b.output(b.add(y, b.rand_cst({5, 3, 8})));
  b.infer();
  ASSERT_TRUE(fuses_bit_identically(b.g));
  EXPECT_EQ(count_layers(b.g), 1u);
}

TEST(FuseGatherAddend, PositionTableGatheredTooOneOfTheTwoTakesTheOther) {
  for (bool wte_first : {true, false}) {
    Net b;
    ir::Value* tok = gather(b, b.rand_cst({kVocab, kWidth}), b.input({2, 7}, DataType::kINT64), "wte");
    ir::Value* pos = gather(b, b.rand_cst({kVocab, kWidth}), b.input({1, 7}, DataType::kINT64), "wpe");
    b.output(wte_first ? b.add(tok, pos) : b.add(pos, tok));
    b.infer();
    ASSERT_TRUE(fuses_bit_identically(b.g)) << wte_first;
    EXPECT_EQ(count_op(b.g, "Gather"), 2u);
    EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
    ASSERT_EQ(fused_gathers(b.g).size(), 1u);
    EXPECT_EQ(fused_gathers(b.g)[0]->name, "wte") << "the first Gather in node order takes the other";
    EXPECT_EQ(fused_gathers(b.g)[0]->inputs[2], pos);
  }
}

TEST(FuseGatherAddend, HalfPrecisionEmbeddings) {
  // The CPU has no float16/bfloat16 ElementWise to compare with (the kernel test checks those sums): the node.
  for (DataType dt : {DataType::kHALF, DataType::kBF16}) {
    Net b;
    ir::Value* y = gather(b, b.cst(mtest::rand_float({kVocab, kWidth}, dt)), b.input({1, 7}, DataType::kINT64), "wte");
    ir::Value* pos = b.cst(mtest::rand_float({1, 7, kWidth}, dt));
    b.output(b.add(y, pos));
    b.infer();
    passes::FuseGatherAddend pass;
    ASSERT_TRUE(pass.run(b.g)) << dtype_name(dt);
    infer_graph_inplace(b.g);
    ASSERT_EQ(fused_gathers(b.g).size(), 1u);
    EXPECT_EQ(b.g.outputs()[0]->dtype, dt);
  }
}

TEST(FuseGatherAddend, AnUnknownBatchFusesWhereTheShapesAreSure) {
  // Indices [-1, 7]; the output [-1, 7, E]. Evaluated at batch 3.
  auto build = [](Net& b, Dims addend, bool constant) {
    ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), b.input({-1, 7}, DataType::kINT64), "wte");
    b.output(b.add(y, constant ? b.rand_cst(addend) : b.input(addend)));
    b.infer();
  };
  {
    Net b;
    build(b, {1, 7, kWidth}, true);  // GPT-2 exported with a dynamic batch: the folded position embedding
    ASSERT_TRUE(fuses_bit_identically(b.g, inputs_for(b.g, {{3, 7}})));
  }
  {
    Net b;
    build(b, {-1, 7, kWidth}, false);  // the output's shape exactly, unknown batch included
    ASSERT_TRUE(fuses_bit_identically(b.g, inputs_for(b.g, {{3, 7}, {3, 7, kWidth}})));
  }
  {
    Net b;
    build(b, {-1, 1, kWidth}, false);  // broadcasts over a known sequence of 7: never the row path
    EXPECT_TRUE(refused(b.g));
  }
}

TEST(FuseGatherAddend, UnknownDimsFuseAndEveryRealShapeComputesTheSum) {
  // The fused output is the broadcast of the gathered rows and the addend whatever the unknown dims turn out
  // to be; where the real shapes miss the row rule the kernel adds by elements. Each graph is evaluated at
  // shapes of both kinds, against the unfused graph.
  struct Real {
    Dims ids, addend;
  };
  auto check = [](Dims ids, Dims addend, std::vector<Real> reals) {
    for (const Real& r : reals) {
      SCOPED_TRACE("ids " + dims_str(ids) + " = " + dims_str(r.ids) + ", addend " + dims_str(addend) + " = " +
                   dims_str(r.addend));
      Net b;
      ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), b.input(ids, DataType::kINT64), "wte");
      b.output(b.add(y, b.input(addend)));
      b.infer();
      ASSERT_TRUE(fuses_bit_identically(b.g, inputs_for(b.g, {r.ids, r.addend})));
      EXPECT_EQ(count_op(b.g, "ElementWise"), 0u);
    }
  };
  // GPT-2 with dynamic batch and sequence: the position embedding [1, S, E].
  check({-1, -1}, {1, -1, kWidth},
        {{{2, 5}, {1, 5, kWidth}},     // rows
         {{2, 1}, {1, 5, kWidth}},     // the sequence of the ids is 1: the gathered side broadcast
         {{1, 5}, {1, 1, kWidth}}});   // rows again (one addend row for all)
  // An addend of the output's shape, batch unknown: its batch may outgrow the ids' batch of 1.
  check({-1, 7}, {-1, 7, kWidth}, {{{3, 7}, {3, 7, kWidth}}, {{1, 7}, {3, 7, kWidth}}, {{3, 7}, {1, 7, kWidth}}});
}

TEST(FuseGatherAddend, WhatDoesNotFuse) {
  auto table = [](Net& b, DataType dt = DataType::kFLOAT) {
    return b.cst(mtest::rand_float({kVocab, kWidth}, dt));
  };
  {
    SCOPED_TRACE("the gathered value has another reader");
    Net b;
    ir::Value* y = gather(b, table(b), b.input({1, 7}, DataType::kINT64), "wte");
    b.output(b.add(y, b.rand_cst({1, 7, kWidth})));
    b.output(b.act(y, 0));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("the gathered value is a network output");
    Net b;
    ir::Value* y = gather(b, table(b), b.input({1, 7}, DataType::kINT64), "wte");
    b.output(y);
    b.output(b.add(y, b.rand_cst({1, 7, kWidth})));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("y + y");
    Net b;
    ir::Value* y = gather(b, table(b), b.input({1, 7}, DataType::kINT64), "wte");
    b.output(b.add(y, y));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  for (int64_t op : {1, 4}) {
    SCOPED_TRACE("not a SUM: ElementWise op " + std::to_string(op));
    Net b;
    ir::Value* y = gather(b, table(b), b.input({1, 7}, DataType::kINT64), "wte");
    b.output(b.ew(y, b.rand_cst({1, 7, kWidth}), op));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("a Gather along axis 1");
    Net b;
    ir::Value* y = gather(b, b.rand_cst({4, kVocab, kWidth}), b.input({7}, DataType::kINT64), "g", 1);
    b.output(b.add(y, b.rand_cst({4, 7, kWidth})));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("GatherElements");
    Net b;
    ir::Value* y = gather(b, table(b), b.input({3, kWidth}, DataType::kINT64), "g");
    y->producer->attrs.set("mode", int64_t{1});
    b.output(b.add(y, b.rand_cst({3, kWidth})));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  for (DataType dt : {DataType::kINT32, DataType::kDOUBLE}) {
    SCOPED_TRACE(std::string("a ") + dtype_name(dt) + " table");
    Net b;
    HostTensor t = mtest::rand_ints({kVocab, kWidth}, dt, -9, 9);
    ir::Value* y = gather(b, b.cst(t), b.input({1, 7}, DataType::kINT64), "wte");
    b.output(b.add(y, b.cst(mtest::rand_ints({1, 7, kWidth}, dt, -9, 9))));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  // Addends the kernels could never add as they copy rows (the element path is for shapes that turn out so at
  // run time): growing the output, broadcasting inside a row or after a dim that is not broadcast.
  for (Dims a : {Dims{2, 7, kWidth}, Dims{7, 1}, Dims{1}, Dims{3, 1, kWidth}}) {
    SCOPED_TRACE("addend " + dims_str(a));
    Net b;
    ir::Value* y = gather(b, table(b), b.input({a == Dims{3, 1, kWidth} ? 3 : 1, 7}, DataType::kINT64), "wte");
    b.output(b.add(y, b.rand_cst(a)));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("the user pinned the SUM's precision");
    Net b;
    ir::Value* y = gather(b, table(b), b.input({1, 7}, DataType::kINT64), "wte");
    ir::Value* s = b.add(y, b.rand_cst({1, 7, kWidth}));
    s->producer->precision = DataType::kFLOAT;
    b.output(s);
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
}

TEST(FuseGatherAddend, OneAddendPerGather) {
  // (gathered + a) + b: the first SUM is fused; the Gather, with an addend now, takes no second one.
  Net b;
  ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), b.input({1, 7}, DataType::kINT64), "wte");
  ir::Value* first = b.add(y, b.rand_cst({1, 7, kWidth}), "first");
  b.output(b.add(first, b.rand_cst({7, kWidth}), "second"));
  b.infer();
  ASSERT_TRUE(fuses_bit_identically(b.g));
  EXPECT_EQ(count_op(b.g, "ElementWise"), 1u);
  EXPECT_NE(b.g.find_node("second"), nullptr);
  EXPECT_EQ(b.g.find_node("wte")->attrs.s("fused", ""), "first");
}

TEST(FuseGatherAddend, SurvivesAPlan) {
  // The plan helper's graph reads one float32 input "x": here the position embedding, with the ids constant.
  Net b;
  ir::Value* x = b.input({1, 7, kWidth});
  x->name = "x";
  ir::Value* ids = b.cst(mtest::rand_ints({1, 7}, DataType::kINT64, -kVocab, kVocab - 1));
  ir::Value* y = gather(b, b.rand_cst({kVocab, kWidth}), ids, "wte");
  ir::Value* h = b.add(x, y, "pos_add");
  h->name = "y";
  b.output(h);
  b.infer();
  const std::vector<HostTensor> in = inputs_for(b.g);
  const HostTensor want = fusetest::eval_graph(b.g, in)[0];
  passes::FuseGatherAddend pass;
  ASSERT_TRUE(pass.run(b.g));
  EngineData r = fusetest::through_plan(b.g, {1, 7, kWidth});
  const ir::Node* g = r.graph->find_node("wte");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->inputs.size(), 3u);
  ASSERT_NE(g->inputs[2], nullptr);
  EXPECT_EQ(g->inputs[2]->name, "x");
  EXPECT_EQ(g->attrs.s("fused", ""), "pos_add");
  EXPECT_EQ(count_layers(*r.graph), 1u);
  const std::vector<HostTensor> got = fusetest::eval_graph(*r.graph, in);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].same_bytes(want));
}

TEST(FuseGatherAddend, LowerPrecisionConvertsTheAddendWithTheTable) {
  // A float16 build lowers the fused Gather as one layer: its table and addend constants become float16, and
  // the output is each float16 sum rounded once, then cast back to the network's float32.
  Net b;
  const HostTensor table = mtest::rand_float({kVocab, kWidth});
  const HostTensor pos = mtest::rand_float({1, 7, kWidth});
  const HostTensor ids = mtest::rand_ints({1, 7}, DataType::kINT64, -kVocab, kVocab - 1);
  ir::Value* y = gather(b, b.cst(table), b.input({1, 7}, DataType::kINT64), "wte");
  b.output(b.add(y, b.cst(pos)));
  b.infer();
  passes::FuseGatherAddend fuse;
  ASSERT_TRUE(fuse.run(b.g));
  auto every_node = [](const ir::Node&, const std::vector<ir::TensorInfo>&) { return true; };
  passes::LowerPrecision lower(DataType::kHALF, false, every_node);
  ASSERT_TRUE(lower.run(b.g));
  infer_graph_inplace(b.g);
  const ir::Node* g = b.g.find_node("wte");
  ASSERT_EQ(g->inputs.size(), 3u);
  EXPECT_EQ(g->inputs[0]->dtype, DataType::kHALF);
  EXPECT_EQ(g->inputs[2]->dtype, DataType::kHALF);
  EXPECT_EQ(g->inputs[2]->producer->op, "Constant") << "converted in place, no Cast";
  const HostTensor got = fusetest::eval_graph(b.g, {ids})[0];
  ASSERT_EQ(got.dtype(), DataType::kFLOAT);
  for (int64_t e = 0; e < got.numel(); ++e) {
    int64_t v = ids.get_i64(e / kWidth);
    if (v < 0) v += kVocab;
    const float t = half_to_float(float_to_half(table.data<float>()[v * kWidth + e % kWidth]));
    const float p = half_to_float(float_to_half(pos.data<float>()[e]));
    ASSERT_EQ(got.data<float>()[e], half_to_float(float_to_half(t + p))) << "element " << e;
  }
}

TEST(FuseGatherAddendPipeline, RunsAfterTheGemmEpilogueBeforeLoweringAndTheSwitchTurnsItOff) {
  GpuPipelineOptions fp16;
  fp16.fp16 = true;
  {
    ScopedEnv unset("KILN_FUSE_GATHER_ADDEND", nullptr);
    const std::vector<std::string> cpu = pass_names(cpu_pipeline()), gpu = pass_names(gpu_pipeline(fp16));
    ASSERT_GE(pass_position(cpu, "fuse-gather-addend"), 0);
    EXPECT_GT(pass_position(cpu, "fuse-gather-addend"), pass_position(cpu, "fuse-gemm-epilogue"));
    EXPECT_GT(pass_position(cpu, "fuse-gather-addend"), pass_position(cpu, "fold-shape-arithmetic"));
    const ptrdiff_t at = pass_position(gpu, "fuse-gather-addend");
    ASSERT_GE(at, 0);
    EXPECT_GT(at, pass_position(gpu, "fuse-gemm-epilogue"));
    EXPECT_LT(at, pass_position(gpu, "lower-precision"));
    EXPECT_LT(at, pass_position(gpu, "fuse-pointwise"));
  }
  {
    ScopedEnv off("KILN_FUSE_GATHER_ADDEND", "0");
    EXPECT_EQ(pass_position(pass_names(cpu_pipeline()), "fuse-gather-addend"), -1);
    EXPECT_EQ(pass_position(pass_names(gpu_pipeline(fp16)), "fuse-gather-addend"), -1);
  }
  {
    ScopedEnv on("KILN_FUSE_GATHER_ADDEND", "1");  // any other value keeps the default
    EXPECT_GE(pass_position(pass_names(cpu_pipeline()), "fuse-gather-addend"), 0);
  }
}

TEST(FuseGatherAddendPipeline, GptTwoStartOnTheCpuPipelineMatchesTheUnfusedOne) {
  // input_ids -> Gather(wte) + Gather(wpe, constant position ids): constant folding turns the second Gather into
  // the [1, S, E] position embedding, which the first then takes as its addend. With the switch off the two
  // layers stay; both engines give the same bytes.
  auto build = [](Net& b) {
    ir::Value* ids = b.input({1, 7}, DataType::kINT64);
    ir::Value* tok = gather(b, b.rand_cst({kVocab, kWidth}), ids, "wte");
    HostTensor positions(DataType::kINT64, {1, 7});
    for (int64_t i = 0; i < 7; ++i) positions.mutable_data<int64_t>()[i] = i;
    ir::Value* pos = gather(b, b.rand_cst({20, kWidth}), b.cst(positions), "wpe");
    b.output(b.add(tok, pos, "embed_add"));
    b.infer();
  };
  Net fused, apart;
  mtest::rng().seed(7);
  build(fused);
  mtest::rng().seed(7);
  build(apart);
  const std::vector<HostTensor> in = inputs_for(fused.g);
  {
    ScopedEnv unset("KILN_FUSE_GATHER_ADDEND", nullptr);
    run_pipeline(fused.g, cpu_pipeline(), nullptr);
  }
  {
    ScopedEnv off("KILN_FUSE_GATHER_ADDEND", "0");
    run_pipeline(apart.g, cpu_pipeline(), nullptr);
  }
  EXPECT_EQ(count_layers(fused.g), 1u) << fused.g.to_string();
  ASSERT_EQ(fused_gathers(fused.g).size(), 1u);
  EXPECT_EQ(fused_gathers(fused.g)[0]->inputs[2]->producer->op, "Constant");
  EXPECT_EQ(count_layers(apart.g), 2u) << apart.g.to_string();
  EXPECT_TRUE(fused_gathers(apart.g).empty());
  EXPECT_TRUE(fusetest::eval_graph(fused.g, in)[0].same_bytes(fusetest::eval_graph(apart.g, in)[0]));
}
