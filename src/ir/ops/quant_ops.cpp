// Shape/type inference for the quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
// MatMulInteger, ConvInteger and Requantize. Contract: ir/OPS.md.
//
// QuantizeLinear/DequantizeLinear take a scale (and optional zero point) that is per tensor (one element),
// per axis (1-D, x.shape[axis] elements) or blocked (x's rank, dim `axis` = ceil(x.shape[axis] /
// block_size), every other dim as x's).
#include <string>

#include "ir/dtype_traits.h"
#include "ir/minifloat.h"
#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

bool is_scale_dtype(DataType t) {
  return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16 || t == DataType::kDOUBLE;
}

// The dtypes QuantizeLinear produces and DequantizeLinear reads (plus int32 for the latter).
bool is_quantized_dtype(DataType t) {
  switch (t) {
    case DataType::kINT8:
    case DataType::kUINT8:
    case DataType::kINT16:
    case DataType::kUINT16:
    case DataType::kINT4:
    case DataType::kUINT4:
    case DataType::kINT2:
    case DataType::kUINT2: return true;
    default: return dtype_is_minifloat(t);
  }
}

// Checks the scale (input 1) and optional zero point (input 2) layout against x.
void check_quant_params(const InferContext& ctx, const Dims& x) {
  const int64_t rank = static_cast<int64_t>(x.size());
  const Dims& s = ctx.in(1).shape;
  const int64_t block = ctx.attrs().i("block_size", 0);
  if (block < 0) ctx.fail("block_size must be >= 0, got " + std::to_string(block));
  if (block == 0) {
    if (s.size() > 1) ctx.fail("the scale must be a scalar or 1-D (per axis) without block_size, got " + dims_str(s));
    if (s.size() == 1 && s[0] != 1) {
      if (rank == 0) ctx.fail("a per-axis scale " + dims_str(s) + " needs an input of rank >= 1");
      const int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 1), rank);
      if (s[0] >= 0 && x[axis] >= 0 && s[0] != x[axis])
        ctx.fail("the per-axis scale has " + std::to_string(s[0]) + " elements, but input dim " +
                 std::to_string(axis) + " of " + dims_str(x) + " is " + std::to_string(x[axis]));
    }
  } else {
    if (static_cast<int64_t>(s.size()) != rank || rank == 0)
      ctx.fail("a blocked scale must have the input's rank " + std::to_string(rank) + ", got " + dims_str(s));
    const int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 1), rank);
    for (int64_t d = 0; d < rank; ++d) {
      if (s[d] < 0 || x[d] < 0) continue;
      const int64_t want = d == axis ? (x[d] + block - 1) / block : x[d];
      if (s[d] != want)
        ctx.fail("blocked scale " + dims_str(s) + " does not fit input " + dims_str(x) + " with block_size " +
                 std::to_string(block) + " on axis " + std::to_string(axis) + " (dim " + std::to_string(d) +
                 " should be " + std::to_string(want) + ")");
    }
  }
  if (ctx.has_input(2) && ctx.in(2).shape != s && !(volume(ctx.in(2).shape) == 1 && volume(s) == 1))
    ctx.fail("the zero point " + dims_str(ctx.in(2).shape) + " must have the scale's shape " + dims_str(s));
}

void infer_quantize(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (!is_scale_dtype(x.dtype) && x.dtype != DataType::kINT32)
    ctx.fail(std::string("input 0 must be float32, float16, bfloat16, float64 or int32, got ") + dtype_name(x.dtype));
  if (!is_scale_dtype(ctx.in(1).dtype) && ctx.in(1).dtype != DataType::kINT32)
    ctx.fail(std::string("the scale must be a float tensor, got ") + dtype_name(ctx.in(1).dtype));
  const int64_t want = ctx.attrs().i("output_dtype", -1);
  DataType out = DataType::kUINT8;
  if (want >= 0) {
    if (!dtype_is_valid(static_cast<int32_t>(want))) ctx.fail("output_dtype " + std::to_string(want) + " is not a DataType");
    out = static_cast<DataType>(want);
  }
  if (ctx.has_input(2)) {
    if (want >= 0 && ctx.in(2).dtype != out)
      ctx.fail(std::string("output_dtype ") + dtype_name(out) + " differs from the zero point's dtype " +
               dtype_name(ctx.in(2).dtype));
    out = ctx.in(2).dtype;
  }
  if (!is_quantized_dtype(out))
    ctx.fail(std::string("cannot quantize to ") + dtype_name(out) +
             " (int8/16, uint8/16, int4/uint4, int2/uint2, float8 or float4 expected)");
  check_quant_params(ctx, x.shape);
  ctx.set_out(0, out, x.shape);
}

void infer_dequantize(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (!is_quantized_dtype(x.dtype) && x.dtype != DataType::kINT32)
    ctx.fail(std::string("cannot dequantize ") + dtype_name(x.dtype));
  const DataType sdt = ctx.in(1).dtype;
  if (!is_scale_dtype(sdt) && sdt != DataType::kE8M0)
    ctx.fail(std::string("the scale must be float32, float16, bfloat16, float64 or e8m0, got ") + dtype_name(sdt));
  if (ctx.has_input(2) && ctx.in(2).dtype != x.dtype)
    ctx.fail(std::string("the zero point's dtype ") + dtype_name(ctx.in(2).dtype) + " differs from the input's " +
             dtype_name(x.dtype));
  const int64_t want = ctx.attrs().i("output_dtype", -1);
  DataType out = sdt == DataType::kE8M0 ? DataType::kFLOAT : sdt;
  if (want >= 0) {
    if (!dtype_is_valid(static_cast<int32_t>(want)) || !is_scale_dtype(static_cast<DataType>(want)))
      ctx.fail("output_dtype " + std::to_string(want) + " must be float32, float16, bfloat16 or float64");
    out = static_cast<DataType>(want);
  }
  check_quant_params(ctx, x.shape);
  ctx.set_out(0, out, x.shape);
}

void infer_dynamic_quantize(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (x.dtype != DataType::kFLOAT) ctx.fail(std::string("input 0 must be float32, got ") + dtype_name(x.dtype));
  ctx.set_out(0, DataType::kUINT8, x.shape);
  ctx.set_out(1, DataType::kFLOAT, {});
  ctx.set_out(2, DataType::kUINT8, {});
}

bool is_int8(DataType t) { return t == DataType::kINT8 || t == DataType::kUINT8; }

// numpy matmul shapes: rank-1 operands are vectors, batch dims broadcast.
void infer_matmul_integer(InferContext& ctx) {
  const TensorInfo& a = ctx.in(0);
  const TensorInfo& b = ctx.in(1);
  if (!is_int8(a.dtype) || !is_int8(b.dtype))
    ctx.fail(std::string("inputs must be int8 or uint8, got ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  if (a.shape.empty() || b.shape.empty()) ctx.fail("inputs must have rank >= 1, got " + dims_str(a.shape) + " and " + dims_str(b.shape));
  Dims as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t k1 = as.back(), k2 = bs[bs.size() - 2];
  if (k1 >= 0 && k2 >= 0 && k1 != k2)
    ctx.fail("inner dims differ: " + dims_str(a.shape) + " x " + dims_str(b.shape));
  Dims batch = broadcast_shapes(ctx, Dims(as.begin(), as.end() - 2), Dims(bs.begin(), bs.end() - 2));
  const int64_t m = as[as.size() - 2], n = bs.back();
  for (size_t i = 2; i < 4; ++i) {
    if (!ctx.has_input(i)) continue;
    const TensorInfo& z = ctx.in(i);
    if (z.dtype != ctx.in(i - 2).dtype)
      ctx.fail("zero point " + std::to_string(i) + " must have its operand's dtype " + dtype_name(ctx.in(i - 2).dtype) +
               ", got " + dtype_name(z.dtype));
    const int64_t want = i == 2 ? m : n, got = volume(z.shape);
    if (z.shape.size() > 1 || (got >= 0 && want >= 0 && got != 1 && got != want))
      ctx.fail(std::string(i == 2 ? "a_zero_point" : "b_zero_point") + " must be a scalar or 1-D with " +
               std::to_string(want) + (i == 2 ? " (rows of a)" : " (columns of b)") + " elements, got " + dims_str(z.shape));
  }
  Dims out = batch;
  if (a.shape.size() > 1) out.push_back(m);
  if (b.shape.size() > 1) out.push_back(n);
  ctx.set_out(0, DataType::kINT32, std::move(out));
}

// ConvInteger: Convolution's shapes and attributes (no bias), int32 output.
void infer_conv_integer(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& w = ctx.in(1);
  if (!is_int8(x.dtype) || !is_int8(w.dtype))
    ctx.fail(std::string("inputs must be int8 or uint8, got ") + dtype_name(x.dtype) + " and " + dtype_name(w.dtype));
  if (ctx.has_input(2) && (ctx.in(2).dtype != x.dtype || volume(ctx.in(2).shape) > 1))
    ctx.fail("x_zero_point must be one element of the input's dtype, got " + std::string(dtype_name(ctx.in(2).dtype)) +
             " " + dims_str(ctx.in(2).shape));
  if (ctx.has_input(3)) {
    const TensorInfo& z = ctx.in(3);
    const int64_t n = volume(z.shape), k = w.shape.empty() ? -1 : w.shape[0];
    if (z.dtype != w.dtype || z.shape.size() > 1 || (n > 1 && k >= 0 && n != k))
      ctx.fail("w_zero_point must be a scalar or 1-D with one element per output channel, of the weights' dtype; got " +
               std::string(dtype_name(z.dtype)) + " " + dims_str(z.shape));
  }
  const OpDef* conv = find_op("Convolution");
  if (!conv) ctx.fail("the Convolution op is not registered");
  InferContext c(ctx.node(), {x, w});
  conv->infer(c);
  ctx.set_out(0, DataType::kINT32, c.out(0).shape);
}

// Requantize: acc (int32) * multiplier + zero point, rounded and saturated to the zero point's dtype.
void infer_requantize(InferContext& ctx) {
  const TensorInfo& acc = ctx.in(0);
  if (acc.dtype != DataType::kINT32) ctx.fail(std::string("input 0 must be int32, got ") + dtype_name(acc.dtype));
  if (!is_scale_dtype(ctx.in(1).dtype))
    ctx.fail(std::string("the multiplier must be a float tensor, got ") + dtype_name(ctx.in(1).dtype));
  const DataType out = ctx.in(2).dtype;
  if (!is_int8(out)) ctx.fail(std::string("the zero point must be int8 or uint8, got ") + dtype_name(out));
  for (size_t i = 1; i < 3; ++i) {
    Dims b = broadcast_shapes(ctx, acc.shape, ctx.in(i).shape);
    if (b.size() != acc.shape.size() || (dims_known(acc.shape) && b != acc.shape))
      ctx.fail("input " + std::to_string(i) + " " + dims_str(ctx.in(i).shape) + " must broadcast to the accumulator " +
               dims_str(acc.shape) + " without growing it");
  }
  ctx.set_out(0, out, acc.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"QuantizeLinear", 2, 3, 1, &infer_quantize});
KILN_REGISTER_OP(OpDef{"DequantizeLinear", 2, 3, 1, &infer_dequantize});
KILN_REGISTER_OP(OpDef{"DynamicQuantizeLinear", 1, 1, 3, &infer_dynamic_quantize});
KILN_REGISTER_OP(OpDef{"MatMulInteger", 2, 4, 1, &infer_matmul_integer});
KILN_REGISTER_OP(OpDef{"ConvInteger", 2, 4, 1, &infer_conv_integer});
KILN_REGISTER_OP(OpDef{"Requantize", 3, 3, 1, &infer_requantize});

}  // namespace kiln::ir
