// FusePointwise: which groups it finds (chains, diamonds, values read outside the group, graph outputs,
// broadcasts, casts, Scale, the target's predicate), and that the fused graph computes what the unfused one
// did on the CPU backend (the FusedPointwise interpreter against the per-op kernels), on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "backends/cpu/eval.h"
#include "backends/cpu/math_kernel_test_util.h"
#include "backends/cuda/pointwise_programs.h"
#include "ir/op_registry.h"
#include "ir/pointwise_program.h"
#include "passes/fuse_pointwise.h"

using namespace kiln;
using namespace kiln::ir::pw;
using mtest::rand_bool;
using mtest::rand_float;
using mtest::rand_ints;

namespace {

// Adds a node and infers its outputs from its inputs (constants' values included).
ir::Value* add(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::Value*> ins,
               const std::function<void(ir::Attrs&)>& attrs = {}) {
  ir::Node* n = g.add_node(op, name, ins, 1);
  if (attrs) attrs(n->attrs);
  std::vector<ir::TensorInfo> infos;
  for (ir::Value* v : ins) {
    ir::TensorInfo t;
    if (!v) {
      t.present = false;
    } else {
      t.dtype = v->dtype;
      t.shape = v->shape;
      t.value = ir::constant_value(v);
    }
    infos.push_back(t);
  }
  const auto outs = ir::infer_node(*n, infos);
  n->outputs[0]->dtype = outs[0].dtype;
  n->outputs[0]->shape = outs[0].shape;
  return n->outputs[0];
}
ir::Value* ew(ir::Graph& g, int64_t op, ir::Value* a, ir::Value* b, const std::string& name) {
  return add(g, "ElementWise", name, {a, b}, [&](ir::Attrs& at) { at.set("op", op); });
}
ir::Value* unary(ir::Graph& g, int64_t op, ir::Value* a, const std::string& name) {
  return add(g, "Unary", name, {a}, [&](ir::Attrs& at) { at.set("op", op); });
}
ir::Value* activation(ir::Graph& g, int64_t type, ir::Value* a, const std::string& name) {
  return add(g, "Activation", name, {a}, [&](ir::Attrs& at) { at.set("type", type); });
}
ir::Value* cast(ir::Graph& g, DataType to, ir::Value* a, const std::string& name) {
  return add(g, "Cast", name, {a}, [&](ir::Attrs& at) { at.set("to", static_cast<int64_t>(to)); });
}
ir::Value* constant(ir::Graph& g, const std::string& name, HostTensor t) {
  ir::Node* n = g.add_constant(name, t);
  n->outputs[0]->dtype = t.dtype();
  n->outputs[0]->shape = t.shape();
  return n->outputs[0];
}
HostTensor scalar(DataType dt, int64_t iv, double fv) {
  HostTensor t(dt, {});
  if (is_float_type(dt)) mtest::set_elem(t, 0, fv);
  else if (dt == DataType::kINT64) t.mutable_data<int64_t>()[0] = iv;
  else mtest::set_elem(t, 0, static_cast<double>(iv));
  return t;
}

// Runs the graph on the CPU backend, node by node; returns the graph outputs.
std::vector<HostTensor> run(const ir::Graph& g, const std::map<std::string, HostTensor>& inputs) {
  std::map<const ir::Value*, HostTensor> vals;
  for (ir::Value* in : g.inputs()) vals[in] = inputs.at(in->name);
  for (auto& np : g.nodes()) {
    const ir::Node& n = *np;
    if (n.op == "Constant") {
      vals[n.outputs[0]] = n.attrs.tensor("value");
      continue;
    }
    std::vector<const HostTensor*> ins;
    for (ir::Value* v : n.inputs) ins.push_back(v ? &vals.at(v) : nullptr);
    std::vector<HostTensor> outs = cpu::eval_node(n, ins);
    for (size_t i = 0; i < outs.size(); ++i) vals[n.outputs[i]] = outs[i];
  }
  std::vector<HostTensor> outs;
  for (ir::Value* o : g.outputs()) outs.push_back(vals.at(o));
  return outs;
}

// Every element equal within rel * max(1, |want|); NaN only against NaN.
::testing::AssertionResult close(const HostTensor& got, const HostTensor& want, double rel) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape())
    return ::testing::AssertionFailure() << dtype_name(got.dtype()) << dims_str(got.shape()) << " vs " << dtype_name(want.dtype())
                                         << dims_str(want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.get_f64(i), w = want.get_f64(i);
    if (std::isnan(g) || std::isnan(w)) {
      if (std::isnan(g) && std::isnan(w)) continue;
    } else if (g == w || std::fabs(g - w) <= rel * std::max(1.0, std::fabs(w))) {
      continue;
    }
    return ::testing::AssertionFailure() << "element " << i << ": got " << g << ", want " << w;
  }
  return ::testing::AssertionSuccess();
}

int count(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (auto& np : g.nodes()) n += np->op == op;
  return n;
}
const ir::Node* first(const ir::Graph& g, const std::string& op) {
  for (auto& np : g.nodes())
    if (np->op == op) return np.get();
  return nullptr;
}

// Fuses a clone of g and checks that it computes the same outputs; returns the fused clone.
std::unique_ptr<ir::Graph> fuse_and_compare(const ir::Graph& g, const std::map<std::string, HostTensor>& inputs, double rel = 1e-5,
                                            passes::FusePointwise::Supported sup = nullptr) {
  std::unique_ptr<ir::Graph> f = g.clone();
  passes::FusePointwise pass(sup);
  pass.run(*f);
  EXPECT_FALSE(pass.run(*f)) << "idempotent";
  passes::EliminateDeadNodes().run(*f);  // constants that became immediates
  const auto want = run(g, inputs);
  const auto got = run(*f, inputs);
  EXPECT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) EXPECT_TRUE(close(got[i], want[i], rel)) << "output " << i;
  for (size_t i = 0; i < g.outputs().size(); ++i) EXPECT_EQ(f->outputs()[i]->name, g.outputs()[i]->name);
  return f;
}

}  // namespace

TEST(FusePointwise, ChainWithScalarAndBiasConstants) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2, 3, 8});
  auto* r = activation(g, kRelu, x, "relu");
  auto* m = ew(g, kProd, r, constant(g, "two", scalar(DataType::kFLOAT, 0, 2.0)), "mul");
  auto* b = ew(g, kSum, m, constant(g, "bias", rand_float({8})), "add");
  auto* y = activation(g, kSigmoid, b, "sigmoid");
  g.mark_output(y);
  auto f = fuse_and_compare(g, {{"x", rand_float({2, 3, 8})}});
  EXPECT_EQ(count(*f, "FusedPointwise"), 1);
  EXPECT_EQ(count(*f, "Activation") + count(*f, "ElementWise"), 0);
  const ir::Node* n = first(*f, "FusedPointwise");
  ASSERT_EQ(n->inputs.size(), 2u) << "x and the bias; the scalar is an immediate";
  EXPECT_EQ(n->inputs[0], f->find_value("x"));
  EXPECT_EQ(n->outputs[0]->shape, (Dims{2, 3, 8}));
  const Program p = Program::from_attrs(n->attrs);
  EXPECT_EQ(std::count_if(p.code.begin(), p.code.end(), [](const Instr& i) { return i.op == kConst; }), 1);
}

TEST(FusePointwise, DiamondIsOneGroup) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {5, 7});
  auto* a = unary(g, kExp, x, "exp");
  auto* b = ew(g, kProd, a, x, "b");
  auto* c = ew(g, kSum, a, constant(g, "one", scalar(DataType::kFLOAT, 0, 1.0)), "c");
  auto* d = ew(g, kDiv, b, c, "d");
  g.mark_output(d);
  auto f = fuse_and_compare(g, {{"x", rand_float({5, 7})}});
  EXPECT_EQ(count(*f, "FusedPointwise"), 1);
  EXPECT_EQ(count(*f, "ElementWise") + count(*f, "Unary"), 0);
  EXPECT_EQ(first(*f, "FusedPointwise")->inputs.size(), 1u) << "x read once";
}

TEST(FusePointwise, ValueReadOutsideTheGroupStaysUnfused) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {4, 6});
  auto* a = unary(g, kExp, x, "exp");
  auto* b = unary(g, kNeg, a, "neg");
  auto* c = ew(g, kProd, b, constant(g, "k", scalar(DataType::kFLOAT, 0, 3.0)), "mul");
  auto* s = add(g, "SoftMax", "softmax", {a}, [](ir::Attrs& at) { at.set("axis", int64_t{1}); });
  g.mark_output(c);
  g.mark_output(s);
  auto f = fuse_and_compare(g, {{"x", rand_float({4, 6})}});
  ASSERT_EQ(count(*f, "FusedPointwise"), 1);
  ASSERT_NE(f->find_node("exp"), nullptr) << "exp's output is also read by SoftMax";
  EXPECT_EQ(first(*f, "FusedPointwise")->inputs[0], f->find_node("exp")->outputs[0]);
  EXPECT_EQ(f->find_node("neg"), nullptr);
}

TEST(FusePointwise, GraphOutputsAreNotAbsorbed) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {10});
  auto* a = unary(g, kExp, x, "exp");
  auto* b = unary(g, kNeg, a, "neg");
  g.mark_output(a);
  g.mark_output(b);
  std::unique_ptr<ir::Graph> f = g.clone();
  passes::FusePointwise pass;
  EXPECT_FALSE(pass.run(*f)) << "a group of one node is not fused";
  EXPECT_EQ(f->num_nodes(), 2u);

  // With a third node after the output, the two after it fuse; the output value itself stays.
  auto* c = unary(g, kAbs, b, "abs");
  g.unmark_output(b);
  g.mark_output(c);
  auto f2 = fuse_and_compare(g, {{"x", rand_float({10})}});
  EXPECT_NE(f2->find_node("exp"), nullptr);
  EXPECT_EQ(count(*f2, "FusedPointwise"), 1);
}

TEST(FusePointwise, BroadcastsAndRankOfScalars) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {2, 3, 4});
  auto* y = g.add_input("y", DataType::kFLOAT, {4});
  auto* z = g.add_input("z", DataType::kFLOAT, {2, 1, 1});
  auto* s = ew(g, kSum, x, y, "add");
  auto* m = ew(g, kProd, s, z, "mul");
  auto* t = activation(g, kTanh, m, "tanh");
  // A one-element constant of higher rank: it becomes an immediate, the output keeps rank 4.
  auto* o = ew(g, kSub, t, constant(g, "c", rand_float({1, 1, 1, 1})), "sub");
  g.mark_output(o);
  auto f = fuse_and_compare(g, {{"x", rand_float({2, 3, 4})}, {"y", rand_float({4})}, {"z", rand_float({2, 1, 1})}});
  const ir::Node* n = first(*f, "FusedPointwise");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->inputs.size(), 3u);
  EXPECT_EQ(n->attrs.i("rank", -1), 4);
  EXPECT_EQ(n->outputs[0]->shape, (Dims{1, 2, 3, 4}));
}

TEST(FusePointwise, ShapesUnknownUntilRunTime) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {-1, 8});
  auto* b = ew(g, kSum, x, constant(g, "bias", rand_float({8})), "add");
  auto* r = activation(g, kGeluErf, b, "gelu");
  g.mark_output(r);
  auto f = fuse_and_compare(g, {{"x", rand_float({5, 8})}});
  const ir::Node* n = first(*f, "FusedPointwise");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->outputs[0]->shape, (Dims{-1, 8}));
}

TEST(FusePointwise, CastsAreExact) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {3, 50});
  // float -> float16 -> float rounds; float -> int32 truncates; the int chain wraps.
  auto* h = cast(g, DataType::kHALF, x, "to_half");
  auto* hf = cast(g, DataType::kFLOAT, h, "to_float");
  auto* i = cast(g, DataType::kINT32, ew(g, kProd, hf, constant(g, "k", scalar(DataType::kFLOAT, 0, 1000.0)), "scale"), "to_int");
  auto* j = ew(g, kFloorDiv, i, constant(g, "seven", scalar(DataType::kINT32, 7, 0)), "fdiv");
  auto* u = cast(g, DataType::kUINT8, j, "to_u8");
  auto* uf = cast(g, DataType::kFLOAT, u, "u8_float");
  auto* o = ew(g, kSum, uf, hf, "sum");
  g.mark_output(o);
  auto f = fuse_and_compare(g, {{"x", rand_float({3, 50}, DataType::kFLOAT, 0.1, 20.0)}}, 0.0);
  EXPECT_EQ(f->num_nodes(), 1u) << f->to_string();
}

TEST(FusePointwise, SelectAndComparisons) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {4, 9});
  auto* y = g.add_input("y", DataType::kFLOAT, {9});
  auto* zero = constant(g, "zero", scalar(DataType::kFLOAT, 0, 0.0));
  auto* c = ew(g, kGreater, x, zero, "gt");
  auto* ny = ew(g, kProd, y, constant(g, "slope", scalar(DataType::kFLOAT, 0, 0.1)), "slope_y");
  auto* w = add(g, "Select", "where", {c, x, ny});
  auto* n = unary(g, kNot, c, "not");
  auto* w2 = add(g, "Select", "where2", {n, w, zero});
  g.mark_output(w2);
  auto f = fuse_and_compare(g, {{"x", rand_float({4, 9})}, {"y", rand_float({9})}}, 0.0);
  EXPECT_EQ(count(*f, "FusedPointwise"), 1);
  EXPECT_EQ(count(*f, "Select") + count(*f, "ElementWise") + count(*f, "Unary"), 0);
}

TEST(FusePointwise, ScaleCoefficientsBecomeBroadcastConstants) {
  for (int64_t mode : {0, 1, 2}) {
    ir::Graph g;
    auto* x = g.add_input("x", DataType::kFLOAT, {2, 3, 4, 5});
    const int64_t c = mode == 0 ? 1 : mode == 1 ? 3 : 60;
    auto* shift = constant(g, "shift", rand_float({c}));
    auto* scl = constant(g, "scale", rand_float({c}));
    auto* pw = constant(g, "power", mtest::scalar_of(DataType::kFLOAT, 2.0, {c}));
    auto* s = add(g, "Scale", "scale_node", {x, shift, scl, pw}, [&](ir::Attrs& at) { at.set("mode", mode); });
    auto* r = activation(g, kRelu, s, "relu");
    g.mark_output(r);
    auto f = fuse_and_compare(g, {{"x", rand_float({2, 3, 4, 5})}}, 1e-6);
    EXPECT_EQ(count(*f, "FusedPointwise"), 1) << "mode " << mode;
    EXPECT_EQ(count(*f, "Scale"), 0) << "mode " << mode;
  }
}

TEST(FusePointwise, ThePredicateExcludesNodes) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {16});
  auto* a = unary(g, kExp, x, "exp");
  auto* b = activation(g, kRelu, a, "relu");
  auto* c = unary(g, kSqrt, b, "sqrt");
  auto* d = activation(g, kTanh, c, "tanh");
  g.mark_output(d);
  auto no_unary = [](const ir::Node& n, const std::vector<ir::TensorInfo>&) { return n.op != "Unary"; };
  auto f = fuse_and_compare(g, {{"x", rand_float({16})}}, 1e-5, no_unary);
  EXPECT_EQ(count(*f, "FusedPointwise"), 0) << "relu and tanh are not neighbours";
  auto* e = activation(g, kSigmoid, d, "sigmoid");
  g.unmark_output(d);
  g.mark_output(e);
  auto f2 = fuse_and_compare(g, {{"x", rand_float({16})}}, 1e-5, no_unary);
  EXPECT_EQ(count(*f2, "FusedPointwise"), 1);
  EXPECT_EQ(count(*f2, "Unary"), 2);
}

TEST(FusePointwise, UnsupportedDtypesAndOpsAreLeftAlone) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kINT16, {8});
  auto* a = ew(g, kSum, x, x, "add16");
  auto* b = ew(g, kProd, a, x, "mul16");
  g.mark_output(b);
  passes::FusePointwise pass;
  EXPECT_FALSE(pass.run(g)) << "int16 is not a program dtype";
}

TEST(FusePointwise, InputLimitSplitsLongChains) {
  ir::Graph g;
  std::map<std::string, HostTensor> inputs;
  ir::Value* acc = nullptr;
  for (int i = 0; i < 40; ++i) {
    const std::string name = "x" + std::to_string(i);
    ir::Value* x = g.add_input(name, DataType::kFLOAT, {7});
    inputs[name] = rand_float({7});
    acc = acc ? ew(g, kSum, acc, x, "add" + std::to_string(i)) : x;
  }
  g.mark_output(acc);
  auto f = fuse_and_compare(g, inputs);
  EXPECT_EQ(count(*f, "FusedPointwise"), 2);
  for (auto& np : f->nodes()) EXPECT_LE(np->inputs.size(), 32u);
}

// ---------------------------------------------------------------------------------------------------------
// Programs from the shared test set, unfused into one IR node per instruction: the pass must fuse them back
// into one node, and the interpreter must agree with the per-op CPU kernels (float32, float64, integers, bool).

namespace {

std::unique_ptr<ir::Graph> unfuse(const Program& p, const std::vector<DataType>& in_dtypes, const Dims& shape) {
  auto g = std::make_unique<ir::Graph>();
  std::vector<ir::Value*> regs;
  for (size_t k = 0; k < in_dtypes.size(); ++k) g->add_input("in" + std::to_string(k), in_dtypes[k], shape);
  for (size_t i = 0; i < p.code.size(); ++i) {
    const Instr& in = p.code[i];
    const std::string name = "n" + std::to_string(i);
    auto R = [&](int64_t r) { return regs.at(static_cast<size_t>(r)); };
    ir::Value* v = nullptr;
    switch (in.op) {
      case kInput: v = g->inputs()[in.a]; break;
      case kConst: v = constant(*g, name, scalar(in.dtype, in.a, is_float_type(in.dtype) ? p.imm[in.a] : 0.0)); break;
      case kElementWise:
        v = add(*g, "ElementWise", name, {R(in.a), R(in.b)}, [&](ir::Attrs& at) {
          at.set("op", in.sub);
          at.set("fmod", in.c);
        });
        break;
      case kUnary: v = unary(*g, in.sub, R(in.a), name); break;
      case kActivation:
        v = add(*g, "Activation", name, {R(in.a)}, [&](ir::Attrs& at) {
          at.set("type", in.sub);
          at.set("alpha", p.imm[in.b]);
          at.set("beta", p.imm[in.b + 1]);
        });
        break;
      case kCast: v = cast(*g, in.dtype, R(in.a), name); break;
      case kSelect: v = add(*g, "Select", name, {R(in.a), R(in.b), R(in.c)}); break;
      default: break;
    }
    regs.push_back(v);
  }
  g->mark_output(regs.back());
  return g;
}

HostTensor random_input(DataType dt, const Dims& shape, bool unit_range) {
  if (dt == DataType::kBOOL) return rand_bool(shape);
  if (dt == DataType::kUINT8) return rand_ints(shape, dt, 0, 40);
  if (is_int_type(dt)) return rand_ints(shape, dt, -40, 40);
  return unit_range ? rand_float(shape, dt, 0.1, 0.9, true) : rand_float(shape, dt, 0.1, 30.0);
}

void check_roundtrip(const pwtest::TestProgram& t, double rel, bool unit_range) {
  SCOPED_TRACE(t.name);
  const Dims shape = {3, 67};
  auto g = unfuse(t.program, t.inputs, shape);
  std::map<std::string, HostTensor> inputs;
  for (size_t k = 0; k < t.inputs.size(); ++k) inputs["in" + std::to_string(k)] = random_input(t.inputs[k], shape, unit_range);
  auto f = fuse_and_compare(*g, inputs, rel);
  EXPECT_EQ(count(*f, "FusedPointwise"), 1);
  EXPECT_EQ(f->num_nodes(), 1u) << f->to_string();
}

}  // namespace

TEST(FusePointwise, IntegerProgramsRoundTrip) {
  for (DataType dt : {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64})
    check_roundtrip(pwtest::int_program(dt), 0.0, false);
}

TEST(FusePointwise, CastProgramsRoundTrip) {
  // float16/bfloat16 only appear as cast targets (the per-op CPU kernels compute float32/float64).
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64,
                      DataType::kBOOL})
    check_roundtrip(pwtest::cast_program(dt), 1e-6, false);
}

TEST(FusePointwise, FloatOpsRoundTrip) {
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE}) {
    const double rel = dt == DataType::kFLOAT ? 2e-5 : 1e-12;
    for (int64_t op = kExp; op <= kIsNan; ++op) {
      if (op == kNot) continue;
      pwtest::TestProgram t{"unary " + std::to_string(op), {}, {dt}};
      const int64_t x = t.program.input(0, dt);
      const int64_t s = t.program.add({kElementWise, kProd, dt, x, t.program.constant(dt, 0.75), 0});
      t.program.add({kUnary, op, op >= kIsInf ? DataType::kBOOL : dt, s, -1, -1});
      check_roundtrip(t, rel, true);
    }
    for (int64_t type : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 64, 65, 66, 67, 68}) {
      pwtest::TestProgram t{"activation " + std::to_string(type), {}, {dt}};
      const int64_t x = t.program.input(0, dt);
      const int64_t s = t.program.add({kElementWise, kSum, dt, x, t.program.constant(dt, -0.5), 0});
      pwtest::act(t.program, type, dt, s);
      check_roundtrip(t, rel, true);
    }
    for (int64_t op : {kSum, kProd, kMax, kMin, kSub, kDiv, kPow, kFloorDiv, kMod, kEqual, kGreater, kLess, kGreaterEqual, kLessEqual}) {
      pwtest::TestProgram t{"binary " + std::to_string(op), {}, {dt, dt}};
      const int64_t a = t.program.input(0, dt), b = t.program.input(1, dt);
      const int64_t r = t.program.add({kElementWise, op, ew_is_compare(op) ? DataType::kBOOL : dt, a, b, op == kMod ? 0 : 0});
      if (ew_is_compare(op)) t.program.add({kSelect, 0, dt, r, a, b});
      else t.program.add({kUnary, kAbs, dt, r, -1, -1});
      check_roundtrip(t, rel, true);
    }
  }
}

TEST(FusePointwise, InterpreterRunsEveryTestProgram) {
  // Including float16/bfloat16 programs, which have no per-op CPU reference: shapes, dtypes, no failure.
  for (const pwtest::TestProgram& t : pwtest::all_programs()) {
    SCOPED_TRACE(t.name);
    ir::Graph g;
    std::vector<ir::Value*> ins;
    std::vector<HostTensor> data;
    for (size_t k = 0; k < t.inputs.size(); ++k) {
      ins.push_back(g.add_input("in" + std::to_string(k), t.inputs[k], {2, 5}));
      data.push_back(random_input(t.inputs[k], {2, 5}, true));
    }
    ir::Node* n = g.add_node("FusedPointwise", "f", ins, 1);
    t.program.to_attrs(n->attrs);
    std::vector<const HostTensor*> ptrs;
    for (auto& d : data) ptrs.push_back(&d);
    std::vector<HostTensor> out;
    ASSERT_NO_THROW(out = cpu::eval_node(*n, ptrs));
    EXPECT_EQ(out.at(0).dtype(), t.program.out_dtype());
    EXPECT_EQ(out.at(0).shape(), (Dims{2, 5}));
  }
}

TEST(FusePointwise, InferenceRejectsBadPrograms) {
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {4});
  ir::Node* n = g.add_node("FusedPointwise", "f", {x}, 1);
  Program p;
  p.input(0, DataType::kHALF);  // the input is float32
  p.to_attrs(n->attrs);
  ir::TensorInfo ti{true, DataType::kFLOAT, {4}, nullptr};
  EXPECT_THROW(ir::infer_node(*n, {ti}), Error);
  Program q;
  q.input(0, DataType::kFLOAT);
  q.add({kUnary, kExp, DataType::kFLOAT, 0, -1, -1});
  q.to_attrs(n->attrs);
  n->attrs.set("rank", int64_t{3});
  const auto out = ir::infer_node(*n, {ti});
  EXPECT_EQ(out[0].shape, (Dims{1, 1, 4}));
  EXPECT_EQ(out[0].dtype, DataType::kFLOAT);
}
