// LowerQuantization: QuantizeLinear / DequantizeLinear become Cast/ElementWise/Unary/Activation layers
// computing exactly what the quantization kernels compute (CPU backend).
#include <gtest/gtest.h>

#include "backends/cpu/eval.h"
#include "fusion_test_util.h"
#include "passes/lower_quantization.h"

using namespace kiln;

namespace {

HostTensor floats(const std::vector<float>& v, Dims shape) { return HostTensor::from_f32(v, std::move(shape)); }

HostTensor ints(DataType dt, const std::vector<int>& v, Dims shape) {
  HostTensor t(dt, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DataType::kINT8) t.mutable_data<int8_t>()[i] = static_cast<int8_t>(v[i]);
    else t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  }
  return t;
}

struct Net {
  ir::Graph g;
  ir::Node* q = nullptr;
};

// x (float) -> QuantizeLinear(scale, zp) -> [DequantizeLinear(scale, zp)] -> outputs (the quantized one too).
void build(Net& n, const Dims& x_shape, const HostTensor& scale, const HostTensor* zp, DataType qt, int64_t axis,
           bool dequantize) {
  auto* x = n.g.add_input("x", DataType::kFLOAT, x_shape);
  auto* s = n.g.add_constant("scale", scale)->outputs[0];
  std::vector<ir::Value*> ins{x, s};
  if (zp) ins.push_back(n.g.add_constant("zp", *zp)->outputs[0]);
  n.q = n.g.add_node("QuantizeLinear", "q", ins, 1);
  n.q->attrs.set("axis", axis);
  n.q->attrs.set("output_dtype", static_cast<int64_t>(qt));
  n.q->outputs[0]->dtype = qt;
  n.q->outputs[0]->shape = x_shape;
  n.q->outputs[0]->name = "quantized";
  n.g.mark_output(n.q->outputs[0]);
  if (!dequantize) return;
  std::vector<ir::Value*> dins{n.q->outputs[0], s};
  if (zp) dins.push_back(ins[2]);
  auto* d = n.g.add_node("DequantizeLinear", "dq", dins, 1);
  d->attrs.set("axis", axis);
  d->outputs[0]->shape = x_shape;
  d->outputs[0]->name = "y";
  n.g.mark_output(d->outputs[0]);
}

std::vector<HostTensor> eval(ir::Graph& g, const HostTensor& x) { return fusetest::eval_graph(g, {x}); }

}  // namespace

TEST(LowerQuantization, PerTensorAndPerAxisMatchTheKernelsExactly) {
  for (DataType qt : {DataType::kINT8, DataType::kUINT8}) {
    for (int per_axis = 0; per_axis < 2; ++per_axis) {
      for (int with_zp = 0; with_zp < 2; ++with_zp) {
        Net n;
        const Dims shape{2, 3, 4};
        HostTensor scale = per_axis ? floats({0.05f, 0.5f, 0.02f}, {3}) : floats({0.04f}, {});
        HostTensor zp = per_axis ? ints(qt, qt == DataType::kINT8 ? std::vector<int>{-3, 0, 7} : std::vector<int>{120, 128, 3}, {3})
                                 : ints(qt, {qt == DataType::kINT8 ? 5 : 128}, {});
        build(n, shape, scale, with_zp ? &zp : nullptr, qt, 1, true);
        infer_graph_inplace(n.g);
        // Values across the whole range, saturating ones and exact .5 quotients (round half to even).
        HostTensor x = mtest::rand_float(shape, DataType::kFLOAT, -8.0, 8.0);
        x.mutable_data<float>()[0] = 0.5f * 0.04f * 5;  // per tensor: quotient 2.5 -> 2
        x.mutable_data<float>()[1] = 1e6f;              // saturates
        x.mutable_data<float>()[2] = -1e6f;
        std::unique_ptr<ir::Graph> before = n.g.clone();
        passes::LowerQuantization pass;
        ASSERT_TRUE(pass.run(n.g));
        EXPECT_FALSE(pass.run(n.g));
        EXPECT_EQ(fusetest::count_op(n.g, "QuantizeLinear") + fusetest::count_op(n.g, "DequantizeLinear"), 0u);
        infer_graph_inplace(n.g);
        auto want = eval(*before, x), got = eval(n.g, x);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i].dtype(), want[i].dtype());
          ASSERT_TRUE(want[i].same_bytes(got[i])) << "output " << i << " " << dtype_name(qt) << " per_axis "
                                                  << per_axis << " zp " << with_zp << "\n" << n.g.to_string();
        }
        EXPECT_EQ(n.g.outputs()[0]->name, "quantized");
        EXPECT_EQ(n.g.outputs()[1]->name, "y");
      }
    }
  }
}

TEST(LowerQuantization, KeepsBlockedScalesAndOtherTypes) {
  Net n;
  build(n, {2, 4}, floats({0.1f, 0.2f, 0.3f, 0.4f}, {2, 2}), nullptr, DataType::kINT8, 1, false);
  n.q->attrs.set("block_size", int64_t{2});
  infer_graph_inplace(n.g);
  passes::LowerQuantization pass;
  EXPECT_FALSE(pass.run(n.g));
}
