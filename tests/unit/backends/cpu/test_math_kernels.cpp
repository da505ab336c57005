// Pointwise CPU kernels (Identity, Cast, Activation, ElementWise, Unary, Select, Scale) against naive
// double-precision references written here, on random non-zero inputs, many broadcast patterns and dtypes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/cpu/kernels/broadcast.h"
#include "backends/cpu/kernels/vec_math.h"
#include "math_kernel_test_util.h"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace kiln {
namespace {

using namespace mtest;

const std::vector<Dims> kShapes = {{}, {1}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 9}, {1031}, {3, 70000}};

// ============================================== Identity ==================================================

TEST(MathKernels, IdentityCopiesEveryDtype) {
  for (DataType dt : {DataType::kFLOAT, DataType::kINT64, DataType::kBOOL, DataType::kHALF, DataType::kINT8}) {
    for (const Dims& s : kShapes) {
      HostTensor x = dt == DataType::kBOOL ? rand_bool(s) : rand_ints(s, dt, -100, 100, true);
      HostTensor y = run1("Identity", {&x}, {}, test_pool());
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_EQ(y.shape(), s);
      EXPECT_TRUE(y.same_bytes(x)) << dtype_name(dt) << " " << dims_str(s);
    }
  }
}

// ================================================ Cast ====================================================

const std::vector<DataType> kCastTypes = {DataType::kFLOAT, DataType::kHALF,  DataType::kBF16,
                                          DataType::kDOUBLE, DataType::kINT8,  DataType::kUINT8,
                                          DataType::kINT32, DataType::kINT64, DataType::kBOOL};

bool is_float(DataType t) { return dtype_is_float(t); }

// Reference conversion of an exactly-known source value.
double cast_ref(double v, DataType to) {
  switch (to) {
    case DataType::kFLOAT: return static_cast<float>(v);
    case DataType::kDOUBLE: return v;
    case DataType::kHALF: return half_to_float(float_to_half(static_cast<float>(v)));
    case DataType::kBF16: return bf16_to_float(float_to_bf16(static_cast<float>(v)));
    case DataType::kBOOL: return v != 0;
    default: break;
  }
  const int64_t i = static_cast<int64_t>(std::trunc(v));  // toward zero, then wrap to the width
  switch (to) {
    case DataType::kINT8: return static_cast<int8_t>(static_cast<uint8_t>(i & 0xff));
    case DataType::kUINT8: return static_cast<uint8_t>(i & 0xff);
    case DataType::kINT32: return static_cast<int32_t>(static_cast<uint32_t>(i & 0xffffffff));
    default: return static_cast<double>(i);
  }
}

TEST(MathKernels, CastAllPairs) {
  for (DataType from : kCastTypes) {
    for (DataType to : kCastTypes) {
      HostTensor x(from, {5, 41});
      for (int64_t i = 0; i < x.numel(); ++i) {
        double v;
        if (from == DataType::kBOOL) v = rand_int(0, 1);
        else if (from == DataType::kUINT8) v = rand_int(1, 255);
        else if (from == DataType::kINT8) v = rand_int(-128, 127);
        else if (is_float(from)) v = uniform(-300, 300);  // fractional, both signs, beyond int8 range
        else v = rand_int(-100000, 100000);
        if (i == 0 && from != DataType::kBOOL) v = 0;  // exercise ->bool false
        set_elem(x, i, v);
      }
      std::vector<double> src = to_f64(x), ref(src.size());
      for (size_t i = 0; i < src.size(); ++i) ref[i] = cast_ref(src[i], to);
      HostTensor y = run1("Cast", {&x}, [&](ir::Attrs& a) { a.set("to", static_cast<int64_t>(to)); });
      ASSERT_EQ(y.dtype(), to);
      ASSERT_EQ(y.shape(), x.shape());
      EXPECT_TRUE(close(y, ref, 0, 0)) << dtype_name(from) << " -> " << dtype_name(to);
    }
  }
}

TEST(MathKernels, CastSpecialValues) {
  HostTensor x = HostTensor::from_f32({-2.9f, -0.5f, 0.5f, 2.9f, 1e10f, -1e10f}, {6});
  HostTensor y = run1("Cast", {&x}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kINT64)); });
  EXPECT_TRUE(close(y, {-2, 0, 0, 2, 1e10, -1e10}, 0, 0));
  HostTensor n = HostTensor::from_f32({std::nanf(""), 0.0f, -0.0f, 3.0f}, {4});
  HostTensor b = run1("Cast", {&n}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kBOOL)); });
  EXPECT_TRUE(close(b, {1, 0, 0, 1}, 0, 0));
  HostTensor big(DataType::kINT32, {4000000});  // parallel path
  for (int64_t i = 0; i < big.numel(); ++i) big.mutable_data<int32_t>()[i] = static_cast<int32_t>(i * 7 - 5);
  HostTensor f = run1("Cast", {&big}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kFLOAT)); }, test_pool());
  for (int64_t i = 0; i < big.numel(); i += 9973) ASSERT_EQ(f.data<float>()[i], static_cast<float>(i * 7 - 5));
}

// ============================================= Activation =================================================

double act_ref(int64_t t, double x, double a, double b) {
  switch (t) {
    case 0: return std::max(0.0, x);
    case 1: return 1 / (1 + std::exp(-x));
    case 2: return std::tanh(x);
    case 3: return x >= 0 ? x : a * x;
    case 4: return x >= 0 ? x : a * (std::exp(x) - 1);
    case 5: return b * (x > 0 ? x : a * (std::exp(x) - 1));
    case 6: return x / (1 + std::fabs(x));
    case 7: return a * std::log(1 + std::exp(b * x));
    case 8: return std::min(std::max(x, a), b);
    case 9: return std::max(0.0, std::min(1.0, a * x + b));
    case 10: return a * std::tanh(b * x);
    case 11: return x > a ? x : 0;
    case 12: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));  // == 0.5x(1 + erf(x/sqrt2)), no cancellation
    case 13: {  // 0.5 x (1 + tanh(u)) == x * sigmoid(2u), without the cancellation for x << 0
      const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
      return x / (1 + std::exp(-2 * u));
    }
    case 64: return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
    case 65: return x / (1 + std::exp(-x));
    case 66: return x * std::tanh(std::log(1 + std::exp(x)));
    case 67: return std::max(0.0, x) + std::min(0.0, a * (std::exp(x / a) - 1));
    case 68: return x < -b ? x + a : (x > b ? x - a : 0);
  }
  return NAN;
}

struct ActCase {
  int64_t type;
  double alpha, beta;
};
const std::vector<ActCase> kActs = {{0, 0, 0},     {1, 0, 0},      {2, 0, 0},     {3, 0.1, 0},   {4, 1.3, 0},
                                    {5, 1.67, 1.05}, {6, 0, 0},    {7, 1.5, 0.7}, {8, -0.7, 1.2}, {9, 0.2, 0.5},
                                    {10, 1.7, 0.66}, {11, 0.4, 0}, {12, 0, 0},    {13, 0, 0},    {64, 0, 0},
                                    {65, 0, 0},    {66, 0, 0},     {67, 0.8, 0},  {68, 0.3, 0.6}};

TEST(MathKernels, ActivationFloatAndDouble) {
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE}) {
    for (const ActCase& c : kActs) {
      for (const Dims& s : {Dims{3, 17}, Dims{1003}, Dims{2, 100000}}) {
        HostTensor x = rand_float(s, dt, 0.001, 6.0);
        std::vector<double> xs = to_f64(x), ref(xs.size());
        for (size_t i = 0; i < xs.size(); ++i) ref[i] = act_ref(c.type, xs[i], c.alpha, c.beta);
        HostTensor y = run1("Activation", {&x}, [&](ir::Attrs& a) {
          a.set("type", c.type);
          a.set("alpha", c.alpha);
          a.set("beta", c.beta);
        }, test_pool());
        ASSERT_EQ(y.dtype(), dt);
        // atol covers e^x - 1 style cancellation near 0 and the deep negative tail of the GELUs.
        const double rtol = dt == DataType::kFLOAT ? 1e-5 : 1e-11;
        const double atol = dt == DataType::kFLOAT ? 1e-7 : 1e-13;
        EXPECT_TRUE(close(y, ref, rtol, atol)) << "type " << c.type << " " << dtype_name(dt) << " " << dims_str(s);
      }
    }
  }
}

TEST(MathKernels, ActivationFloatWideRangeAndSpecials) {
  // Saturation regions of exp-based functions, and inf/NaN propagation.
  std::vector<float> v = {-200, -90, -88, -50, -20, -9, -1e-6f, 1e-6f, 9, 20, 50, 88, 90, 200};
  HostTensor x = HostTensor::from_f32(v, {static_cast<int64_t>(v.size())});
  for (int64_t t : {1, 2, 12, 13, 65}) {
    std::vector<double> ref;
    for (float f : v) ref.push_back(act_ref(t, f, 0, 0));
    HostTensor y = run1("Activation", {&x}, [&](ir::Attrs& a) { a.set("type", t); });
    EXPECT_TRUE(close(y, ref, 2e-5, 1e-30)) << "type " << t;
  }
  HostTensor n = HostTensor::from_f32({std::nanf("")}, {1});
  for (int64_t t : {1, 2, 12, 13}) {
    HostTensor y = run1("Activation", {&n}, [&](ir::Attrs& a) { a.set("type", t); });
    EXPECT_TRUE(std::isnan(y.data<float>()[0])) << "type " << t;
  }
}

TEST(MathKernels, NanPropagates) {
  const float nan = std::nanf("");
  HostTensor x = HostTensor::from_f32(std::vector<float>(19, nan), {19});
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE}) {
    HostTensor xd = run1("Cast", {&x}, [&](ir::Attrs& a) { a.set("to", static_cast<int64_t>(dt)); });
    for (const ActCase& c : kActs) {
      HostTensor y = run1("Activation", {&xd}, [&](ir::Attrs& a) {
        a.set("type", c.type);
        a.set("alpha", c.alpha);
        a.set("beta", c.beta);
      });
      for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isnan(y.get_f64(i))) << "type " << c.type << " " << dtype_name(dt);
    }
    HostTensor one = scalar_of(dt, 1.0);
    for (int64_t op : {0, 1, 2, 3, 4, 5, 6}) {
      HostTensor y = run1("ElementWise", {&xd, &one}, [&](ir::Attrs& a) { a.set("op", op); });
      HostTensor z = run1("ElementWise", {&one, &xd}, [&](ir::Attrs& a) { a.set("op", op); });
      EXPECT_TRUE(std::isnan(y.get_f64(0))) << "op " << op;
      if (op != 6) {  // 1^NaN is 1
        EXPECT_TRUE(std::isnan(z.get_f64(0))) << "op " << op;
      }
    }
  }
}

TEST(MathKernels, ActivationDefaultsFromOnnx) {
  HostTensor x = rand_float({64}, DataType::kFLOAT, 0.1, 3);
  std::vector<double> xs = to_f64(x), ref;
  for (double v : xs) ref.push_back(act_ref(3, v, 0.01, 0));
  EXPECT_TRUE(close(run1("Activation", {&x}, [](ir::Attrs& a) { a.set("type", 3); }), ref, 1e-6, 0));
  ref.clear();
  for (double v : xs) ref.push_back(act_ref(9, v, 0.2, 0.5));
  EXPECT_TRUE(close(run1("Activation", {&x}, [](ir::Attrs& a) { a.set("type", 9); }), ref, 1e-6, 1e-7));  // 0.2x+0.5 may cancel
}

TEST(MathKernels, ActivationIntegerReluAndClip) {
  for (DataType dt : {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64}) {
    const int64_t lo = dt == DataType::kUINT8 ? 1 : -100;
    HostTensor x = rand_ints({4, 33}, dt, lo, 100, true);
    std::vector<double> xs = to_f64(x), relu, clip;
    for (double v : xs) {
      relu.push_back(std::max(0.0, v));
      clip.push_back(std::min(std::max(v, -20.0), 50.0));
    }
    EXPECT_TRUE(close(run1("Activation", {&x}, [](ir::Attrs& a) { a.set("type", 0); }), relu, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(run1("Activation", {&x}, [](ir::Attrs& a) {
      a.set("type", 8);
      a.set("alpha", -20.0);
      a.set("beta", 50.0);
    }), clip, 0, 0)) << dtype_name(dt);
    // Bounds beyond the type's range clamp harmlessly.
    EXPECT_TRUE(close(run1("Activation", {&x}, [](ir::Attrs& a) {
      a.set("type", 8);
      a.set("alpha", -1e30);
      a.set("beta", 1e30);
    }), xs, 0, 0)) << dtype_name(dt);
  }
}

// ============================================= ElementWise ================================================

// Broadcast pairs: same shape, scalars, trailing vector, per-channel, outer product, rank mismatch, big.
const std::vector<std::pair<Dims, Dims>> kBroadcastPairs = {
    {{}, {}},
    {{7}, {7}},
    {{4, 5}, {}},
    {{}, {4, 5}},
    {{1}, {3, 4}},
    {{6, 8}, {8}},
    {{2, 3, 8}, {1, 1, 8}},
    {{2, 3, 4, 5}, {1, 3, 1, 1}},
    {{3, 1}, {1, 4}},
    {{3, 1, 5}, {4, 1}},
    {{2, 1, 4, 1}, {3, 1, 6}},
    {{5, 1, 1}, {5, 4, 3}},
    {{1, 1}, {1, 1, 1}},
    {{2, 0, 3}, {3}},
    {{64, 3, 40, 40}, {1, 3, 1, 1}},
    {{300000}, {300000}},
    {{128, 768}, {768}},
};

double ew_ref(int64_t op, double a, double b, bool is_int, bool py_mod) {
  switch (op) {
    case 0: return a + b;
    case 1: return a * b;
    case 2: return std::max(a, b);
    case 3: return std::min(a, b);
    case 4: return a - b;
    case 5: return is_int ? std::trunc(a / b) : a / b;
    case 6: return std::pow(a, b);
    case 7: return std::floor(a / b);
    case 8: return (a != 0) && (b != 0);
    case 9: return (a != 0) || (b != 0);
    case 10: return (a != 0) != (b != 0);
    case 11: return a == b;
    case 12: return a > b;
    case 13: return a < b;
    case 64: {
      double r = std::fmod(a, b);
      if (py_mod && r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    }
    case 65: return a >= b;
    case 66: return a <= b;
  }
  return NAN;
}

void check_elementwise(int64_t op, DataType dt, const Dims& sa, const Dims& sb, bool py_mod = false) {
  const bool is_int = !dtype_is_float(dt);
  HostTensor a, b;
  if (dt == DataType::kBOOL) {
    a = rand_bool(sa);
    b = rand_bool(sb);
  } else if (op == 6) {  // pow: positive float bases; small non-negative integer exponents
    a = is_int ? rand_ints(sa, dt, -4, 4) : rand_float(sa, dt, 0.2, 3.0, true);
    b = is_int ? rand_ints(sb, dt, 0, 4) : rand_float(sb, dt, 0.1, 2.5);
  } else if (is_int) {
    const int64_t lo = dt == DataType::kUINT8 ? 1 : -50;
    a = rand_ints(sa, dt, lo, 50, true);
    b = rand_ints(sb, dt, lo, 50, true);
  } else {
    a = rand_float(sa, dt, 0.1, 4.0);
    b = rand_float(sb, dt, 0.1, 4.0);
  }
  if ((op == 11 || op == 12 || op == 13 || op == 65 || op == 66 || op == 2 || op == 3) && a.numel() && b.numel())
    set_elem(a, 0, b.get_f64(0));  // force some equality
  HostTensor y = run1("ElementWise", {&a, &b}, [&](ir::Attrs& at) {
    at.set("op", op);
    if (op == 64) at.set("fmod", py_mod ? 0 : 1);
  }, test_pool());
  Dims out = bcast_shape(sa, sb);
  ASSERT_EQ(y.shape(), out) << "op " << op;
  const bool logical = (op >= 8 && op <= 13) || op == 65 || op == 66;
  ASSERT_EQ(y.dtype(), logical ? DataType::kBOOL : dt);
  std::vector<double> ref(static_cast<size_t>(volume(out)));
  for (int64_t i = 0; i < volume(out); ++i) {
    auto idx = unravel(i, out);
    double av = a.get_f64(bcast_offset(idx, sa)), bv = b.get_f64(bcast_offset(idx, sb));
    double r = ew_ref(op, av, bv, is_int, py_mod);
    if (op == 7 && dt == DataType::kFLOAT) r = std::floor(static_cast<float>(av) / static_cast<float>(bv));
    if (dt == DataType::kINT8 || dt == DataType::kUINT8 || dt == DataType::kINT32) {
      if (!logical) {  // wrap like the typed arithmetic
        int64_t w = static_cast<int64_t>(r);
        r = dt == DataType::kINT8 ? static_cast<int8_t>(w) : dt == DataType::kUINT8 ? static_cast<uint8_t>(w) : static_cast<int32_t>(w);
      }
    } else if (dt == DataType::kFLOAT && !logical) {
      // compute as float would: inputs are exact floats; one rounding
      r = static_cast<float>(r);
    }
    ref[i] = r;
  }
  double rtol = logical || is_int ? 0 : (dt == DataType::kFLOAT ? 2e-6 : 1e-14);
  if (op == 6 && dt == DataType::kFLOAT) rtol = 1e-5;
  EXPECT_TRUE(close(y, ref, rtol, 0)) << "op " << op << " " << dtype_name(dt) << " " << dims_str(sa) << " x " << dims_str(sb)
                                      << (py_mod ? " (python mod)" : "");
}

TEST(MathKernels, ElementWiseArithmeticBroadcast) {
  for (int64_t op : {0, 1, 2, 3, 4, 5, 6, 7})
    for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
      for (auto& [sa, sb] : kBroadcastPairs) {
        if (dt != DataType::kFLOAT && volume(sa) > 100000) continue;
        check_elementwise(op, dt, sa, sb);
      }
}

TEST(MathKernels, ElementWiseSmallIntegers) {
  for (int64_t op : {0, 1, 2, 3, 4, 5, 7, 11, 12, 13, 65, 66})
    for (DataType dt : {DataType::kINT8, DataType::kUINT8})
      for (auto& [sa, sb] : std::vector<std::pair<Dims, Dims>>{{{5, 6}, {6}}, {{3, 1}, {1, 4}}, {{40}, {}}}) {
        check_elementwise(op, dt, sa, sb);
      }
}

TEST(MathKernels, ElementWiseModBothConventions) {
  for (bool py : {false, true})
    for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
      for (auto& [sa, sb] : std::vector<std::pair<Dims, Dims>>{{{4, 9}, {4, 9}}, {{2, 3, 5}, {5}}, {{6}, {}}})
        check_elementwise(64, dt, sa, sb, py);
}

TEST(MathKernels, ElementWiseComparisonsAndLogic) {
  for (int64_t op : {11, 12, 13, 65, 66})
    for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
      for (auto& [sa, sb] : kBroadcastPairs) {
        if (volume(sa) > 100000) continue;
        check_elementwise(op, dt, sa, sb);
      }
  for (int64_t op : {8, 9, 10, 11})
    for (auto& [sa, sb] : kBroadcastPairs) check_elementwise(op, DataType::kBOOL, sa, sb);
}

TEST(MathKernels, ElementWiseIntegerEdgeCases) {
  // C-style truncating division, floor division, division by zero and INT_MIN / -1 do not trap.
  HostTensor a = HostTensor::from_i64({7, -7, 7, -7, 5, std::numeric_limits<int64_t>::min()});
  HostTensor b = HostTensor::from_i64({2, 2, -2, -2, 0, -1});
  auto run = [&](int64_t op) { return to_f64(run1("ElementWise", {&a, &b}, [&](ir::Attrs& x) { x.set("op", op); })); };
  std::vector<double> div = run(5), fdiv = run(7);
  EXPECT_EQ(std::vector<double>(div.begin(), div.begin() + 4), (std::vector<double>{3, -3, -3, 3}));
  EXPECT_EQ(std::vector<double>(fdiv.begin(), fdiv.begin() + 4), (std::vector<double>{3, -4, -4, 3}));
  EXPECT_EQ(div[4], 0);
  // Pow with an exponent that has a fast path, and integer pow with a negative exponent.
  HostTensor x = rand_float({1000}, DataType::kFLOAT, 0.1, 3.0, true);
  for (double e : {0.5, 2.0, 3.0, -1.0, 1.0}) {
    HostTensor ex = scalar_of(DataType::kFLOAT, e);
    std::vector<double> ref;
    for (double v : to_f64(x)) ref.push_back(static_cast<float>(std::pow(v, e)));
    EXPECT_TRUE(close(run1("ElementWise", {&x, &ex}, [](ir::Attrs& at) { at.set("op", 6); }), ref, 2e-6, 0)) << e;
  }
  HostTensor base = HostTensor::from_i64({2, 1, -1, -1, 3});
  HostTensor ex = HostTensor::from_i64({-1, -3, -3, -2, 0});
  EXPECT_TRUE(close(run1("ElementWise", {&base, &ex}, [](ir::Attrs& at) { at.set("op", 6); }), {0, 1, -1, 1, 1}, 0, 0));
}

// BITSHIFT_LEFT 67 / BITSHIFT_RIGHT 68 on random integers with broadcasting, against a reference on the
// bits as uint64 (truncated to the type's width): RIGHT sign-extends signed values; counts outside
// [0, bits) give 0 (-1 for RIGHT of a negative value).
TEST(MathKernels, ElementWiseBitShift) {
  for (int64_t op : {67, 68})
    for (DataType dt : {DataType::kUINT8, DataType::kINT8, DataType::kINT32, DataType::kINT64})
      for (auto& [sa, sb] : std::vector<std::pair<Dims, Dims>>{
               {{7, 9}, {7, 9}}, {{5, 6}, {6}}, {{3, 1}, {1, 4}}, {{40}, {}}, {{}, {40}}, {{2, 0, 3}, {3}}, {{70000}, {70000}}}) {
        const int bits = dt == DataType::kINT64 ? 64 : dt == DataType::kINT32 ? 32 : 8;
        const int64_t lo = dt == DataType::kUINT8 ? 0 : (dt == DataType::kINT8 ? -128 : -1000000);
        const int64_t hi = dt == DataType::kUINT8 ? 255 : (dt == DataType::kINT8 ? 127 : 1000000);
        HostTensor a = rand_ints(sa, dt, lo, hi);
        HostTensor b = rand_ints(sb, dt, 0, bits + 2);  // includes counts >= bits
        if (dt != DataType::kUINT8 && b.numel() > 1) set_elem(b, 1, -1.0);
        HostTensor y = run1("ElementWise", {&a, &b}, [&](ir::Attrs& at) { at.set("op", op); }, test_pool());
        Dims out = bcast_shape(sa, sb);
        ASSERT_EQ(y.shape(), out);
        ASSERT_EQ(y.dtype(), dt);
        const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
        bool ok = true;
        for (int64_t i = 0; i < volume(out) && ok; ++i) {
          auto idx = unravel(i, out);
          const int64_t av = static_cast<int64_t>(a.get_f64(bcast_offset(idx, sa)));
          const int64_t bv = static_cast<int64_t>(b.get_f64(bcast_offset(idx, sb)));
          uint64_t u = static_cast<uint64_t>(av) & mask, r = 0;
          const bool neg = dt != DataType::kUINT8 && av < 0;
          if (bv >= 0 && bv < bits) {
            if (op == 67) r = (u << bv) & mask;
            else if (!neg) r = u >> bv;
            else r = (static_cast<uint64_t>(av >> bv)) & mask;  // sign-extending (av is int64, arithmetic)
          } else if (op == 68 && neg) {
            r = mask;  // all ones: -1
          }
          int64_t want;  // reinterpret the low `bits` bits in the type
          if (dt == DataType::kUINT8) want = static_cast<uint8_t>(r);
          else if (dt == DataType::kINT8) want = static_cast<int8_t>(static_cast<uint8_t>(r));
          else if (dt == DataType::kINT32) want = static_cast<int32_t>(static_cast<uint32_t>(r));
          else want = static_cast<int64_t>(r);
          const int64_t got = dt == DataType::kINT64 ? y.data<int64_t>()[i] : static_cast<int64_t>(y.get_f64(i));
          ok = got == want;
          EXPECT_EQ(got, want) << "op " << op << " " << dtype_name(dt) << " " << av << " by " << bv;
        }
      }
  // ONNX's examples (uint8).
  HostTensor x = HostTensor(DataType::kUINT8, {3});
  HostTensor s = HostTensor(DataType::kUINT8, {3});
  for (int i = 0; i < 3; ++i) {
    set_elem(x, i, std::vector<double>{16, 4, 1}[i]);
    set_elem(s, i, std::vector<double>{1, 2, 3}[i]);
  }
  EXPECT_TRUE(close(run1("ElementWise", {&x, &s}, [](ir::Attrs& at) { at.set("op", 68); }), {8, 1, 0}, 0, 0));
  EXPECT_TRUE(close(run1("ElementWise", {&x, &s}, [](ir::Attrs& at) { at.set("op", 67); }), {32, 16, 8}, 0, 0));
  // Signed: arithmetic right shift; out-of-range counts.
  HostTensor sx = HostTensor::from_i64({-16, -16, 16, -1, 5});
  HostTensor sc = HostTensor::from_i64({2, 64, 64, -1, 70});
  EXPECT_TRUE(close(run1("ElementWise", {&sx, &sc}, [](ir::Attrs& at) { at.set("op", 68); }), {-4, -1, 0, -1, 0}, 0, 0));
  EXPECT_TRUE(close(run1("ElementWise", {&sx, &sc}, [](ir::Attrs& at) { at.set("op", 67); }), {-64, 0, 0, 0, 0}, 0, 0));
  // Floats are rejected.
  HostTensor f = rand_float({3});
  EXPECT_ANY_THROW(run1("ElementWise", {&f, &f}, [](ir::Attrs& at) { at.set("op", 67); }));
}

// ================================================ Unary ===================================================

struct UnaryCase {
  int64_t op;
  double lo, hi;  // |x| range
  bool positive;
  double (*ref)(double);
};
const std::vector<UnaryCase> kUnary = {
    {0, 0.01, 10, false, [](double v) { return std::exp(v); }},
    {1, 0.01, 100, true, [](double v) { return std::log(v); }},
    {2, 0.01, 100, true, [](double v) { return std::sqrt(v); }},
    {3, 0.1, 10, false, [](double v) { return 1 / v; }},
    {4, 0.1, 10, false, [](double v) { return std::fabs(v); }},
    {5, 0.1, 10, false, [](double v) { return -v; }},
    {6, 0.1, 3, false, [](double v) { return std::sin(v); }},
    {7, 0.1, 3, false, [](double v) { return std::cos(v); }},
    {8, 0.1, 1.4, false, [](double v) { return std::tan(v); }},
    {9, 0.1, 5, false, [](double v) { return std::sinh(v); }},
    {10, 0.1, 5, false, [](double v) { return std::cosh(v); }},
    {11, 0.01, 0.99, false, [](double v) { return std::asin(v); }},
    {12, 0.01, 0.99, false, [](double v) { return std::acos(v); }},
    {13, 0.1, 10, false, [](double v) { return std::atan(v); }},
    {14, 0.1, 10, false, [](double v) { return std::asinh(v); }},
    {15, 1.01, 10, true, [](double v) { return std::acosh(v); }},
    {16, 0.01, 0.99, false, [](double v) { return std::atanh(v); }},
    {17, 0.1, 10, false, [](double v) { return std::ceil(v); }},
    {18, 0.1, 10, false, [](double v) { return std::floor(v); }},
    {19, 0.0001, 5, false, [](double v) { return std::erf(v); }},
    {21, 0.1, 10, false, [](double v) { return v > 0 ? 1.0 : -1.0; }},
    {22, 0.1, 10, false, [](double v) { return std::nearbyint(v); }},
};

TEST(MathKernels, UnaryFloatAndDouble) {
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE})
    for (const UnaryCase& c : kUnary)
      for (const Dims& s : {Dims{}, Dims{5, 13}, Dims{200003}}) {
        HostTensor x = rand_float(s, dt, c.lo, c.hi, c.positive);
        std::vector<double> xs = to_f64(x), ref;
        for (double v : xs) ref.push_back(c.ref(v));
        HostTensor y = run1("Unary", {&x}, [&](ir::Attrs& a) { a.set("op", c.op); }, test_pool());
        ASSERT_EQ(y.dtype(), dt);
        EXPECT_TRUE(close(y, ref, dt == DataType::kFLOAT ? 1e-5 : 1e-12, 0))
            << "op " << c.op << " " << dtype_name(dt) << " " << dims_str(s);
      }
}

TEST(MathKernels, UnaryExpErfSpecialValues) {
  std::vector<float> v = {0.0f, -0.0f, 1e-30f, -1e-20f, 0.49999f, 0.5f, -0.5f, 3.9f, -4.1f, 9.0f, -30.0f,
                          88.0f, 88.7f, -87.0f, -100.0f, 1000.0f, -1000.0f};
  HostTensor x = HostTensor::from_f32(v, {static_cast<int64_t>(v.size())});
  std::vector<double> e, f;
  for (float t : v) {
    e.push_back(std::exp(static_cast<double>(t)));
    f.push_back(std::erf(static_cast<double>(t)));
  }
  HostTensor ye = run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 0); });
  HostTensor yf = run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 19); });
  // exp: overflow to +inf, underflow to (denormal) ~0.
  for (size_t i = 0; i < v.size(); ++i) {
    const double want = static_cast<float>(e[i]);
    if (std::isinf(want)) EXPECT_TRUE(std::isinf(ye.data<float>()[i])) << v[i];
    else EXPECT_NEAR(ye.data<float>()[i], want, 1e-6 * want + 1e-37) << v[i];
  }
  EXPECT_TRUE(close(yf, f, 1e-6, 1e-38));
  HostTensor n = HostTensor::from_f32({std::nanf(""), INFINITY, -INFINITY}, {3});
  HostTensor yn = run1("Unary", {&n}, [](ir::Attrs& a) { a.set("op", 19); });
  EXPECT_TRUE(std::isnan(yn.data<float>()[0]));
  EXPECT_EQ(yn.data<float>()[1], 1.0f);
  EXPECT_EQ(yn.data<float>()[2], -1.0f);
}

TEST(MathKernels, UnaryRoundHalfToEvenSignIsInfIsNan) {
  HostTensor x = HostTensor::from_f32({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, -2.6f, 0.0f}, {8});
  EXPECT_TRUE(close(run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 22); }), {0, 2, 2, 0, -2, 2, -3, 0}, 0, 0));
  EXPECT_TRUE(close(run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 21); }), {1, 1, 1, -1, -1, 1, -1, 0}, 0, 0));
  HostTensor s = HostTensor::from_f32({1.0f, INFINITY, -INFINITY, std::nanf(""), -3.0f}, {5});
  HostTensor inf = run1("Unary", {&s}, [](ir::Attrs& a) { a.set("op", 23); });
  HostTensor nan = run1("Unary", {&s}, [](ir::Attrs& a) { a.set("op", 24); });
  EXPECT_EQ(inf.dtype(), DataType::kBOOL);
  EXPECT_TRUE(close(inf, {0, 1, 1, 0, 0}, 0, 0));
  EXPECT_TRUE(close(nan, {0, 0, 0, 1, 0}, 0, 0));
}

TEST(MathKernels, UnaryIntegerAndBool) {
  for (DataType dt : {DataType::kINT8, DataType::kINT32, DataType::kINT64}) {
    HostTensor x = rand_ints({7, 9}, dt, -100, 100, true);
    std::vector<double> xs = to_f64(x), ab, ng, sg;
    for (double v : xs) {
      ab.push_back(std::fabs(v));
      ng.push_back(-v);
      sg.push_back(v > 0 ? 1 : -1);
    }
    EXPECT_TRUE(close(run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 4); }), ab, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 5); }), ng, 0, 0)) << dtype_name(dt);
    EXPECT_TRUE(close(run1("Unary", {&x}, [](ir::Attrs& a) { a.set("op", 21); }), sg, 0, 0)) << dtype_name(dt);
  }
  HostTensor b = rand_bool({33});
  std::vector<double> nb;
  for (double v : to_f64(b)) nb.push_back(v == 0);
  EXPECT_TRUE(close(run1("Unary", {&b}, [](ir::Attrs& a) { a.set("op", 20); }), nb, 0, 0));
}

// ================================================ Select ==================================================

TEST(MathKernels, SelectBroadcastAndDtypes) {
  const std::vector<std::vector<Dims>> shapes = {
      {{}, {}, {}},          {{6}, {6}, {6}},        {{4, 5}, {}, {}},          {{4, 5}, {4, 5}, {}},
      {{}, {4, 5}, {4, 5}},  {{3, 1}, {1, 4}, {4}},  {{2, 3, 4}, {3, 1}, {1, 4}}, {{1}, {2, 2}, {1, 2}},
      {{300000}, {300000}, {1}}, {{64, 1}, {64, 5000}, {1}}};
  for (DataType dt : {DataType::kFLOAT, DataType::kINT64, DataType::kBOOL, DataType::kHALF, DataType::kDOUBLE})
    for (auto& s : shapes) {
      HostTensor c = rand_bool(s[0]);
      HostTensor a = dt == DataType::kBOOL ? rand_bool(s[1]) : rand_float(s[1], dt, 1, 50);
      HostTensor b = dt == DataType::kBOOL ? rand_bool(s[2]) : rand_float(s[2], dt, 1, 50);
      HostTensor y = run1("Select", {&c, &a, &b}, {}, test_pool());
      Dims out = bcast_shape(bcast_shape(s[0], s[1]), s[2]);
      ASSERT_EQ(y.shape(), out);
      std::vector<double> ref;
      for (int64_t i = 0; i < volume(out); ++i) {
        auto idx = unravel(i, out);
        ref.push_back(c.get_f64(bcast_offset(idx, s[0])) != 0 ? a.get_f64(bcast_offset(idx, s[1]))
                                                              : b.get_f64(bcast_offset(idx, s[2])));
      }
      EXPECT_TRUE(close(y, ref, 0, 0)) << dtype_name(dt) << " " << dims_str(s[0]) << dims_str(s[1]) << dims_str(s[2]);
    }
}

// ================================================ Scale ===================================================

TEST(MathKernels, ScaleModes) {
  struct Case {
    int64_t mode;
    Dims x;
    int64_t axis;
  };
  const std::vector<Case> cases = {{0, {2, 3, 4}, 1},   {0, {100000}, 1},     {1, {2, 3, 4, 5}, 1},
                                   {1, {2, 3, 4, 5}, -1}, {1, {4, 7}, 0},     {1, {1, 64, 56, 56}, 1},
                                   {2, {2, 3, 4}, 1},   {2, {3, 5}, 0},       {2, {1, 30000}, 1}};
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE})
    for (const Case& c : cases)
      for (int mask = 0; mask < 8; ++mask) {  // which of shift/scale/power are given
        const bool has_shift = mask & 1, has_scale = mask & 2, has_power = mask & 4;
        const int64_t rank = static_cast<int64_t>(c.x.size());
        const int64_t ax = c.axis < 0 ? c.axis + rank : c.axis;
        int64_t count = 1;
        if (c.mode == 1) count = c.x[ax];
        if (c.mode == 2) count = cpu::prod_dims(c.x, ax, rank);
        HostTensor x = rand_float(c.x, dt, 0.5, 2.0, has_power);  // positive base when raised to a power
        HostTensor shift = rand_float({count}, dt, 0.1, 1.0, has_power);
        HostTensor scale = rand_float({count}, dt, 0.5, 1.5, has_power);
        HostTensor power = rand_float({count}, dt, 0.5, 2.5, true);
        HostTensor y = run1("Scale", {&x, has_shift ? &shift : nullptr, has_scale ? &scale : nullptr, has_power ? &power : nullptr},
                            [&](ir::Attrs& a) {
                              a.set("mode", c.mode);
                              a.set("channel_axis", c.axis);
                            }, test_pool());
        const int64_t inner = c.mode == 1 ? cpu::prod_dims(c.x, ax + 1, rank) : 1;
        std::vector<double> ref;
        for (int64_t i = 0; i < x.numel(); ++i) {
          int64_t k = 0;
          if (c.mode == 1) k = (i / inner) % count;
          if (c.mode == 2) k = i % count;
          double v = x.get_f64(i) * (has_scale ? scale.get_f64(k) : 1.0) + (has_shift ? shift.get_f64(k) : 0.0);
          if (has_power) v = std::pow(v, power.get_f64(k));
          ref.push_back(v);
        }
        // x*scale + shift may cancel: absolute error of the terms (magnitude <= 4).
        EXPECT_TRUE(close(y, ref, dt == DataType::kFLOAT ? 1e-5 : 1e-12, dt == DataType::kFLOAT ? 1e-6 : 1e-14))
            << "mode " << c.mode << " " << dims_str(c.x) << " axis " << c.axis << " mask " << mask << " " << dtype_name(dt);
      }
}

// ============================================ vec_math ====================================================

// The vector math at every width the build has (the kernels pick one at run time, so test all here).
struct VmFns {
  template <class V> static void run(int which, const float* x, float* y, int64_t n) {
    switch (which) {
      case 0: return cpu::vm::map<V>(x, y, n, [](const V& v) __attribute__((always_inline)) { return cpu::vm::exp<V>(v); });
      case 1: return cpu::vm::map<V>(x, y, n, [](const V& v) __attribute__((always_inline)) { return cpu::vm::sigmoid<V>(v); });
      case 2: return cpu::vm::map<V>(x, y, n, [](const V& v) __attribute__((always_inline)) { return cpu::vm::tanh<V>(v); });
      case 3: return cpu::vm::map<V>(x, y, n, [](const V& v) __attribute__((always_inline)) { return cpu::vm::erf<V>(v); });
      case 4: return cpu::vm::map<V>(x, y, n, [](const V& v) __attribute__((always_inline)) { return cpu::vm::gelu_erf<V>(v); });
      case 5: return cpu::vm::map<V>(x, y, n, [](const V& v) __attribute__((always_inline)) { return cpu::vm::gelu_tanh<V>(v); });
    }
  }
};
void vm_base(int w, const float* x, float* y, int64_t n) { VmFns::run<cpu::vm::f4>(w, x, y, n); }
KILN_TARGET_AVX2 void vm_avx2(int w, const float* x, float* y, int64_t n) { VmFns::run<cpu::vm::f8>(w, x, y, n); }
KILN_TARGET_AVX512 void vm_avx512(int w, const float* x, float* y, int64_t n) { VmFns::run<cpu::vm::f16>(w, x, y, n); }

double vm_ref(int w, double x) {
  switch (w) {
    case 0: return std::exp(x);
    case 1: return 1 / (1 + std::exp(-x));
    case 2: return std::tanh(x);
    case 3: return std::erf(x);
    case 4: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    default: {
      const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
      return x / (1 + std::exp(-2 * u));
    }
  }
}

TEST(MathKernels, VecMathAllWidths) {
  std::vector<float> x;
  for (int i = -40000; i <= 40000; ++i) x.push_back(static_cast<float>(i) * 2.5e-4f * (1 + (i % 7) * 1e-3f));  // [-10, 10]
  for (float v : {-200.f, -104.5f, -103.f, -88.f, -87.f, 80.f, 88.5f, 88.8f, 89.5f, 1000.f, 1e-30f, -1e-30f, 0.f, -0.f,
                  0.5f, -0.5f, 0.4999999f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    x.push_back(v);
  x.push_back(std::nanf(""));
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<void (*)(int, const float*, float*, int64_t)> paths = {&vm_base};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) paths.push_back(&vm_avx2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) paths.push_back(&vm_avx512);
  for (size_t p = 0; p < paths.size(); ++p)
    for (int w = 0; w < 6; ++w) {
      std::vector<float> y(x.size(), 12345.0f);
      paths[p](w, x.data(), y.data(), n);
      int bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double r = vm_ref(w, x[i]);
        const float rf = static_cast<float>(r);  // the float the exact result rounds to (inf beyond range)
        bool ok;
        if (std::isnan(r)) ok = std::isnan(y[i]);
        else if (std::isinf(rf)) ok = y[i] == rf;
        else {
          // A few ulp; the GELU tails (|y| < 1e-3 for x < -3) inherit exp's error on an argument ~x^2: eps*x^2.
          const double xx = static_cast<double>(x[i]) * x[i];
          const double rel = (w >= 4 && x[i] < -3) ? 2e-6 + 1e-7 * (xx + 0.1 * xx * std::fabs(x[i])) : 2e-6;
          ok = std::fabs(y[i] - r) <= rel * std::fabs(r) + 1e-37;
        }
        if (!ok && bad++ < 5) ADD_FAILURE() << "path " << p << " fn " << w << " x=" << x[i] << " got " << y[i] << " want " << r;
      }
      EXPECT_EQ(bad, 0) << "path " << p << " fn " << w;
    }
}

// ========================================= Broadcast plan =================================================

TEST(MathKernels, BroadcastPlanCollapsesCommonPatterns) {
  using cpu::make_broadcast_plan;
  Dims a{2, 3, 4, 5}, c{1, 3, 1, 1}, v{5}, s{};
  auto p = make_broadcast_plan(a, {&a, &a});
  EXPECT_EQ(p.dims, (Dims{120}));
  p = make_broadcast_plan(a, {&a, &c});
  EXPECT_EQ(p.dims, (Dims{2, 3, 20}));
  EXPECT_EQ(p.inner_stride[1], 0);
  p = make_broadcast_plan(a, {&a, &v});
  EXPECT_EQ(p.dims, (Dims{24, 5}));
  EXPECT_EQ(p.inner_stride[1], 1);
  p = make_broadcast_plan(a, {&s, &a});
  EXPECT_EQ(p.dims, (Dims{120}));
  EXPECT_EQ(p.inner_stride[0], 0);
}

}  // namespace
}  // namespace kiln
