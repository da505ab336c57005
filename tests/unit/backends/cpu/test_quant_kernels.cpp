// Quantization CPU kernels (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, Requantize,
// MatMulInteger, ConvInteger) and Cast over the new dtypes, against naive references written here on random
// inputs: per-tensor, per-axis and blocked scales, every quantized dtype, batched and grouped products.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/dtype_traits.h"
#include "ir/minifloat.h"
#include "ir/op_registry.h"
#include "math_kernel_test_util.h"

namespace kiln {
namespace {

using namespace mtest;

// Element i of any tensor as a double (covers the dtypes set_elem does not).
double elem(const HostTensor& t, int64_t i) { return t.get_f64(i); }

// A tensor of `dt` with integer values in [lo, hi], stored the Kiln way (sub-byte types sign-extended).
HostTensor ints_of(DataType dt, Dims shape, int64_t lo, int64_t hi) {
  HostTensor t(dt, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t v = rand_int(lo, hi);
    switch (dtype_size(dt)) {
      case 1:
        if (dtype_is_unsigned(dt) || dt == DataType::kUINT8) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v);
        else t.mutable_data<int8_t>()[i] = static_cast<int8_t>(v);
        break;
      case 2:
        if (dtype_is_unsigned(dt)) t.mutable_data<uint16_t>()[i] = static_cast<uint16_t>(v);
        else t.mutable_data<int16_t>()[i] = static_cast<int16_t>(v);
        break;
      case 4:
        if (dtype_is_unsigned(dt)) t.mutable_data<uint32_t>()[i] = static_cast<uint32_t>(v);
        else t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v);
        break;
      default:
        if (dtype_is_unsigned(dt)) t.mutable_data<uint64_t>()[i] = static_cast<uint64_t>(v);
        else t.mutable_data<int64_t>()[i] = v;
    }
  }
  return t;
}

HostTensor f32(Dims shape, double lo, double hi, bool positive = false) {
  return rand_float(std::move(shape), DataType::kFLOAT, lo, hi, positive);
}

// ================================================ Cast ====================================================

TEST(QuantKernels, CastWideIntegersWrapAndConvert) {
  const DataType kInts[] = {DataType::kINT16, DataType::kUINT16, DataType::kUINT32, DataType::kUINT64,
                            DataType::kINT4,  DataType::kUINT4,  DataType::kINT2,   DataType::kUINT2};
  HostTensor x = ints_of(DataType::kINT64, {257}, -70000, 70000);
  for (DataType to : kInts) {
    HostTensor y = run1("Cast", {&x}, [&](ir::Attrs& a) { a.set("to", static_cast<int64_t>(to)); }, test_pool());
    ASSERT_EQ(y.dtype(), to);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t v = x.data<int64_t>()[i];
      if (to == DataType::kUINT32 || to == DataType::kUINT64) {
        const uint64_t want = to == DataType::kUINT32 ? static_cast<uint32_t>(v) : static_cast<uint64_t>(v);
        ASSERT_EQ(static_cast<uint64_t>(y.get_i64(i)) & (to == DataType::kUINT32 ? 0xffffffffu : ~uint64_t{0}), want);
      } else {
        ASSERT_EQ(y.get_i64(i), wrap_to_int(to, v)) << dtype_name(to) << " " << v;
      }
    }
    // ... and back to float32 and int64 (exact for these ranges).
    HostTensor back = run1("Cast", {&y}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kFLOAT)); });
    for (int64_t i = 0; i < y.numel(); ++i) {
      const double want = to == DataType::kUINT64 ? static_cast<double>(static_cast<uint64_t>(y.get_i64(i)))
                                                  : static_cast<double>(y.get_i64(i));
      ASSERT_EQ(back.data<float>()[i], static_cast<float>(want)) << dtype_name(to);
    }
  }
}

TEST(QuantKernels, CastFloatToUint64AboveInt64) {
  HostTensor x = HostTensor::copy_of(DataType::kDOUBLE, {2}, std::vector<double>{1e19, 3.7}.data());
  HostTensor y = run1("Cast", {&x}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kUINT64)); });
  EXPECT_EQ(y.data<uint64_t>()[0], 10000000000000000000ull);
  EXPECT_EQ(y.data<uint64_t>()[1], 3u);
}

TEST(QuantKernels, CastToAndFromNarrowFloats) {
  HostTensor x = f32({1000}, 1e-4, 600.0);
  x.mutable_data<float>()[0] = std::numeric_limits<float>::infinity();
  x.mutable_data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  for (DataType to : {DataType::kFP8, DataType::kFP8E5M2, DataType::kFP8E4M3FNUZ, DataType::kFP8E5M2FNUZ, DataType::kFP4}) {
    for (int64_t sat : {0, 1}) {
      HostTensor y = run1("Cast", {&x}, [&](ir::Attrs& a) {
        a.set("to", static_cast<int64_t>(to));
        a.set("saturate", sat);
      }, test_pool());
      for (int64_t i = 0; i < x.numel(); ++i)
        ASSERT_EQ(y.data<uint8_t>()[i], float_to_minifloat(to, x.data<float>()[i], sat != 0)) << dtype_name(to) << " " << i;
      HostTensor back = run1("Cast", {&y}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kFLOAT)); });
      for (int64_t i = 0; i < y.numel(); ++i) {
        const float want = minifloat_to_float(to, y.data<uint8_t>()[i]);
        if (std::isnan(want)) ASSERT_TRUE(std::isnan(back.data<float>()[i]));
        else ASSERT_EQ(back.data<float>()[i], want);
      }
    }
  }
  HostTensor e = run1("Cast", {&x}, [](ir::Attrs& a) {
    a.set("to", static_cast<int64_t>(DataType::kE8M0));
    a.set("round_mode", int64_t{1});
  });
  for (int64_t i = 0; i < x.numel(); ++i)
    ASSERT_EQ(e.data<uint8_t>()[i], float_to_e8m0(x.data<float>()[i], true, E8M0Round::kDown));
}

// =========================================== QuantizeLinear ===============================================

struct Layout {
  Dims x, scale;
  int64_t axis = 1, block = 0;
};

// Scale index of element `flat` of x (per tensor, per axis or blocked), as the ONNX reference reshapes it.
int64_t scale_index(const Layout& l, int64_t flat) {
  if (volume(l.scale) == 1) return 0;
  const int64_t axis = l.axis < 0 ? l.axis + static_cast<int64_t>(l.x.size()) : l.axis;
  std::vector<int64_t> idx = unravel(flat, l.x);
  if (l.block == 0) return idx[axis];
  idx[axis] /= l.block;
  int64_t o = 0;
  for (size_t d = 0; d < idx.size(); ++d) o = o * l.scale[d] + idx[d];
  return o;
}

const std::vector<Layout> kLayouts = {
    {{2, 3, 4}, {}, 1, 0},   {{2, 3, 4}, {1}, 1, 0},        {{2, 3, 4}, {3}, 1, 0},
    {{2, 3, 4}, {4}, -1, 0}, {{5, 7}, {5, 3}, 1, 3},       {{6, 4, 2}, {2, 4, 2}, 0, 4},
    {{1031}, {1031}, 0, 0},  {{3, 70000}, {3}, 0, 0}};

TEST(QuantKernels, QuantizeLinearIntegerTargets) {
  const DataType kTargets[] = {DataType::kINT8, DataType::kUINT8, DataType::kINT16, DataType::kUINT16,
                               DataType::kINT4, DataType::kUINT4, DataType::kINT2,  DataType::kUINT2};
  for (DataType t : kTargets) {
    for (const Layout& l : kLayouts) {
      HostTensor x = f32(l.x, 0.01, 40.0);
      HostTensor s = f32(l.scale, 0.05, 0.5, true);
      const int64_t lo = dtype_int_min(t), hi = dtype_int_max(t);
      HostTensor z = ints_of(t, l.scale, lo, hi);
      HostTensor y = run1("QuantizeLinear", {&x, &s, &z}, [&](ir::Attrs& a) {
        a.set("axis", l.axis);
        a.set("block_size", l.block);
      }, test_pool());
      ASSERT_EQ(y.dtype(), t);
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t k = scale_index(l, i);
        const float q = x.data<float>()[i] / s.data<float>()[k];  // float32 quotient, as numpy
        const double want = std::clamp<double>(std::nearbyint(q) + elem(z, k), static_cast<double>(lo), static_cast<double>(hi));
        ASSERT_EQ(y.get_i64(i), static_cast<int64_t>(want)) << dtype_name(t) << " x " << dims_str(l.x) << " at " << i;
      }
    }
  }
}

TEST(QuantKernels, QuantizeLinearRoundsHalfToEvenAndDefaultsToUint8) {
  HostTensor x = HostTensor::from_f32({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 300.0f, -3.0f}, {7});
  HostTensor s = HostTensor::from_f32({1.0f}, {});
  HostTensor y = run1("QuantizeLinear", {&x, &s, nullptr});
  ASSERT_EQ(y.dtype(), DataType::kUINT8);
  const int want[] = {0, 2, 2, 0, 0, 255, 0};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(y.get_i64(i), want[i]) << i;
  HostTensor y8 = run1("QuantizeLinear", {&x, &s, nullptr},
                       [](ir::Attrs& a) { a.set("output_dtype", static_cast<int64_t>(DataType::kINT8)); });
  const int want8[] = {0, 2, 2, 0, -2, 127, -3};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(y8.get_i64(i), want8[i]) << i;
}

TEST(QuantKernels, QuantizeLinearFloat16DividesInFloat16) {
  HostTensor x = rand_float({500}, DataType::kHALF, 0.01, 100.0);
  HostTensor s = rand_float({}, DataType::kHALF, 0.03, 0.07, true);
  HostTensor y = run1("QuantizeLinear", {&x, &s, nullptr}, [](ir::Attrs& a) { a.set("output_dtype", static_cast<int64_t>(DataType::kINT16)); });
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float q = half_to_float(float_to_half(static_cast<float>(elem(x, i)) / static_cast<float>(elem(s, 0))));
    ASSERT_EQ(y.get_i64(i), static_cast<int64_t>(std::nearbyint(q))) << i;
  }
}

TEST(QuantKernels, QuantizeLinearNarrowFloatTargets) {
  for (DataType t : {DataType::kFP8, DataType::kFP8E5M2, DataType::kFP8E4M3FNUZ, DataType::kFP8E5M2FNUZ, DataType::kFP4}) {
    for (int64_t sat : {0, 1}) {
      HostTensor x = f32({4, 33}, 0.001, 900.0);
      HostTensor s = f32({4}, 0.5, 2.0, true);
      HostTensor y = run1("QuantizeLinear", {&x, &s, nullptr}, [&](ir::Attrs& a) {
        a.set("axis", int64_t{0});
        a.set("saturate", sat);
        a.set("output_dtype", static_cast<int64_t>(t));
      }, test_pool());
      for (int64_t i = 0; i < x.numel(); ++i) {
        const float q = x.data<float>()[i] / s.data<float>()[i / 33];
        ASSERT_EQ(y.data<uint8_t>()[i], float_to_minifloat(t, q, sat != 0)) << dtype_name(t) << " " << i;
      }
    }
  }
}

// ========================================== DequantizeLinear ==============================================

TEST(QuantKernels, DequantizeLinearEveryLayoutAndDtype) {
  const DataType kSources[] = {DataType::kINT8, DataType::kUINT8, DataType::kINT16, DataType::kUINT16, DataType::kINT32,
                               DataType::kINT4, DataType::kUINT4, DataType::kINT2,  DataType::kUINT2};
  for (DataType t : kSources) {
    for (const Layout& l : kLayouts) {
      const int64_t lo = t == DataType::kINT32 ? -100000 : dtype_int_min(t), hi = t == DataType::kINT32 ? 100000 : dtype_int_max(t);
      HostTensor x = ints_of(t, l.x, lo, hi);
      HostTensor s = f32(l.scale, 0.01, 0.5);
      HostTensor z = ints_of(t, l.scale, lo, hi);
      for (DataType out : {DataType::kFLOAT, DataType::kHALF}) {
        HostTensor y = run1("DequantizeLinear", {&x, &s, &z}, [&](ir::Attrs& a) {
          a.set("axis", l.axis);
          a.set("block_size", l.block);
          a.set("output_dtype", static_cast<int64_t>(out));
        }, test_pool());
        ASSERT_EQ(y.dtype(), out);
        std::vector<double> ref(static_cast<size_t>(x.numel()));
        for (int64_t i = 0; i < x.numel(); ++i) {
          const int64_t k = scale_index(l, i);
          const double d = t == DataType::kINT32 ? (elem(x, i) - elem(z, k)) * elem(s, k)
                                                 : static_cast<float>(static_cast<float>(elem(x, i) - elem(z, k)) * static_cast<float>(elem(s, k)));
          ref[i] = out == DataType::kHALF ? half_to_float(float_to_half(static_cast<float>(d))) : static_cast<float>(d);
        }
        ASSERT_TRUE(close(y, ref, 0, 0)) << dtype_name(t) << " " << dims_str(l.x);
      }
    }
  }
}

TEST(QuantKernels, DequantizeLinearNarrowFloatsIgnoreZeroPoint) {
  HostTensor x(DataType::kFP8E5M2, {256});
  for (int i = 0; i < 256; ++i) x.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(i);
  HostTensor s = HostTensor::from_f32({0.5f}, {});
  HostTensor z(DataType::kFP8E5M2, {});
  HostTensor y = run1("DequantizeLinear", {&x, &s, &z});
  std::vector<double> ref(256);
  for (int i = 0; i < 256; ++i) ref[i] = minifloat_to_float(DataType::kFP8E5M2, static_cast<uint8_t>(i)) * 0.5f;
  EXPECT_TRUE(close(y, ref, 0, 0, /*nan_ok=*/true));
}

TEST(QuantKernels, QuantizeDequantizeRejectBadScales) {
  HostTensor x = f32({2, 3, 4}, 0.1, 1.0);
  HostTensor s = f32({5}, 0.1, 1.0, true);
  auto infer_error = [&](const std::string& op, const HostTensor& scale, int64_t axis, int64_t block) {
    ir::Graph g;
    ir::Node* n = g.add_node(op, "q", {g.add_input("x", DataType::kFLOAT, x.shape()), g.add_input("s", DataType::kFLOAT, scale.shape())}, 1);
    n->attrs.set("axis", axis);
    n->attrs.set("block_size", block);
    if (op == "DequantizeLinear") n->inputs[0] = g.add_input("xi", DataType::kINT8, x.shape());
    try {
      ir::infer_node(*n, {{true, n->inputs[0]->dtype, n->inputs[0]->shape}, {true, DataType::kFLOAT, scale.shape()}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(infer_error("QuantizeLinear", s, 1, 0).find("per-axis scale has 5 elements"), std::string::npos);
  EXPECT_NE(infer_error("DequantizeLinear", s, 1, 0).find("layer 'q' (DequantizeLinear)"), std::string::npos);
  HostTensor blocked = f32({2, 2, 4}, 0.1, 1.0, true);
  EXPECT_NE(infer_error("QuantizeLinear", blocked, 1, 2).find("no error"), std::string::npos);
  EXPECT_NE(infer_error("QuantizeLinear", blocked, 1, 1).find("does not fit input"), std::string::npos);
  EXPECT_NE(infer_error("QuantizeLinear", s, 7, 0).find("axis"), std::string::npos);
}

// ======================================= DynamicQuantizeLinear ============================================

TEST(QuantKernels, DynamicQuantizeLinear) {
  for (const Dims& shape : std::vector<Dims>{{3, 4}, {1031}, {2, 70000}}) {
    HostTensor x = f32(shape, 0.1, 5.0);
    std::vector<HostTensor> out = run_op("DynamicQuantizeLinear", {&x}, {}, 3, test_pool());
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      lo = std::min(lo, x.data<float>()[i]);
      hi = std::max(hi, x.data<float>()[i]);
    }
    const float scale = (hi - lo) / 255.0f;
    const float zp = std::nearbyint(std::clamp(-lo / scale, 0.0f, 255.0f));
    EXPECT_EQ(out[1].data<float>()[0], scale);
    EXPECT_EQ(out[2].data<uint8_t>()[0], static_cast<uint8_t>(zp));
    for (int64_t i = 0; i < x.numel(); ++i)
      ASSERT_EQ(out[0].data<uint8_t>()[i], static_cast<uint8_t>(std::clamp(std::nearbyint(x.data<float>()[i] / scale) + zp, 0.0f, 255.0f)));
  }
  HostTensor with_nan = HostTensor::from_f32({std::nanf(""), -1.0f, 3.0f}, {3});  // NaN: ignored, at the zero point
  std::vector<HostTensor> q = run_op("DynamicQuantizeLinear", {&with_nan}, {}, 3);
  EXPECT_EQ(q[1].data<float>()[0], 4.0f / 255.0f);
  EXPECT_EQ(q[0].data<uint8_t>()[0], q[2].data<uint8_t>()[0]);
  EXPECT_EQ(q[0].data<uint8_t>()[1], 0);
  EXPECT_EQ(q[0].data<uint8_t>()[2], 255);
  HostTensor inf = HostTensor::from_f32({1.0f, std::numeric_limits<float>::infinity()}, {2});
  EXPECT_THROW(run_op("DynamicQuantizeLinear", {&inf}, {}, 3), Error);
  HostTensor zeros(DataType::kFLOAT, {4});  // an all-zero input: scale 1/255, everything at zero point 0
  std::vector<HostTensor> out = run_op("DynamicQuantizeLinear", {&zeros}, {}, 3);
  EXPECT_EQ(out[1].data<float>()[0], 1.0f / 255.0f);
  EXPECT_EQ(out[2].data<uint8_t>()[0], 0);
}

// ====================================== MatMulInteger / Requantize ========================================

TEST(QuantKernels, MatMulIntegerBatchedWithZeroPoints) {
  struct Case { Dims a, b; };
  const Case kCases[] = {{{3, 5}, {5, 4}}, {{2, 3, 5}, {5, 7}}, {{2, 1, 3, 5}, {4, 5, 2}}, {{5}, {5, 3}},
                         {{3, 5}, {5}},    {{1, 64, 300}, {300, 65}}};
  for (const Case& c : kCases) {
    for (DataType ta : {DataType::kUINT8, DataType::kINT8}) {
      const DataType tb = ta == DataType::kUINT8 ? DataType::kINT8 : DataType::kUINT8;
      HostTensor a = ints_of(ta, c.a, dtype_int_min(ta), dtype_int_max(ta));
      HostTensor b = ints_of(tb, c.b, dtype_int_min(tb), dtype_int_max(tb));
      const int64_t M = c.a.size() > 1 ? c.a[c.a.size() - 2] : 1, K = c.a.back(), N = c.b.size() > 1 ? c.b.back() : 1;
      HostTensor za = ints_of(ta, M > 1 ? Dims{M} : Dims{}, dtype_int_min(ta), dtype_int_max(ta));
      HostTensor zb = ints_of(tb, N > 1 ? Dims{N} : Dims{}, dtype_int_min(tb), dtype_int_max(tb));
      HostTensor y = run1("MatMulInteger", {&a, &b, &za, &zb}, {}, test_pool());
      ASSERT_EQ(y.dtype(), DataType::kINT32);
      // Reference over the numpy-promoted shapes.
      Dims as = c.a, bs = c.b;
      if (as.size() == 1) as.insert(as.begin(), 1);
      if (bs.size() == 1) bs.push_back(1);
      Dims batch = bcast_shape(Dims(as.begin(), as.end() - 2), Dims(bs.begin(), bs.end() - 2));
      const int64_t nb = volume(batch);
      ASSERT_EQ(y.numel(), nb * M * N);
      for (int64_t bi = 0; bi < nb; ++bi) {
        std::vector<int64_t> idx = unravel(bi, batch);
        Dims ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
        const int64_t oa = ab.empty() ? 0 : bcast_offset(idx, ab), ob = bb.empty() ? 0 : bcast_offset(idx, bb);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            int64_t acc = 0;
            for (int64_t k = 0; k < K; ++k)
              acc += (static_cast<int64_t>(elem(a, (oa * M + m) * K + k)) - static_cast<int64_t>(elem(za, za.numel() == 1 ? 0 : m))) *
                     (static_cast<int64_t>(elem(b, (ob * K + k) * N + n)) - static_cast<int64_t>(elem(zb, zb.numel() == 1 ? 0 : n)));
            ASSERT_EQ(y.data<int32_t>()[(bi * M + m) * N + n], acc) << dims_str(c.a) << " x " << dims_str(c.b);
          }
      }
    }
  }
}

TEST(QuantKernels, RequantizeAddsZeroPointBeforeRounding) {
  HostTensor acc = ints_of(DataType::kINT32, {4, 6}, -5000, 5000);
  acc.mutable_data<int32_t>()[0] = 5;  // 5 * 0.5 + 1 = 3.5 -> 4 (rounding after the zero point is added)
  HostTensor m = f32({4, 1}, 0.001, 0.05, true);
  m.mutable_data<float>()[0] = 0.5f;
  HostTensor z = ints_of(DataType::kINT8, {4, 1}, -3, 3);
  z.mutable_data<int8_t>()[0] = 1;
  HostTensor y = run1("Requantize", {&acc, &m, &z}, {}, test_pool());
  ASSERT_EQ(y.dtype(), DataType::kINT8);
  EXPECT_EQ(y.get_i64(0), 4);
  for (int64_t i = 0; i < acc.numel(); ++i) {
    const double v = static_cast<double>(acc.data<int32_t>()[i]) * m.data<float>()[i / 6] + z.data<int8_t>()[i / 6];
    ASSERT_EQ(y.get_i64(i), static_cast<int64_t>(std::clamp(std::nearbyint(v), -128.0, 127.0))) << i;
  }
}

// ============================================= ConvInteger ================================================

struct ConvCase {
  Dims x, w;
  Dims stride, dilation, pre, post;
  int64_t groups = 1, mode = 0;
};

TEST(QuantKernels, ConvIntegerAgainstNaiveLoops) {
  const ConvCase kCases[] = {
      {{1, 1, 5, 5}, {1, 1, 3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},
      {{2, 4, 7, 6}, {6, 2, 3, 2}, {2, 1}, {1, 2}, {1, 0}, {2, 1}, 2},
      {{1, 3, 9}, {4, 3, 3}, {2}, {2}, {1}, {1}},
      {{1, 2, 4, 5, 3}, {2, 2, 2, 3, 1}, {1, 2, 1}, {1, 1, 1}, {0, 1, 0}, {1, 0, 0}},
      {{2, 3, 6, 6}, {5, 3, 3, 3}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, 1, 2},  // SAME_UPPER
      {{1, 2, 5, 4}, {2, 1, 2, 2}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, 2, 3},  // SAME_LOWER, depthwise
  };
  for (const ConvCase& c : kCases) {
    const size_t nsp = c.x.size() - 2;
    HostTensor x = ints_of(DataType::kUINT8, c.x, 0, 255);
    HostTensor w = ints_of(DataType::kINT8, c.w, -128, 127);
    HostTensor zx = ints_of(DataType::kUINT8, {}, 0, 255);
    HostTensor zw = ints_of(DataType::kINT8, {c.w[0]}, -128, 127);
    auto attrs = [&](ir::Attrs& a) {
      a.set("kernel", Dims(c.w.begin() + 2, c.w.end()));
      a.set("stride", c.stride);
      a.set("dilation", c.dilation);
      a.set("pre_padding", c.pre);
      a.set("post_padding", c.post);
      a.set("groups", c.groups);
      a.set("padding_mode", c.mode);
    };
    // Output shape and padding from the IR inference (Convolution's rules).
    ir::Graph g;
    ir::Node* n = g.add_node("ConvInteger", "conv",
                             {g.add_input("x", x.dtype(), x.shape()), g.add_input("w", w.dtype(), w.shape()),
                              g.add_input("zx", zx.dtype(), zx.shape()), g.add_input("zw", zw.dtype(), zw.shape())}, 1);
    attrs(n->attrs);
    auto info = ir::infer_node(*n, {{true, x.dtype(), x.shape()}, {true, w.dtype(), w.shape()},
                                    {true, zx.dtype(), zx.shape()}, {true, zw.dtype(), zw.shape()}});
    const Dims out = info[0].shape;
    HostTensor y = run1("ConvInteger", {&x, &w, &zx, &zw}, attrs, test_pool());
    ASSERT_EQ(y.shape(), out);
    Dims pad = c.pre;
    for (size_t d = 0; d < nsp; ++d)
      if (c.mode >= 2) {
        const int64_t total = std::max<int64_t>(0, (out[2 + d] - 1) * c.stride[d] + c.dilation[d] * (c.w[2 + d] - 1) + 1 - c.x[2 + d]);
        pad[d] = c.mode == 2 ? total / 2 : total - total / 2;
      }
    const int64_t C = c.x[1], K = c.w[0], Cg = C / c.groups, Kg = K / c.groups;
    for (int64_t flat = 0; flat < y.numel(); ++flat) {
      std::vector<int64_t> oi = unravel(flat, out);
      const int64_t bn = oi[0], k = oi[1], grp = k / Kg;
      int64_t acc = 0;
      const int64_t kvol = volume(Dims(c.w.begin() + 2, c.w.end()));
      for (int64_t ci = 0; ci < Cg; ++ci)
        for (int64_t kf = 0; kf < kvol; ++kf) {
          std::vector<int64_t> ki = unravel(kf, Dims(c.w.begin() + 2, c.w.end()));
          int64_t xoff = bn * C + grp * Cg + ci;
          bool inside = true;
          for (size_t d = 0; d < nsp; ++d) {
            const int64_t p = oi[2 + d] * c.stride[d] - pad[d] + ki[d] * c.dilation[d];
            inside &= p >= 0 && p < c.x[2 + d];
            xoff = xoff * c.x[2 + d] + p;
          }
          if (!inside) continue;
          acc += (static_cast<int64_t>(elem(x, xoff)) - static_cast<int64_t>(elem(zx, 0))) *
                 (static_cast<int64_t>(elem(w, (k * Cg + ci) * kvol + kf)) - static_cast<int64_t>(elem(zw, k)));
        }
      ASSERT_EQ(y.data<int32_t>()[flat], acc) << dims_str(c.x) << " at " << flat;
    }
  }
}

}  // namespace
}  // namespace kiln
