// FuseAttention: the attention patterns of HF BERT / GPT-2 and torchvision ViT exports (as the ONNX importer
// writes them in the IR) become one FusedAttention node, and the whole graph computes the same on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <unordered_map>

#include "backends/cpu/eval.h"
#include "passes/fuse_attention.h"
#include "runtime/shape_analysis.h"

using namespace kiln;

namespace {

constexpr int64_t kSum = 0, kProd = 1, kDiv = 5;

struct Builder {
  ir::Graph g;
  int n = 0;
  std::string name(const char* base) { return std::string(base) + std::to_string(n++); }
  ir::Value* input(const std::string& nm, Dims shape) { return g.add_input(nm, DataType::kFLOAT, std::move(shape)); }
  ir::Value* scalar(float v) { return g.add_constant(name("c"), HostTensor::from_f32({v}, {}))->outputs[0]; }
  ir::Value* mm(ir::Value* a, ir::Value* b, int64_t op_b = 0) {
    ir::Node* m = g.add_node("MatrixMultiply", name("mm"), {a, b}, 1);
    m->attrs.set("op_a", int64_t{0});
    m->attrs.set("op_b", op_b);
    return m->outputs[0];
  }
  ir::Value* ew(ir::Value* a, ir::Value* b, int64_t op) {
    ir::Node* e = g.add_node("ElementWise", name("ew"), {a, b}, 1);
    e->attrs.set("op", op);
    return e->outputs[0];
  }
  ir::Value* softmax(ir::Value* x, int64_t axis) {
    ir::Node* s = g.add_node("SoftMax", name("softmax"), {x}, 1);
    s->attrs.set("axis", axis);
    s->attrs.set("log", int64_t{0});
    return s->outputs[0];
  }
  ir::Value* transpose(ir::Value* x, std::vector<int64_t> perm) {
    ir::Node* t = g.add_node("Shuffle", name("transpose"), {x}, 1);
    t->attrs.set("first_transpose", std::move(perm));
    t->attrs.set("has_reshape", int64_t{0});
    return t->outputs[0];
  }
  ir::Value* select(ir::Value* c, ir::Value* a, ir::Value* b) { return g.add_node("Select", name("where"), {c, a, b}, 1)->outputs[0]; }
  ir::Value* reshape(ir::Value* x, std::vector<int64_t> dims) {
    ir::Node* r = g.add_node("Shuffle", name("reshape"), {x}, 1);
    r->attrs.set("has_reshape", int64_t{1});
    r->attrs.set("reshape_dims", std::move(dims));
    r->attrs.set("zero_is_placeholder", int64_t{0});
    return r->outputs[0];
  }
  // x[i] along axis 0, as the ONNX importer writes Gather with a scalar index.
  ir::Value* gather0(ir::Value* x, int64_t i) {
    auto* idx = g.add_constant(name("index"), HostTensor::scalar_i64(i))->outputs[0];
    ir::Node* n = g.add_node("Gather", name("gather"), {x, idx}, 1);
    n->attrs.set("axis", int64_t{0});
    n->attrs.set("mode", int64_t{0});
    n->attrs.set("num_elementwise_dims", int64_t{0});
    return n->outputs[0];
  }
  void output(ir::Value* v) {
    g.mark_output(v);
    infer_graph_inplace(g);
  }
};

HostTensor random(const Dims& shape, uint32_t seed, float lo = -1.5f, float hi = 1.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  HostTensor t(DataType::kFLOAT, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

struct Qkv {
  ir::Value *q, *k, *v;
};

// Network inputs q, k and v, all of one shape.
Qkv qkv_inputs(Builder& b, const Dims& shape) { return {b.input("q", shape), b.input("k", shape), b.input("v", shape)}; }

// Random values for q, k and v of one shape (seeds 1, 2, 3), and any further inputs.
std::map<std::string, HostTensor> qkv_feeds(const Dims& shape, std::map<std::string, HostTensor> more = {}) {
  more.emplace("q", random(shape, 1));
  more.emplace("k", random(shape, 2));
  more.emplace("v", random(shape, 3));
  return more;
}

// Runs the graph node by node with the CPU kernels.
std::vector<HostTensor> eval_graph(ir::Graph& g, const std::map<std::string, HostTensor>& inputs) {
  g.topo_sort();
  std::unordered_map<const ir::Value*, HostTensor> vals;
  for (auto* in : g.inputs()) vals[in] = inputs.at(in->name);
  for (auto& n : g.nodes()) {
    std::vector<const HostTensor*> ins;
    for (auto* v : n->inputs) ins.push_back(v ? &vals.at(v) : nullptr);
    std::vector<HostTensor> outs = cpu::eval_node(*n, ins);
    for (size_t i = 0; i < outs.size(); ++i) vals[n->outputs[i]] = outs[i];
  }
  std::vector<HostTensor> res;
  for (auto* o : g.outputs()) res.push_back(vals.at(o));
  return res;
}

int count_op(const ir::Graph& g, const std::string& op) {
  int c = 0;
  for (auto& n : g.nodes()) c += n->op == op;
  return c;
}

const ir::Node* find_op(const ir::Graph& g, const std::string& op) {
  for (auto& n : g.nodes())
    if (n->op == op) return n.get();
  return nullptr;
}

// Runs the pass; expects `fused` FusedAttention nodes, the same outputs (names and values) as before, and
// idempotence. Returns the first fused node (nullptr when none).
const ir::Node* fuse_and_compare(Builder& b, const std::map<std::string, HostTensor>& inputs, int fused, double tol = 2e-5) {
  const std::vector<HostTensor> before = eval_graph(b.g, inputs);
  std::vector<std::string> names;
  for (auto* o : b.g.outputs()) names.push_back(o->name);
  passes::FuseAttention p;
  EXPECT_EQ(p.run(b.g), fused > 0);
  EXPECT_FALSE(p.run(b.g)) << "idempotent";
  EXPECT_EQ(count_op(b.g, "FusedAttention"), fused);
  if (fused) {
    EXPECT_EQ(count_op(b.g, "SoftMax"), 0);
    EXPECT_EQ(count_op(b.g, "MatrixMultiply"), 0);
  }
  infer_graph_inplace(b.g);  // still a valid graph
  const std::vector<HostTensor> after = eval_graph(b.g, inputs);
  EXPECT_EQ(after.size(), before.size());
  for (size_t i = 0; i < b.g.outputs().size(); ++i) EXPECT_EQ(b.g.outputs()[i]->name, names[i]);
  for (size_t o = 0; o < std::min(after.size(), before.size()); ++o) {
    EXPECT_EQ(after[o].shape(), before[o].shape());
    if (after[o].shape() != before[o].shape()) continue;
    double maxref = 0, maxerr = 0;
    for (int64_t i = 0; i < before[o].numel(); ++i) {
      maxref = std::max(maxref, std::fabs(before[o].get_f64(i)));
      maxerr = std::max(maxerr, std::fabs(before[o].get_f64(i) - after[o].get_f64(i)));
    }
    EXPECT_LE(maxerr, tol * std::max(maxref, 1.0)) << "output " << o;
  }
  return find_op(b.g, "FusedAttention");
}

}  // namespace

// HF BertSelfAttention: MatMul(q, Transpose(k)) / sqrt(d) + extended mask [B, 1, 1, S] -> Softmax -> MatMul v.
TEST(FuseAttention, BertPattern) {
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {2, 4, 16, 8});
  auto* mask = b.input("mask", {2, 1, 1, 16});
  auto* s = b.ew(b.mm(q, b.transpose(k, {0, 1, 3, 2})), b.scalar(std::sqrt(8.0f)), kDiv);
  auto* y = b.mm(b.softmax(b.ew(s, mask, kSum), 3), v);
  y->name = "y";
  b.output(y);
  HostTensor m = random({2, 1, 1, 16}, 4);
  for (int j = 10; j < 16; ++j) m.mutable_data<float>()[16 + j] = std::numeric_limits<float>::lowest();  // padding
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds({2, 4, 16, 8}, {{"mask", m}}), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[0], q);
  EXPECT_EQ(fa->inputs[1], k) << "the transpose of k is looked through";
  EXPECT_EQ(fa->inputs[2], v);
  ASSERT_EQ(fa->inputs.size(), 4u);
  EXPECT_EQ(fa->inputs[3], mask);
  EXPECT_EQ(fa->attrs.i("k_transposed", -1), 0);
  EXPECT_EQ(fa->attrs.i("causal", -1), 0);
  EXPECT_NEAR(fa->attrs.f("scale", 0), 1.0 / std::sqrt(8.0), 1e-7);
  EXPECT_EQ(b.g.num_nodes() - count_op(b.g, "Constant"), 1u) << b.g.to_string();
}

// HF GPT2Attention: MatMul(q, kT) / sqrt(d) -> Where(causal bias slice, w, finfo.min) [+ mask] -> Softmax -> @ v.
// The [1, 1, S, S] lower triangle (key j visible from query i when j <= i) causal masks are built from.
HostTensor causal_triangle(int64_t S) {
  HostTensor tri(DataType::kBOOL, {1, 1, S, S});
  for (int64_t i = 0; i < S; ++i)
    for (int64_t j = 0; j < S; ++j) tri.mutable_data<uint8_t>()[i * S + j] = j <= i;
  return tri;
}

ir::Value* gpt2_scores(Builder& b, ir::Value* q, ir::Value* k, int64_t S) {
  auto* cond = b.g.add_constant("bias", causal_triangle(S))->outputs[0];
  auto* s = b.ew(b.mm(q, b.transpose(k, {0, 1, 3, 2})), b.scalar(4.0f), kDiv);
  return b.select(cond, s, b.scalar(std::numeric_limits<float>::lowest()));
}

TEST(FuseAttention, Gpt2CausalWhereAloneBecomesCausalAttr) {
  const int64_t S = 12, D = 16;
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {1, 2, S, D});
  auto* y = b.mm(b.softmax(gpt2_scores(b, q, k, S), -1), v);
  b.output(y);
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds({1, 2, S, D}), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attrs.i("causal", -1), 1);
  EXPECT_EQ(fa->inputs.size(), 3u);
  EXPECT_NEAR(fa->attrs.f("scale", 0), 0.25, 1e-12);
}

// With a padding mask as well, rows whose visible keys are all padding spread over every key unfused (all
// scores are finfo.min): the causal Where stays an additive term so the fused graph gives the same.
TEST(FuseAttention, Gpt2CausalWhereWithPaddingMaskStaysExact) {
  const int64_t S = 12, D = 16;
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {2, 2, S, D});
  auto* mask = b.input("mask", {2, 1, 1, S});
  auto* y = b.mm(b.softmax(b.ew(gpt2_scores(b, q, k, S), mask, kSum), -1), v);
  b.output(y);
  HostTensor m(DataType::kFLOAT, {2, 1, 1, S});
  for (int j = 0; j < 3; ++j) m.mutable_data<float>()[S + j] = std::numeric_limits<float>::lowest();  // left padding
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds({2, 2, S, D}, {{"mask", m}}), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attrs.i("causal", -1), 0);
  ASSERT_EQ(fa->inputs.size(), 4u);
  EXPECT_EQ(fa->inputs[3]->producer->op, "ElementWise");
}

// Newer transformers add their masks: scores + Where(Expand(tril, [B, 1, S, S]), 0, finfo.min), and, with no
// padding mask given, + Where(Expand(all true, [B, 1, S, S]), 0, finfo.min). The zero term goes, the causal
// one becomes the attribute: the fused node reads no mask and nothing builds the [B, 1, S, S] tensors.
TEST(FuseAttention, AdditiveCausalAndZeroMasksBecomeCausalAttr) {
  const int64_t S = 12, D = 16;
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {2, 2, S, D});
  auto* shape = b.g.add_input("shape", DataType::kINT64, {4});  // [B, 1, S, S] at run time
  const HostTensor tri = causal_triangle(S);
  HostTensor all(DataType::kBOOL, {1, 1, S, 1});
  for (int64_t i = 0; i < S; ++i) all.mutable_data<uint8_t>()[i] = 1;
  auto expanded = [&](const HostTensor& c, const std::string& name) {
    ir::Node* e = b.g.add_node("Expand", name, {b.g.add_constant(name + "_c", c)->outputs[0], shape}, 1);
    return e->outputs[0];
  };
  const float fill = std::numeric_limits<float>::lowest();
  auto* causal = b.select(expanded(tri, "causal"), b.scalar(0.f), b.scalar(fill));
  auto* none = b.select(expanded(all, "none"), b.scalar(0.f), b.scalar(fill));
  auto* s = b.ew(b.mm(q, b.transpose(k, {0, 1, 3, 2})), b.scalar(4.0f), kDiv);
  auto* y = b.mm(b.softmax(b.ew(b.ew(s, causal, kSum), none, kSum), -1), v);
  b.output(y);
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds({2, 2, S, D}, {{"shape", HostTensor::from_i64({2, 1, S, S})}}), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attrs.i("causal", -1), 1);
  EXPECT_EQ(fa->inputs.size(), 3u);
}

// A Where whose condition is not causal (or not constant) stays a mask: Select(cond, 0, fill) added to the rest.
TEST(FuseAttention, OtherWhereBecomesAdditiveMask) {
  const int64_t S = 9, D = 8;
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {2, 2, S, D});
  auto* cond = b.g.add_input("keep", DataType::kBOOL, {2, 1, S, S});
  auto* mask = b.input("mask", {2, 1, 1, S});
  auto* s = b.mm(q, k, 1);  // op_b TRANSPOSE
  s = b.select(cond, s, b.scalar(-1e9f));
  auto* y = b.mm(b.softmax(b.ew(mask, s, kSum), 3), v);  // mask on the left
  b.output(y);
  HostTensor keep(DataType::kBOOL, {2, 1, S, S});
  std::mt19937 rng(7);
  for (int64_t i = 0; i < keep.numel(); ++i) keep.mutable_data<uint8_t>()[i] = (i % S == 0) || (rng() % 3 != 0);
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds({2, 2, S, D}, {{"keep", keep}, {"mask", random({2, 1, 1, S}, 4)}}), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attrs.i("causal", -1), 0);
  EXPECT_EQ(fa->attrs.f("scale", 0), 1.0);
  ASSERT_EQ(fa->inputs.size(), 4u);
  EXPECT_EQ(fa->inputs[3]->producer->op, "ElementWise");
}

// torchvision ViT (nn.MultiheadAttention at opset 17): 3-D [B*H, S, D], q / sqrt(d) before the MatMul, k^T a
// Transpose(perm [1, 2, 0]) of [S, B*H, D] (read tokens-major: the Transpose goes), no mask.
TEST(FuseAttention, VitPattern) {
  const int64_t S = 10, BH = 6, D = 8;
  Builder b;
  auto* q = b.input("q", {BH, S, D});
  auto* kr = b.input("kr", {S, BH, D});
  auto* v = b.input("v", {BH, S, D});
  auto* qs = b.ew(q, b.scalar(std::sqrt(8.0f)), kDiv);
  auto* kt = b.transpose(kr, {1, 2, 0});
  auto* y = b.mm(b.softmax(b.mm(qs, kt), -1), v);
  b.output(y);
  const ir::Node* fa = fuse_and_compare(b, {{"q", random({BH, S, D}, 1)}, {"kr", random({S, BH, D}, 2)}, {"v", random({BH, S, D}, 3)}}, 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[0], q) << "the pre-scale of q is folded into the scale";
  EXPECT_EQ(fa->inputs[1], kr) << "K^T = Transpose[1, 2, 0]([S, B*H, D]) is read tokens-major";
  EXPECT_EQ(fa->inputs.size(), 3u);
  EXPECT_EQ(fa->attrs.i("k_transposed", -1), 0);
  EXPECT_EQ(fa->attrs.i("k_layout", 0), 1);
  EXPECT_EQ(fa->attrs.i("q_layout", 0), 0);
  EXPECT_NEAR(fa->attrs.f("scale", 0), 1.0 / std::sqrt(8.0), 1e-7);
  EXPECT_EQ(count_op(b.g, "Shuffle"), 0);
}

// scaled_dot_product_attention's export: q * sqrt(scale) @ (k^T * sqrt(scale)), a float mask, softmax, @ v.
TEST(FuseAttention, SdpaBothOperandsPreScaled) {
  const int64_t S = 7, D = 4;
  Builder b;
  auto* q = b.input("q", {1, 3, S, D});
  auto* k = b.input("k", {1, 3, S, D});
  auto* v = b.input("v", {1, 3, S, 5});
  auto* mask = b.input("mask", {S, S});
  const float r = std::sqrt(std::sqrt(1.0f / D));
  auto* kt = b.ew(b.transpose(k, {0, 1, 3, 2}), b.scalar(r), kProd);
  auto* s = b.mm(b.ew(b.scalar(r), q, kProd), kt);
  auto* y = b.mm(b.softmax(b.ew(s, mask, kSum), 3), v);
  b.output(y);
  const ir::Node* fa = fuse_and_compare(b, {{"q", random({1, 3, S, D}, 1)}, {"k", random({1, 3, S, D}, 2)},
                                            {"v", random({1, 3, S, 5}, 3)}, {"mask", random({S, S}, 4)}}, 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[0], q);
  EXPECT_EQ(fa->inputs[1], k);
  EXPECT_EQ(fa->attrs.i("k_transposed", -1), 0);
  EXPECT_NEAR(fa->attrs.f("scale", 0), double(r) * double(r), 1e-7);
}

// Two stacked attention blocks: both fuse.
TEST(FuseAttention, FusesEveryBlock) {
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {1, 2, 6, 4});
  auto* y1 = b.mm(b.softmax(b.ew(b.mm(q, k, 1), b.scalar(0.5f), kProd), 3), v);
  auto* y2 = b.mm(b.softmax(b.ew(b.mm(y1, k, 1), b.scalar(0.5f), kProd), 3), y1);
  b.output(y2);
  fuse_and_compare(b, qkv_feeds({1, 2, 6, 4}), 2);
}

TEST(FuseAttention, LeavesNonMatchingGraphsAlone) {
  const Dims sh = {1, 2, 6, 4};
  std::map<std::string, HostTensor> in = qkv_feeds(sh);
  {  // the scores are also a network output
    Builder b;
    auto* s = b.mm(b.input("q", sh), b.input("k", sh), 1);
    auto* y = b.mm(b.softmax(s, 3), b.input("v", sh));
    b.g.mark_output(s);
    b.output(y);
    fuse_and_compare(b, in, 0);
  }
  {  // softmax over the query axis
    Builder b;
    auto* y = b.mm(b.softmax(b.mm(b.input("q", sh), b.input("k", sh), 1), 2), b.input("v", sh));
    b.output(y);
    fuse_and_compare(b, in, 0);
  }
  {  // the scale applies after the mask: softmax((s + m) * c) is not scale * s + mask
    Builder b;
    auto* s = b.ew(b.mm(b.input("q", sh), b.input("k", sh), 1), b.input("m", {1, 1, 1, 6}), kSum);
    auto* y = b.mm(b.softmax(b.ew(s, b.scalar(0.5f), kProd), 3), b.input("v", sh));
    b.output(y);
    auto in2 = in;
    in2["m"] = random({1, 1, 1, 6}, 5);
    fuse_and_compare(b, in2, 0);
  }
  {  // a mask that grows the scores
    Builder b;
    const Dims small = {1, 1, 6, 4};
    auto* s = b.ew(b.mm(b.input("q", small), b.input("k", small), 1), b.input("m", {1, 2, 6, 6}), kSum);
    auto* y = b.mm(b.softmax(s, 3), b.input("v", small));
    b.output(y);
    fuse_and_compare(b, qkv_feeds(small, {{"m", random({1, 2, 6, 6}, 4)}}), 0);
  }
}

// ---- Head transposes absorbed into the layouts (ir/ops/fused_attention_format.h) ----

namespace {

int64_t layout_of(const ir::Node* fa, const char* attr) { return fa->attrs.i(attr, 0); }

// Transposes left in the graph (Shuffles with a first_transpose; the Reshapes are views).
int count_transposes(const ir::Graph& g) {
  int c = 0;
  for (auto& n : g.nodes()) c += n->op == "Shuffle" && !n->attrs.ints("first_transpose").empty();
  return c;
}

// HF BERT / GPT-2 heads: x [B, S, H*D] -> Reshape [B, S, H, D] -> Transpose perm.
ir::Value* heads(Builder& b, ir::Value* x, int64_t H, int64_t D, std::vector<int64_t> perm) {
  const Dims& s = x->shape;
  return b.transpose(b.reshape(x, {s[0], s[1], H, D}), std::move(perm));
}

// ... and back: Transpose [0, 2, 1, 3] then Reshape [B, S, H*D].
ir::Value* merge_heads(Builder& b, ir::Value* o, int64_t B, int64_t S, int64_t E) {
  return b.reshape(b.transpose(o, {0, 2, 1, 3}), {B, S, E});
}

}  // namespace

// BERT as exported: q, v = Transpose[0, 2, 1, 3], K^T = Transpose[0, 2, 3, 1] straight from [B, S, H, D], the
// extended mask, then Transpose[0, 2, 1, 3] + Reshape after: every Transpose goes, the Reshapes stay (views).
TEST(FuseAttention, BertTokensMajorAbsorbsEveryTranspose) {
  const int64_t B = 2, S = 11, H = 3, D = 8, E = H * D;
  Builder b;
  auto* xq = b.input("xq", {B, S, E});
  auto* xk = b.input("xk", {B, S, E});
  auto* xv = b.input("xv", {B, S, E});
  auto* mask = b.input("mask", {B, 1, 1, S});
  auto* s = b.ew(b.mm(heads(b, xq, H, D, {0, 2, 1, 3}), heads(b, xk, H, D, {0, 2, 3, 1})), b.scalar(std::sqrt(8.0f)), kDiv);
  auto* o = b.mm(b.softmax(b.ew(s, mask, kSum), 3), heads(b, xv, H, D, {0, 2, 1, 3}));
  auto* y = merge_heads(b, o, B, S, E);
  y->name = "y";
  b.output(y);
  HostTensor m = random({B, 1, 1, S}, 4);
  for (int j = 8; j < S; ++j) m.mutable_data<float>()[S + j] = std::numeric_limits<float>::lowest();
  const ir::Node* fa = fuse_and_compare(b, {{"xq", random({B, S, E}, 1)}, {"xk", random({B, S, E}, 2)},
                                            {"xv", random({B, S, E}, 3)}, {"mask", m}}, 1);
  ASSERT_NE(fa, nullptr);
  for (int t = 0; t < 3; ++t) {
    ASSERT_EQ(fa->inputs[t]->producer->op, "Shuffle");
    EXPECT_EQ(fa->inputs[t]->shape, (Dims{B, S, H, D})) << "input " << t << " is the Reshape's [B, S, H, D]";
  }
  EXPECT_EQ(layout_of(fa, "q_layout"), 1);
  EXPECT_EQ(layout_of(fa, "k_layout"), 1);
  EXPECT_EQ(layout_of(fa, "v_layout"), 1);
  EXPECT_EQ(layout_of(fa, "out_layout"), 1);
  EXPECT_EQ(fa->attrs.i("k_transposed", -1), 0) << "K^T [B, H, D, S] is read as k [B, S, H, D]";
  EXPECT_EQ(fa->outputs[0]->shape, (Dims{B, S, H, D}));
  EXPECT_EQ(count_transposes(b.g), 0) << b.g.to_string();
  EXPECT_EQ(count_op(b.g, "Shuffle"), 4) << "the three head Reshapes and the merge Reshape";
}

// The same with k transposed twice (Transpose[0, 2, 1, 3] then the swap of the last two), as an exporter
// without transpose merging writes it.
TEST(FuseAttention, BertTwoTransposesOfKeyAbsorbed) {
  const int64_t B = 2, S = 7, H = 2, D = 4;
  Builder b;
  auto* xq = b.input("xq", {B, S, H, D});
  auto* xk = b.input("xk", {B, S, H, D});
  auto* xv = b.input("xv", {B, S, H, D});
  auto* kt = b.transpose(b.transpose(xk, {0, 2, 1, 3}), {0, 1, 3, 2});
  auto* o = b.mm(b.softmax(b.ew(b.mm(b.transpose(xq, {0, 2, 1, 3}), kt), b.scalar(0.5f), kProd), 3),
                 b.transpose(xv, {0, 2, 1, 3}));
  b.output(b.transpose(o, {0, 2, 1, 3}));
  const ir::Node* fa = fuse_and_compare(b, {{"xq", random({B, S, H, D}, 1)}, {"xk", random({B, S, H, D}, 2)},
                                            {"xv", random({B, S, H, D}, 3)}}, 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[0], xq);
  EXPECT_EQ(fa->inputs[1], xk);
  EXPECT_EQ(fa->inputs[2], xv);
  EXPECT_EQ(fa->attrs.i("k_transposed", -1), 0);
  EXPECT_EQ(layout_of(fa, "k_layout"), 1);
  EXPECT_EQ(layout_of(fa, "out_layout"), 1);
  EXPECT_EQ(b.g.num_nodes() - count_op(b.g, "Constant"), 1u) << b.g.to_string();
}

// GPT-2: heads of a Split qkv, the causal Where alone (-> `causal`), Transpose + Reshape after.
TEST(FuseAttention, Gpt2TokensMajorCausal) {
  const int64_t B = 2, S = 12, H = 2, D = 16, E = H * D;
  Builder b;
  auto* xq = b.input("xq", {B, S, E});
  auto* xk = b.input("xk", {B, S, E});
  auto* xv = b.input("xv", {B, S, E});
  auto* q = heads(b, xq, H, D, {0, 2, 1, 3});
  auto* k = heads(b, xk, H, D, {0, 2, 1, 3});
  auto* o = b.mm(b.softmax(gpt2_scores(b, q, k, S), -1), heads(b, xv, H, D, {0, 2, 1, 3}));
  b.output(merge_heads(b, o, B, S, E));
  const ir::Node* fa = fuse_and_compare(b, {{"xq", random({B, S, E}, 1)}, {"xk", random({B, S, E}, 2)},
                                            {"xv", random({B, S, E}, 3)}}, 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attrs.i("causal", -1), 1);
  for (const char* a : {"q_layout", "k_layout", "v_layout", "out_layout"}) EXPECT_EQ(layout_of(fa, a), 1) << a;
  EXPECT_EQ(count_transposes(b.g), 0) << b.g.to_string();
}

// The output Transpose alone (q, k, v heads-major inputs); its result is a graph output and keeps its name.
TEST(FuseAttention, OutputTransposeAbsorbed) {
  Builder b;
  const Dims sh = {2, 3, 9, 8};
  auto* o = b.mm(b.softmax(b.mm(b.input("q", sh), b.input("k", sh), 1), 3), b.input("v", sh));
  auto* y = b.transpose(o, {0, 2, 1, 3});
  y->name = "y";
  b.output(y);
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds(sh), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(layout_of(fa, "out_layout"), 1);
  EXPECT_EQ(layout_of(fa, "q_layout"), 0);
  EXPECT_FALSE(fa->attrs.has("q_layout")) << "default layouts are not written";
  EXPECT_EQ(fa->outputs[0]->name, "y");
  EXPECT_EQ(fa->outputs[0]->shape, (Dims{2, 9, 3, 8}));
  EXPECT_EQ(count_op(b.g, "Shuffle"), 0);
}

// torchvision ViT's packed qkv (tests/python/models/vit.py): Reshape [B, S, 3, H, D], Transpose[2, 0, 3, 1, 4],
// Gather(axis 0, i) for q, k, v, k^T by a swap, Mul by the scale, Softmax, @ v, Transpose + Reshape. Every
// node but the Reshapes goes; all three inputs read the packed tensor. Slots in another order than q, k, v
// (2, 0, 1) so that a mix-up shows in the numbers.
TEST(FuseAttention, VitPackedQkvAbsorbed) {
  const int64_t B = 2, S = 10, H = 3, D = 8, E = H * D;
  Builder b;
  auto* x = b.input("qkv", {B, S, 3 * E});
  auto* packed = b.reshape(x, {B, S, 3, H, D});
  auto* split = b.transpose(packed, {2, 0, 3, 1, 4});
  auto* q = b.gather0(split, 2);
  auto* k = b.gather0(split, 0);
  auto* v = b.gather0(split, -2);  // slot 1
  auto* s = b.ew(b.mm(q, b.transpose(k, {0, 1, 3, 2})), b.scalar(1.0f / std::sqrt(8.0f)), kProd);
  auto* o = b.mm(b.softmax(s, -1), v);
  b.output(merge_heads(b, o, B, S, E));
  const ir::Node* fa = fuse_and_compare(b, {{"qkv", random({B, S, 3 * E}, 1)}}, 1);
  ASSERT_NE(fa, nullptr);
  for (int t = 0; t < 3; ++t) EXPECT_EQ(fa->inputs[t], packed) << "input " << t;
  for (const char* a : {"q_layout", "k_layout", "v_layout"}) EXPECT_EQ(layout_of(fa, a), 2) << a;
  EXPECT_EQ(fa->attrs.i("q_slot", 0), 2);
  EXPECT_EQ(fa->attrs.i("k_slot", 0), 0) << "slot 0 is the default, not written";
  EXPECT_EQ(fa->attrs.i("v_slot", 0), 1);
  EXPECT_EQ(layout_of(fa, "out_layout"), 1);
  EXPECT_EQ(count_op(b.g, "Gather"), 0);
  EXPECT_EQ(count_transposes(b.g), 0) << b.g.to_string();
}

// A Gather of the packed split that is not attention's (here a graph output) keeps the split Transpose; the
// other two are still read packed.
TEST(FuseAttention, VitPackedSplitStaysForItsOtherGather) {
  const int64_t B = 1, S = 6, H = 2, D = 4;
  Builder b;
  auto* packed = b.input("packed", {B, S, 3, H, D});
  auto* split = b.transpose(packed, {2, 0, 3, 1, 4});
  auto* k = b.gather0(split, 1);
  b.g.mark_output(k);
  auto* o = b.mm(b.softmax(b.mm(b.gather0(split, 0), k, 1), -1), b.gather0(split, 2));
  b.output(o);
  const ir::Node* fa = fuse_and_compare(b, {{"packed", random({B, S, 3, H, D}, 1)}}, 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[0], packed);
  EXPECT_EQ(fa->inputs[1], k) << "k is a graph output: its Gather stays";
  EXPECT_EQ(fa->inputs[2], packed);
  EXPECT_EQ(layout_of(fa, "k_layout"), 0);
  EXPECT_EQ(fa->attrs.i("v_slot", 0), 2);
  EXPECT_EQ(count_op(b.g, "Gather"), 1);
  EXPECT_EQ(count_transposes(b.g), 1) << "the split Transpose still feeds k's Gather";
}

// nn.MultiheadAttention's 3-D form end to end: [S, B*H, D] inputs, q and v Transpose[1, 0, 2], K^T
// Transpose[1, 2, 0], the output Transpose[1, 0, 2] back: all read / written tokens-major.
TEST(FuseAttention, MultiheadAttention3dAbsorbed) {
  const int64_t S = 9, N = 6, D = 8;
  Builder b;
  auto [q, k, v] = qkv_inputs(b, {S, N, D});
  auto* qs = b.ew(b.transpose(q, {1, 0, 2}), b.scalar(std::sqrt(8.0f)), kDiv);
  auto* o = b.mm(b.softmax(b.mm(qs, b.transpose(k, {1, 2, 0})), -1), b.transpose(v, {1, 0, 2}));
  b.output(b.transpose(o, {1, 0, 2}));
  const ir::Node* fa = fuse_and_compare(b, qkv_feeds({S, N, D}), 1);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[0], q);
  EXPECT_EQ(fa->inputs[1], k);
  EXPECT_EQ(fa->inputs[2], v);
  for (const char* a : {"q_layout", "k_layout", "v_layout", "out_layout"}) EXPECT_EQ(layout_of(fa, a), 1) << a;
  EXPECT_EQ(fa->attrs.i("k_transposed", -1), 0);
  EXPECT_EQ(fa->outputs[0]->shape, (Dims{S, N, D}));
  EXPECT_EQ(count_op(b.g, "Shuffle"), 0);
}

// Transposes that must stay: one with another consumer, one that is a graph output, one that also reshapes,
// one with another permutation, one with a user-set precision; an output Transpose of a result that has
// another consumer; a packed-split Gather whose index is not a constant.
TEST(FuseAttention, LeavesTransposesThatAreNotOnlyAttentions) {
  const Dims t = {2, 6, 3, 4};  // [B, S, H, D]
  std::map<std::string, HostTensor> in = {{"xq", random(t, 1)}, {"xk", random(t, 2)}, {"xv", random(t, 3)}};
  auto attention = [](Builder& b, ir::Value* q, ir::Value* k, ir::Value* v) {
    return b.mm(b.softmax(b.mm(q, k, 1), 3), v);
  };
  {  // q's transpose feeds another node too; v's is a graph output
    Builder b;
    auto* q = b.transpose(b.input("xq", t), {0, 2, 1, 3});
    auto* v = b.transpose(b.input("xv", t), {0, 2, 1, 3});
    auto* k = b.transpose(b.input("xk", t), {0, 2, 1, 3});
    b.g.mark_output(v);
    auto* o = attention(b, q, k, v);
    b.output(b.ew(o, q, kSum));
    const ir::Node* fa = fuse_and_compare(b, in, 1);
    ASSERT_NE(fa, nullptr);
    EXPECT_EQ(fa->inputs[0], q);
    EXPECT_EQ(fa->inputs[2], v);
    EXPECT_EQ(layout_of(fa, "q_layout"), 0);
    EXPECT_EQ(layout_of(fa, "k_layout"), 1);
    EXPECT_EQ(layout_of(fa, "v_layout"), 0);
    EXPECT_EQ(layout_of(fa, "out_layout"), 0) << "the result feeds the Sum, not a Transpose";
  }
  {  // a Transpose that also reshapes; another permutation; a pinned precision
    Builder b;
    ir::Node* tr = b.g.add_node("Shuffle", "tr", {b.input("xq", t)}, 1);
    tr->attrs.set("first_transpose", std::vector<int64_t>{0, 2, 1, 3});
    tr->attrs.set("has_reshape", int64_t{1});
    tr->attrs.set("reshape_dims", std::vector<int64_t>{2, 3, 6, 4});
    auto* k = b.transpose(b.input("xk", {2, 6, 4, 3}), {0, 3, 1, 2});
    auto* v = b.transpose(b.input("xv", t), {0, 2, 1, 3});
    v->producer->precision = DataType::kFLOAT;
    auto* o = attention(b, tr->outputs[0], k, v);
    auto* y = b.transpose(o, {0, 2, 1, 3});
    y->producer->output_types = {DataType::kFLOAT};
    b.output(y);
    auto in2 = in;
    in2["xk"] = random({2, 6, 4, 3}, 5);
    const ir::Node* fa = fuse_and_compare(b, in2, 1);
    ASSERT_NE(fa, nullptr);
    for (const char* a : {"q_layout", "k_layout", "v_layout", "out_layout"}) EXPECT_EQ(layout_of(fa, a), 0) << a;
    EXPECT_EQ(count_transposes(b.g), 4);
  }
  {  // the attention result is also a graph output: its Transpose stays
    Builder b;
    const Dims sh = {2, 3, 6, 4};
    auto* o = attention(b, b.input("q", sh), b.input("k", sh), b.input("v", sh));
    b.g.mark_output(o);
    b.output(b.transpose(o, {0, 2, 1, 3}));
    const ir::Node* fa = fuse_and_compare(b, qkv_feeds(sh), 1);
    ASSERT_NE(fa, nullptr);
    EXPECT_EQ(layout_of(fa, "out_layout"), 0);
    EXPECT_EQ(count_transposes(b.g), 1);
  }
  {  // a packed split read by a Gather with a run-time index
    Builder b;
    auto* split = b.transpose(b.input("packed", {1, 6, 3, 2, 4}), {2, 0, 3, 1, 4});
    auto* idx = b.g.add_input("i", DataType::kINT64, {});
    ir::Node* gq = b.g.add_node("Gather", "gq", {split, idx}, 1);
    gq->attrs.set("axis", int64_t{0});
    auto* o = attention(b, gq->outputs[0], b.gather0(split, 1), b.gather0(split, 2));
    b.output(o);
    const ir::Node* fa = fuse_and_compare(b, {{"packed", random({1, 6, 3, 2, 4}, 1)}, {"i", HostTensor::scalar_i64(0)}}, 1);
    ASSERT_NE(fa, nullptr);
    EXPECT_EQ(layout_of(fa, "q_layout"), 0);
    EXPECT_EQ(layout_of(fa, "k_layout"), 2);
    EXPECT_EQ(count_transposes(b.g), 1);
  }
}

// The op itself on the CPU: causal with more queries than keys gives 0 rows where no key is visible; a mask row
// of -inf gives 0; float16 inputs compute in float32.
TEST(FusedAttentionCpu, RowsWithoutVisibleKeysAreZero) {
  ir::Graph g;
  std::vector<HostTensor> t = {random({1, 1, 5, 4}, 1), random({1, 1, 3, 4}, 2), random({1, 1, 3, 2}, 3)};
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < t.size(); ++i) ins.push_back(g.add_input("x" + std::to_string(i), DataType::kFLOAT, t[i].shape()));
  ir::Node* n = g.add_node("FusedAttention", "fa", ins, 1);
  n->attrs.set("causal", int64_t{1});
  n->attrs.set("scale", 0.5);
  auto out = cpu::eval_node(*n, {&t[0], &t[1], &t[2]});
  ASSERT_EQ(out[0].shape(), (Dims{1, 1, 5, 2}));
  // Row i sees keys j <= i - 2: rows 0 and 1 see none.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[0].data<float>()[i], 0.0f);
  // Row 2 sees key 0 alone: the output is v[0].
  EXPECT_FLOAT_EQ(out[0].data<float>()[4], t[2].data<float>()[0]);
  EXPECT_FLOAT_EQ(out[0].data<float>()[5], t[2].data<float>()[1]);
  // Row 4 sees all three keys: softmax(0.5 * q k^T) @ v.
  double w[3], sum = 0, y0 = 0;
  for (int j = 0; j < 3; ++j) {
    double dot = 0;
    for (int d = 0; d < 4; ++d) dot += t[0].data<float>()[16 + d] * t[1].data<float>()[j * 4 + d];
    w[j] = std::exp(0.5 * dot);
    sum += w[j];
  }
  for (int j = 0; j < 3; ++j) y0 += w[j] / sum * t[2].data<float>()[j * 2];
  EXPECT_NEAR(out[0].data<float>()[8], y0, 1e-5);
}

TEST(FusedAttentionOp, InferenceChecksShapes) {
  ir::Graph g;
  auto* q = g.add_input("q", DataType::kFLOAT, {2, 3, 5, 8});
  auto* k = g.add_input("k", DataType::kFLOAT, {2, 1, 7, 8});
  auto* v = g.add_input("v", DataType::kFLOAT, {2, 1, 7, 6});
  auto* m = g.add_input("m", DataType::kFLOAT, {2, 1, 1, 7});
  ir::Node* n = g.add_node("FusedAttention", "fa", {q, k, v, m}, 1);
  auto info = [](ir::Value* x) { return ir::TensorInfo{true, x->dtype, x->shape, nullptr}; };
  auto out = ir::infer_node(*n, {info(q), info(k), info(v), info(m)});
  EXPECT_EQ(out[0].shape, (Dims{2, 3, 5, 6}));
  n->attrs.set("k_transposed", int64_t{1});  // k is now read as [.., D = 7, Sk = 8]
  EXPECT_THROW(ir::infer_node(*n, {info(q), info(k), info(v), info(m)}), Error);
  n->attrs.set("k_transposed", int64_t{0});
  auto* big = g.add_input("big", DataType::kFLOAT, {2, 3, 9, 7});
  EXPECT_THROW(ir::infer_node(*n, {info(q), info(k), info(v), info(big)}), Error);
}
