// Plan round trips: whatever write_plan stores, read_plan gives back exactly (graph orders, names, ops,
// attributes of every kind, tensors of every dtype, I/O table, profiles, engine scalars), tensors lie
// 64-byte aligned in the file, and the writer refuses engines it could not store faithfully.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "ir/op_registry.h"
#include "plan/plan_format.h"
#include "plan/plan_reader.h"
#include "plan/plan_writer.h"
#include "plan_test_util.h"

namespace kiln::plan {
namespace {

using test::expect_graphs_equal;
using test::make_test_engine;

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a kiln::Error";
  return "";
}

void expect_io_equal(const std::vector<IOTensorInfo>& a, const std::vector<IOTensorInfo>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].is_input, b[i].is_input);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    EXPECT_EQ(a[i].shape, b[i].shape);
    ASSERT_EQ(a[i].profiles.size(), b[i].profiles.size());
    for (size_t p = 0; p < a[i].profiles.size(); ++p) {
      EXPECT_EQ(a[i].profiles[p].min, b[i].profiles[p].min);
      EXPECT_EQ(a[i].profiles[p].opt, b[i].profiles[p].opt);
      EXPECT_EQ(a[i].profiles[p].max, b[i].profiles[p].max);
    }
  }
}

void expect_engines_equal(const EngineData& a, const EngineData& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.num_profiles, b.num_profiles);
  EXPECT_EQ(a.device_memory_size, b.device_memory_size);
  EXPECT_EQ(a.workspace_limit, b.workspace_limit);
  EXPECT_EQ(a.weights_bytes, b.weights_bytes);
  expect_io_equal(a.io, b.io);
  ASSERT_TRUE(a.graph && b.graph);
  expect_graphs_equal(*a.graph, *b.graph);
}

TEST(PlanRoundTrip, PreservesEverything) {
  EngineData e = make_test_engine();
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  expect_engines_equal(e, r);
  EXPECT_EQ(r.kiln_version, KILN_VERSION);  // an empty kiln_version is written as this Kiln's

  // Spot checks beyond the generic comparison.
  const ir::Graph& g = *r.graph;
  ASSERT_EQ(g.inputs().size(), 2u);
  EXPECT_EQ(g.inputs()[1]->name, "mask");
  EXPECT_EQ(g.inputs()[1]->id, 3);  // added after two nodes: its slot is kept
  const ir::Node* conv = g.find_node("conv1");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->inputs[2], nullptr);
  EXPECT_EQ(conv->inputs[0], g.inputs()[0]);
  EXPECT_EQ(conv->attrs.tensor("t_scalar_i64").shape(), Dims{});
  EXPECT_EQ(conv->attrs.tensor("t_scalar_i64").get_i64(0), -77);
  EXPECT_EQ(conv->attrs.tensor("t_empty_i32").shape(), (Dims{0, 3}));
  EXPECT_EQ(conv->attrs.tensor("t_empty_i32").nbytes(), 0u);
  EXPECT_EQ(conv->attrs.s("mode", ""), "NOTSET");
  EXPECT_EQ(conv->attrs.i("negative", 0), -9000000000LL);
  EXPECT_EQ(conv->attrs.floats("scales"), (std::vector<double>{0.5, -2.25, 1e300}));
  EXPECT_EQ(*conv->precision, DataType::kHALF);
  EXPECT_EQ(g.node(3)->name, "");
  EXPECT_EQ(g.node(4)->outputs.size(), 0u);
  for (auto& v : g.values()) EXPECT_EQ(v->is_input, v->producer == nullptr);
}

TEST(PlanRoundTrip, TacticsSurvive) {
  EngineData e = make_test_engine();
  e.tactics->record("gemm|sm_90|128x768x768", std::string("\x00\x01" "binary" "\xff", 9));
  e.tactics->record("conv|sm_90|k3", "7");
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  ASSERT_TRUE(r.tactics);
  EXPECT_EQ(r.tactics->size(), 2u);
  EXPECT_EQ(r.tactics->find("gemm|sm_90|128x768x768"), std::string("\x00\x01" "binary" "\xff", 9));
  EXPECT_EQ(r.tactics->find("conv|sm_90|k3"), "7");
  EXPECT_EQ(r.tactics->serialize(), e.tactics->serialize());
}

TEST(PlanRoundTrip, HeaderDescribesThePlan) {
  EngineData e = make_test_engine();
  e.target = "cuda:sm_90";
  std::vector<uint8_t> bytes = write_plan(e);
  ASSERT_GE(bytes.size(), 64u);
  EXPECT_EQ(std::memcmp(bytes.data(), "KILNPLAN", 8), 0);
  PlanHeader h = read_plan_header(bytes.data(), bytes.size());
  EXPECT_EQ(h.format_version, kPlanFormatVersion);
  EXPECT_EQ(h.target, "cuda:sm_90");
  EXPECT_EQ(h.kiln_version, KILN_VERSION);
  EXPECT_EQ(h.header_size % 64, 0u);
  EXPECT_EQ(h.header_size + h.payload_size, bytes.size());
  EXPECT_EQ(read_plan(bytes.data(), bytes.size(), "cuda:sm_90").target, "cuda:sm_90");
  EXPECT_EQ(read_plan(bytes.data(), bytes.size(), "cuda").target, "cuda:sm_90");
}

TEST(PlanRoundTrip, WritingIsDeterministicAndStable) {
  EngineData e = make_test_engine();
  std::vector<uint8_t> a = write_plan(e);
  EXPECT_EQ(a, write_plan(e));
  EngineData r = read_plan(a.data(), a.size());
  EXPECT_EQ(a, write_plan(r));  // read then write again: the same bytes
  EngineData r2 = read_plan(a.data(), a.size());
  expect_engines_equal(r, r2);
}

TEST(PlanRoundTrip, SharedTensorsAreStoredOnceAndShareAgain) {
  EngineData e = make_test_engine();
  std::vector<uint8_t> shared = write_plan(e);
  // Give "beta" its own storage: the plan grows by at least its 64 bytes.
  ir::Node* act = e.graph->node(3);
  act->attrs.set("beta", act->attrs.tensor("beta").deep_copy());
  std::vector<uint8_t> separate = write_plan(e);
  EXPECT_GE(separate.size(), shared.size() + 64);

  EngineData r = read_plan(shared.data(), shared.size());
  const ir::Node* ra = r.graph->node(3);
  EXPECT_EQ(ra->attrs.tensor("alpha").raw(), ra->attrs.tensor("beta").raw());
  EXPECT_EQ(ra->attrs.tensor("beta").shape(), (Dims{4, 4}));
}

TEST(PlanRoundTrip, TensorsAre64ByteAlignedInTheFileAndCanBeBorrowed) {
  EngineData e = make_test_engine();
  std::vector<uint8_t> bytes = write_plan(e);
  // A 64-byte aligned copy of the plan, owned by a shared_ptr.
  auto buf = std::make_shared<HostTensor>(DataType::kUINT8, Dims{static_cast<int64_t>(bytes.size())});
  std::memcpy(buf->mutable_raw(), bytes.data(), bytes.size());
  const uint8_t* base = buf->data<uint8_t>();
  ASSERT_EQ(reinterpret_cast<uintptr_t>(base) % 64, 0u);
  EngineData r = read_plan_in_place(buf, base, bytes.size());
  int borrowed = 0;
  for (auto& n : r.graph->nodes())
    for (auto& [k, v] : n->attrs.all())
      if (auto* t = std::get_if<HostTensor>(&v)) {
        auto* p = static_cast<const uint8_t*>(t->raw());
        ASSERT_TRUE(p >= base && p <= base + bytes.size()) << k;
        EXPECT_EQ((p - base) % 64, 0) << k;
        if (t->nbytes()) {
          EXPECT_EQ(std::memcmp(bytes.data() + (p - base), p, t->nbytes()), 0);
          ++borrowed;
        }
      }
  EXPECT_GT(borrowed, 10);
  std::weak_ptr<HostTensor> alive = buf;
  buf.reset();
  EXPECT_FALSE(alive.expired());  // the engine's tensors keep the plan's bytes alive
  expect_engines_equal(e, r);
  r.graph.reset();
  EXPECT_TRUE(alive.expired());
}

TEST(PlanRoundTrip, CopiedTensorsDoNotReferToThePlan) {
  EngineData e = make_test_engine();
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  std::fill(bytes.begin(), bytes.end(), 0xAB);
  bytes.clear();
  bytes.shrink_to_fit();
  expect_engines_equal(e, r);
  for (auto& n : r.graph->nodes())
    for (auto& [k, v] : n->attrs.all())
      if (auto* t = std::get_if<HostTensor>(&v)) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(t->raw()) % 64, 0u) << k;
      }
}

TEST(PlanRoundTrip, EmptyGraphAndDefaults) {
  EngineData e;
  e.graph = std::make_unique<ir::Graph>();
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  expect_engines_equal(e, r);
  EXPECT_EQ(r.target, "cpu");
  EXPECT_EQ(r.num_profiles, 1);
  EXPECT_TRUE(r.io.empty());
}

TEST(PlanRoundTrip, DefaultConstructedTensorAttributeStaysEmpty) {
  EngineData e;
  e.graph = std::make_unique<ir::Graph>();
  ir::Node* n = e.graph->add_node("PlanTestOp", "n", {}, 1);
  n->attrs.set("none", HostTensor());
  n->attrs.set("none_typed", HostTensor::wrap(DataType::kINT64, {2, 3}, nullptr, nullptr));
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  const auto& a = r.graph->node(0)->attrs;
  EXPECT_TRUE(a.tensor("none").empty());
  EXPECT_EQ(a.tensor("none").dtype(), DataType::kFLOAT);
  EXPECT_TRUE(a.tensor("none_typed").empty());
  EXPECT_EQ(a.tensor("none_typed").dtype(), DataType::kINT64);
  EXPECT_EQ(a.tensor("none_typed").shape(), (Dims{2, 3}));
}

TEST(PlanRoundTrip, FloatBitPatternsSurvive) {
  const double nan = std::bit_cast<double>(0x7ff8dead0000beefull);
  std::vector<double> specials = {-0.0, nan, std::numeric_limits<double>::infinity(),
                                  -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::denorm_min(),
                                  std::numeric_limits<double>::max()};
  EngineData e;
  e.graph = std::make_unique<ir::Graph>();
  ir::Node* n = e.graph->add_node("PlanTestOp", "n", {}, 0);
  n->attrs.set("list", specials);
  n->attrs.set("nan", nan);
  n->attrs.set("negzero", -0.0);
  n->attrs.set("imin", std::numeric_limits<int64_t>::min());
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  const auto& a = r.graph->node(0)->attrs;
  std::vector<double> got = a.floats("list");
  ASSERT_EQ(got.size(), specials.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint64_t>(got[i]), std::bit_cast<uint64_t>(specials[i])) << i;
  EXPECT_EQ(std::bit_cast<uint64_t>(a.f("nan", 0)), std::bit_cast<uint64_t>(nan));
  EXPECT_TRUE(std::signbit(a.f("negzero", 1)));
  EXPECT_EQ(a.i("imin", 0), std::numeric_limits<int64_t>::min());
}

TEST(PlanRoundTrip, ValueOrderSurvivesTopoSortAndRemoval) {
  EngineData e;
  e.graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *e.graph;
  ir::Value* x = g.add_input("x", DataType::kFLOAT, {2});
  // Create the consumer first, then its producer, then sort: node order != value creation order.
  ir::Node* late = g.add_node("PlanTestUnary", "consumer", {x}, 1);
  ir::Node* early = g.add_node("PlanTestUnary", "producer", {x}, 1);
  ir::Node* dead = g.add_node("PlanTestUnary", "dead", {x}, 1);
  ir::Value* y = g.add_input("y", DataType::kHALF, {3});
  late->inputs[0] = early->outputs[0];
  ir::Node* last = g.add_node("PlanTestOp", "last", {late->outputs[0], y}, 2);
  g.mark_output(last->outputs[1]);
  g.mark_output(last->outputs[0]);
  g.remove_nodes_if([&](const ir::Node* n) { return n == dead; });
  g.topo_sort();
  ASSERT_EQ(g.node(0)->name, "producer");
  ASSERT_EQ(g.values()[1]->producer->name, "consumer");  // values keep their old order

  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  expect_graphs_equal(g, *r.graph);
  EXPECT_EQ(r.graph->outputs()[0]->name, "last_output_1");
}

TEST(PlanRoundTrip, DuplicateAndEmptyNamesSurvive) {
  EngineData e;
  e.graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *e.graph;
  ir::Node* n = g.add_node("PlanTestConst", "c", {}, 1);
  n->outputs[0]->name = "a";
  g.add_input("a_input", DataType::kFLOAT, {1});
  g.inputs()[0]->name = "a";  // two tensors named "a"
  ir::Node* m = g.add_node("PlanTestOp", "c", {g.inputs()[0], n->outputs[0]}, 1);  // two layers named "c"
  m->outputs[0]->name = "";
  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size());
  expect_graphs_equal(g, *r.graph);
}

TEST(PlanRoundTrip, LargeWeights) {
  EngineData e = make_test_engine(1 << 20);  // 4 MiB of float weights
  std::vector<uint8_t> bytes = write_plan(e);
  EXPECT_GT(bytes.size(), 4u << 20);
  EngineData r = read_plan(bytes.data(), bytes.size());
  expect_engines_equal(e, r);
}

// The same with Kiln's real ops (registered in ir/ops/*.cpp), built through Graph::add_constant.
TEST(PlanRoundTrip, RealOps) {
  for (const char* op : {"Constant", "Convolution", "Activation", "ElementWise"})
    ASSERT_NE(ir::find_op(op), nullptr) << "op " << op << " is not registered in this build";
  EngineData e;
  e.graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *e.graph;
  ir::Value* x = g.add_input("input", DataType::kFLOAT, {1, 3, 8, 8});
  std::vector<float> wv(4 * 3 * 3 * 3), bv(4);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = 0.01f * static_cast<float>(i) - 0.5f;
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = 0.25f * static_cast<float>(i) + 0.1f;
  ir::Node* w = g.add_constant("conv.weight", HostTensor::from_f32(wv, {4, 3, 3, 3}));
  ir::Node* b = g.add_constant("conv.bias", HostTensor::from_f32(bv, {4}));
  ir::Node* conv = g.add_node("Convolution", "conv", {x, w->outputs[0], b->outputs[0]}, 1);
  conv->attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv->outputs[0]->shape = {1, 4, 8, 8};
  ir::Node* relu = g.add_node("Activation", "relu", {conv->outputs[0]}, 1);
  relu->attrs.set("type", int64_t{0});
  relu->outputs[0]->shape = {1, 4, 8, 8};
  ir::Node* add = g.add_node("ElementWise", "add", {relu->outputs[0], conv->outputs[0]}, 1);
  add->attrs.set("op", int64_t{0});
  add->outputs[0]->name = "output";
  add->outputs[0]->shape = {1, 4, 8, 8};
  g.mark_output(add->outputs[0]);
  e.io = {IOTensorInfo{"input", true, DataType::kFLOAT, {1, 3, 8, 8}, {{{1, 3, 8, 8}, {1, 3, 8, 8}, {1, 3, 8, 8}}}},
          IOTensorInfo{"output", false, DataType::kFLOAT, {1, 4, 8, 8}, {}}};

  std::vector<uint8_t> bytes = write_plan(e);
  EngineData r = read_plan(bytes.data(), bytes.size(), "cpu");
  expect_engines_equal(e, r);
  const HostTensor* rw = ir::constant_value(r.graph->find_node("conv")->inputs[1]);
  ASSERT_NE(rw, nullptr);
  EXPECT_EQ(rw->shape(), (Dims{4, 3, 3, 3}));
  EXPECT_EQ(rw->get_f64(5), static_cast<double>(wv[5]));
}

TEST(PlanWriter, RefusesEnginesItCannotStore) {
  {
    EngineData e;
    EXPECT_NE(error_of([&] { write_plan(e); }).find("no graph"), std::string::npos);
  }
  {
    EngineData e = make_test_engine();
    ir::Graph other;
    ir::Value* stranger = other.add_input("stranger", DataType::kFLOAT, {1});
    e.graph->node(1)->inputs[2] = stranger;
    EXPECT_NE(error_of([&] { write_plan(e); }).find("layer 'conv1' refers to a tensor that is not in the graph"),
              std::string::npos);
  }
  {
    EngineData e = make_test_engine();
    e.graph->node(1)->attrs.set("bad", HostTensor::wrap(DataType::kFLOAT, {-1, 2}, nullptr, reinterpret_cast<void*>(64)));
    EXPECT_NE(error_of([&] { write_plan(e); }).find("unknown shape [-1, 2]"), std::string::npos);
  }
  {
    EngineData e = make_test_engine();
    e.graph->values()[0]->dtype = static_cast<DataType>(42);
    EXPECT_NE(error_of([&] { write_plan(e); }).find("tensor 'x' has an invalid data type (42)"), std::string::npos);
  }
  {
    EngineData e = make_test_engine();
    e.target = std::string(300, 'c');
    EXPECT_NE(error_of([&] { write_plan(e); }).find("target name is longer"), std::string::npos);
  }
  {
    EngineData e = make_test_engine();
    ir::Node* n = e.graph->node(2);
    n->outputs.push_back(e.graph->inputs()[1]);  // "mask" is a network input
    EXPECT_NE(error_of([&] { write_plan(e); }).find("tensor 'mask' is produced by layer 'split'"), std::string::npos);
  }
  {
    EngineData e = make_test_engine();
    e.graph->node(4)->outputs.clear();
    e.graph->node(2)->outputs.pop_back();  // split_output_2 is now produced by nothing
    EXPECT_NE(error_of([&] { write_plan(e); }).find("'split_output_2' is neither a network input nor produced"),
              std::string::npos);
  }
}

TEST(PlanReader, RefusesUnknownOpsNamingThem) {
  EngineData e = make_test_engine();
  e.graph->node(2)->op = "FluxCapacitor";
  std::vector<uint8_t> bytes = write_plan(e);
  std::string msg = error_of([&] { read_plan(bytes.data(), bytes.size()); });
  EXPECT_NE(msg.find("op 'FluxCapacitor'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer 'split'"), std::string::npos) << msg;
}

TEST(PlanReader, RefusesNodesWithTheWrongArity) {
  EngineData e = make_test_engine();
  ir::Node* act = e.graph->node(3);  // PlanTestUnary: exactly one input
  act->inputs.push_back(nullptr);
  std::vector<uint8_t> bytes = write_plan(e);
  std::string msg = error_of([&] { read_plan(bytes.data(), bytes.size()); });
  EXPECT_NE(msg.find("(PlanTestUnary) has 2 inputs, the op takes 1 to 1"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kiln::plan
