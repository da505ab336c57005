// FoldNormalizationCast: the float16/bfloat16 -> float32 Cast after a Normalization becomes the Normalization's
// output_dtype. Graph before/after on a lowered transformer tail (LowerPrecision writes the Cast), every
// refusal, idempotence, the attribute through a plan, and the pipeline (after LowerPrecision, before
// FusePointwise; on by default, off with KILN_FOLD_NORMALIZATION_CAST=0). The numbers are the kernels' tests': the CPU kernel's
// output_dtype is a Cast's bytes (backends/cpu/test_reduce_kernels.cpp), the GPU's float32 store is checked
// against the CPU in float32 (backends/cuda/test_cuda_reduce.cpp); the CPU kernels have no half-precision
// Normalization to run the folded graph here.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "builder/pipeline.h"
#include "passes/fold_normalization_cast.h"
#include "passes/fusion_test_util.h"
#include "passes/lower_precision.h"
#include "passes/pipeline_positions.h"
#include "passes/plan_round_trip.h"
#include "scoped_env.h"

using namespace kiln;
using Net = fusetest::Builder;
using fusetest::count_op;
using fusetest::pass_names;
using fusetest::pass_position;

namespace {

using testenv::ScopedEnv;

constexpr int64_t kWidth = 16;

// x -> LayerNorm over the last dim (named "ln") -> y.
ir::Value* layernorm(Net& b, ir::Value* x, const std::string& name = "ln") {
  ir::Node* n = b.node("Normalization", {x, b.rand_cst({kWidth}), b.rand_cst({kWidth})}, name);
  n->attrs.set("axes", std::vector<int64_t>{-1});
  n->attrs.set("epsilon", 1e-5);
  return n->outputs[0];
}

ir::Value* cast(Net& b, ir::Value* x, DataType to, const std::string& name = "") {
  ir::Node* n = b.node("Cast", {x}, name);
  n->attrs.set("to", static_cast<int64_t>(to));
  return n->outputs[0];
}

// A reshape-only Shuffle of x to `dims` (named `name`).
ir::Value* reshape(Net& b, ir::Value* x, const std::vector<int64_t>& dims, const std::string& name) {
  ir::Node* n = b.node("Shuffle", {x}, name);
  n->attrs.set("has_reshape", int64_t{1});
  n->attrs.set("reshape_dims", dims);
  return n->outputs[0];
}

ir::Value* unsqueeze(Net& b, ir::Value* x, int64_t axis, const std::string& name) {
  ir::Node* n = b.node("Unsqueeze", {x}, name);
  n->attrs.set("axes", std::vector<int64_t>{axis});
  return n->outputs[0];
}

ir::Value* transpose(Net& b, ir::Value* x, const std::vector<int64_t>& perm) {
  ir::Node* n = b.node("Shuffle", {x});
  n->attrs.set("first_transpose", perm);
  return n->outputs[0];
}

// Lowers every layer to `low` as a half-precision engine build does.
void lower(Net& b, DataType low = DataType::kHALF) {
  auto every_node = [](const ir::Node&, const std::vector<ir::TensorInfo>&) { return true; };
  passes::LowerPrecision pass(low, false, every_node);
  ASSERT_TRUE(pass.run(b.g));
  infer_graph_inplace(b.g);
}

// The pass leaves g as it was.
::testing::AssertionResult refused(ir::Graph& g) {
  passes::FoldNormalizationCast pass;
  return fusetest::not_rewritten_by(g, pass);
}

}  // namespace

TEST(FoldNormalizationCast, TheLoweredLastLayerNormStoresTheFloat32Output) {
  for (DataType low : {DataType::kHALF, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(low));
    Net b;
    ir::Value* x = b.input({2, 7, kWidth});
    b.output(layernorm(b, b.add(x, b.rand_cst({kWidth}))));
    b.infer();
    lower(b, low);
    // Before: the LayerNorm writes `low`, a Cast widens it for the float32 output.
    ASSERT_EQ(count_op(b.g, "Cast"), 2u) << b.g.to_string();  // the input's and the output's
    const ir::Node* out_cast = b.g.outputs()[0]->producer;
    ASSERT_EQ(out_cast->op, "Cast");
    const std::string cast_name = out_cast->name;
    passes::FoldNormalizationCast pass;
    ASSERT_TRUE(pass.run(b.g));
    EXPECT_FALSE(pass.run(b.g)) << "not idempotent";
    infer_graph_inplace(b.g);
    EXPECT_EQ(count_op(b.g, "Cast"), 1u) << "the input's stays";
    const ir::Node* ln = b.g.find_node("ln");
    ASSERT_NE(ln, nullptr);
    EXPECT_EQ(b.g.outputs()[0]->producer, ln);
    EXPECT_EQ(b.g.outputs()[0]->dtype, DataType::kFLOAT);
    EXPECT_EQ(ln->inputs[0]->dtype, low) << "it still reads half precision";
    EXPECT_EQ(ln->attrs.i("output_dtype", -1), static_cast<int64_t>(DataType::kFLOAT));
    EXPECT_EQ(ln->attrs.s("fused", ""), cast_name);
  }
}

TEST(FoldNormalizationCast, FoldsThroughViewsOfTheOutput) {
  // GPT-2's export reshapes ln_f's output to the network output's shape, so the Cast LowerPrecision writes
  // follows the reshape, not the LayerNorm. The views then move float32.
  struct Case {
    std::string what;
    std::vector<std::string> views;  // from the LayerNorm to the output
  };
  for (const Case& c : {Case{"a reshape", {"reshape"}}, Case{"an Unsqueeze", {"unsqueeze"}},
                        Case{"a reshape, then an Unsqueeze", {"reshape", "unsqueeze"}}}) {
    SCOPED_TRACE(c.what);
    Net b;
    ir::Value* v = layernorm(b, b.input({2, 7, kWidth}));
    for (const std::string& view : c.views)
      v = view == "reshape" ? reshape(b, v, {14, kWidth}, view) : unsqueeze(b, v, 0, view);
    b.output(v);
    b.infer();
    const Dims out_shape = b.g.outputs()[0]->shape;
    lower(b);
    ASSERT_EQ(b.g.outputs()[0]->producer->op, "Cast") << b.g.to_string();
    passes::FoldNormalizationCast pass;
    ASSERT_TRUE(pass.run(b.g));
    EXPECT_FALSE(pass.run(b.g)) << "not idempotent";
    infer_graph_inplace(b.g);
    EXPECT_EQ(count_op(b.g, "Cast"), 1u) << "the input's stays\n" << b.g.to_string();
    const ir::Node* ln = b.g.find_node("ln");
    ASSERT_NE(ln, nullptr);
    EXPECT_EQ(ln->attrs.i("output_dtype", -1), static_cast<int64_t>(DataType::kFLOAT));
    EXPECT_EQ(ln->inputs[0]->dtype, DataType::kHALF);
    EXPECT_EQ(ln->outputs[0]->dtype, DataType::kFLOAT);
    const ir::Node* last = b.g.outputs()[0]->producer;
    EXPECT_EQ(last->name, c.views.back()) << "the last view writes the network output";
    EXPECT_EQ(b.g.outputs()[0]->dtype, DataType::kFLOAT);
    EXPECT_EQ(b.g.outputs()[0]->shape, out_shape);
    for (const std::string& view : c.views)
      EXPECT_EQ(b.g.find_node(view)->outputs[0]->dtype, DataType::kFLOAT) << view;
  }
}

TEST(FoldNormalizationCast, WhatDoesNotFold) {
  {
    SCOPED_TRACE("float32 throughout: no Cast to take");
    Net b;
    b.output(layernorm(b, b.input({2, kWidth})));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("a narrowing Cast (float32 LayerNorm, then float16)");
    Net b;
    b.output(cast(b, layernorm(b, b.input({2, kWidth})), DataType::kHALF));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("float16 to bfloat16");
    Net b;
    b.output(cast(b, layernorm(b, b.input({2, kWidth}, DataType::kHALF)), DataType::kBF16));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("the LayerNorm's output has another reader");
    Net b;
    ir::Value* y = layernorm(b, b.input({2, kWidth}, DataType::kHALF));
    b.output(cast(b, y, DataType::kFLOAT));
    b.output(cast(b, b.act(y, 0), DataType::kFLOAT));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("the LayerNorm's output is a network output");
    Net b;
    ir::Value* y = layernorm(b, b.input({2, kWidth}, DataType::kHALF));
    b.output(y);
    b.output(cast(b, y, DataType::kFLOAT));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("the user set the LayerNorm's output type");
    Net b;
    ir::Value* y = layernorm(b, b.input({2, kWidth}, DataType::kHALF));
    y->producer->output_types = {DataType::kHALF};
    b.output(cast(b, y, DataType::kFLOAT));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("a view between whose output has another reader");
    Net b;
    ir::Value* r = reshape(b, layernorm(b, b.input({2, 7, kWidth}, DataType::kHALF)), {14, kWidth}, "r");
    b.output(cast(b, r, DataType::kFLOAT));
    b.output(b.act(r, 0));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("a transpose between (it moves the elements: not a view)");
    Net b;
    ir::Value* t = transpose(b, layernorm(b, b.input({2, 7, kWidth}, DataType::kHALF)), {0, 2, 1});
    b.output(cast(b, t, DataType::kFLOAT));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("the user set a view's output type");
    Net b;
    ir::Value* r = reshape(b, layernorm(b, b.input({2, 7, kWidth}, DataType::kHALF)), {14, kWidth}, "r");
    r->producer->output_types = {DataType::kHALF};
    b.output(cast(b, r, DataType::kFLOAT));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
  {
    SCOPED_TRACE("a Cast after something else");
    Net b;
    b.output(cast(b, b.act(b.input({2, kWidth}, DataType::kHALF), 0), DataType::kFLOAT));
    b.infer();
    EXPECT_TRUE(refused(b.g));
  }
}

TEST(FoldNormalizationCast, TheAttributeSurvivesAPlan) {
  Net b;
  ir::Value* x = b.input({2, 7, kWidth});
  x->name = "x";
  ir::Value* y = layernorm(b, x);
  b.output(y);
  b.infer();
  lower(b);
  passes::FoldNormalizationCast pass;
  ASSERT_TRUE(pass.run(b.g));
  infer_graph_inplace(b.g);
  b.g.outputs()[0]->name = "y";
  const EngineData e = fusetest::through_plan(b.g, {2, 7, kWidth});
  const ir::Node* ln = e.graph->find_node("ln");
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ(ln->attrs.i("output_dtype", -1), static_cast<int64_t>(DataType::kFLOAT));
  EXPECT_EQ(ln->outputs[0]->dtype, DataType::kFLOAT);
  EXPECT_EQ(count_op(*e.graph, "Cast"), 1u);
}

TEST(FoldNormalizationCastPipeline, OnByDefaultAfterLoweringBeforePointwiseFusionAndTheSwitchTurnsItOff) {
  GpuPipelineOptions fp16;
  fp16.fp16 = true;
  {
    ScopedEnv off("KILN_FOLD_NORMALIZATION_CAST", "0");
    EXPECT_EQ(pass_position(pass_names(gpu_pipeline(fp16)), "fold-normalization-cast"), -1);
  }
  {
    ScopedEnv unset("KILN_FOLD_NORMALIZATION_CAST", nullptr);
    const std::vector<std::string> gpu = pass_names(gpu_pipeline(fp16));
    const ptrdiff_t at = pass_position(gpu, "fold-normalization-cast");
    ASSERT_GE(at, 0);
    EXPECT_GT(at, pass_position(gpu, "lower-precision"));
    EXPECT_LT(at, pass_position(gpu, "fuse-pointwise"));
    EXPECT_EQ(pass_position(pass_names(gpu_pipeline(GpuPipelineOptions{})), "fold-normalization-cast"), -1)
        << "float32 engines write no such Cast";
    EXPECT_EQ(pass_position(pass_names(cpu_pipeline()), "fold-normalization-cast"), -1);
  }
}
