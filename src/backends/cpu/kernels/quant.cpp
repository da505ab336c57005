// CPU kernels for QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and Requantize (ir/OPS.md).
//
// Arithmetic follows ONNX's reference implementation so results match bit for bit: x / scale is computed in
// the inputs' common float type (float16 / bfloat16 quotients are rounded to that type), integer results
// round half to even and saturate to the target's range; dequantization computes (x - zero_point) * scale in
// float32 (float64 for int32 inputs or float64 scales) and rounds once to the output dtype.
#include <cmath>
#include <limits>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"
#include "backends/cpu/kernels/quant_elem.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using quant::load;
using quant::load_all;

// Where the scale of element (o, a, i) of x viewed as [outer, axis_len, inner] is.
struct ScaleLayout {
  enum Mode { kTensor, kAxis, kBlocked } mode = kTensor;
  int64_t outer = 1, axis_len = 1, inner = 1, block = 0, num_blocks = 1;

  int64_t index(int64_t o, int64_t a, int64_t i) const {
    switch (mode) {
      case kTensor: return 0;
      case kAxis: return a;
      case kBlocked: return (o * num_blocks + a / block) * inner + i;
    }
    return 0;
  }
};

ScaleLayout scale_layout(const KernelContext& ctx, const TensorRef& x, const TensorRef& scale) {
  ScaleLayout l;
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  l.block = ctx.attrs().i("block_size", 0);
  l.inner = x.numel();
  if (l.block <= 0 && scale.numel() == 1) return l;
  int64_t axis = ctx.attrs().i("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) ctx.fail("axis " + std::to_string(ctx.attrs().i("axis", 1)) + " is out of range for input " + dims_str(x.shape));
  l.outer = prod_dims(x.shape, 0, axis);
  l.axis_len = x.shape[axis];
  l.inner = prod_dims(x.shape, axis + 1, x.shape.size());
  if (l.block > 0) {
    l.mode = ScaleLayout::kBlocked;
    l.num_blocks = (l.axis_len + l.block - 1) / l.block;
    if (scale.numel() != l.outer * l.num_blocks * l.inner)
      ctx.fail("the blocked scale " + dims_str(scale.shape) + " does not fit input " + dims_str(x.shape));
  } else {
    l.mode = ScaleLayout::kAxis;
    if (scale.numel() != l.axis_len)
      ctx.fail("the per-axis scale has " + std::to_string(scale.numel()) + " elements, expected " + std::to_string(l.axis_len));
  }
  return l;
}

// Runs fn(element_index, scale_index) over x in parallel rows.
template <class Fn>
void for_each_scaled(const KernelContext& ctx, const ScaleLayout& l, Fn&& fn) {
  const int64_t rows = l.outer * l.axis_len;
  parallel_range(ctx.pool, rows, grain_for(l.inner * 4), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r / l.axis_len, a = r % l.axis_len;
      for (int64_t i = 0; i < l.inner; ++i) fn(r * l.inner + i, l.index(o, a, i));
    }
  });
}

// ===================================== QuantizeLinear =====================================================

// The float type numpy divides x by the scale in: float16 or bfloat16 when both are, float64 when either
// is float64 or x is int32, else float32.
enum class Quotient { kF32, kF16, kBF16, kF64 };
Quotient quotient_type(DataType x, DataType s) {
  if (x == DataType::kDOUBLE || s == DataType::kDOUBLE || x == DataType::kINT32 || s == DataType::kINT32) return Quotient::kF64;
  if (x == DataType::kHALF && s == DataType::kHALF) return Quotient::kF16;
  if (x == DataType::kBF16 && s == DataType::kBF16) return Quotient::kBF16;
  return Quotient::kF32;
}

inline double quotient(double x, double s, Quotient q) {
  switch (q) {
    case Quotient::kF64: return x / s;
    case Quotient::kF32: return static_cast<float>(x) / static_cast<float>(s);
    case Quotient::kF16: return half_to_float(float_to_half(static_cast<float>(x) / static_cast<float>(s)));
    case Quotient::kBF16: return bf16_to_float(float_to_bf16(static_cast<float>(x) / static_cast<float>(s)));
  }
  return 0.0;
}

void quantize_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& s = ctx.input(1);
  TensorRef& y = ctx.out[0];
  const ScaleLayout l = scale_layout(ctx, x, s);
  const std::vector<double> scale = load_all(s);
  std::vector<double> zp = ctx.has_input(2) ? load_all(ctx.in[2]) : std::vector<double>(scale.size(), 0.0);
  if (zp.size() != scale.size()) ctx.fail("the zero point and the scale differ in size");
  const Quotient q = quotient_type(x.dtype, s.dtype);
  const DataType t = y.dtype;
  if (dtype_is_integer(t)) {
    const int64_t lo = dtype_int_min(t), hi = dtype_int_max(t);
    for_each_scaled(ctx, l, [&](int64_t j, int64_t k) {
      quant::store_int(t, y.data, j, quant::round_saturate(quotient(load(x.dtype, x.data, j), scale[k], q), zp[k], lo, hi));
    });
  } else if (dtype_is_minifloat(t)) {
    // float8: the zero point is zero by definition (ONNX's reference ignores it); float4 adds it.
    const bool saturate = ctx.attrs().i("saturate", 1) != 0, add_zp = t == DataType::kFP4;
    uint8_t* out = y.as<uint8_t>();
    for_each_scaled(ctx, l, [&](int64_t j, int64_t k) {
      double v = quotient(load(x.dtype, x.data, j), scale[k], q);
      if (add_zp) v = static_cast<float>(v + zp[k]);
      out[j] = float_to_minifloat(t, v, saturate);
    });
  } else {
    ctx.fail(std::string("cannot quantize to ") + dtype_name(t));
  }
}

// ==================================== DequantizeLinear ====================================================

inline void store_float(DataType t, void* p, int64_t i, double v) {
  switch (t) {
    case DataType::kFLOAT: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DataType::kDOUBLE: static_cast<double*>(p)[i] = v; break;
    case DataType::kHALF: static_cast<uint16_t*>(p)[i] = float_to_half(static_cast<float>(v)); break;
    case DataType::kBF16: static_cast<uint16_t*>(p)[i] = float_to_bf16(static_cast<float>(v)); break;
    default: throw Error(std::string("cannot write dequantized values as ") + dtype_name(t));
  }
}

void dequantize_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& s = ctx.input(1);
  TensorRef& y = ctx.out[0];
  const ScaleLayout l = scale_layout(ctx, x, s);
  const std::vector<double> scale = load_all(s);
  // float8/float4 inputs carry their own zero: ONNX's reference ignores a zero point for them.
  const bool use_zp = ctx.has_input(2) && !dtype_is_minifloat(x.dtype);
  std::vector<double> zp = use_zp ? load_all(ctx.in[2]) : std::vector<double>(scale.size(), 0.0);
  if (zp.size() != scale.size()) ctx.fail("the zero point and the scale differ in size");
  const bool wide = x.dtype == DataType::kINT32 || s.dtype == DataType::kDOUBLE;
  const DataType t = y.dtype;
  for_each_scaled(ctx, l, [&](int64_t j, int64_t k) {
    const double v = load(x.dtype, x.data, j);
    if (wide) store_float(t, y.data, j, (v - zp[k]) * scale[k]);
    else store_float(t, y.data, j, static_cast<float>(static_cast<float>(v - zp[k]) * static_cast<float>(scale[k])));
  });
}

// ================================= DynamicQuantizeLinear ==================================================

// uint8 asymmetric quantization with a range that always includes 0, all in float32 as ONNX's reference.
// NaN elements do not widen the range (the comparisons skip them) and quantize to the zero point.
void dynamic_quantize_kernel(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const float* xs = x.as<float>();
  const int64_t n = x.numel();
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (xs[i] < lo) lo = xs[i];
    if (xs[i] > hi) hi = xs[i];
  }
  if (std::isinf(lo) || std::isinf(hi)) ctx.fail("the input holds an infinity; its quantization range is unbounded");
  const float scale = (hi == lo ? 1.0f : hi - lo) / 255.0f;
  const float zp_f = std::clamp(0.0f - lo / scale, 0.0f, 255.0f);
  const float zp = std::nearbyint(zp_f);
  uint8_t* y = ctx.out[0].as<uint8_t>();
  parallel_range(ctx.pool, n, kParallelGrainElems, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      y[i] = static_cast<uint8_t>(quant::round_saturate(xs[i] / scale, zp, 0, 255));
  });
  *ctx.out[1].as<float>() = scale;
  *ctx.out[2].as<uint8_t>() = static_cast<uint8_t>(zp);
}

// ======================================= Requantize =======================================================

// y = saturate(round_half_even(acc * multiplier + zero_point)) in float64, as ONNX's reference computes
// QLinearMatMul / QLinearConv outputs (int32 times a float array is float64 in numpy). Unlike
// QuantizeLinear, the zero point is added before rounding (it can change a tie's even neighbour).
void requantize_kernel(KernelContext& ctx) {
  const TensorRef& acc = ctx.input(0);
  const TensorRef& m = ctx.input(1);
  const TensorRef& z = ctx.input(2);
  TensorRef& y = ctx.out[0];
  const int64_t lo = dtype_int_min(y.dtype), hi = dtype_int_max(y.dtype);
  const BroadcastPlan plan = make_broadcast_plan(y.shape, {&acc.shape, &m.shape, &z.shape});
  const int32_t* a = acc.as<int32_t>();
  const int64_t sm = plan.inner_stride[1], sz = plan.inner_stride[2];
  broadcast_parallel(ctx.pool, plan, kParallelGrainElems / 4, [&](int64_t pos, const int64_t* off, int64_t len) {
    for (int64_t i = 0; i < len; ++i) {
      const double mult = load(m.dtype, m.data, off[1] + i * sm), zp = load(z.dtype, z.data, off[2] + i * sz);
      quant::store_int(y.dtype, y.data, pos + i,
                       quant::round_saturate(static_cast<double>(a[off[0] + i]) * mult + zp, 0.0, lo, hi));
    }
  });
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("QuantizeLinear", &quantize_kernel);
KILN_REGISTER_CPU_KERNEL("DequantizeLinear", &dequantize_kernel);
KILN_REGISTER_CPU_KERNEL("DynamicQuantizeLinear", &dynamic_quantize_kernel);
KILN_REGISTER_CPU_KERNEL("Requantize", &requantize_kernel);

}  // namespace kiln::cpu
