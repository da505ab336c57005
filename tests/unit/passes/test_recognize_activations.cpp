// RecognizeActivations: exporters' compositions of GELU (erf and tanh forms), SiLU and HardSwish become one
// Activation layer; the whole graph computes the same (CPU backend, random inputs).
#include <gtest/gtest.h>

#include <cmath>

#include "passes/fusion_test_util.h"
#include "passes/recognize_activations.h"

using namespace kiln;
using fusetest::Builder;
using fusetest::count_layers;
using fusetest::count_op;
using fusetest::run_and_compare;

namespace {

constexpr int64_t kDiv = 5, kPow = 6, kErf = 19;

// Asserts the graph is now one Activation of `type` reading the input, producing the graph output.
void expect_single_activation(Builder& b, int64_t type) {
  EXPECT_EQ(count_layers(b.g), 1u) << b.g.to_string();
  ASSERT_EQ(b.g.outputs().size(), 1u);
  const ir::Node* n = b.g.outputs()[0]->producer;
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->op, "Activation");
  EXPECT_EQ(n->attrs.i("type", -1), type);
  EXPECT_EQ(n->inputs[0], b.g.inputs()[0]);
  EXPECT_EQ(count_op(b.g, "Constant"), 0u) << "the pattern's constants are removed";
}

}  // namespace

TEST(RecognizeActivations, GeluErfAsPyTorchExportsIt) {
  // Div(x, 1.4142135) -> Erf -> Add 1 -> Mul x -> Mul 0.5
  Builder b;
  ir::Value* x = b.input({3, 17});
  ir::Value* e = b.unary(b.ew(x, b.scalar(1.4142135381698608), kDiv), kErf);
  ir::Value* out = b.mul(b.mul(x, b.add(e, b.scalar(1.0))), b.scalar(0.5));
  out->name = "gelu_out";
  b.output(out);
  b.infer();
  passes::RecognizeActivations p;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5));
  expect_single_activation(b, 12);
  EXPECT_EQ(b.g.outputs()[0]->name, "gelu_out");
}

TEST(RecognizeActivations, GeluErfOtherOperandOrders) {
  for (int form = 0; form < 4; ++form) {
    Builder b;
    ir::Value* x = b.input({2, 3, 5});
    // x * 0.70710678 instead of the division in half of the forms; constants on the left elsewhere.
    ir::Value* u = form % 2 ? b.mul(b.scalar(0.7071067690849304), x) : b.ew(x, b.scalar(1.4142135), kDiv);
    ir::Value* p = b.add(b.scalar(1.0), b.unary(u, kErf));
    ir::Value* out;
    switch (form) {
      case 0: out = b.mul(b.mul(x, b.scalar(0.5)), p); break;         // (x * 0.5) * p
      case 1: out = b.mul(x, b.mul(p, b.scalar(0.5))); break;         // x * (p * 0.5)
      case 2: out = b.mul(b.scalar(0.5), b.mul(p, x)); break;         // 0.5 * (p * x)
      default: out = b.mul(p, b.mul(b.scalar(0.5), x)); break;        // p * (0.5 * x)
    }
    b.output(out);
    b.infer();
    passes::RecognizeActivations pass;
    ASSERT_TRUE(run_and_compare(b.g, pass, 1e-5)) << "form " << form;
    expect_single_activation(b, 12);
  }
}

TEST(RecognizeActivations, GeluTanh) {
  for (bool pow_form : {true, false}) {
    Builder b;
    ir::Value* x = b.input({4, 9});
    ir::Value* cube = pow_form ? b.ew(x, b.scalar(3.0), kPow) : b.mul(b.mul(x, x), x);
    ir::Value* inner = b.mul(b.add(x, b.mul(b.scalar(0.044715), cube)), b.scalar(0.7978845834732056));
    ir::Value* t = b.act(inner, 2);
    ir::Value* out = b.mul(b.mul(b.scalar(0.5), x), b.add(t, b.scalar(1.0)));
    b.output(out);
    b.infer();
    passes::RecognizeActivations p;
    ASSERT_TRUE(run_and_compare(b.g, p, 2e-5)) << "pow " << pow_form;
    expect_single_activation(b, 13);
  }
}

TEST(RecognizeActivations, SiluAndHardSwish) {
  for (int order : {0, 1}) {
    Builder b;
    ir::Value* x = b.input({2, 33});
    ir::Value* s = b.act(x, 1);
    b.output(order ? b.mul(s, x) : b.mul(x, s));
    b.infer();
    passes::RecognizeActivations p;
    ASSERT_TRUE(run_and_compare(b.g, p, 1e-5));
    expect_single_activation(b, 65);
  }
  Builder b;
  ir::Value* x = b.input({2, 33});
  ir::Node* hs = b.node("Activation", {x});
  hs->attrs.set("type", int64_t{9});
  hs->attrs.set("alpha", 1.0 / 6.0);
  hs->attrs.set("beta", 0.5);
  b.output(b.mul(x, hs->outputs[0]));
  b.infer();
  passes::RecognizeActivations p;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5));
  expect_single_activation(b, 64);
}

TEST(RecognizeActivations, LeavesLookAlikes) {
  struct Case {
    const char* what;
    std::function<void(Builder&, ir::Value*)> body;
  };
  const std::vector<Case> cases = {
      {"divides by 2, not sqrt 2", [](Builder& b, ir::Value* x) {
         ir::Value* e = b.unary(b.ew(x, b.scalar(2.0), kDiv), kErf);
         b.output(b.mul(b.mul(x, b.add(e, b.scalar(1.0))), b.scalar(0.5)));
       }},
      {"multiplies by another tensor", [](Builder& b, ir::Value* x) {
         ir::Value* e = b.unary(b.ew(x, b.scalar(1.4142135), kDiv), kErf);
         b.output(b.mul(b.mul(b.input({3, 4}), b.add(e, b.scalar(1.0))), b.scalar(0.5)));
       }},
      {"HardSigmoid with ONNX's default alpha", [](Builder& b, ir::Value* x) {
         ir::Value* h = b.act(x, 9);
         b.output(b.mul(x, h));
       }},
      {"sigmoid of another tensor", [](Builder& b, ir::Value* x) { b.output(b.mul(x, b.act(b.input({3, 4}), 1))); }},
      {"a scalar that broadcasts x up", [](Builder& b, ir::Value* x) {
         ir::Value* e = b.unary(b.ew(x, b.scalar(1.4142135), kDiv), kErf);
         b.output(b.mul(b.mul(x, b.add(e, b.scalar(1.0))), b.cst(mtest::scalar_of(DataType::kFLOAT, 0.5, {1, 1, 1}))));
       }},
  };
  for (const Case& c : cases) {
    Builder b;
    ir::Value* x = b.input({3, 4});
    c.body(b, x);
    b.infer();
    const size_t before = b.g.num_nodes();
    passes::RecognizeActivations p;
    bool changed = true;
    EXPECT_TRUE(run_and_compare(b.g, p, 1e-5, &changed)) << c.what;
    EXPECT_FALSE(changed) << c.what;
    EXPECT_EQ(b.g.num_nodes(), before) << c.what;
  }
}

TEST(RecognizeActivations, SharedIntermediatesStay) {
  // The erf value is also a network output: GELU is still recognized, the erf stays for its other user.
  Builder b;
  ir::Value* x = b.input({3, 4});
  ir::Value* e = b.unary(b.ew(x, b.scalar(1.4142135), kDiv), kErf);
  b.output(b.mul(b.mul(x, b.add(e, b.scalar(1.0))), b.scalar(0.5)));
  b.output(e);
  b.infer();
  passes::RecognizeActivations p;
  ASSERT_TRUE(run_and_compare(b.g, p, 1e-5));
  EXPECT_EQ(b.g.outputs()[0]->producer->op, "Activation");
  EXPECT_EQ(count_layers(b.g), 3u);  // div, erf, gelu
}
