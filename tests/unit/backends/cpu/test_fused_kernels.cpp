// The fused forms of Convolution and MatrixMultiply on the CPU (ir/OPS.md: y = act(op + bias + residual)):
// each against the unfused ops run one after the other, and their shape inference's checks.
#include <gtest/gtest.h>

#include "backends/cpu/math_kernel_test_util.h"
#include "ir/op_registry.h"

namespace kiln {
namespace {

using mtest::close;
using mtest::rand_float;
using mtest::run1;

HostTensor activation(const HostTensor& x, int64_t type, bool set_ab, double alpha, double beta) {
  return run1("Activation", {&x}, [&](ir::Attrs& a) {
    a.set("type", type);
    if (set_ab) {
      a.set("alpha", alpha);
      a.set("beta", beta);
    }
  });
}

HostTensor sum(const HostTensor& a, const HostTensor& b) {
  return run1("ElementWise", {&a, &b}, [](ir::Attrs& at) { at.set("op", int64_t{0}); });
}

void set_act(ir::Attrs& a, int64_t type, bool set_ab, double alpha, double beta) {
  if (type < 0) return;
  a.set("activation", type);
  if (set_ab) {
    a.set("act_alpha", alpha);
    a.set("act_beta", beta);
  }
}

struct Act {
  int64_t type;
  bool set_ab;
  double alpha, beta;
};
const std::vector<Act>& acts() {
  static const std::vector<Act> a = {{-1, false, 0, 0}, {0, false, 0, 0},   {8, true, 0, 6},   {1, false, 0, 0},
                                     {2, false, 0, 0},  {3, true, 0.2, 0},  {3, false, 0, 0},  {65, false, 0, 0},
                                     {64, false, 0, 0}, {12, false, 0, 0},  {13, false, 0, 0}, {7, true, 0.5, 2}};
  return a;
}

TEST(FusedConvolutionKernel, MatchesConvThenAddThenActivation) {
  for (Dims xs : {Dims{2, 3, 6, 5}, Dims{1, 4, 9}, Dims{1, 2, 3, 4, 5}})
    for (const Act& act : acts())
      for (bool residual : {false, true})
        for (bool bias : {false, true}) {
          const size_t nsp = xs.size() - 2;
          Dims ws = {5, xs[1]};
          for (size_t i = 0; i < nsp; ++i) ws.push_back(3);
          HostTensor x = rand_float(xs), w = rand_float(ws, DataType::kFLOAT, 0.1, 0.5), b = rand_float({5});
          auto conv_attrs = [&](ir::Attrs& a) {
            a.set("pre_padding", std::vector<int64_t>(nsp, 1));
            a.set("post_padding", std::vector<int64_t>(nsp, 1));
          };
          HostTensor ref = run1("Convolution", {&x, &w, bias ? &b : nullptr}, conv_attrs);
          HostTensor r = rand_float(ref.shape());
          if (residual) ref = sum(ref, r);
          if (act.type >= 0) ref = activation(ref, act.type, act.set_ab, act.alpha, act.beta);
          HostTensor got = run1("Convolution", {&x, &w, bias ? &b : nullptr, residual ? &r : nullptr},
                                [&](ir::Attrs& a) {
                                  conv_attrs(a);
                                  set_act(a, act.type, act.set_ab, act.alpha, act.beta);
                                },
                                mtest::test_pool());
          EXPECT_TRUE(close(got, mtest::to_f64(ref), 1e-6, 1e-6))
              << dims_str(xs) << " act " << act.type << " residual " << residual << " bias " << bias;
        }
}

TEST(FusedMatrixMultiplyKernel, MatchesMatMulThenAddsThenActivation) {
  struct Shapes {
    Dims a, b;
    int64_t op_b;
  };
  const std::vector<Shapes> shapes = {{{4, 7}, {7, 5}, 0},          {{2, 3, 7}, {7, 6}, 0},
                                      {{2, 1, 3, 4}, {1, 3, 4, 5}, 0}, {{3, 8}, {5, 8}, 1},
                                      {{7}, {2, 7, 3}, 0}};
  for (const Shapes& s : shapes)
    for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE})
      for (const Act& act : acts())
        for (int parts = 0; parts < 4; ++parts) {
          const bool bias = parts & 1, residual = parts & 2;
          HostTensor a = rand_float(s.a, dt), b = rand_float(s.b, dt);
          auto mm_attrs = [&](ir::Attrs& at) { at.set("op_b", s.op_b); };
          HostTensor ref = run1("MatrixMultiply", {&a, &b}, mm_attrs);
          const int64_t N = ref.shape().back();
          HostTensor bv = rand_float({N}, dt), r = rand_float(ref.shape(), dt);
          if (bias) ref = sum(ref, bv);
          if (residual) ref = sum(ref, r);
          if (act.type >= 0) ref = activation(ref, act.type, act.set_ab, act.alpha, act.beta);
          HostTensor got = run1("MatrixMultiply", {&a, &b, bias ? &bv : nullptr, residual ? &r : nullptr},
                                [&](ir::Attrs& at) {
                                  mm_attrs(at);
                                  set_act(at, act.type, act.set_ab, act.alpha, act.beta);
                                },
                                mtest::test_pool());
          EXPECT_TRUE(close(got, mtest::to_f64(ref), dt == DataType::kFLOAT ? 1e-6 : 1e-12, 1e-6))
              << dims_str(s.a) << " x " << dims_str(s.b) << " " << dtype_name(dt) << " act " << act.type << " bias "
              << bias << " residual " << residual;
        }
}

TEST(FusedMatrixMultiplyKernel, IntegerBiasAndResidualWrap) {
  HostTensor a = mtest::rand_ints({3, 4}, DataType::kINT32, -5, 5), b = mtest::rand_ints({4, 2}, DataType::kINT32, -5, 5);
  HostTensor bv = mtest::rand_ints({2}, DataType::kINT32, -9, 9), r = mtest::rand_ints({3, 2}, DataType::kINT32, -9, 9);
  HostTensor ref = sum(sum(run1("MatrixMultiply", {&a, &b}), bv), r);
  HostTensor got = run1("MatrixMultiply", {&a, &b, &bv, &r});
  EXPECT_TRUE(close(got, mtest::to_f64(ref), 0, 0));
}

// Shape inference of the fused forms: what it accepts and what it refuses, naming the input.
ir::TensorInfo info(DataType dt, Dims s) { return ir::TensorInfo{true, dt, std::move(s), nullptr}; }
ir::TensorInfo absent() { return ir::TensorInfo{false, DataType::kFLOAT, {}, nullptr}; }

std::string infer_error(const std::string& op, std::vector<ir::TensorInfo> ins, int64_t act = -1) {
  ir::Graph g;
  std::vector<ir::Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i) vals.push_back(ins[i].present ? g.add_input(std::string("i") + std::to_string(i), ins[i].dtype, ins[i].shape) : nullptr);
  ir::Node* n = g.add_node(op, "fused", vals, 1);
  if (op == "Convolution") {
    n->attrs.set("pre_padding", std::vector<int64_t>{1, 1});
    n->attrs.set("post_padding", std::vector<int64_t>{1, 1});
  }
  if (act != -1) n->attrs.set("activation", act);
  try {
    ir::infer_node(*n, ins);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FusedShapeInference, ChecksResidualBiasAndActivation) {
  const DataType f = DataType::kFLOAT;
  // Convolution: x [1,2,4,4], w [3,2,3,3] -> [1,3,4,4].
  EXPECT_EQ(infer_error("Convolution", {info(f, {1, 2, 4, 4}), info(f, {3, 2, 3, 3}), absent(), info(f, {1, 3, 4, 4})}, 0), "");
  EXPECT_EQ(infer_error("Convolution", {info(f, {1, 2, 4, 4}), info(f, {3, 2, 3, 3}), absent(), info(f, {-1, 3, 4, 4})}), "");
  EXPECT_NE(infer_error("Convolution", {info(f, {1, 2, 4, 4}), info(f, {3, 2, 3, 3}), absent(), info(f, {1, 3, 1, 1})})
                .find("residual"), std::string::npos);
  EXPECT_NE(infer_error("Convolution", {info(f, {1, 2, 4, 4}), info(f, {3, 2, 3, 3}), absent(), info(DataType::kHALF, {1, 3, 4, 4})})
                .find("residual"), std::string::npos);
  EXPECT_NE(infer_error("Convolution", {info(f, {1, 2, 4, 4}), info(f, {3, 2, 3, 3})}, 99).find("activation"), std::string::npos);
  // MatrixMultiply: [2,3,4] x [4,5] -> [2,3,5].
  EXPECT_EQ(infer_error("MatrixMultiply", {info(f, {2, 3, 4}), info(f, {4, 5}), info(f, {5}), info(f, {2, 3, 5})}, 12), "");
  EXPECT_NE(infer_error("MatrixMultiply", {info(f, {2, 3, 4}), info(f, {4, 5}), info(f, {3})}).find("bias"), std::string::npos);
  EXPECT_NE(infer_error("MatrixMultiply", {info(f, {2, 3, 4}), info(f, {4, 5}), info(f, {1, 5})}).find("bias"), std::string::npos);
  EXPECT_NE(infer_error("MatrixMultiply", {info(f, {3, 4}), info(f, {4}), info(f, {1})}).find("bias"), std::string::npos);
  EXPECT_NE(infer_error("MatrixMultiply", {info(f, {2, 3, 4}), info(f, {4, 5}), absent(), info(f, {3, 5})}).find("residual"),
            std::string::npos);
  EXPECT_NE(infer_error("MatrixMultiply", {info(DataType::kINT32, {3, 4}), info(DataType::kINT32, {4, 5})}, 0).find("float"),
            std::string::npos);
  // Deconvolution takes no residual.
  EXPECT_NE(infer_error("Deconvolution", {info(f, {1, 2, 4, 4}), info(f, {2, 3, 3, 3}), absent(), info(f, {1, 3, 4, 4})}), "");
}

}  // namespace
}  // namespace kiln
