// Shared by the plan tests: test-only ops, an engine that exercises every part of the plan format, a
// deep graph comparison and a helper that hand-assembles (and seals) plans.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "plan/byte_writer.h"
#include "plan/plan_format.h"
#include "runtime/engine_data.h"

namespace kiln::plan::test {

inline void plan_test_infer(ir::InferContext&) {}

// Test-only ops (inline variables: registered once however many test files include this header).
inline const bool kPlanTestOpsRegistered = [] {
  ir::register_op({"PlanTestOp", 0, -1, -1, plan_test_infer});     // any inputs, any outputs
  ir::register_op({"PlanTestConst", 0, 0, 1, plan_test_infer});    // no inputs, one output
  ir::register_op({"PlanTestUnary", 1, 1, 1, plan_test_infer});    // exactly one input and one output
  return true;
}();

template <class T>
HostTensor make_tensor(DataType dt, Dims shape, std::mt19937& rng) {
  HostTensor t(dt, shape);
  auto* p = static_cast<uint8_t*>(t.mutable_raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng() | 1);  // never all-zero
  return t;
}

// A graph with several ops, every attribute kind, tensors of every dtype (incl. empty and 0-d),
// optional (omitted) inputs, a late network input, multi-output nodes, renamed outputs, precision and
// output types; plus an I/O table with two profiles.
inline EngineData make_test_engine(int weight_elems = 4 * 3 * 3 * 3) {
  (void)kPlanTestOpsRegistered;
  std::mt19937 rng(1234);
  EngineData e;
  e.name = "plan-test-engine";
  e.target = "cpu";
  e.num_profiles = 2;
  e.device_memory_size = 123456789012ull;
  e.workspace_limit = 1ull << 33;
  e.weights_bytes = 4242;
  e.graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *e.graph;

  ir::Value* x = g.add_input("x", DataType::kFLOAT, {-1, 3, 8, 8});
  ir::Node* w = g.add_node("PlanTestConst", "weights", {}, 1);
  w->attrs.set("value", make_tensor<float>(DataType::kFLOAT, {weight_elems}, rng));
  w->outputs[0]->dtype = DataType::kFLOAT;
  w->outputs[0]->shape = {weight_elems};

  ir::Node* conv = g.add_node("PlanTestOp", "conv1", {x, w->outputs[0], nullptr}, 1);
  conv->attrs.set("group", int64_t{1});
  conv->attrs.set("negative", int64_t{-9000000000LL});
  conv->attrs.set("eps", 1e-5);
  conv->attrs.set("mode", "NOTSET");
  conv->attrs.set("empty_string", "");
  conv->attrs.set("strides", std::vector<int64_t>{1, 2});
  conv->attrs.set("no_ints", std::vector<int64_t>{});
  conv->attrs.set("scales", std::vector<double>{0.5, -2.25, 1e300});
  conv->attrs.set("no_floats", std::vector<double>{});
  conv->attrs.set("bias_f16", make_tensor<uint16_t>(DataType::kHALF, {4}, rng));
  conv->attrs.set("t_bf16", make_tensor<uint16_t>(DataType::kBF16, {2, 3}, rng));
  conv->attrs.set("t_i8", make_tensor<int8_t>(DataType::kINT8, {5}, rng));
  conv->attrs.set("t_i32", make_tensor<int32_t>(DataType::kINT32, {3, 1}, rng));
  conv->attrs.set("t_bool", make_tensor<uint8_t>(DataType::kBOOL, {7}, rng));
  conv->attrs.set("t_u8", make_tensor<uint8_t>(DataType::kUINT8, {65}, rng));
  conv->attrs.set("t_fp8", make_tensor<uint8_t>(DataType::kFP8, {3}, rng));
  conv->attrs.set("t_i4", make_tensor<uint8_t>(DataType::kINT4, {2}, rng));
  conv->attrs.set("t_f64", make_tensor<double>(DataType::kDOUBLE, {2, 2}, rng));
  conv->attrs.set("t_scalar_i64", HostTensor::scalar_i64(-77));
  conv->attrs.set("t_empty_i32", HostTensor(DataType::kINT32, {0, 3}));
  conv->attrs.set("t_empty_rank1", HostTensor(DataType::kFLOAT, {0}));
  conv->precision = DataType::kHALF;
  conv->output_types[0] = DataType::kFLOAT;
  conv->outputs[0]->dtype = DataType::kFLOAT;
  conv->outputs[0]->shape = {-1, 4, 8, 8};

  // A network input added after some nodes: values are not "inputs first".
  ir::Value* mask = g.add_input("mask", DataType::kBOOL, {1, 8});
  ir::Node* split = g.add_node("PlanTestOp", "split", {conv->outputs[0], mask}, 3);
  split->outputs[0]->name = "y1";
  split->outputs[0]->shape = {-1, 2, 8, 8};
  split->outputs[1]->dtype = DataType::kHALF;
  split->outputs[1]->shape = {-1, 2, 8, 8};
  split->outputs[2]->dtype = DataType::kINT64;
  split->outputs[2]->shape = {};
  split->output_types = {std::nullopt, DataType::kHALF, std::nullopt};
  split->attrs.set("axis", int64_t{1});

  // Shared weights: two attributes holding copies of one HostTensor are stored once.
  HostTensor shared = make_tensor<float>(DataType::kFLOAT, {16}, rng);
  ir::Node* act = g.add_node("PlanTestUnary", "act", {split->outputs[1]}, 1);
  act->name = "";  // an empty layer name
  act->attrs.set("alpha", shared);
  act->attrs.set("beta", shared.reshaped({4, 4}));
  act->attrs.set("\xc3\xa9t\xc3\xa9 key", "unicode \xe2\x9c\x93");
  act->outputs[0]->name = "";  // an empty tensor name
  act->outputs[0]->dtype = DataType::kHALF;
  act->outputs[0]->shape = {-1, 2, 8, 8};

  ir::Node* sink = g.add_node("PlanTestOp", "sink_no_outputs", {act->outputs[0], nullptr, nullptr}, 0);
  sink->attrs.set("note", "a node with no outputs");

  g.mark_output(split->outputs[0]);
  g.mark_output(act->outputs[0]);
  g.mark_output(split->outputs[2]);

  IOTensorInfo ix{"x", true, DataType::kFLOAT, {-1, 3, 8, 8}, {}};
  ix.profiles = {{{1, 3, 8, 8}, {4, 3, 8, 8}, {8, 3, 8, 8}}, {{16, 3, 8, 8}, {32, 3, 8, 8}, {64, 3, 8, 8}}};
  IOTensorInfo im{"mask", true, DataType::kBOOL, {1, 8}, {}};
  im.profiles = {{{1, 8}, {1, 8}, {1, 8}}, {{1, 8}, {1, 8}, {1, 8}}};
  e.io = {ix, im, IOTensorInfo{"y1", false, DataType::kFLOAT, {-1, 2, 8, 8}, {}},
          IOTensorInfo{"", false, DataType::kHALF, {-1, 2, 8, 8}, {}},
          IOTensorInfo{"split_output_2", false, DataType::kINT64, {}, {}}};
  return e;
}

inline int vid(const ir::Value* v) { return v ? v->id : -1; }

// Deep comparison: orders, names, ops, attributes, values (ids, names, dtypes, shapes, flags,
// producers), network inputs/outputs, precision and output types.
inline void expect_graphs_equal(const ir::Graph& a, const ir::Graph& b) {
  ASSERT_EQ(a.values().size(), b.values().size());
  for (size_t i = 0; i < a.values().size(); ++i) {
    const ir::Value& va = *a.values()[i];
    const ir::Value& vb = *b.values()[i];
    SCOPED_TRACE("value #" + std::to_string(i) + " '" + va.name + "'");
    EXPECT_EQ(va.id, static_cast<int>(i));
    EXPECT_EQ(vb.id, static_cast<int>(i));
    EXPECT_EQ(va.name, vb.name);
    EXPECT_EQ(va.dtype, vb.dtype);
    EXPECT_EQ(va.shape, vb.shape);
    EXPECT_EQ(va.is_input, vb.is_input);
    EXPECT_EQ(va.is_output, vb.is_output);
    EXPECT_EQ(va.producer ? va.producer->id : -1, vb.producer ? vb.producer->id : -1);
  }
  ASSERT_EQ(a.inputs().size(), b.inputs().size());
  for (size_t i = 0; i < a.inputs().size(); ++i) EXPECT_EQ(a.inputs()[i]->id, b.inputs()[i]->id);
  ASSERT_EQ(a.outputs().size(), b.outputs().size());
  for (size_t i = 0; i < a.outputs().size(); ++i) EXPECT_EQ(a.outputs()[i]->id, b.outputs()[i]->id);
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    const ir::Node& na = *a.nodes()[i];
    const ir::Node& nb = *b.nodes()[i];
    SCOPED_TRACE("node #" + std::to_string(i) + " '" + na.name + "'");
    EXPECT_EQ(nb.id, static_cast<int>(i));
    EXPECT_EQ(na.name, nb.name);
    EXPECT_EQ(na.op, nb.op);
    EXPECT_TRUE(na.attrs == nb.attrs);
    ASSERT_EQ(na.inputs.size(), nb.inputs.size());
    for (size_t k = 0; k < na.inputs.size(); ++k) EXPECT_EQ(vid(na.inputs[k]), vid(nb.inputs[k]));
    ASSERT_EQ(na.outputs.size(), nb.outputs.size());
    for (size_t k = 0; k < na.outputs.size(); ++k) {
      EXPECT_EQ(na.outputs[k]->id, nb.outputs[k]->id);
      EXPECT_EQ(nb.outputs[k]->producer, &nb);
    }
    EXPECT_EQ(na.precision, nb.precision);
    EXPECT_EQ(na.output_types, nb.output_types);
  }
  EXPECT_EQ(a.to_string(), b.to_string());
}

// Recomputes and stores the checksum of a plan whose bytes were edited on purpose.
inline void reseal(std::vector<uint8_t>& plan) {
  uint32_t tlen = 0, vlen = 0;
  std::memcpy(&tlen, plan.data() + kTargetOffset, 4);
  std::memcpy(&vlen, plan.data() + kTargetOffset + 4 + tlen, 4);
  size_t at = plan_checksum_offset(tlen, vlen);
  uint64_t sum = plan_checksum(plan.data(), plan.size(), at);
  std::memcpy(plan.data() + at, &sum, 8);
}

// Assembles a plan around hand-written section contents (used to reach the checks behind the checksum).
inline std::vector<uint8_t> assemble(const std::vector<std::pair<uint32_t, std::vector<uint8_t>>>& sections,
                                     const std::string& target = "cpu", const std::string& version = KILN_VERSION) {
  ByteWriter w;
  size_t hs = plan_header_size(target.size(), version.size());
  w.raw(kPlanMagic, 8);
  w.u32(kPlanFormatVersion);
  w.u32(static_cast<uint32_t>(hs));
  w.str(target);
  w.str(version);
  size_t psize_at = w.size();
  w.u64(0);
  w.u64(0);
  w.zeros(hs - w.size());
  for (auto& [tag, content] : sections) {
    w.u32(tag);
    w.u32(0);
    w.u64(content.size());
    w.raw(content.data(), content.size());
  }
  w.patch_u64(psize_at, w.size() - hs);
  std::vector<uint8_t> out = w.take();
  reseal(out);
  return out;
}

}  // namespace kiln::plan::test
