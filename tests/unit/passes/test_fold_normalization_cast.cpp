// FoldNormalizationCast: the float16/bfloat16 -> float32 Cast after a Normalization becomes the Normalization's
// output_dtype. Graph before/after on a lowered transformer tail (LowerPrecision writes the Cast), every
// refusal, idempotence, the attribute through a plan, and the pipeline (after LowerPrecision, before
// FusePointwise; on with KILN_FOLD_NORMALIZATION_CAST=1, off by default for now). The numbers are the kernels' tests': the CPU kernel's
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

TEST(FoldNormalizationCastPipeline, OffByDefaultOnWithTheSwitchAfterLoweringBeforePointwiseFusion) {
  GpuPipelineOptions fp16;
  fp16.fp16 = true;
  {
    ScopedEnv unset("KILN_FOLD_NORMALIZATION_CAST", nullptr);
    EXPECT_EQ(pass_position(pass_names(gpu_pipeline(fp16)), "fold-normalization-cast"), -1);
  }
  {
    ScopedEnv on("KILN_FOLD_NORMALIZATION_CAST", "1");
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
