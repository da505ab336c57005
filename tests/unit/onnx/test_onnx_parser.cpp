// OnnxParser over hand-encoded ModelProto bytes: inputs/initializers/outputs, node dispatch and renaming,
// opset-dependent importers, every error path (with its code, node and message) and hostile bytes.
#include "kiln/onnx_parser.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "ir/graph.h"
#include "onnx/import_context.h"
#include "proto_writer.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using onnx::test::ProtoWriter;

// ---- ModelProto builders (field numbers from onnx.proto) ----------------------------------------------
constexpr int32_t kFloat = 1, kUint8 = 2, kInt32 = 6, kInt64 = 7, kString = 8, kBool = 9, kComplex64 = 14;

struct Dim {
  int64_t value = -1;
  std::string param;
};
Dim dv(int64_t v) { return Dim{v, ""}; }
Dim dp(const std::string& p) { return Dim{-1, p}; }

ProtoWriter tensor_type(int32_t elem, const std::vector<Dim>& dims, bool has_shape = true) {
  ProtoWriter tt;
  tt.int32(1, elem);
  if (has_shape) {
    ProtoWriter shape;
    for (const auto& d : dims) {
      ProtoWriter dim;
      if (!d.param.empty()) dim.bytes(2, d.param);
      else if (d.value >= 0) dim.int64(1, d.value);
      shape.message(1, dim);
    }
    tt.message(2, shape);
  }
  return std::move(ProtoWriter().message(1, tt));
}

ProtoWriter value_info(const std::string& name, int32_t elem, const std::vector<Dim>& dims, bool has_shape = true) {
  return std::move(ProtoWriter().bytes(1, name).message(2, tensor_type(elem, dims, has_shape)));
}
ProtoWriter untyped_output(const std::string& name) { return std::move(ProtoWriter().bytes(1, name)); }

ProtoWriter float_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
  ProtoWriter t;
  t.packed_varints<int64_t>(1, dims).int32(2, kFloat).bytes(8, name);
  std::string raw(v.size() * 4, '\0');
  std::memcpy(raw.data(), v.data(), raw.size());
  t.bytes(9, raw);
  return t;
}
ProtoWriter int64_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
  ProtoWriter t;
  t.packed_varints<int64_t>(1, dims).int32(2, kInt64).bytes(8, name).packed_varints<int64_t>(7, v);
  return t;
}

ProtoWriter attr_i(const std::string& name, int64_t v) {
  return std::move(ProtoWriter().bytes(1, name).int32(20, 2).int64(3, v));
}
ProtoWriter attr_f(const std::string& name, float v) {
  return std::move(ProtoWriter().bytes(1, name).int32(20, 1).float32(2, v));
}
ProtoWriter attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  return std::move(ProtoWriter().bytes(1, name).int32(20, 7).packed_varints<int64_t>(8, v));
}
ProtoWriter attr_s(const std::string& name, const std::string& v) {
  return std::move(ProtoWriter().bytes(1, name).int32(20, 3).bytes(4, v));
}
ProtoWriter attr_t(const std::string& name, const ProtoWriter& t) {
  return std::move(ProtoWriter().bytes(1, name).int32(20, 4).message(5, t));
}

ProtoWriter make_node(const std::string& op, const std::vector<std::string>& ins, const std::vector<std::string>& outs,
                      const std::string& name = "", const std::vector<ProtoWriter>& attrs = {},
                      const std::string& domain = "") {
  ProtoWriter n;
  for (auto& i : ins) n.bytes(1, i);
  for (auto& o : outs) n.bytes(2, o);
  if (!name.empty()) n.bytes(3, name);
  n.bytes(4, op);
  for (auto& a : attrs) n.message(5, a);
  if (!domain.empty()) n.bytes(7, domain);
  return n;
}

struct GraphSpec {
  std::vector<ProtoWriter> nodes, inits, inputs, outputs;
};

std::string make_model(const GraphSpec& g, int64_t opset = 13, int64_t ir_version = 8, bool with_graph = true) {
  ProtoWriter graph;
  for (auto& n : g.nodes) graph.message(1, n);
  graph.bytes(2, "test");
  for (auto& t : g.inits) graph.message(5, t);
  for (auto& i : g.inputs) graph.message(11, i);
  for (auto& o : g.outputs) graph.message(12, o);
  ProtoWriter model;
  model.int64(1, ir_version).message(8, ProtoWriter().bytes(1, "").int64(2, opset)).bytes(2, "kiln-test");
  if (with_graph) model.message(7, graph);
  return model.str();
}

// A logger that keeps the messages.
struct Capture : ILogger {
  std::vector<std::pair<Severity, std::string>> messages;
  void log(Severity s, const char* msg) noexcept override { messages.emplace_back(s, msg); }
  bool has(Severity s, const std::string& part) const {
    for (auto& [sev, m] : messages)
      if (sev == s && m.find(part) != std::string::npos) return true;
    return false;
  }
};

struct Parsed {
  Capture log;
  std::unique_ptr<Network> net;
  std::unique_ptr<OnnxParser> parser;
  bool ok = false;
  const ir::Graph& g() const { return net->graph(); }
  const ParserError& err(int i = 0) const { return parser->error(i); }
  const ir::Node* op(const std::string& op) const {
    for (auto& n : g().nodes())
      if (n->op == op) return n.get();
    return nullptr;
  }
  int count(const std::string& op) const {
    int k = 0;
    for (auto& n : g().nodes()) k += n->op == op;
    return k;
  }
};

std::unique_ptr<Parsed> parse(const std::string& bytes, const std::string& path = "") {
  auto p = std::make_unique<Parsed>();
  p->net = std::make_unique<Network>(&p->log);
  p->parser = std::make_unique<OnnxParser>(*p->net, &p->log);
  p->ok = p->parser->parse(bytes.data(), bytes.size(), path);
  return p;
}

std::string errors_of(const Parsed& p) {
  std::string s;
  for (int i = 0; i < p.parser->num_errors(); ++i) s += p.err(i).str() + "\n";
  return s;
}

GraphSpec relu_graph() {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dp("N"), dv(3), dv(4)}));
  g.nodes.push_back(make_node("Relu", {"x"}, {"y"}, "relu0"));
  g.outputs.push_back(untyped_output("y"));
  return g;
}

// ---- the happy path -------------------------------------------------------------------------------------
TEST(OnnxParser, ImportsInputsNodesAndOutputsWithOnnxNames) {
  auto p = parse(make_model(relu_graph()));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  ASSERT_EQ(p->g().inputs().size(), 1u);
  const ir::Value* x = p->g().inputs()[0];
  EXPECT_EQ(x->name, "x");
  EXPECT_EQ(x->dtype, DataType::kFLOAT);
  EXPECT_EQ(x->shape, (Dims{-1, 3, 4}));  // dim_param -> -1
  ASSERT_EQ(p->g().outputs().size(), 1u);
  const ir::Value* y = p->g().outputs()[0];
  EXPECT_EQ(y->name, "y");
  EXPECT_EQ(y->shape, (Dims{-1, 3, 4}));
  ASSERT_NE(y->producer, nullptr);
  EXPECT_EQ(y->producer->op, "Activation");
  EXPECT_EQ(y->producer->name, "relu0");
  EXPECT_EQ(y->producer->attrs.i("type", -1), 0);
  EXPECT_EQ(p->parser->num_errors(), 0);
}

TEST(OnnxParser, InputDtypesAndUnknownDims) {
  GraphSpec g;
  g.inputs.push_back(value_info("i64", kInt64, {dv(2)}));
  g.inputs.push_back(value_info("b", kBool, {dv(2)}));
  g.inputs.push_back(value_info("u8", kUint8, {dv(2)}));
  g.inputs.push_back(value_info("i32", kInt32, {Dim{}, dv(2)}));  // a dim with neither value nor param
  g.inputs.push_back(value_info("s", kFloat, {}));                 // a scalar
  g.nodes.push_back(make_node("Identity", {"i64"}, {"y"}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  auto& in = p->g().inputs();
  ASSERT_EQ(in.size(), 5u);
  EXPECT_EQ(in[0]->dtype, DataType::kINT64);  // kept int64
  EXPECT_EQ(in[1]->dtype, DataType::kBOOL);
  EXPECT_EQ(in[2]->dtype, DataType::kUINT8);
  EXPECT_EQ(in[3]->dtype, DataType::kINT32);
  EXPECT_EQ(in[3]->shape, (Dims{-1, 2}));
  EXPECT_EQ(in[4]->shape, Dims{});
  EXPECT_EQ(p->g().outputs()[0]->dtype, DataType::kINT64);
}

TEST(OnnxParser, InitializersBecomeNamedConstants) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3)}));
  g.inputs.push_back(value_info("w", kFloat, {dv(3)}));  // listed as an input too (old exporters): a constant
  g.inits.push_back(float_tensor("w", {3}, {1.f, 2.f, 3.f}));
  g.nodes.push_back(make_node("Add", {"x", "w"}, {"y"}, "add"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->g().inputs().size(), 1u);
  const ir::Value* w = p->g().find_value("w");
  ASSERT_NE(w, nullptr);
  const HostTensor* v = ir::constant_value(w);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->shape(), Dims{3});
  EXPECT_EQ(v->data<float>()[2], 3.f);
  const ir::Node* add = p->op("ElementWise");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->inputs[1], w);
  EXPECT_EQ(add->attrs.i("op", -1), 0);
  EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{2, 3}));
}

TEST(OnnxParser, NodesWithoutNamesGetUniqueNames) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2)}));
  g.nodes.push_back(make_node("Relu", {"x"}, {"a"}));
  g.nodes.push_back(make_node("Relu", {"a"}, {"b"}, "dup"));
  g.nodes.push_back(make_node("Relu", {"b"}, {"c"}, "dup"));
  g.outputs.push_back(untyped_output("c"));
  auto p = parse(make_model(g));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  std::set<std::string> names;
  for (auto& n : p->g().nodes()) EXPECT_TRUE(names.insert(n->name).second) << n->name;
  EXPECT_TRUE(names.count("Relu_0"));
  EXPECT_TRUE(names.count("dup"));
}

TEST(OnnxParser, OptionalOmittedInputsAndOutputs) {
  // Clip(x, "", max): the omitted min is unbounded; Dropout's unnamed mask output is fine.
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(4)}));
  g.inits.push_back(float_tensor("hi", {}, {0.5f}));
  g.nodes.push_back(make_node("Clip", {"x", "", "hi"}, {"c"}, "clip"));
  g.nodes.push_back(make_node("Dropout", {"c"}, {"y", ""}, "drop"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  const ir::Node* clip = p->op("Activation");
  ASSERT_NE(clip, nullptr);
  EXPECT_EQ(clip->attrs.i("type", -1), 8);
  EXPECT_TRUE(std::isinf(clip->attrs.f("alpha", 0)) && clip->attrs.f("alpha", 0) < 0);
  EXPECT_FLOAT_EQ(clip->attrs.f("beta", 0), 0.5f);
}

TEST(OnnxParser, OutputThatIsAnInputOrInitializerGetsAnIdentity) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2)}));
  g.inits.push_back(float_tensor("w", {2}, {1.f, 2.f}));
  g.nodes.push_back(make_node("Relu", {"x"}, {"y"}));
  g.outputs.push_back(untyped_output("y"));
  g.outputs.push_back(untyped_output("x"));
  g.outputs.push_back(untyped_output("w"));
  auto p = parse(make_model(g));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  auto& outs = p->g().outputs();
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[1]->name, "x");
  EXPECT_EQ(outs[2]->name, "w");
  for (int i : {1, 2}) {
    ASSERT_NE(outs[i]->producer, nullptr);
    EXPECT_EQ(outs[i]->producer->op, "Identity");
    EXPECT_FALSE(outs[i]->is_input);
  }
  EXPECT_FALSE(p->g().inputs()[0]->is_output);
  EXPECT_NE(p->g().inputs()[0]->name, "x");  // the input side was renamed so both names exist once
}

TEST(OnnxParser, PassThroughNodesProduceDistinctValues) {
  // Identity-like importers never hand back a value that already carries another ONNX name.
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3)}));
  g.nodes.push_back(make_node("Sum", {"x"}, {"s"}));
  g.nodes.push_back(make_node("Dropout", {"s"}, {"d"}));
  g.outputs.push_back(untyped_output("s"));
  g.outputs.push_back(untyped_output("d"));
  auto p = parse(make_model(g));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->g().outputs()[0]->name, "s");
  EXPECT_EQ(p->g().outputs()[1]->name, "d");
  EXPECT_NE(p->g().outputs()[0], p->g().outputs()[1]);
}

TEST(OnnxParser, SupportsOperator) {
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  for (const char* op : {"Conv", "Gemm", "Resize", "Softmax", "LayerNormalization", "Einsum", "CumSum", "Trilu",
                         "ReduceLogSumExp", "DepthToSpace", "Upsample", "GatherND", "NonMaxSuppression"})
    EXPECT_TRUE(parser.supports_operator(op)) << op;
  EXPECT_TRUE(parser.supports_operator("Relu", "ai.onnx"));
  EXPECT_FALSE(parser.supports_operator("Relu", "com.microsoft"));
  EXPECT_FALSE(parser.supports_operator("KilnNoSuchOp"));
  EXPECT_FALSE(parser.supports_operator(""));
}

// ---- opset-dependent importers --------------------------------------------------------------------------
TEST(OnnxParser, SqueezeAxesAttributeBefore13InputFrom13) {
  for (int64_t opset : {11, 13}) {
    GraphSpec g;
    g.inputs.push_back(value_info("x", kFloat, {dv(1), dv(3), dv(1)}));
    if (opset < 13) {
      g.nodes.push_back(make_node("Squeeze", {"x"}, {"y"}, "sq", {attr_ints("axes", {0})}));
    } else {
      g.inits.push_back(int64_tensor("ax", {1}, {0}));
      g.nodes.push_back(make_node("Squeeze", {"x", "ax"}, {"y"}, "sq"));
    }
    g.outputs.push_back(untyped_output("y"));
    auto p = parse(make_model(g, opset));
    ASSERT_TRUE(p->ok) << errors_of(*p);
    EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{3, 1})) << "opset " << opset;
    EXPECT_EQ(p->op("Squeeze")->attrs.ints("axes"), std::vector<int64_t>{0});
  }
}

TEST(OnnxParser, SqueezeWithRuntimeAxesTakesThemAsAnInput) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(1), dv(3)}));
  g.inputs.push_back(value_info("ax", kInt64, {dv(1)}));
  g.nodes.push_back(make_node("Squeeze", {"x", "ax"}, {"y"}, "sq"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 13));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->op("Squeeze")->inputs.size(), 2u);  // the axes are read at run time
  EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{-1}));  // rank known, which dim stays is not
}

TEST(OnnxParser, SoftmaxAxisSemanticsChangeAtOpset13) {
  for (int64_t opset : {11, 13}) {
    GraphSpec g;
    g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3), dv(4)}));
    g.nodes.push_back(make_node("Softmax", {"x"}, {"y"}, "sm", {attr_i("axis", 1)}));
    g.outputs.push_back(untyped_output("y"));
    auto p = parse(make_model(g, opset));
    ASSERT_TRUE(p->ok) << errors_of(*p);
    EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{2, 3, 4}));
    const ir::Node* sm = p->op("SoftMax");
    ASSERT_NE(sm, nullptr);
    if (opset == 13) {
      EXPECT_EQ(sm->attrs.i("axis", -1), 1);
      EXPECT_EQ(sm->inputs[0], p->g().inputs()[0]);
    } else {  // over the merged dims [3 * 4]
      EXPECT_EQ(sm->inputs[0]->shape, (Dims{2, 12}));
      EXPECT_EQ(sm->attrs.i("axis", -1), 1);
    }
  }
}

TEST(OnnxParser, ReduceAxesFromAttributeOrInput) {
  struct Case {
    const char* op;
    int64_t opset;
    bool input;
  };
  for (Case c : {Case{"ReduceSum", 11, false}, Case{"ReduceSum", 13, true}, Case{"ReduceMean", 13, false},
                 Case{"ReduceMean", 18, true}, Case{"ReduceL2", 18, true}}) {
    GraphSpec g;
    g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3), dv(4)}));
    if (c.input) {
      g.inits.push_back(int64_tensor("ax", {1}, {-1}));
      g.nodes.push_back(make_node(c.op, {"x", "ax"}, {"y"}, "r", {attr_i("keepdims", 0)}));
    } else {
      g.nodes.push_back(make_node(c.op, {"x"}, {"y"}, "r", {attr_ints("axes", {-1}), attr_i("keepdims", 0)}));
    }
    g.outputs.push_back(untyped_output("y"));
    auto p = parse(make_model(g, c.opset));
    ASSERT_TRUE(p->ok) << c.op << " " << c.opset << ": " << errors_of(*p);
    EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{2, 3})) << c.op << " " << c.opset;
    EXPECT_EQ(p->op("Reduce")->attrs.ints("axes"), std::vector<int64_t>{2});
  }
}

TEST(OnnxParser, SliceAttributesBefore10InputsFrom10) {
  for (int64_t opset : {9, 10}) {
    GraphSpec g;
    g.inputs.push_back(value_info("x", kFloat, {dv(5), dv(6)}));
    if (opset < 10) {
      g.nodes.push_back(make_node("Slice", {"x"}, {"y"}, "sl",
                                  {attr_ints("starts", {1}), attr_ints("ends", {-1}), attr_ints("axes", {1})}));
    } else {
      g.inits.push_back(int64_tensor("s", {1}, {1}));
      g.inits.push_back(int64_tensor("e", {1}, {-1}));
      g.inits.push_back(int64_tensor("a", {1}, {1}));
      g.nodes.push_back(make_node("Slice", {"x", "s", "e", "a"}, {"y"}, "sl"));
    }
    g.outputs.push_back(untyped_output("y"));
    auto p = parse(make_model(g, opset));
    ASSERT_TRUE(p->ok) << errors_of(*p);
    EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{5, 4}));
    EXPECT_NE(p->op("DynamicSlice"), nullptr);
  }
}

TEST(OnnxParser, ClipBoundsFromAttributesBefore11) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(4)}));
  g.nodes.push_back(make_node("Clip", {"x"}, {"y"}, "clip", {attr_f("min", -1.f), attr_f("max", 2.f)}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 10));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  const ir::Node* n = p->op("Activation");
  EXPECT_EQ(n->attrs.i("type", -1), 8);
  EXPECT_FLOAT_EQ(n->attrs.f("alpha", 0), -1.f);
  EXPECT_FLOAT_EQ(n->attrs.f("beta", 0), 2.f);
}

TEST(OnnxParser, BatchNormWithConstantsFoldsIntoScale) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dp("N"), dv(2), dv(3), dv(3)}));
  g.inits.push_back(float_tensor("s", {2}, {2.f, 1.f}));
  g.inits.push_back(float_tensor("b", {2}, {0.5f, -1.f}));
  g.inits.push_back(float_tensor("m", {2}, {1.f, 0.f}));
  g.inits.push_back(float_tensor("v", {2}, {4.f, 1.f}));
  g.nodes.push_back(make_node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn", {attr_f("epsilon", 0.f)}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 15));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  const ir::Node* sc = p->op("Scale");
  ASSERT_NE(sc, nullptr);
  EXPECT_EQ(sc->attrs.i("mode", -1), 1);
  const HostTensor* shift = ir::constant_value(sc->inputs[1]);
  const HostTensor* scale = ir::constant_value(sc->inputs[2]);
  ASSERT_TRUE(shift && scale);
  EXPECT_FLOAT_EQ(scale->data<float>()[0], 1.f);    // 2 / sqrt(4)
  EXPECT_FLOAT_EQ(shift->data<float>()[0], -0.5f);  // 0.5 - 1 * 1
  EXPECT_FLOAT_EQ(scale->data<float>()[1], 1.f);
  EXPECT_FLOAT_EQ(shift->data<float>()[1], -1.f);
}

TEST(OnnxParser, GemmAddsScalesOnlyWhenNeeded) {
  for (float alpha : {1.f, 2.f}) {
    GraphSpec g;
    g.inputs.push_back(value_info("a", kFloat, {dv(2), dv(3)}));
    g.inits.push_back(float_tensor("b", {4, 3}, std::vector<float>(12, 0.5f)));
    g.inits.push_back(float_tensor("c", {4}, {1, 2, 3, 4}));
    g.nodes.push_back(make_node("Gemm", {"a", "b", "c"}, {"y"}, "gemm", {attr_i("transB", 1), attr_f("alpha", alpha)}));
    g.outputs.push_back(untyped_output("y"));
    auto p = parse(make_model(g, 13));
    ASSERT_TRUE(p->ok) << errors_of(*p);
    EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{2, 4}));
    const ir::Node* mm = p->op("MatrixMultiply");
    ASSERT_NE(mm, nullptr);
    EXPECT_EQ(mm->attrs.i("op_b", -1), 1);
    EXPECT_EQ(p->count("ElementWise"), alpha == 1.f ? 1 : 2);
  }
}

TEST(OnnxParser, ConstantNodeAttributes) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(3)}));
  g.nodes.push_back(make_node("Constant", {}, {"c"}, "c0", {attr_t("value", float_tensor("", {3}, {1, 2, 3}))}));
  g.nodes.push_back(make_node("Constant", {}, {"k"}, "c1", {attr_f("value_float", 2.f)}));
  g.nodes.push_back(make_node("Constant", {}, {"shape"}, "c2", {attr_ints("value_ints", {3, 1})}));
  g.nodes.push_back(make_node("Add", {"x", "c"}, {"s"}));
  g.nodes.push_back(make_node("Mul", {"s", "k"}, {"m"}));
  g.nodes.push_back(make_node("Reshape", {"m", "shape"}, {"y"}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 13));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{3, 1}));
  const ir::Value* c = p->g().find_value("c");
  ASSERT_NE(c, nullptr);
  ASSERT_NE(ir::constant_value(c), nullptr);
  EXPECT_EQ(ir::constant_value(c)->data<float>()[1], 2.f);
}

TEST(OnnxParser, ShapeArithmeticOnStaticShapesIsKnownAtImport) {
  // Shape -> Gather -> Unsqueeze -> Concat -> Reshape on a static input: an exact output shape.
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3), dv(4)}));
  g.inits.push_back(int64_tensor("i0", {}, {0}));
  g.inits.push_back(int64_tensor("ax", {1}, {0}));
  g.inits.push_back(int64_tensor("m1", {1}, {-1}));
  g.nodes.push_back(make_node("Shape", {"x"}, {"s"}));
  g.nodes.push_back(make_node("Gather", {"s", "i0"}, {"n"}));
  g.nodes.push_back(make_node("Unsqueeze", {"n", "ax"}, {"n1"}));
  g.nodes.push_back(make_node("Concat", {"n1", "m1"}, {"shape"}, "", {attr_i("axis", 0)}));
  g.nodes.push_back(make_node("Reshape", {"x", "shape"}, {"y"}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 13));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{2, 12}));
}

TEST(OnnxParser, ReshapeToOwnDynamicDimsBecomesStaticPlaceholders) {
  // x.view(x.size(0), x.size(1), 2, -1) with dynamic batch and sequence, as torch exports it.
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dp("B"), dp("S"), dv(8)}));
  g.inits.push_back(int64_tensor("i0", {}, {0}));
  g.inits.push_back(int64_tensor("i1", {}, {1}));
  g.inits.push_back(int64_tensor("ax", {1}, {0}));
  g.inits.push_back(int64_tensor("tail", {2}, {2, -1}));
  g.nodes.push_back(make_node("Shape", {"x"}, {"s"}));
  g.nodes.push_back(make_node("Gather", {"s", "i0"}, {"b"}));
  g.nodes.push_back(make_node("Shape", {"x"}, {"s2"}));
  g.nodes.push_back(make_node("Gather", {"s2", "i1"}, {"t"}));
  g.nodes.push_back(make_node("Unsqueeze", {"b", "ax"}, {"b1"}));
  g.nodes.push_back(make_node("Unsqueeze", {"t", "ax"}, {"t1"}));
  g.nodes.push_back(make_node("Concat", {"b1", "t1", "tail"}, {"shape"}, "", {attr_i("axis", 0)}));
  g.nodes.push_back(make_node("Reshape", {"x", "shape"}, {"y"}, "view"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 13));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  const ir::Value* y = p->g().outputs()[0];
  EXPECT_EQ(y->shape, (Dims{-1, -1, 2, 4}));
  ASSERT_EQ(y->producer->op, "Shuffle");
  EXPECT_EQ(y->producer->inputs.size(), 1u);  // no run-time shape tensor
  EXPECT_EQ(y->producer->attrs.ints("reshape_dims"), (std::vector<int64_t>{0, 0, 2, -1}));

  // Another tensor's dims cannot be proven equal: the shape stays a run-time input.
  GraphSpec h = g;
  h.inputs.push_back(value_info("z", kFloat, {dp("B"), dp("S"), dv(8)}));
  h.nodes.back() = make_node("Reshape", {"z", "shape"}, {"y"}, "view");
  auto q = parse(make_model(h, 13));
  ASSERT_TRUE(q->ok) << errors_of(*q);
  EXPECT_EQ(q->g().outputs()[0]->producer->inputs.size(), 2u);
}

TEST(OnnxParser, FlattenWithDynamicBatchUsesPlaceholders) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dp("N"), dv(3), dv(4)}));
  g.nodes.push_back(make_node("Flatten", {"x"}, {"y"}, "fl"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 13));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{-1, 12}));
  EXPECT_EQ(p->count("Shape"), 0);  // no shape arithmetic needed
}

TEST(OnnxParser, SplitHasOneIrOutputPerOnnxOutput) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(6), dv(2)}));
  g.nodes.push_back(make_node("Split", {"x"}, {"a", "b", "c"}, "split", {attr_ints("split", {1, 2, 3})}));
  g.outputs.push_back(untyped_output("a"));
  g.outputs.push_back(untyped_output("c"));
  auto p = parse(make_model(g, 11));
  ASSERT_TRUE(p->ok) << errors_of(*p);
  const ir::Node* s = p->op("Split");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->outputs.size(), 3u);
  EXPECT_EQ(s->outputs[0]->name, "a");
  EXPECT_EQ(s->outputs[2]->name, "c");
  EXPECT_EQ(s->outputs[2]->shape, (Dims{3, 2}));
}

// ---- errors -----------------------------------------------------------------------------------------------
TEST(OnnxParser, MalformedBytesAreModelDeserializeFailed) {
  const std::string bad = "\x0a\xff\xff\xff\xff\x0f not a model";
  auto p = parse(bad);
  ASSERT_FALSE(p->ok);
  ASSERT_EQ(p->parser->num_errors(), 1);
  EXPECT_EQ(p->err().code, ParserErrorCode::kMODEL_DESERIALIZE_FAILED);
  EXPECT_FALSE(p->err().desc.empty());
  EXPECT_EQ(p->err().node, -1);
  EXPECT_TRUE(p->log.has(Severity::kERROR, "MODEL_DESERIALIZE_FAILED"));
}

TEST(OnnxParser, EmptyAndNullBuffers) {
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  EXPECT_FALSE(parser.parse(nullptr, 0));  // an empty ModelProto: no graph
  ASSERT_EQ(parser.num_errors(), 1);
  EXPECT_EQ(parser.error(0).code, ParserErrorCode::kINVALID_GRAPH);
  parser.clear_errors();
  EXPECT_FALSE(parser.parse(nullptr, 10));
  EXPECT_EQ(parser.error(0).code, ParserErrorCode::kMODEL_DESERIALIZE_FAILED);
}

TEST(OnnxParser, MissingGraphIsInvalidGraph) {
  auto p = parse(make_model(relu_graph(), 13, 8, /*with_graph=*/false));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kINVALID_GRAPH);
  EXPECT_NE(p->err().desc.find("no graph"), std::string::npos);
}

TEST(OnnxParser, OpsetRange) {
  auto old = parse(make_model(relu_graph(), 0));
  ASSERT_FALSE(old->ok);
  EXPECT_EQ(old->err().code, ParserErrorCode::kUNSUPPORTED_GRAPH);
  EXPECT_NE(old->err().desc.find("opset 0"), std::string::npos) << old->err().desc;

  // Opsets 1..6: ops whose semantics did not change import; changed ones Kiln does not implement are
  // UNSUPPORTED_NODE naming the opset.
  for (int64_t opset = 1; opset <= 6; ++opset) EXPECT_TRUE(parse(make_model(relu_graph(), opset))->ok) << opset;
  GraphSpec g = relu_graph();
  g.nodes.push_back(make_node("Reshape", {"y"}, {"z"}, "reshape1"));
  g.outputs.push_back(untyped_output("z"));
  auto legacy = parse(make_model(g, 4));
  ASSERT_FALSE(legacy->ok);
  EXPECT_EQ(legacy->err().code, ParserErrorCode::kUNSUPPORTED_NODE);
  EXPECT_NE(legacy->err().desc.find("opset 4"), std::string::npos) << legacy->err().desc;

  auto newer = parse(make_model(relu_graph(), 23));
  EXPECT_TRUE(newer->ok) << errors_of(*newer);
  EXPECT_TRUE(newer->log.has(Severity::kWARNING, "opset 23"));

  for (int64_t opset = 7; opset <= 21; ++opset) EXPECT_TRUE(parse(make_model(relu_graph(), opset))->ok) << opset;
}

TEST(OnnxParser, UnknownOpIsUnsupportedNodeWithNodeDetails) {
  GraphSpec g = relu_graph();
  g.nodes.push_back(make_node("FancyOp", {"y"}, {"z"}, "fancy1"));
  g.outputs.push_back(untyped_output("z"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  ASSERT_EQ(p->parser->num_errors(), 1);
  const ParserError& e = p->err();
  EXPECT_EQ(e.code, ParserErrorCode::kUNSUPPORTED_NODE);
  EXPECT_EQ(e.node, 1);
  EXPECT_EQ(e.node_name, "fancy1");
  EXPECT_EQ(e.node_operator, "FancyOp");
  EXPECT_EQ(e.desc, "no importer for op 'FancyOp' (domain '')");
  EXPECT_EQ(e.str(), "In node 1 (fancy1, FancyOp): UNSUPPORTED_NODE: no importer for op 'FancyOp' (domain '')");
  EXPECT_FALSE(e.file.empty());
  EXPECT_GT(e.line, 0);
  EXPECT_FALSE(e.func.empty());
  EXPECT_TRUE(p->log.has(Severity::kERROR, "FancyOp"));
}

TEST(OnnxParser, UnknownDomainIsUnsupportedNode) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2)}));
  g.nodes.push_back(make_node("Relu", {"x"}, {"y"}, "r", {}, "com.example"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kUNSUPPORTED_NODE);
  EXPECT_NE(p->err().desc.find("domain 'com.example'"), std::string::npos);
}

TEST(OnnxParser, NodeReadingAnUndefinedTensorIsInvalidGraph) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2)}));
  g.nodes.push_back(make_node("Relu", {"later"}, {"y"}, "first"));  // out of topological order
  g.nodes.push_back(make_node("Relu", {"x"}, {"later"}, "second"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kINVALID_GRAPH);
  EXPECT_EQ(p->err().node, 0);
  EXPECT_NE(p->err().desc.find("'later'"), std::string::npos) << p->err().desc;
  EXPECT_NE(p->err().desc.find("first"), std::string::npos) << p->err().desc;
}

TEST(OnnxParser, UnsupportedInputTypesNameTheInput) {
  for (int32_t t : {kString, kComplex64}) {
    GraphSpec g;
    g.inputs.push_back(value_info("strange", t, {dv(2)}));
    g.nodes.push_back(make_node("Identity", {"strange"}, {"y"}));
    g.outputs.push_back(untyped_output("y"));
    auto p = parse(make_model(g));
    ASSERT_FALSE(p->ok);
    EXPECT_EQ(p->err().code, ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE);
    EXPECT_NE(p->err().desc.find("'strange'"), std::string::npos) << p->err().desc;
  }
}

TEST(OnnxParser, InputWithoutShapeIsRejected) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {}, /*has_shape=*/false));
  g.nodes.push_back(make_node("Relu", {"x"}, {"y"}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kUNSUPPORTED_GRAPH);
  EXPECT_NE(p->err().desc.find("'x'"), std::string::npos);
}

TEST(OnnxParser, StringInitializerIsRejectedWhenUsed) {
  GraphSpec g = relu_graph();
  g.inits.push_back(std::move(ProtoWriter().int64(1, 1).int32(2, kString).bytes(8, "names").bytes(6, "abc")));
  auto unused = parse(make_model(g));
  EXPECT_TRUE(unused->ok) << errors_of(*unused);
  EXPECT_TRUE(unused->log.has(Severity::kWARNING, "'names'"));
  g.nodes.push_back(make_node("Identity", {"names"}, {"n2"}));
  g.outputs.push_back(untyped_output("n2"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE);
  EXPECT_NE(p->err().desc.find("'names'"), std::string::npos);
}

TEST(OnnxParser, SparseInitializerAndSparseConstantAreRejectedClearly) {
  // GraphProto.sparse_initializer (15): the reader refuses it.
  ProtoWriter graph;
  graph.message(1, make_node("Relu", {"x"}, {"y"})).message(11, value_info("x", kFloat, {dv(2)}))
      .message(12, untyped_output("y")).message(15, ProtoWriter().message(1, float_tensor("sp", {1}, {1.f})));
  ProtoWriter model;
  model.int64(1, 8).message(8, ProtoWriter().bytes(1, "").int64(2, 13)).message(7, graph);
  auto p = parse(model.str());
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kMODEL_DESERIALIZE_FAILED);
  EXPECT_NE(p->err().desc.find("sparse"), std::string::npos) << p->err().desc;

  // Constant with sparse_value (AttributeProto type SPARSE_TENSOR = 11).
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2)}));
  g.nodes.push_back(make_node("Constant", {}, {"c"}, "sparse_const",
                              {std::move(ProtoWriter().bytes(1, "sparse_value").int32(20, 11))}));
  g.nodes.push_back(make_node("Add", {"x", "c"}, {"y"}));
  g.outputs.push_back(untyped_output("y"));
  auto q = parse(make_model(g));
  ASSERT_FALSE(q->ok);
  EXPECT_EQ(q->err().code, ParserErrorCode::kUNSUPPORTED_NODE_ATTR);
  EXPECT_NE(q->err().desc.find("sparse"), std::string::npos) << q->err().desc;
}

TEST(OnnxParser, MissingGraphOutputIsInvalidGraph) {
  GraphSpec g = relu_graph();
  g.outputs.push_back(untyped_output("nowhere"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kINVALID_GRAPH);
  EXPECT_NE(p->err().desc.find("'nowhere'"), std::string::npos);
}

TEST(OnnxParser, ShapeErrorInANodeIsInvalidNode) {
  GraphSpec g;
  g.inputs.push_back(value_info("a", kFloat, {dv(2), dv(3)}));
  g.inputs.push_back(value_info("b", kFloat, {dv(4), dv(5)}));
  g.nodes.push_back(make_node("Relu", {"a"}, {"r"}, "ok"));
  g.nodes.push_back(make_node("Add", {"r", "b"}, {"y"}, "bad_add"));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kINVALID_NODE);
  EXPECT_EQ(p->err().node, 1);
  EXPECT_EQ(p->err().node_name, "bad_add");
  EXPECT_NE(p->err().desc.find("broadcast"), std::string::npos) << p->err().desc;
}

TEST(OnnxParser, MissingRequiredAttributeAndInput) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3)}));
  g.nodes.push_back(make_node("Concat", {"x", "x"}, {"y"}, "cat"));  // axis is required
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kINVALID_NODE);
  EXPECT_NE(p->err().desc.find("'axis'"), std::string::npos) << p->err().desc;

  GraphSpec h;
  h.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3)}));
  h.nodes.push_back(make_node("Add", {"x"}, {"y"}, "add1"));
  h.outputs.push_back(untyped_output("y"));
  auto q = parse(make_model(h));
  ASSERT_FALSE(q->ok);
  EXPECT_EQ(q->err().code, ParserErrorCode::kINVALID_NODE);
  EXPECT_NE(q->err().desc.find("input 1"), std::string::npos) << q->err().desc;
}

TEST(OnnxParser, UnsupportedOutputsThatAreUsed) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(1), dv(1), dv(4), dv(4)}));
  g.nodes.push_back(make_node("MaxPool", {"x"}, {"y", "idx"}, "mp", {attr_ints("kernel_shape", {2, 2})}));
  g.outputs.push_back(untyped_output("y"));
  g.outputs.push_back(untyped_output("idx"));
  auto p = parse(make_model(g, 12));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kUNSUPPORTED_NODE);
  EXPECT_NE(p->err().desc.find("Indices"), std::string::npos);

  GraphSpec h;  // Dropout in training mode
  h.inputs.push_back(value_info("x", kFloat, {dv(2), dv(4)}));
  h.inputs.push_back(value_info("train", kBool, {}));
  h.nodes.push_back(make_node("Dropout", {"x", "", "train"}, {"y", "mask"}, "drop"));
  h.outputs.push_back(untyped_output("y"));
  auto q = parse(make_model(h, 13));
  ASSERT_FALSE(q->ok);
  EXPECT_EQ(q->err().code, ParserErrorCode::kUNSUPPORTED_NODE_INPUT);
}

TEST(OnnxParser, LayerNormStatisticsOutputs) {
  GraphSpec h;
  h.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3), dv(4)}));
  h.inits.push_back(float_tensor("s", {4}, {1, 1, 1, 1}));
  h.nodes.push_back(make_node("LayerNormalization", {"x", "s"}, {"y", "mean", "inv"}, "ln"));
  h.outputs.push_back(untyped_output("y"));
  h.outputs.push_back(untyped_output("mean"));
  h.outputs.push_back(untyped_output("inv"));
  auto q = parse(make_model(h, 17));
  ASSERT_TRUE(q->ok) << errors_of(*q);
  EXPECT_EQ(q->g().outputs()[0]->shape, (Dims{2, 3, 4}));
  EXPECT_EQ(q->g().outputs()[1]->shape, (Dims{2, 3, 1}));
  EXPECT_EQ(q->g().outputs()[2]->shape, (Dims{2, 3, 1}));
}

TEST(OnnxParser, UnsupportedAttributeValues) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(1), dv(1), dv(4), dv(4)}));
  g.inits.push_back(float_tensor("s", {4}, {1, 1, 2, 2}));
  g.nodes.push_back(make_node("Resize", {"x", "", "s"}, {"y"}, "rs",
                              {attr_s("coordinate_transformation_mode", "tf_crop_and_resize")}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g, 13));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kUNSUPPORTED_NODE_ATTR);
  EXPECT_NE(p->err().desc.find("tf_crop_and_resize"), std::string::npos);
}

TEST(OnnxParser, AttributeOfTheWrongTypeIsInvalidNode) {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dv(2), dv(3)}));
  g.nodes.push_back(make_node("Concat", {"x", "x"}, {"y"}, "cat", {attr_s("axis", "zero")}));
  g.outputs.push_back(untyped_output("y"));
  auto p = parse(make_model(g));
  ASSERT_FALSE(p->ok);
  EXPECT_EQ(p->err().code, ParserErrorCode::kINVALID_NODE);
  EXPECT_NE(p->err().desc.find("'axis'"), std::string::npos) << p->err().desc;
}

TEST(OnnxParser, ParserErrorStrWithoutNode) {
  ParserError e;
  e.code = ParserErrorCode::kINVALID_GRAPH;
  e.desc = "the model has no graph";
  EXPECT_EQ(e.str(), "INVALID_GRAPH: the model has no graph");
  e.node = 12;
  e.node_name = "conv2";
  e.node_operator = "Conv";
  e.code = ParserErrorCode::kUNSUPPORTED_NODE;
  e.desc = "why";
  EXPECT_EQ(e.str(), "In node 12 (conv2, Conv): UNSUPPORTED_NODE: why");
  e.node_name.clear();
  EXPECT_EQ(e.str(), "In node 12 (Conv): UNSUPPORTED_NODE: why");
}

TEST(OnnxParser, ErrorsAccumulateUntilCleared) {
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  const std::string bad = "\x0a\x05\x01";
  EXPECT_FALSE(parser.parse(bad.data(), bad.size()));
  EXPECT_FALSE(parser.parse(bad.data(), bad.size()));
  EXPECT_EQ(parser.num_errors(), 2);
  parser.clear_errors();
  EXPECT_EQ(parser.num_errors(), 0);
  EXPECT_THROW(parser.error(0), std::out_of_range);
}

// ---- files and external data ------------------------------------------------------------------------------
class OnnxParserFiles : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("kiln_onnx_parser_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  void write(const fs::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string external_model() {
    GraphSpec g;
    g.inputs.push_back(value_info("x", kFloat, {dv(3)}));
    ProtoWriter w;
    w.int64(1, 3).int32(2, kFloat).bytes(8, "w")
        .message(13, ProtoWriter().bytes(1, "location").bytes(2, "weights.bin"))
        .message(13, ProtoWriter().bytes(1, "offset").bytes(2, "4"))
        .int32(14, 1);
    g.inits.push_back(w);
    g.nodes.push_back(make_node("Add", {"x", "w"}, {"y"}));
    g.outputs.push_back(untyped_output("y"));
    return make_model(g);
  }
  void write_weights() {
    std::vector<float> v{99.f, 1.5f, 2.5f, 3.5f};
    std::string s(16, '\0');
    std::memcpy(s.data(), v.data(), 16);
    write(dir / "weights.bin", s);
  }
};

TEST_F(OnnxParserFiles, ParseFromFileReadsExternalDataNextToTheModel) {
  write(dir / "model.onnx", external_model());
  write_weights();
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  ASSERT_TRUE(parser.parse_from_file((dir / "model.onnx").string())) << parser.error(0).str();
  const HostTensor* w = ir::constant_value(net.graph().find_value("w"));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->data<float>()[0], 1.5f);
  EXPECT_EQ(w->data<float>()[2], 3.5f);
}

TEST_F(OnnxParserFiles, ParseWithPathLocatesExternalData) {
  write_weights();
  const std::string bytes = external_model();
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  ASSERT_TRUE(parser.parse(bytes.data(), bytes.size(), (dir / "model.onnx").string())) << parser.error(0).str();
  Network net2(&log);
  OnnxParser parser2(net2, &log);
  EXPECT_TRUE(parser2.parse(bytes.data(), bytes.size(), dir.string()));  // a directory works too
}

TEST_F(OnnxParserFiles, MissingExternalDataIsAnError) {
  write(dir / "model.onnx", external_model());
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  EXPECT_FALSE(parser.parse_from_file((dir / "model.onnx").string()));
  ASSERT_EQ(parser.num_errors(), 1);
  EXPECT_NE(parser.error(0).desc.find("weights.bin"), std::string::npos) << parser.error(0).desc;
}

TEST_F(OnnxParserFiles, MissingFileIsModelDeserializeFailed) {
  Capture log;
  Network net(&log);
  OnnxParser parser(net, &log);
  EXPECT_FALSE(parser.parse_from_file((dir / "absent.onnx").string()));
  ASSERT_EQ(parser.num_errors(), 1);
  EXPECT_EQ(parser.error(0).code, ParserErrorCode::kMODEL_DESERIALIZE_FAILED);
  EXPECT_NE(parser.error(0).desc.find("absent.onnx"), std::string::npos);
}

// ---- hostile bytes ------------------------------------------------------------------------------------------
std::string rich_model() {
  GraphSpec g;
  g.inputs.push_back(value_info("x", kFloat, {dp("N"), dv(2), dv(4), dv(4)}));
  g.inits.push_back(float_tensor("w", {2, 2, 3, 3}, std::vector<float>(36, 0.1f)));
  g.inits.push_back(int64_tensor("shape", {2}, {0, -1}));
  g.nodes.push_back(make_node("Conv", {"x", "w"}, {"c"}, "conv", {attr_ints("pads", {1, 1, 1, 1})}));
  g.nodes.push_back(make_node("Relu", {"c"}, {"r"}, "relu"));
  g.nodes.push_back(make_node("MaxPool", {"r"}, {"p"}, "pool", {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})}));
  g.nodes.push_back(make_node("Reshape", {"p", "shape"}, {"f"}, "reshape"));
  g.nodes.push_back(make_node("Softmax", {"f"}, {"y"}, "softmax", {attr_i("axis", 1)}));
  g.outputs.push_back(untyped_output("y"));
  return make_model(g, 11);
}

TEST(OnnxParser, RichModelParses) {
  auto p = parse(rich_model());
  ASSERT_TRUE(p->ok) << errors_of(*p);
  EXPECT_EQ(p->g().outputs()[0]->shape, (Dims{-1, 8}));
}

TEST(OnnxParser, TruncationAtEveryByteNeverCrashes) {
  const std::string m = rich_model();
  for (size_t n = 0; n < m.size(); ++n) {
    auto p = parse(m.substr(0, n));
    if (!p->ok) {
      EXPECT_GE(p->parser->num_errors(), 1) << n;
    }
  }
}

TEST(OnnxParser, RandomMutationsNeverCrash) {
  const std::string m = rich_model();
  std::mt19937 rng(42);
  for (int iter = 0; iter < 1500; ++iter) {
    std::string b = m;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) b[rng() % b.size()] = static_cast<char>(rng());
    auto p = parse(b);
    if (!p->ok) {
      ASSERT_GE(p->parser->num_errors(), 1);
      EXPECT_FALSE(p->err().desc.empty());
    }
  }
}

}  // namespace
}  // namespace kiln
