// NLLLoss kernel against a naive reference written here (ONNX NegativeLogLikelihoodLoss), on random inputs:
// every reduction, with and without weights and ignore_index, ranks 2..5, float32 and float64, int32 and
// int64 targets; plus the errors for bad targets and shapes.
#include <gtest/gtest.h>

#include "math_kernel_test_util.h"

namespace kiln {
namespace {

using namespace mtest;

// Reference: straight from the ONNX definition, indexing the unflattened tensors.
std::vector<double> ref_nll(const HostTensor& x, const HostTensor& t, const HostTensor* w, const std::string& red,
                            bool has_ignore, int64_t ignore) {
  const Dims& xs = x.shape();
  std::vector<int64_t> stride = strides_of(xs);
  std::vector<double> loss(static_cast<size_t>(t.numel())), wt(loss.size());
  for (int64_t e = 0; e < t.numel(); ++e) {
    std::vector<int64_t> ti = unravel(e, t.shape());  // (n, d1..dk)
    int64_t cls = t.get_i64(e);
    if (has_ignore && cls == ignore) continue;
    int64_t off = ti[0] * stride[0] + cls * stride[1];
    for (size_t k = 1; k < ti.size(); ++k) off += ti[k] * stride[k + 1];
    wt[e] = w ? w->get_f64(cls) : 1.0;
    loss[e] = -x.get_f64(off) * wt[e];
  }
  if (red == "none") return loss;
  double s = 0, sw = 0;
  for (size_t i = 0; i < loss.size(); ++i) s += loss[i], sw += wt[i];
  return {red == "sum" ? s : s / sw};
}

struct Case {
  Dims x;
  DataType dt;
  DataType tdt;
  bool weight;
  bool ignore;
};

class NllLossTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NllLossTest, MatchesReference) {
  const std::string red = GetParam();
  const Case cases[] = {
      {{4, 3}, DataType::kFLOAT, DataType::kINT64, false, false},
      {{3, 5}, DataType::kFLOAT, DataType::kINT32, true, false},
      {{2, 4, 3}, DataType::kFLOAT, DataType::kINT64, true, true},
      {{2, 3, 4, 2}, DataType::kDOUBLE, DataType::kINT64, false, true},
      {{3, 6, 2, 3, 2}, DataType::kFLOAT, DataType::kINT32, true, true},
      {{2, 5, 7}, DataType::kDOUBLE, DataType::kINT32, true, false},
  };
  for (const Case& c : cases) {
    HostTensor x = rand_float(c.x, c.dt);
    Dims ts = c.x;
    ts.erase(ts.begin() + 1);
    const int64_t classes = c.x[1];
    const int64_t ignore = c.ignore ? -1 : 0;
    // With ignore_index -1, some targets are ignored; every other target is a valid class.
    HostTensor t = rand_ints(ts, c.tdt, c.ignore ? -1 : 0, classes - 1);
    HostTensor w = rand_float({classes}, c.dt, 0.2, 2.0, true);
    std::vector<const HostTensor*> ins = {&x, &t};
    if (c.weight) ins.push_back(&w);
    HostTensor y = run1("NLLLoss", ins, [&](ir::Attrs& a) {
      a.set("reduction", red);
      if (c.ignore) a.set("ignore_index", ignore);
    });
    std::string what = dims_str(c.x) + " " + dtype_name(c.dt) + (c.weight ? " weighted" : "") +
                       (c.ignore ? " ignore" : "");
    if (red == "none") EXPECT_EQ(dims_str(y.shape()), dims_str(ts)) << what;
    else EXPECT_TRUE(y.shape().empty()) << what;
    EXPECT_EQ(y.dtype(), c.dt) << what;
    EXPECT_TRUE(close(y, ref_nll(x, t, c.weight ? &w : nullptr, red, c.ignore, ignore), 1e-5, 1e-6)) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Reductions, NllLossTest, ::testing::Values("none", "sum", "mean"));

TEST(NllLoss, IgnoreIndexOutsideTheClassRange) {
  // ignore_index need not be a class: targets equal to it contribute nothing, however large.
  HostTensor x = rand_float({2, 3});
  HostTensor t(DataType::kINT64, {2});
  t.mutable_data<int64_t>()[0] = 100;
  t.mutable_data<int64_t>()[1] = 2;
  HostTensor y = run1("NLLLoss", {&x, &t}, [](ir::Attrs& a) {
    a.set("reduction", "mean");
    a.set("ignore_index", int64_t{100});
  });
  EXPECT_DOUBLE_EQ(y.get_f64(0), -x.get_f64(5));
}

TEST(NllLoss, OutOfRangeTargetIsAClearError) {
  HostTensor x = rand_float({2, 3});
  HostTensor t(DataType::kINT64, {2});
  t.mutable_data<int64_t>()[1] = 3;
  try {
    run1("NLLLoss", {&x, &t}, [](ir::Attrs& a) { a.set("reduction", "sum"); });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target value 3"), std::string::npos) << e.what();
  }
}

TEST(NllLoss, ShapeErrorsNameTheProblem) {
  HostTensor x = rand_float({2, 3, 4});
  HostTensor bad_t(DataType::kINT64, {2, 5});
  EXPECT_THROW(run1("NLLLoss", {&x, &bad_t}), Error);
  HostTensor t(DataType::kINT64, {2, 4});
  HostTensor bad_w = rand_float({4});
  EXPECT_THROW(run1("NLLLoss", {&x, &t, &bad_w}), Error);
  HostTensor ft = rand_float({2, 4});
  EXPECT_THROW(run1("NLLLoss", {&x, &ft}), Error);
  EXPECT_THROW(run1("NLLLoss", {&x, &t}, [](ir::Attrs& a) { a.set("reduction", "max"); }), Error);
}

}  // namespace
}  // namespace kiln
