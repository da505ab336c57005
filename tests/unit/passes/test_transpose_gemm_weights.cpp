// TransposeGemmWeights: a half-precision MatrixMultiply's own [K, N] constant weight becomes [N, K] with op_b
// TRANSPOSE (the values element by element, the fused epilogue untouched, the old constant gone, a second run
// finding nothing); what must stay as it is stays; the graph computes the same (CPU backend, on float32 twins:
// it has no float16/bfloat16 GEMM); and the GPU pipeline runs the pass in half-precision builds unless
// KILN_GEMM_WEIGHTS_NK=0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "builder/pipeline.h"
#include "passes/fusion_test_util.h"
#include "passes/pipeline_positions.h"
#include "passes/transpose_gemm_weights.h"
#include "scoped_env.h"

using namespace kiln;
using Net = fusetest::Builder;  // kiln::Builder is the TensorRT-style builder
using fusetest::count_op;

namespace {

using testenv::ScopedEnv;

// x @ W for a fresh constant W of `w_shape` and `dt` (x's dtype when unset; values in [-1, 1]).
ir::Node* gemm(Net& b, ir::Value* x, Dims w_shape, const std::string& name = "mm",
               std::optional<DataType> dt = std::nullopt) {
  ir::Value* w = b.cst(mtest::rand_float(std::move(w_shape), dt.value_or(x->dtype), -1.0, 1.0));
  return b.matmul(x, w, name)->producer;
}

// Relu of v as a graph output, so that v itself is no graph output.
void consume(Net& b, ir::Value* v) { b.output(b.act(v, 0)); }

// The raw elements of a float16/bfloat16 tensor.
const uint16_t* bits(const HostTensor& t) { return t.data<uint16_t>(); }

// Checks that w is t transposed, element by element ([K, N] -> [N, K]).
void expect_transpose_of(const HostTensor& w, const HostTensor& t) {
  ASSERT_EQ(t.shape().size(), 2u);
  const int64_t k = t.shape()[0], n = t.shape()[1];
  ASSERT_EQ(w.dtype(), t.dtype());
  ASSERT_EQ(w.shape(), (Dims{n, k}));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t r = 0; r < k; ++r) ASSERT_EQ(bits(w)[j * k + r], bits(t)[r * n + j]) << "row " << j << " col " << r;
}

// The pass leaves g as it was: no change reported, every MatrixMultiply reading the same weight as before.
void expect_left_alone(Net& b) {
  struct Seen {
    ir::Node* mm;
    ir::Value* w;
    ir::Attrs attrs;
  };
  std::vector<Seen> seen;
  for (auto& n : b.g.nodes())
    if (n->op == "MatrixMultiply") seen.push_back({n.get(), n->inputs[1], n->attrs});
  const size_t nodes = b.g.num_nodes();
  passes::TransposeGemmWeights p;
  EXPECT_FALSE(p.run(b.g)) << b.g.to_string();
  EXPECT_EQ(b.g.num_nodes(), nodes);
  for (const Seen& s : seen) {
    EXPECT_EQ(s.mm->inputs[1], s.w) << s.mm->name;
    EXPECT_TRUE(s.mm->attrs == s.attrs) << s.mm->name;
  }
}

// A copy of g with every float16/bfloat16 value and constant as float32 (exact: both widen without rounding):
// the CPU backend has no half-precision GEMM, so the twins of the graphs before and after the pass are compared.
std::unique_ptr<ir::Graph> float32_twin(const ir::Graph& g) {
  std::unique_ptr<ir::Graph> t = g.clone();
  auto half = [](DataType d) { return d == DataType::kHALF || d == DataType::kBF16; };
  for (auto& v : t->values())
    if (half(v->dtype)) v->dtype = DataType::kFLOAT;
  for (auto& n : t->nodes()) {
    if (n->op != "Constant" || !half(n->attrs.tensor("value").dtype())) continue;
    const HostTensor& h = n->attrs.tensor("value");
    HostTensor f(DataType::kFLOAT, h.shape());
    for (int64_t i = 0; i < h.numel(); ++i) mtest::set_elem(f, i, h.get_f64(i));
    n->attrs.set("value", std::move(f));
  }
  return t;
}

}  // namespace

TEST(TransposeGemmWeights, HalfWeightBecomesNkWithOpBTranspose) {
  for (DataType dt : {DataType::kHALF, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    Net b;
    ir::Value* x = b.input({2, 3, 8}, dt);
    ir::Node* mm = gemm(b, x, {8, 5}, "fc");
    const std::string old_name = mm->inputs[1]->producer->name;
    const HostTensor before = *ir::constant_value(mm->inputs[1]);
    consume(b, mm->outputs[0]);
    b.infer();
    passes::TransposeGemmWeights p;
    ASSERT_TRUE(p.run(b.g));
    EXPECT_FALSE(p.run(b.g)) << "op_b is TRANSPOSE now: nothing more to do";

    EXPECT_EQ(b.g.find_node("fc"), mm) << "the node itself stays";
    EXPECT_EQ(mm->inputs[0], x);
    EXPECT_EQ(mm->attrs.i("op_b", -1), 1);
    const ir::Node* w = mm->inputs[1]->producer;
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->op, "Constant");
    EXPECT_EQ(w->name, old_name + "/nk");
    EXPECT_EQ(b.g.find_node(old_name), nullptr) << "the [K, N] constant is removed";
    EXPECT_EQ(count_op(b.g, "Constant"), 1u);
    expect_transpose_of(*ir::constant_value(mm->inputs[1]), before);
    EXPECT_EQ(mm->inputs[1]->dtype, dt);
    EXPECT_EQ(mm->inputs[1]->shape, (Dims{5, 8}));
    infer_graph_inplace(b.g);
    EXPECT_EQ(mm->outputs[0]->shape, (Dims{2, 3, 5}));
    EXPECT_EQ(mm->outputs[0]->dtype, dt);
  }
}

TEST(TransposeGemmWeights, OddSizesAndTransposedA) {
  // More than one 32 x 32 tile each way, neither a multiple of it; A read transposed ([K, M]).
  Net b;
  ir::Value* x = b.input({70, 3}, DataType::kHALF);
  ir::Node* mm = gemm(b, x, {70, 37});
  mm->attrs.set("op_a", int64_t{1});
  const HostTensor before = *ir::constant_value(mm->inputs[1]);
  consume(b, mm->outputs[0]);
  b.infer();
  passes::TransposeGemmWeights p;
  ASSERT_TRUE(p.run(b.g));
  EXPECT_EQ(mm->attrs.i("op_a", -1), 1);
  EXPECT_EQ(mm->attrs.i("op_b", -1), 1);
  expect_transpose_of(*ir::constant_value(mm->inputs[1]), before);
  infer_graph_inplace(b.g);
  EXPECT_EQ(mm->outputs[0]->shape, (Dims{3, 37}));
}

TEST(TransposeGemmWeights, FusedBiasResidualAndActivationStay) {
  Net b;
  ir::Value* x = b.input({4, 8}, DataType::kHALF);
  ir::Value* res = b.input({4, 6}, DataType::kHALF);
  ir::Node* mm = gemm(b, x, {8, 6});
  ir::Value* bias = b.cst(mtest::rand_float({6}, DataType::kHALF));
  mm->inputs.push_back(bias);
  mm->inputs.push_back(res);
  mm->attrs.set("activation", int64_t{3});  // LEAKY_RELU, with its parameter
  mm->attrs.set("act_alpha", 0.25);
  mm->attrs.set("fused", std::string("bias_add,residual_add,leaky"));
  b.output(mm->outputs[0]);
  b.g.topo_sort();  // the bias constant came after the node
  b.infer();
  ir::Attrs want = mm->attrs;
  want.set("op_b", int64_t{1});
  passes::TransposeGemmWeights p;
  ASSERT_TRUE(p.run(b.g));
  ASSERT_EQ(mm->inputs.size(), 4u);
  EXPECT_EQ(mm->inputs[0], x);
  EXPECT_EQ(mm->inputs[2], bias);
  EXPECT_EQ(mm->inputs[3], res);
  EXPECT_TRUE(mm->attrs == want) << "only op_b changes";
  EXPECT_EQ(mm->inputs[1]->shape, (Dims{6, 8}));
  EXPECT_EQ(count_op(b.g, "Constant"), 2u) << "the new weight and the bias";
  EXPECT_NO_THROW(infer_graph_inplace(b.g));
}

TEST(TransposeGemmWeights, PinnedLayersAreTransposedToo) {
  // A user-set precision or output type constrains what the layer computes and writes, not how its weights
  // are stored.
  Net b;
  ir::Value* x = b.input({4, 8}, DataType::kHALF);
  ir::Node* mm = gemm(b, x, {8, 6});
  mm->precision = DataType::kHALF;
  mm->output_types = {DataType::kHALF};
  consume(b, mm->outputs[0]);
  b.infer();
  passes::TransposeGemmWeights p;
  ASSERT_TRUE(p.run(b.g));
  EXPECT_EQ(mm->attrs.i("op_b", -1), 1);
  EXPECT_EQ(mm->precision, DataType::kHALF);
}

TEST(TransposeGemmWeights, WhatStaysAsItIs) {
  {  // float32 weights
    Net b;
    consume(b, gemm(b, b.input({4, 8}), {8, 6})->outputs[0]);
    b.infer();
    passes::TransposeGemmWeights p;
    EXPECT_TRUE(fusetest::unchanged_by(b.g, p));
  }
  {  // already [N, K] with op_b TRANSPOSE (ONNX Gemm transB = 1)
    Net b;
    ir::Node* mm = gemm(b, b.input({4, 8}, DataType::kHALF), {6, 8});
    mm->attrs.set("op_b", int64_t{1});
    consume(b, mm->outputs[0]);
    b.infer();
    expect_left_alone(b);
    EXPECT_EQ(mm->attrs.i("op_b", -1), 1);
  }
  {  // one weight read by two GEMMs: transposing it for one would hold it twice
    Net b;
    ir::Value* x = b.input({4, 8}, DataType::kHALF);
    ir::Value* w = b.cst(mtest::rand_float({8, 6}, DataType::kHALF));
    consume(b, b.matmul(x, w, "q"));
    consume(b, b.matmul(b.input({2, 8}, DataType::kHALF), w, "k"));
    b.infer();
    expect_left_alone(b);
  }
  {  // B computed at run time
    Net b;
    consume(b, b.matmul(b.input({4, 8}, DataType::kHALF), b.input({8, 6}, DataType::kHALF)));
    b.infer();
    expect_left_alone(b);
  }
  {  // a 3-D (batched) constant B
    Net b;
    consume(b, gemm(b, b.input({2, 4, 8}, DataType::kHALF), {2, 8, 6})->outputs[0]);
    b.infer();
    expect_left_alone(b);
  }
  {  // the weight is a graph output too
    Net b;
    ir::Node* mm = gemm(b, b.input({4, 8}, DataType::kHALF), {8, 6});
    consume(b, mm->outputs[0]);
    b.output(mm->inputs[1]);
    b.infer();
    expect_left_alone(b);
  }
  {  // A read as a vector (op_a VECTOR)
    Net b;
    ir::Node* mm = gemm(b, b.input({8}, DataType::kHALF), {8, 6});
    mm->attrs.set("op_a", int64_t{2});
    consume(b, mm->outputs[0]);
    b.infer();
    expect_left_alone(b);
  }
}

TEST(TransposeGemmWeights, GraphComputesTheSame) {
  // Two GEMMs in a chain (the second with A transposed, a fused bias and an activation), one sharing its
  // weight with a third (left alone), and one on a float32 branch (left alone): the float32 twins of the graph
  // before and after give the same outputs on random inputs.
  for (DataType dt : {DataType::kHALF, DataType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    Net b;
    ir::Value* x = b.input({2, 3, 8}, dt);
    ir::Value* h = gemm(b, x, {8, 5}, "first")->outputs[0];  // [2, 3, 5]
    ir::Node* second = gemm(b, h, {3, 4}, "second", dt);    // op_a TRANSPOSE: [2, 5, 3] @ [3, 4]
    second->attrs.set("op_a", int64_t{1});
    second->inputs.push_back(b.cst(mtest::rand_float({4}, dt)));
    second->attrs.set("activation", int64_t{0});
    b.output(second->outputs[0]);
    ir::Value* shared = b.cst(mtest::rand_float({5, 2}, dt, -1.0, 1.0));
    b.output(b.matmul(h, shared, "shared_1"));
    b.output(b.matmul(h, shared, "shared_2"));
    b.output(gemm(b, b.input({3, 8}), {8, 7}, "float32")->outputs[0]);
    b.g.topo_sort();  // second's bias constant came after it
    b.infer();
    const std::unique_ptr<ir::Graph> before = float32_twin(b.g);

    passes::TransposeGemmWeights p;
    ASSERT_TRUE(p.run(b.g));
    EXPECT_FALSE(p.run(b.g));
    EXPECT_NO_THROW(infer_graph_inplace(b.g));
    for (const char* name : {"first", "second"}) EXPECT_EQ(b.g.find_node(name)->attrs.i("op_b", -1), 1) << name;
    for (const char* name : {"shared_1", "shared_2", "float32"})
      EXPECT_EQ(b.g.find_node(name)->attrs.i("op_b", 0), 0) << name;

    const std::unique_ptr<ir::Graph> after = float32_twin(b.g);
    EXPECT_NO_THROW(infer_graph_inplace(*after));
    const std::vector<HostTensor> inputs = fusetest::random_inputs(*before);
    const std::vector<HostTensor> want = fusetest::eval_graph(*before, inputs);
    const std::vector<HostTensor> got = fusetest::eval_graph(*after, inputs);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].shape(), want[i].shape()) << "output " << i;
      double maxref = 0;
      for (int64_t k = 0; k < want[i].numel(); ++k) maxref = std::max(maxref, std::fabs(want[i].get_f64(k)));
      EXPECT_TRUE(mtest::close(got[i], mtest::to_f64(want[i]), 0, 1e-5 * std::max(maxref, 1e-30))) << "output " << i;
    }
  }
}

namespace {

std::vector<std::string> pass_names(const GpuPipelineOptions& o) { return fusetest::pass_names(gpu_pipeline(o)); }

using fusetest::pass_position;

}  // namespace

TEST(TransposeGemmWeightsPipeline, RunsInHalfPrecisionBuildsAfterPrecisionLowering) {
  ScopedEnv unset("KILN_GEMM_WEIGHTS_NK", nullptr);
  for (bool bf16 : {false, true}) {
    GpuPipelineOptions o;
    (bf16 ? o.bf16 : o.fp16) = true;
    const std::vector<std::string> names = pass_names(o);
    const ptrdiff_t at = pass_position(names, "transpose-gemm-weights");
    ASSERT_GE(at, 0) << (bf16 ? "bf16" : "fp16");
    EXPECT_EQ(std::count(names.begin(), names.end(), "transpose-gemm-weights"), 1);
    EXPECT_GT(at, pass_position(names, "lower-precision")) << "dtypes must be final";
    EXPECT_GT(at, pass_position(names, "fold-space-to-depth-cast"));
    EXPECT_GT(at, pass_position(names, "fuse-gemm-epilogue"));
  }
  EXPECT_EQ(pass_position(pass_names(GpuPipelineOptions{}), "transpose-gemm-weights"), -1) << "float32 builds";
  for (auto& p : cpu_pipeline()) EXPECT_NE(p->name(), "transpose-gemm-weights");
}

TEST(TransposeGemmWeightsPipeline, SwitchKeepsTheOnnxLayout) {
  GpuPipelineOptions o;
  o.fp16 = true;
  {
    ScopedEnv off("KILN_GEMM_WEIGHTS_NK", "0");
    EXPECT_EQ(pass_position(pass_names(o), "transpose-gemm-weights"), -1);
  }
  {
    ScopedEnv on("KILN_GEMM_WEIGHTS_NK", "1");  // any other value keeps the default
    EXPECT_GE(pass_position(pass_names(o), "transpose-gemm-weights"), 0);
  }
}

TEST(TransposeGemmWeightsPipeline, WholePipelineKeepsOneCopyOfTheWeights) {
  // A float16 network (no lowering needed, so no GPU either): x @ W + b -> Relu. The GEMM epilogue takes the
  // bias and the activation, then the weight is stored [N, K]; the plan's constants are the same bytes as the
  // network's. With KILN_GEMM_WEIGHTS_NK=0 the weight keeps its [K, N] layout.
  for (const char* nk : {static_cast<const char*>(nullptr), "0"}) {
    SCOPED_TRACE(nk ? nk : "(unset)");
    ScopedEnv e("KILN_GEMM_WEIGHTS_NK", nk);
    Net b;
    ir::Value* x = b.input({4, 8}, DataType::kHALF);
    ir::Node* mm = gemm(b, x, {8, 16}, "fc");
    const HostTensor w = *ir::constant_value(mm->inputs[1]);
    ir::Value* y = b.add(mm->outputs[0], b.cst(mtest::rand_float({16}, DataType::kHALF)), "bias_add");
    b.output(b.act(y, 0, "relu"));
    b.infer();
    auto constant_bytes = [](const ir::Graph& g) {
      size_t s = 0;
      for (auto& n : g.nodes())
        if (n->op == "Constant") s += n->attrs.tensor("value").nbytes();
      return s;
    };
    const size_t bytes = constant_bytes(b.g);
    GpuPipelineOptions o;
    o.fp16 = true;
    run_pipeline(b.g, gpu_pipeline(o), nullptr);
    ASSERT_EQ(count_op(b.g, "MatrixMultiply"), 1u) << b.g.to_string();
    ir::Node* fused = nullptr;
    for (auto& n : b.g.nodes())
      if (n->op == "MatrixMultiply") fused = n.get();
    EXPECT_EQ(fused->inputs.size(), 3u) << "the bias is fused";
    EXPECT_EQ(fused->attrs.i("activation", -1), 0);
    EXPECT_EQ(constant_bytes(b.g), bytes) << b.g.to_string();
    if (nk) {
      EXPECT_EQ(fused->attrs.i("op_b", 0), 0);
      EXPECT_EQ(fused->inputs[1]->shape, (Dims{8, 16}));
    } else {
      EXPECT_EQ(fused->attrs.i("op_b", -1), 1);
      expect_transpose_of(*ir::constant_value(fused->inputs[1]), w);
    }
  }
}
