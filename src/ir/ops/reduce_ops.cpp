// Shape/type inference for the reductions and row-wise ops: Reduce, ArgMinMax, SoftMax, Normalization, TopK,
// CumSum. Contract: ir/OPS.md.
#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

constexpr std::initializer_list<DataType> kFloatTypes = {DataType::kFLOAT, DataType::kHALF, DataType::kBF16,
                                                         DataType::kDOUBLE};
constexpr std::initializer_list<DataType> kNumericTypes = {
    DataType::kFLOAT, DataType::kHALF,   DataType::kBF16,   DataType::kDOUBLE, DataType::kINT8,  DataType::kUINT8,
    DataType::kINT16, DataType::kUINT16, DataType::kINT32, DataType::kUINT32, DataType::kINT64, DataType::kUINT64};

bool one_of(DataType t, std::initializer_list<DataType> l) {
  return std::find(l.begin(), l.end(), t) != l.end();
}

std::string names(std::initializer_list<DataType> l) {
  std::string s;
  size_t i = 0;
  for (DataType t : l) {
    if (i) s += (i + 1 == l.size()) ? " or " : ", ";
    s += dtype_name(t);
    ++i;
  }
  return s;
}

void check_dtype(const InferContext& ctx, size_t i, std::initializer_list<DataType> allowed, const char* what) {
  DataType t = ctx.in(i).dtype;
  if (!one_of(t, allowed)) ctx.fail(std::string(what) + " must be " + names(allowed) + ", got " + dtype_name(t));
}

// Normalizes a list of axes; fails on duplicates.
std::vector<int64_t> normalize_axes(const InferContext& ctx, const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    int64_t n = normalize_axis(ctx, a, rank);
    if (std::find(out.begin(), out.end(), n) != out.end())
      ctx.fail("axis " + std::to_string(a) + " is listed twice in 'axes'");
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------------------------------------------------

void infer_reduce(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  int64_t op = ctx.attrs().i("op", 0);
  if (!(x.dtype == DataType::kBOOL && (op == 2 || op == 3)))  // bool MAX/MIN: any / all
    check_dtype(ctx, 0, kNumericTypes, "input 0");
  if (!((op >= 0 && op <= 4) || (op >= 64 && op <= 68)))
    ctx.fail("attribute 'op' must be a ReduceOperation (SUM 0, PROD 1, MAX 2, MIN 3, AVG 4, or Kiln's 64-68), got " +
             std::to_string(op));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const bool keep = ctx.attrs().i("keep_dims", 1) != 0;
  std::vector<int64_t> raw_axes = ctx.attrs().ints("axes");
  if (ctx.has_input(1)) {  // run-time axes (int 1-D) override the attribute
    const TensorInfo& a = ctx.in(1);
    if (a.dtype != DataType::kINT64 && a.dtype != DataType::kINT32)
      ctx.fail(std::string("the axes (input 1) must be int64 or int32, got ") + dtype_name(a.dtype));
    if (a.shape.size() != 1) ctx.fail("the axes (input 1) must be 1-D, got shape " + dims_str(a.shape));
    if (!a.value) {
      // Which dims are reduced is known only at run time: their sizes are unknown here, and so is the rank
      // without keep_dims unless the number of axes is.
      int64_t n = a.shape[0];
      if (keep) return ctx.set_out(0, x.dtype, Dims(rank, -1));
      if (n < 0) ctx.fail("needs keep_dims or a known number of run-time axes, got axes of shape " + dims_str(a.shape));
      if (n == 0) return ctx.set_out(0, x.dtype, ctx.attrs().i("noop_with_empty_axes", 0) ? x.shape : Dims{});
      if (n > rank) ctx.fail(std::to_string(n) + " axes to reduce in a " + std::to_string(rank) + "-D tensor");
      return ctx.set_out(0, x.dtype, Dims(rank - n, -1));
    }
    raw_axes = a.value->to_i64();
    if (raw_axes.empty() && ctx.attrs().i("noop_with_empty_axes", 0)) return ctx.set_out(0, x.dtype, x.shape);
  }
  std::vector<int64_t> axes = normalize_axes(ctx, raw_axes, rank);
  const bool all = axes.empty();
  Dims out;
  for (int64_t d = 0; d < rank; ++d) {
    bool reduced = all || std::binary_search(axes.begin(), axes.end(), d);
    if (!reduced) out.push_back(x.shape[d]);
    else if (keep) out.push_back(1);
  }
  ctx.set_out(0, x.dtype, std::move(out));
}

void infer_argminmax(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_dtype(ctx, 0,
              kNumericTypes, "input 0");
  int64_t op = ctx.attrs().i("op", 0);
  if (op != 0 && op != 1) ctx.fail("attribute 'op' must be MAX 0 or MIN 1, got " + std::to_string(op));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) ctx.fail("input 0 must have rank >= 1, got a scalar");
  int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), rank);
  const bool keep = ctx.attrs().i("keep_dims", 1) != 0;
  Dims out;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis) out.push_back(x.shape[d]);
    else if (keep) out.push_back(1);
  }
  ctx.set_out(0, DataType::kINT64, std::move(out));
}

void infer_softmax(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_dtype(ctx, 0, kFloatTypes, "input 0");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) ctx.fail("input 0 must have rank >= 1, got a scalar");
  normalize_axis(ctx, ctx.attrs().i("axis", -1), rank);
  ctx.set_out(0, x.dtype, x.shape);
}

// Normalization: x, scale, bias. Scale and bias broadcast against x without growing it.
void infer_normalization(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_dtype(ctx, 0, kFloatTypes, "input 0");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (!ctx.attrs().has("axes")) ctx.fail("attribute 'axes' is required");
  std::vector<int64_t> axes = normalize_axes(ctx, ctx.attrs().ints("axes"), rank);
  if (axes.empty()) ctx.fail("attribute 'axes' must list at least one axis");
  int64_t groups = ctx.attrs().i("num_groups", 1);
  if (groups < 1) ctx.fail("attribute 'num_groups' must be >= 1, got " + std::to_string(groups));
  if (groups > 1) {
    if (rank < 2) ctx.fail("num_groups > 1 needs an input of rank >= 2 (channels on axis 1), got rank " +
                           std::to_string(rank));
    int64_t c = x.shape[1];
    if (c >= 0 && c % groups != 0)
      ctx.fail("channel count " + std::to_string(c) + " is not divisible by num_groups " + std::to_string(groups));
  }
  if (ctx.attrs().f("epsilon", 1e-5) < 0) ctx.fail("attribute 'epsilon' must be >= 0");
  static const char* kNames[] = {"", "scale", "bias"};
  for (size_t i = 1; i < 3; ++i) {
    const TensorInfo& s = ctx.in(i);
    if (!one_of(s.dtype, kFloatTypes))
      ctx.fail(std::string("input ") + std::to_string(i) + " (" + kNames[i] + ") must be a float tensor, got " +
               dtype_name(s.dtype));
    bool ok = s.shape.size() <= x.shape.size();
    for (size_t k = 0; ok && k < s.shape.size(); ++k) {
      int64_t ds = s.shape[s.shape.size() - 1 - k], dx = x.shape[x.shape.size() - 1 - k];
      ok = ds == 1 || ds == dx || ds < 0 || dx < 0;
    }
    if (!ok)
      ctx.fail(std::string("input ") + std::to_string(i) + " (" + kNames[i] + ") of shape " + dims_str(s.shape) +
               " does not broadcast to the input shape " + dims_str(x.shape));
  }
  // output_dtype (Kiln's own, written by passes/fold_normalization_cast): the float type y is stored in, when
  // it is not x's. The statistics and the affine step stay in float32 (float64 for float64 x) either way.
  DataType out = x.dtype;
  const int64_t want = ctx.attrs().i("output_dtype", -1);
  if (want >= 0) {
    if (!dtype_is_valid(static_cast<int32_t>(want)) || !one_of(static_cast<DataType>(want), kFloatTypes))
      ctx.fail("output_dtype " + std::to_string(want) + " must be a float type (float32, float16, bfloat16 or float64)");
    out = static_cast<DataType>(want);
  }
  ctx.set_out(0, out, x.shape);
}

void infer_topk(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_dtype(ctx, 0, kNumericTypes, "input 0");
  int64_t op = ctx.attrs().i("op", 0);
  if (op != 0 && op != 1) ctx.fail("attribute 'op' must be MAX 0 or MIN 1, got " + std::to_string(op));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) ctx.fail("input 0 must have rank >= 1, got a scalar");
  int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", -1), rank);
  int64_t k = -1;
  bool k_known = true;
  if (ctx.has_input(1)) {
    const TensorInfo& kt = ctx.in(1);
    if (kt.dtype != DataType::kINT64 && kt.dtype != DataType::kINT32)
      ctx.fail(std::string("input 1 (k) must be int64 or int32, got ") + dtype_name(kt.dtype));
    if (kt.shape.size() > 1 || (kt.shape.size() == 1 && kt.shape[0] != 1 && kt.shape[0] != -1))
      ctx.fail("input 1 (k) must be a scalar or hold one value, got shape " + dims_str(kt.shape));
    k_known = kt.value != nullptr;
    if (k_known) {
      if (kt.value->numel() != 1) ctx.fail("input 1 (k) must hold one value, got " + std::to_string(kt.value->numel()));
      k = kt.value->get_i64(0);
    }
  } else {
    if (!ctx.attrs().has("k")) ctx.fail("needs attribute 'k' or input 1 (k)");
    k = ctx.attrs().i("k", 1);
  }
  if (k_known && k < 0) ctx.fail("k must be >= 0, got " + std::to_string(k));
  if (k_known && x.shape[axis] >= 0 && k > x.shape[axis])
    ctx.fail("k = " + std::to_string(k) + " exceeds the size " + std::to_string(x.shape[axis]) + " of axis " +
             std::to_string(axis) + " of input shape " + dims_str(x.shape));
  int64_t index_dtype = ctx.attrs().i("index_dtype", static_cast<int64_t>(DataType::kINT64));
  if (index_dtype != static_cast<int64_t>(DataType::kINT64) && index_dtype != static_cast<int64_t>(DataType::kINT32))
    ctx.fail("attribute 'index_dtype' must be INT64 (8) or INT32 (3), got " + std::to_string(index_dtype));
  Dims out = x.shape;
  out[axis] = k_known ? k : -1;
  ctx.set_out(0, x.dtype, out);
  ctx.set_out(1, static_cast<DataType>(index_dtype), out);
}

void infer_cumsum(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_dtype(ctx, 0, kNumericTypes, "input 0");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) ctx.fail("input 0 must have rank >= 1, got a scalar");
  if (ctx.has_input(1)) {
    const TensorInfo& a = ctx.in(1);
    if (a.dtype != DataType::kINT64 && a.dtype != DataType::kINT32)
      ctx.fail(std::string("input 1 (axis) must be int64 or int32, got ") + dtype_name(a.dtype));
    if (a.shape.size() > 1 || (a.shape.size() == 1 && a.shape[0] != 1 && a.shape[0] != -1))
      ctx.fail("input 1 (axis) must be a scalar, got shape " + dims_str(a.shape));
    if (a.value) {
      if (a.value->numel() != 1) ctx.fail("input 1 (axis) must hold one value");
      normalize_axis(ctx, a.value->get_i64(0), rank);
    }
  } else {
    normalize_axis(ctx, ctx.attrs().i("axis", 0), rank);
  }
  ctx.set_out(0, x.dtype, x.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Reduce", 1, 2, 1, &infer_reduce});
KILN_REGISTER_OP(OpDef{"ArgMinMax", 1, 1, 1, &infer_argminmax});
KILN_REGISTER_OP(OpDef{"SoftMax", 1, 1, 1, &infer_softmax});
KILN_REGISTER_OP(OpDef{"Normalization", 3, 3, 1, &infer_normalization});
KILN_REGISTER_OP(OpDef{"TopK", 1, 2, 2, &infer_topk});
KILN_REGISTER_OP(OpDef{"CumSum", 1, 2, 1, &infer_cumsum});

}  // namespace kiln::ir
