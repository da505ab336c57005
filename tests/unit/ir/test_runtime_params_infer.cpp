// Ops whose parameters may be run-time tensors (Reduce/Squeeze/Unsqueeze axes, Resize sizes/scales with axes):
// inference with the tensor's value unknown (-1 dims, known rank), with it known (exact shapes), and the CPU
// kernels reading the values at run time, checked against naive references on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/cpu/eval.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

namespace kiln {
namespace {

using Ints = std::vector<int64_t>;

struct OneNode {
  ir::Graph g;
  ir::Node* n = nullptr;
  OneNode(const std::string& op, const std::vector<std::pair<DataType, Dims>>& ins, ir::Attrs at) {
    std::vector<ir::Value*> vals;
    for (size_t i = 0; i < ins.size(); ++i) vals.push_back(g.add_input("in" + std::to_string(i), ins[i].first, ins[i].second));
    n = g.add_node(op, "node", vals, 1);
    n->attrs = std::move(at);
  }
  // Output shape with input i's value given (nullptr: unknown).
  Dims infer(const std::vector<const HostTensor*>& values) {
    std::vector<ir::TensorInfo> infos;
    for (size_t i = 0; i < n->inputs.size(); ++i)
      infos.push_back({true, n->inputs[i]->dtype, n->inputs[i]->shape, i < values.size() ? values[i] : nullptr});
    return ir::infer_node(*n, infos)[0].shape;
  }
};

ir::Attrs reduce_attrs(int64_t op, bool keep, bool noop = false) {
  ir::Attrs at;
  at.set("op", op);
  at.set("keep_dims", int64_t{keep});
  at.set("noop_with_empty_axes", int64_t{noop});
  return at;
}

TEST(RuntimeParamsInfer, ReduceAxesInput) {
  OneNode keep("Reduce", {{DataType::kFLOAT, {2, 3, 4}}, {DataType::kINT64, {2}}}, reduce_attrs(0, true));
  EXPECT_EQ(keep.infer({}), (Dims{-1, -1, -1}));
  HostTensor axes = HostTensor::from_i64({0, -1});
  EXPECT_EQ(keep.infer({nullptr, &axes}), (Dims{1, 3, 1}));
  OneNode drop("Reduce", {{DataType::kFLOAT, {2, 3, 4}}, {DataType::kINT64, {2}}}, reduce_attrs(0, false));
  EXPECT_EQ(drop.infer({}), (Dims{-1}));
  EXPECT_EQ(drop.infer({nullptr, &axes}), (Dims{3}));
  OneNode noop("Reduce", {{DataType::kFLOAT, {2, 3}}, {DataType::kINT64, {0}}}, reduce_attrs(0, false, true));
  EXPECT_EQ(noop.infer({}), (Dims{2, 3}));
  OneNode bad("Reduce", {{DataType::kFLOAT, {2, 3}}, {DataType::kFLOAT, {1}}}, reduce_attrs(0, true));
  EXPECT_THROW(bad.infer({}), Error);
}

TEST(RuntimeParamsInfer, SqueezeUnsqueezeAxesInput) {
  OneNode sq("Squeeze", {{DataType::kFLOAT, {3, 1, 4, 1}}, {DataType::kINT64, {2}}}, {});
  EXPECT_EQ(sq.infer({}), (Dims{-1, -1}));
  HostTensor a = HostTensor::from_i64({1, -1});
  EXPECT_EQ(sq.infer({nullptr, &a}), (Dims{3, 4}));
  HostTensor wrong = HostTensor::from_i64({0, 1});
  EXPECT_THROW(sq.infer({nullptr, &wrong}), Error);  // axis 0 has size 3
  OneNode un("Unsqueeze", {{DataType::kFLOAT, {3, 4}}, {DataType::kINT64, {2}}}, {});
  EXPECT_EQ(un.infer({}), (Dims{-1, -1, -1, -1}));
  HostTensor b = HostTensor::from_i64({0, 3});
  EXPECT_EQ(un.infer({nullptr, &b}), (Dims{1, 3, 4, 1}));
}

TEST(RuntimeParamsInfer, ResizeRuntimeSizesAndScalesWithAxes) {
  ir::Attrs at;
  at.set("axes", Ints{3, 2});
  OneNode sizes("Resize", {{DataType::kFLOAT, {1, 2, 4, 5}}, {DataType::kINT64, {2}}}, at);
  EXPECT_EQ(sizes.infer({}), (Dims{1, 2, -1, -1}));
  HostTensor s = HostTensor::from_i64({7, 3});
  EXPECT_EQ(sizes.infer({nullptr, &s}), (Dims{1, 2, 3, 7}));
  OneNode scales("Resize", {{DataType::kFLOAT, {1, 2, 4, 5}}, {DataType::kINT64, {0}}, {DataType::kFLOAT, {2}}}, at);
  HostTensor f = HostTensor::from_f32({2.0f, 0.5f}, {2});
  EXPECT_EQ(scales.infer({nullptr, nullptr, &f}), (Dims{1, 2, 2, 10}));
  HostTensor three = HostTensor::from_f32({2.0f, 0.5f, 1.0f}, {3});
  OneNode bad("Resize", {{DataType::kFLOAT, {1, 2, 4, 5}}, {DataType::kINT64, {0}}, {DataType::kFLOAT, {3}}}, at);
  EXPECT_THROW(bad.infer({}), Error);
}

// Naive reduction of a [A, B, C] float tensor over the axes flagged in `red` (SUM, or MAX).
std::vector<float> naive_reduce(const HostTensor& x, const std::vector<bool>& red, bool max) {
  const Dims& s = x.shape();
  Dims out;
  for (int d = 0; d < 3; ++d) out.push_back(red[d] ? 1 : s[d]);
  std::vector<float> y(static_cast<size_t>(volume(out)), max ? -INFINITY : 0.0f);
  for (int64_t a = 0; a < s[0]; ++a)
    for (int64_t b = 0; b < s[1]; ++b)
      for (int64_t c = 0; c < s[2]; ++c) {
        int64_t o = ((red[0] ? 0 : a) * out[1] + (red[1] ? 0 : b)) * out[2] + (red[2] ? 0 : c);
        float v = x.data<float>()[(a * s[1] + b) * s[2] + c];
        y[o] = max ? std::max(y[o], v) : y[o] + v;
      }
  return y;
}

TEST(RuntimeParamsInfer, ReduceKernelReadsAxesAtRunTime) {
  std::mt19937_64 rng(5);
  HostTensor x(DataType::kFLOAT, {3, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = std::uniform_real_distribution<float>(-2, 2)(rng);
  for (const Ints& axes : {Ints{0}, Ints{-1}, Ints{0, 2}, Ints{1, 0, 2}, Ints{}}) {
    for (int64_t op : {0, 2}) {
      OneNode node("Reduce", {{DataType::kFLOAT, {3, 4, 5}}, {DataType::kINT64, {static_cast<int64_t>(axes.size())}}},
                   reduce_attrs(op, true));
      HostTensor a = HostTensor::from_i64(axes);
      auto y = cpu::eval_node(*node.n, {&x, &a});
      std::vector<bool> red(3, axes.empty());
      for (int64_t ax : axes) red[ax < 0 ? ax + 3 : ax] = true;
      std::vector<float> want = naive_reduce(x, red, op == 2);
      ASSERT_EQ(y[0].numel(), static_cast<int64_t>(want.size()));
      for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[0].data<float>()[i], want[i], 1e-5) << dims_str(axes);
    }
  }
  // noop_with_empty_axes: element-wise part only (ReduceSumSquare -> x*x).
  OneNode noop("Reduce", {{DataType::kFLOAT, {3, 4, 5}}, {DataType::kINT64, {0}}}, reduce_attrs(68, false, true));
  HostTensor none = HostTensor::from_i64({});
  auto y = cpu::eval_node(*noop.n, {&x, &none});
  ASSERT_EQ(y[0].shape(), x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_FLOAT_EQ(y[0].data<float>()[i], x.data<float>()[i] * x.data<float>()[i]);
  // An out-of-range run-time axis is an error naming the layer, not a crash.
  OneNode badk("Reduce", {{DataType::kFLOAT, {3, 4, 5}}, {DataType::kINT64, {1}}}, reduce_attrs(0, true));
  HostTensor far = HostTensor::from_i64({3});
  EXPECT_THROW(cpu::eval_node(*badk.n, {&x, &far}), Error);
}

TEST(RuntimeParamsInfer, ReduceBoolMaxMin) {
  HostTensor b(DataType::kBOOL, {2, 3});
  const uint8_t bits[] = {0, 1, 0, 1, 1, 1};
  std::copy(bits, bits + 6, b.mutable_data<uint8_t>());
  ir::Attrs any = reduce_attrs(2, false), all = reduce_attrs(3, false);
  any.set("axes", Ints{1});
  all.set("axes", Ints{1});
  OneNode mx("Reduce", {{DataType::kBOOL, {2, 3}}}, any), mn("Reduce", {{DataType::kBOOL, {2, 3}}}, all);
  EXPECT_EQ(cpu::eval_node(*mx.n, {&b})[0].to_i64(), (Ints{1, 1}));
  EXPECT_EQ(cpu::eval_node(*mn.n, {&b})[0].to_i64(), (Ints{0, 1}));
  OneNode sum("Reduce", {{DataType::kBOOL, {2, 3}}}, reduce_attrs(0, false));
  EXPECT_THROW(sum.infer({}), Error);  // only MAX/MIN take bools
}

}  // namespace
}  // namespace kiln
