// Shape/type inference for the data-movement and shape-arithmetic ops: Constant, Shuffle, Squeeze,
// Unsqueeze, Concatenation, Split, Slice, DynamicSlice, Gather, Shape, ConstantOfShape, Fill, Range,
// Expand, Tile, Pad, Resize. Semantics in ir/OPS.md. Unknown dims are -1; when a shape-defining input's
// value is unknown the affected output dims are -1 (the rank still comes from the shape tensor's length).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "ir/gather_addend.h"
#include "ir/op_registry.h"
#include "ir/partial_values.h"
#include "ir/slice_range.h"

namespace kiln::ir {
namespace {

using Ints = std::vector<int64_t>;

std::string in_name(size_t i) { return "input " + std::to_string(i); }

bool is_integer(DataType t) {
  return t == DataType::kINT32 || t == DataType::kINT64 || t == DataType::kINT8 || t == DataType::kUINT8;
}

// The values of integer input i when known. Fails when the input is not an integer tensor.
std::optional<Ints> int_values(const InferContext& ctx, size_t i, const std::string& what) {
  const TensorInfo& t = ctx.in(i);
  if (!is_integer(t.dtype))
    ctx.fail(what + " (" + in_name(i) + ") must be an int32 or int64 tensor, got " + dtype_name(t.dtype));
  if (!t.value) return std::nullopt;
  return t.value->to_i64();
}

// The number of elements of a 1-D shape tensor input (known even when its value is not).
int64_t shape_tensor_len(const InferContext& ctx, size_t i, const std::string& what) {
  const TensorInfo& t = ctx.in(i);
  if (t.value) return t.value->numel();
  if (t.shape.size() > 1)
    ctx.fail(what + " (" + in_name(i) + ") must be 1-D, got shape " + dims_str(t.shape));
  if (t.shape.empty()) return 1;
  if (t.shape[0] < 0)
    ctx.fail(what + " (" + in_name(i) + ") must have a known length, got shape " + dims_str(t.shape));
  return t.shape[0];
}

// A shape-defining integer input: its values, or `len` unknowns (-1).
Ints shape_values_or_unknown(const InferContext& ctx, size_t i, const std::string& what, bool* known = nullptr) {
  auto v = int_values(ctx, i, what);
  if (known) *known = v.has_value();
  if (v) return *v;
  return Ints(static_cast<size_t>(shape_tensor_len(ctx, i, what)), -1);
}

void check_len(const InferContext& ctx, const Ints& v, size_t n, const std::string& what) {
  if (v.size() != n)
    ctx.fail(what + " has " + std::to_string(v.size()) + " values " + dims_str(v) + ", expected " + std::to_string(n));
}

// ---------------------------------------------------------------------------------------------------------
void infer_constant(InferContext& ctx) {
  if (!ctx.attrs().has("value")) ctx.fail("missing the 'value' tensor attribute");
  const HostTensor& v = ctx.attrs().tensor("value");
  ctx.set_out(0, v.dtype(), v.shape());
  ctx.out(0).value = &v;
}

// ---------------------------------------------------------------------------------------------------------
Dims permute(const InferContext& ctx, const Dims& d, const Ints& perm, const std::string& which) {
  if (perm.empty()) return d;
  if (perm.size() != d.size())
    ctx.fail(which + " " + dims_str(perm) + " has " + std::to_string(perm.size()) + " entries, the tensor " +
             dims_str(d) + " has rank " + std::to_string(d.size()));
  std::vector<bool> seen(d.size(), false);
  Dims out(d.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t p = perm[i];
    if (p < 0 || p >= static_cast<int64_t>(d.size()) || seen[p])
      ctx.fail(which + " " + dims_str(perm) + " is not a permutation of 0.." + std::to_string(d.size() - 1));
    seen[p] = true;
    out[i] = d[p];
  }
  return out;
}

// Resolves reshape dims (0 = copy input dim when zero_ph, -1 = inferred) against the input shape.
Dims resolve_reshape(const InferContext& ctx, const Dims& in, const Ints& req, bool zero_ph) {
  Dims out(req.size());
  int64_t infer_at = -1;
  std::vector<bool> copied(in.size(), false);
  for (size_t i = 0; i < req.size(); ++i) {
    int64_t v = req[i];
    if (v == 0 && zero_ph) {
      if (i >= in.size())
        ctx.fail("reshape dims " + dims_str(req) + ": dim " + std::to_string(i) +
                 " is 0 (copy the input dim) but the input " + dims_str(in) + " has only " +
                 std::to_string(in.size()) + " dims");
      out[i] = in[i];
      copied[i] = true;
    } else if (v == -1) {
      if (infer_at >= 0) ctx.fail("reshape dims " + dims_str(req) + " have more than one -1");
      infer_at = static_cast<int64_t>(i);
      out[i] = -1;
    } else if (v < -1) {
      ctx.fail("reshape dims " + dims_str(req) + ": dim " + std::to_string(i) + " is " + std::to_string(v) +
               ", expected >= -1");
    } else {
      out[i] = v;
    }
  }
  // Volumes, with the dims copied by placeholders cancelled on both sides (so [-1, 3, 4] -> [0, -1] works).
  int64_t in_known = 1, out_known = 1;
  bool in_unknown = false, copied_zero = false;
  for (size_t j = 0; j < in.size(); ++j) {
    if (copied[j]) {
      copied_zero = copied_zero || in[j] == 0;  // both sides then hold zero elements, whatever the rest
      continue;
    }
    if (in[j] < 0) in_unknown = true;
    else in_known *= in[j];
  }
  for (size_t i = 0; i < req.size(); ++i) {
    if (static_cast<int64_t>(i) == infer_at || (req[i] == 0 && zero_ph)) continue;
    out_known *= out[i];
  }
  auto mismatch = [&]() {
    ctx.fail("cannot reshape " + dims_str(in) + " (" + std::to_string(volume(in)) + " elements) to " +
             dims_str(req));
  };
  if (infer_at >= 0) {
    if (!in_unknown) {
      if (out_known == 0 || copied_zero)
        ctx.fail("cannot reshape " + dims_str(in) + " to " + dims_str(req) +
                 ": the -1 is ambiguous when the other dims hold zero elements");
      if (in_known % out_known != 0) mismatch();
      out[infer_at] = in_known / out_known;
    }
  } else if (!in_unknown && in_known != out_known && !copied_zero) {
    mismatch();
  }
  return out;
}

// Reshape dims of which the build knows some entries (ir/partial_values.h). An entry read from the Shape of the
// reshape's own input (or of a tensor that provably has the same dim there), at the dim it lands on, copies
// that dim (as a 0 placeholder does): with every other
// entry known, the usual rules apply, a -1 included (GPT-2's view(*x.shape[:-1], -1, D) with a dynamic batch).
// Otherwise a known entry gives its dim (0 copies the input's when zero_ph) and the rest stay unknown; nothing is
// checked then: the run-time inference, with every value, checks the reshape.
Dims resolve_partial_reshape(const InferContext& ctx, const Dims& in, const PartialEntries& req, bool zero_ph,
                             const Ints& perm) {
  const Value* data = ctx.node().inputs[0];
  Ints as_placeholders(req.size());
  bool resolvable = true;
  for (size_t i = 0; i < req.size() && resolvable; ++i) {
    // Dim i of the reshaped tensor: read from its own Shape, or from a tensor the layers in between keep that
    // dim of (the block's input, before a projection).
    const bool self = i < in.size() && req[i].dim_of &&
                      (perm.empty() ? req[i].dim == static_cast<int64_t>(i) &&
                                          same_dim_at_run_time(data, req[i].dim_of, req[i].dim)
                                    : req[i].dim_of == data && perm[i] == req[i].dim);
    if (req[i].value && (*req[i].value != 0 || zero_ph)) as_placeholders[i] = *req[i].value;
    else if (self) as_placeholders[i] = 0;
    else resolvable = false;
  }
  if (resolvable) return resolve_reshape(ctx, in, as_placeholders, true);
  Dims out(req.size(), -1);
  for (size_t i = 0; i < req.size(); ++i) {
    if (!req[i].value) continue;
    const int64_t v = *req[i].value;
    if (v == 0 && zero_ph) out[i] = i < in.size() ? in[i] : -1;
    else if (v >= 0) out[i] = v;
  }
  return out;
}

void infer_shuffle(InferContext& ctx) {
  const auto& a = ctx.attrs();
  const TensorInfo& x = ctx.in(0);
  Dims t = permute(ctx, x.shape, a.ints("first_transpose"), "first_transpose");
  bool zero_ph = a.i("zero_is_placeholder", 1) != 0;
  if (ctx.has_input(1)) {
    bool known = false;
    Ints req = shape_values_or_unknown(ctx, 1, "the reshape dims", &known);
    PartialEntries partial;
    if (known) t = resolve_reshape(ctx, t, req, zero_ph);
    else if (partial_entries(ctx.node().inputs[1], &partial) && partial.size() == req.size())
      t = resolve_partial_reshape(ctx, t, partial, zero_ph, a.ints("first_transpose"));
    else t = Dims(req.size(), -1);
  } else if (a.i("has_reshape", a.has("reshape_dims") ? 1 : 0)) {
    t = resolve_reshape(ctx, t, a.ints("reshape_dims"), zero_ph);
  }
  t = permute(ctx, t, a.ints("second_transpose"), "second_transpose");
  ctx.set_out(0, x.dtype, t);
}

// ---------------------------------------------------------------------------------------------------------
void infer_squeeze(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  int64_t r = static_cast<int64_t>(x.shape.size());
  Ints axes = ctx.attrs().ints("axes");
  if (ctx.has_input(1)) {  // run-time axes (input 1) override the attribute
    bool known = false;
    axes = shape_values_or_unknown(ctx, 1, "the axes", &known);
    if (!known) {
      if (static_cast<int64_t>(axes.size()) > r)
        ctx.fail(std::to_string(axes.size()) + " axes to squeeze from a " + std::to_string(r) + "-D tensor");
      ctx.set_out(0, x.dtype, Dims(r - axes.size(), -1));
      return;
    }
  }
  std::vector<bool> drop(r, false);
  if (axes.empty()) {
    for (int64_t d = 0; d < r; ++d) {
      if (x.shape[d] < 0)
        ctx.fail("squeezing all dims of size 1 needs known dims, got " + dims_str(x.shape) + " (give 'axes')");
      drop[d] = x.shape[d] == 1;
    }
  } else {
    for (int64_t ax : axes) {
      int64_t d = normalize_axis(ctx, ax, r);
      if (drop[d]) ctx.fail("axis " + std::to_string(ax) + " appears twice in axes " + dims_str(axes));
      if (x.shape[d] != 1 && x.shape[d] != -1)
        ctx.fail("cannot squeeze axis " + std::to_string(ax) + " of size " + std::to_string(x.shape[d]) + " in " +
                 dims_str(x.shape) + " (expected size 1)");
      drop[d] = true;
    }
  }
  Dims out;
  for (int64_t d = 0; d < r; ++d)
    if (!drop[d]) out.push_back(x.shape[d]);
  ctx.set_out(0, x.dtype, out);
}

void infer_unsqueeze(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  Ints axes = ctx.attrs().ints("axes");
  bool known = true;
  if (ctx.has_input(1)) axes = shape_values_or_unknown(ctx, 1, "the axes", &known);  // overrides the attribute
  if (axes.empty()) ctx.fail("needs non-empty axes (the 'axes' attribute or input 1)");
  int64_t r = static_cast<int64_t>(x.shape.size() + axes.size());
  if (!known) {  // which dims are new is known only at run time
    ctx.set_out(0, x.dtype, Dims(r, -1));
    return;
  }
  std::vector<bool> ins(r, false);
  for (int64_t ax : axes) {
    int64_t d = normalize_axis(ctx, ax, r);
    if (ins[d]) ctx.fail("axis " + std::to_string(ax) + " appears twice in axes " + dims_str(axes));
    ins[d] = true;
  }
  Dims out(r);
  size_t k = 0;
  for (int64_t d = 0; d < r; ++d) out[d] = ins[d] ? 1 : x.shape[k++];
  ctx.set_out(0, x.dtype, out);
}

// ---------------------------------------------------------------------------------------------------------
void infer_concat(InferContext& ctx) {
  const TensorInfo& x0 = ctx.in(0);
  int64_t r = static_cast<int64_t>(x0.shape.size());
  if (r == 0) ctx.fail("cannot concatenate scalars (input 0 has shape [])");
  int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
  Dims out = x0.shape;
  for (size_t k = 1; k < ctx.num_inputs(); ++k) {
    const TensorInfo& t = ctx.in(k);
    if (t.dtype != x0.dtype)
      ctx.fail(in_name(k) + " has dtype " + dtype_name(t.dtype) + ", input 0 has " + dtype_name(x0.dtype));
    if (t.shape.size() != x0.shape.size())
      ctx.fail(in_name(k) + " has shape " + dims_str(t.shape) + ", expected rank " + std::to_string(r) +
               " like input 0 " + dims_str(x0.shape));
    for (int64_t d = 0; d < r; ++d) {
      if (d == axis) {
        out[d] = (out[d] < 0 || t.shape[d] < 0) ? -1 : out[d] + t.shape[d];
      } else if (out[d] < 0) {
        out[d] = t.shape[d];
      } else if (t.shape[d] >= 0 && t.shape[d] != out[d]) {
        ctx.fail(in_name(k) + " has shape " + dims_str(t.shape) + ", which does not match input 0 " +
                 dims_str(x0.shape) + " outside the concatenation axis " + std::to_string(axis));
      }
    }
  }
  ctx.set_out(0, x0.dtype, out);
}

// ---------------------------------------------------------------------------------------------------------
void infer_split(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t n = static_cast<int64_t>(ctx.outputs().size());
  if (n < 1) ctx.fail("needs at least one output");
  int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
  int64_t dim = x.shape[axis];
  Ints sizes;
  if (ctx.has_input(1)) {
    sizes = shape_values_or_unknown(ctx, 1, "the split sizes");
  } else if (!ctx.attrs().ints("split").empty()) {
    sizes = ctx.attrs().ints("split");
  } else if (dim >= 0) {
    int64_t chunk = (dim + n - 1) / n;
    sizes.assign(n, chunk);
    sizes[n - 1] = dim - chunk * (n - 1);
    if (sizes[n - 1] < 0)
      ctx.fail("cannot split axis " + std::to_string(axis) + " of size " + std::to_string(dim) + " into " +
               std::to_string(n) + " chunks of " + std::to_string(chunk));
  } else {
    sizes.assign(n, -1);
  }
  check_len(ctx, sizes, static_cast<size_t>(n), "the split sizes");
  int64_t sum = 0;
  bool all_known = true;
  for (int64_t s : sizes) {
    if (s < 0) all_known = false;
    else sum += s;
  }
  if (all_known && dim >= 0 && sum != dim)
    ctx.fail("split sizes " + dims_str(sizes) + " add up to " + std::to_string(sum) + ", but axis " +
             std::to_string(axis) + " of " + dims_str(x.shape) + " has size " + std::to_string(dim));
  for (int64_t i = 0; i < n; ++i) {
    Dims o = x.shape;
    o[axis] = sizes[i];
    ctx.set_out(i, x.dtype, o);
  }
}

// ---------------------------------------------------------------------------------------------------------
// TensorRT slice: inputs x, start, size, stride, fill value.
void infer_slice(InferContext& ctx) {
  const auto& a = ctx.attrs();
  const TensorInfo& x = ctx.in(0);
  size_t r = x.shape.size();
  int64_t mode = a.i("mode", 0);
  if (mode < 0 || mode > 4) ctx.fail("unknown slice mode " + std::to_string(mode) + " (expected 0..4)");
  auto param = [&](size_t idx, const char* name, int64_t def, bool* known) {
    Ints v;
    *known = true;
    if (ctx.has_input(idx)) {
      v = shape_values_or_unknown(ctx, idx, std::string("the slice ") + name, known);
    } else if (a.has(name)) {
      v = a.ints(name);
    } else {
      if (def < 0) ctx.fail(std::string("needs the '") + name + "' attribute or input " + std::to_string(idx));
      v.assign(r, def);
    }
    check_len(ctx, v, r, std::string("the slice ") + name);
    return v;
  };
  bool start_known, size_known, stride_known;
  Ints start = param(1, "start", 0, &start_known);
  Ints size = param(2, "size", -1, &size_known);
  Ints stride = param(3, "stride", 1, &stride_known);
  if (size_known)
    for (size_t d = 0; d < r; ++d)
      if (size[d] < 0) ctx.fail("slice size " + dims_str(size) + " has a negative entry");
  if (mode == 0 && start_known && size_known && stride_known) {
    for (size_t d = 0; d < r; ++d) {
      if (x.shape[d] < 0 || size[d] == 0) continue;
      int64_t first = start[d], last = start[d] + (size[d] - 1) * stride[d];
      for (int64_t idx : {first, last})
        if (idx < 0 || idx >= x.shape[d])
          ctx.fail("slice of " + dims_str(x.shape) + " with start " + dims_str(start) + ", size " + dims_str(size) +
                   ", stride " + dims_str(stride) + " reads index " + std::to_string(idx) + " on axis " +
                   std::to_string(d) + ", outside [0, " + std::to_string(x.shape[d]) + ") (mode STRICT_BOUNDS)");
    }
  }
  if (mode == 3 && ctx.has_input(4)) {
    const TensorInfo& f = ctx.in(4);
    if (volume(f.shape) != 1 && volume(f.shape) != -1)
      ctx.fail("the fill value (input 4) must hold one element, got shape " + dims_str(f.shape));
  }
  ctx.set_out(0, x.dtype, size);
}

// ---------------------------------------------------------------------------------------------------------
// ONNX Slice: x, starts, ends, axes, steps.
void infer_dynamic_slice(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  int64_t r = static_cast<int64_t>(x.shape.size());
  bool sk, ek, ak = true, tk = true;
  Ints starts = shape_values_or_unknown(ctx, 1, "starts", &sk);
  Ints ends = shape_values_or_unknown(ctx, 2, "ends", &ek);
  size_t n = starts.size();
  check_len(ctx, ends, n, "ends");
  Ints axes, steps;
  if (ctx.has_input(3)) {
    axes = shape_values_or_unknown(ctx, 3, "axes", &ak);
    check_len(ctx, axes, n, "axes");
  } else {
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (ctx.has_input(4)) {
    steps = shape_values_or_unknown(ctx, 4, "steps", &tk);
    check_len(ctx, steps, n, "steps");
  } else {
    steps.assign(n, 1);
  }
  if (!ak) {  // any axis may be sliced
    ctx.set_out(0, x.dtype, Dims(r, -1));
    return;
  }
  if (static_cast<int64_t>(n) > r)
    ctx.fail(std::to_string(n) + " starts given for a " + std::to_string(r) + "-D tensor " + dims_str(x.shape));
  Dims out = x.shape;
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < n; ++i) {
    int64_t ax = normalize_axis(ctx, axes[i], r);
    if (seen[ax]) ctx.fail("axis " + std::to_string(axes[i]) + " appears twice in axes " + dims_str(axes));
    seen[ax] = true;
    if (tk && steps[i] == 0) ctx.fail("slice step on axis " + std::to_string(axes[i]) + " is 0");
    int64_t dim = x.shape[ax];
    if (!sk || !ek || !tk || dim < 0) {
      out[ax] = -1;
      continue;
    }
    out[ax] = onnx_slice_range(dim, starts[i], ends[i], steps[i]).length;
  }
  ctx.set_out(0, x.dtype, out);
}

// ---------------------------------------------------------------------------------------------------------
// Gather's fused addend (input 2; ir/gather_addend.h): only on rows gathered along axis 0, in the data's
// float dtype; y is the gathered rows plus the addend broadcast numpy's way, so its shape is the broadcast of
// the two (the SUM's that the fusion replaced). Returns that shape.
Dims gather_addend_output(const InferContext& ctx, const Dims& gathered) {
  const TensorInfo& data = ctx.in(0);
  const TensorInfo& addend = ctx.in(2);
  const int64_t r = static_cast<int64_t>(data.shape.size());
  if (ctx.attrs().i("mode", 0) != 0 || normalize_axis(ctx, ctx.attrs().i("axis", 0), r) != 0)
    ctx.fail("an addend (input 2) is only supported when gathering rows along axis 0 in DEFAULT mode");
  if (addend.dtype != data.dtype)
    ctx.fail(std::string("the addend (input 2) must have the data's dtype ") + dtype_name(data.dtype) + ", got " +
             dtype_name(addend.dtype));
  if (data.dtype != DataType::kFLOAT && data.dtype != DataType::kHALF && data.dtype != DataType::kBF16)
    ctx.fail(std::string("an addend (input 2) needs float32, float16 or bfloat16 data, got ") + dtype_name(data.dtype));
  const Dims& a = addend.shape;
  const int64_t bad = first_broadcast_conflict(a, gathered);
  if (bad >= 0) {
    const size_t rank = std::max(a.size(), gathered.size()), i = static_cast<size_t>(bad);
    ctx.fail("the addend (input 2) " + dims_str(a) + " does not broadcast against the gathered rows " +
             dims_str(gathered) + " (dim " + std::to_string(bad) + ": " + std::to_string(aligned_dim(a, rank, i)) +
             " against " + std::to_string(aligned_dim(gathered, rank, i)) + ")");
  }
  return broadcast_shapes(ctx, gathered, a);
}

void infer_gather(InferContext& ctx) {
  const TensorInfo& data = ctx.in(0);
  const TensorInfo& idx = ctx.in(1);
  if (idx.dtype != DataType::kINT32 && idx.dtype != DataType::kINT64)
    ctx.fail(std::string("indices (input 1) must be int32 or int64, got ") + dtype_name(idx.dtype));
  int64_t r = static_cast<int64_t>(data.shape.size());
  int64_t q = static_cast<int64_t>(idx.shape.size());
  int64_t mode = ctx.attrs().i("mode", 0);
  if (mode != 2 && ctx.attrs().i("num_elementwise_dims", 0) != 0)
    ctx.fail("num_elementwise_dims is only supported in ND mode, got " +
             std::to_string(ctx.attrs().i("num_elementwise_dims", 0)) + " in mode " + std::to_string(mode));
  Dims out;
  if (mode == 0) {
    if (r == 0) ctx.fail("cannot gather from a scalar");
    int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
    out.assign(data.shape.begin(), data.shape.begin() + axis);
    out.insert(out.end(), idx.shape.begin(), idx.shape.end());
    out.insert(out.end(), data.shape.begin() + axis + 1, data.shape.end());
  } else if (mode == 1) {
    if (r == 0) ctx.fail("cannot gather from a scalar");
    int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
    if (q != r)
      ctx.fail("ELEMENT mode needs indices of the data's rank: data " + dims_str(data.shape) + ", indices " +
               dims_str(idx.shape));
    for (int64_t d = 0; d < r; ++d)
      if (d != axis && data.shape[d] >= 0 && idx.shape[d] > data.shape[d])
        ctx.fail("ELEMENT mode: indices " + dims_str(idx.shape) + " exceed data " + dims_str(data.shape) +
                 " on axis " + std::to_string(d));
    out = idx.shape;
  } else if (mode == 2) {
    int64_t b = ctx.attrs().i("num_elementwise_dims", 0);
    if (q < 1) ctx.fail("ND mode needs indices of rank >= 1, got " + dims_str(idx.shape));
    int64_t k = idx.shape[q - 1];
    if (k < 0) ctx.fail("ND mode needs the last dim of the indices known, got " + dims_str(idx.shape));
    if (b < 0 || b >= std::min(r, q))
      ctx.fail("num_elementwise_dims " + std::to_string(b) + " must be in [0, " + std::to_string(std::min(r, q)) +
               ") for data " + dims_str(data.shape) + " and indices " + dims_str(idx.shape));
    if (b + k > r)
      ctx.fail("ND mode: index tuples of length " + std::to_string(k) + " after " + std::to_string(b) +
               " batch dims exceed the data rank " + std::to_string(r));
    for (int64_t d = 0; d < b; ++d)
      if (data.shape[d] >= 0 && idx.shape[d] >= 0 && data.shape[d] != idx.shape[d])
        ctx.fail("ND mode: batch dim " + std::to_string(d) + " differs between data " + dims_str(data.shape) +
                 " and indices " + dims_str(idx.shape));
    out.assign(idx.shape.begin(), idx.shape.end() - 1);
    for (int64_t d = 0; d < b; ++d)
      if (out[d] < 0) out[d] = data.shape[d];
    out.insert(out.end(), data.shape.begin() + b + k, data.shape.end());
  } else {
    ctx.fail("unknown gather mode " + std::to_string(mode) + " (expected 0 DEFAULT, 1 ELEMENT, 2 ND)");
  }
  if (ctx.has_input(2)) out = gather_addend_output(ctx, out);
  ctx.set_out(0, data.dtype, out);
}

// ---------------------------------------------------------------------------------------------------------
void infer_shape(InferContext& ctx) {
  int64_t r = static_cast<int64_t>(ctx.in(0).shape.size());
  int64_t s = ctx.attrs().i("start", 0), e = ctx.attrs().i("end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::clamp<int64_t>(s, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  ctx.set_out(0, DataType::kINT64, {std::max<int64_t>(e - s, 0)});
}

void infer_constant_of_shape(InferContext& ctx) {
  DataType dt = DataType::kFLOAT;
  if (ctx.attrs().has("value")) {
    const HostTensor& v = ctx.attrs().tensor("value");
    if (v.numel() != 1) ctx.fail("the 'value' attribute must hold one element, got shape " + dims_str(v.shape()));
    dt = v.dtype();
  }
  Dims out = shape_values_or_unknown(ctx, 0, "the shape");
  for (int64_t d : out)
    if (d < -1 || (d == -1 && ctx.in(0).value)) ctx.fail("the shape " + dims_str(out) + " has a negative dim");
  ctx.set_out(0, dt, out);
}

void infer_fill(InferContext& ctx) {
  const auto& a = ctx.attrs();
  int64_t op = a.i("op", 0);
  if (op < 0 || op > 2) ctx.fail("unknown fill op " + std::to_string(op) + " (expected 0 LINSPACE, 1 RANDOM_UNIFORM, 2 RANDOM_NORMAL)");
  Dims out;
  if (ctx.has_input(0)) {
    bool known = false;
    out = shape_values_or_unknown(ctx, 0, "the shape", &known);
    if (known)
      for (int64_t d : out)
        if (d < 0) ctx.fail("the shape " + dims_str(out) + " has a negative dim");
  } else {
    out = a.ints("shape");
    for (int64_t d : out)
      if (d < 0) ctx.fail("the 'shape' attribute " + dims_str(out) + " has a negative dim");
  }
  DataType dt = DataType::kFLOAT;
  if (a.has("dtype")) {
    int64_t raw = a.i("dtype", 0);
    if (!dtype_is_valid(static_cast<int32_t>(raw))) ctx.fail("unknown dtype " + std::to_string(raw));
    dt = static_cast<DataType>(raw);
  } else if (ctx.has_input(1)) {
    dt = ctx.in(1).dtype;
  }
  if (op != 0 && !dtype_is_float(dt)) ctx.fail(std::string("random fill needs a float dtype, got ") + dtype_name(dt));
  ctx.set_out(0, dt, out);
}

void infer_range(InferContext& ctx) {
  DataType dt = ctx.in(0).dtype;
  for (size_t i = 0; i < 3; ++i) {
    const TensorInfo& t = ctx.in(i);
    if (t.dtype != dt)
      ctx.fail(in_name(i) + " has dtype " + dtype_name(t.dtype) + ", input 0 has " + dtype_name(dt));
    int64_t n = volume(t.shape);
    if (n != 1 && n != -1) ctx.fail(in_name(i) + " must be a scalar, got shape " + dims_str(t.shape));
  }
  if (dt != DataType::kFLOAT && dt != DataType::kDOUBLE && dt != DataType::kINT32 && dt != DataType::kINT64)
    ctx.fail(std::string("supports float32, float64, int32 and int64, got ") + dtype_name(dt));
  int64_t n = -1;
  if (ctx.in(0).value && ctx.in(1).value && ctx.in(2).value) {
    if (dtype_is_float(dt)) {
      double s = ctx.in(0).value->get_f64(0), l = ctx.in(1).value->get_f64(0), d = ctx.in(2).value->get_f64(0);
      if (d == 0) ctx.fail("delta is 0");
      n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((l - s) / d)));
    } else {
      int64_t s = ctx.in(0).value->get_i64(0), l = ctx.in(1).value->get_i64(0), d = ctx.in(2).value->get_i64(0);
      if (d == 0) ctx.fail("delta is 0");
      int64_t span = l - s;
      if ((span > 0) != (d > 0) || span == 0) n = 0;
      else n = (span + d - (d > 0 ? 1 : -1)) / d;
    }
  }
  ctx.set_out(0, dt, {n});
}

// ---------------------------------------------------------------------------------------------------------
void infer_expand(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  bool known = false;
  Ints shape = shape_values_or_unknown(ctx, 1, "the shape", &known);
  if (known)
    for (int64_t d : shape)
      if (d < 0) ctx.fail("the target shape " + dims_str(shape) + " has a negative dim");
  ctx.set_out(0, x.dtype, broadcast_shapes(ctx, x.shape, shape));
}

void infer_tile(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  bool known = false;
  Ints reps = shape_values_or_unknown(ctx, 1, "the repeats", &known);
  check_len(ctx, reps, x.shape.size(), "the repeats");
  Dims out(x.shape.size());
  for (size_t d = 0; d < out.size(); ++d) {
    if (known && reps[d] < 0) ctx.fail("the repeats " + dims_str(reps) + " have a negative entry");
    out[d] = (reps[d] == 0) ? 0 : (reps[d] < 0 || x.shape[d] < 0) ? -1 : x.shape[d] * reps[d];
  }
  ctx.set_out(0, x.dtype, out);
}

void infer_pad(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  int64_t r = static_cast<int64_t>(x.shape.size());
  std::string mode = ctx.attrs().s("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    ctx.fail("unknown pad mode '" + mode + "' (expected constant, reflect, edge or wrap)");
  Ints axes;
  bool axes_known = true;
  if (ctx.has_input(3)) axes = shape_values_or_unknown(ctx, 3, "the pad axes", &axes_known);
  else for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  bool known = true;
  Ints pads = ctx.has_input(1) ? shape_values_or_unknown(ctx, 1, "the pads", &known) : ctx.attrs().ints("pads");
  if (pads.empty() && !ctx.has_input(1)) pads.assign(2 * axes.size(), 0);
  check_len(ctx, pads, 2 * axes.size(), "the pads (begins then ends)");
  if (ctx.has_input(2)) {
    const TensorInfo& v = ctx.in(2);
    int64_t n = volume(v.shape);
    if (n != 1 && n != -1 && n != 0) ctx.fail("the constant value (input 2) must be a scalar, got shape " + dims_str(v.shape));
  }
  if (!axes_known) {
    ctx.set_out(0, x.dtype, Dims(r, -1));
    return;
  }
  Dims out = x.shape;
  size_t n = axes.size();
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < n; ++i) {
    int64_t ax = normalize_axis(ctx, axes[i], r);
    if (seen[ax]) ctx.fail("axis " + std::to_string(axes[i]) + " appears twice in the pad axes " + dims_str(axes));
    seen[ax] = true;
    if (!known || x.shape[ax] < 0) {
      out[ax] = -1;
      continue;
    }
    out[ax] = x.shape[ax] + pads[i] + pads[i + n];
    if (out[ax] < 0)
      ctx.fail("padding axis " + std::to_string(ax) + " of size " + std::to_string(x.shape[ax]) + " by [" +
               std::to_string(pads[i]) + ", " + std::to_string(pads[i + n]) + "] gives a negative size");
    if (x.shape[ax] == 0 && out[ax] > 0 && mode != "constant")
      ctx.fail("cannot pad the empty axis " + std::to_string(ax) + " in mode '" + mode + "'");
  }
  ctx.set_out(0, x.dtype, out);
}

// ---------------------------------------------------------------------------------------------------------
void infer_resize(InferContext& ctx) {
  const auto& a = ctx.attrs();
  const TensorInfo& x = ctx.in(0);
  size_t r = x.shape.size();
  int64_t mode = a.i("mode", 0);
  if (mode < 0 || mode > 2) ctx.fail("unknown resize mode " + std::to_string(mode) + " (expected 0..2)");
  int64_t ct = a.i("coordinate_transformation", 1);
  if (!(ct >= 0 && ct <= 2) && !(ct >= 64 && ct <= 66))
    ctx.fail("unknown coordinate transformation " + std::to_string(ct));
  int64_t nr = a.i("nearest_rounding", 2);
  if (nr < 0 || nr > 3) ctx.fail("unknown nearest rounding " + std::to_string(nr));
  bool sizes_in = ctx.has_input(1) && shape_tensor_len(ctx, 1, "the sizes") > 0;
  bool scales_in = ctx.has_input(2) && shape_tensor_len(ctx, 2, "the scales") > 0;
  // With `axes`, the run-time sizes/scales inputs hold one value per listed axis; the others keep their size.
  Ints axes = a.ints("axes");
  std::vector<bool> listed(r, axes.empty());
  for (int64_t& ax : axes) {
    ax = normalize_axis(ctx, ax, static_cast<int64_t>(r));
    if (listed[ax]) ctx.fail("axis " + std::to_string(ax) + " appears twice in axes " + dims_str(a.ints("axes")));
    listed[ax] = true;
  }
  if (axes.empty())
    for (size_t d = 0; d < r; ++d) axes.push_back(static_cast<int64_t>(d));
  const size_t n_in = (sizes_in || scales_in) ? axes.size() : r;
  Dims out(r, -1);
  for (size_t d = 0; d < r; ++d)
    if (!listed[d]) out[d] = x.shape[d];
  if (sizes_in || (!scales_in && !a.ints("sizes").empty())) {
    bool known = true;
    Ints sizes = sizes_in ? shape_values_or_unknown(ctx, 1, "the sizes", &known) : a.ints("sizes");
    check_len(ctx, sizes, n_in, "the sizes");
    if (known)
      for (int64_t s : sizes)
        if (s < 0) ctx.fail("the sizes " + dims_str(sizes) + " have a negative entry");
    if (sizes_in)
      for (size_t i = 0; i < n_in; ++i) out[axes[i]] = sizes[i];
    else
      out = sizes;
  } else if (scales_in || !a.floats("scales").empty()) {
    std::vector<double> scales;
    if (scales_in) {
      const TensorInfo& s = ctx.in(2);
      if (!dtype_is_float(s.dtype)) ctx.fail(std::string("the scales (input 2) must be float, got ") + dtype_name(s.dtype));
      int64_t len = shape_tensor_len(ctx, 2, "the scales");
      if (static_cast<size_t>(len) != n_in)
        ctx.fail("the scales have " + std::to_string(len) + " values, expected " + std::to_string(n_in));
      if (!s.value) {
        ctx.set_out(0, x.dtype, out);
        return;
      }
      scales.assign(r, 1.0);
      for (int64_t i = 0; i < len; ++i) scales[axes[i]] = static_cast<float>(s.value->get_f64(i));
    } else {
      scales = a.floats("scales");
      if (scales.size() != r)
        ctx.fail("the scales have " + std::to_string(scales.size()) + " values, expected " + std::to_string(r));
    }
    for (size_t d = 0; d < r; ++d) {
      if (!(scales[d] > 0)) ctx.fail("scale " + std::to_string(scales[d]) + " on axis " + std::to_string(d) + " is not positive");
      out[d] = x.shape[d] < 0 ? -1 : static_cast<int64_t>(std::floor(static_cast<double>(x.shape[d]) * scales[d]));
    }
  } else {
    ctx.fail("needs output sizes or scales (inputs 1/2 or the 'sizes'/'scales' attributes)");
  }
  ctx.set_out(0, x.dtype, out);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Constant", 0, 0, 1, &infer_constant});
KILN_REGISTER_OP(OpDef{"Shuffle", 1, 2, 1, &infer_shuffle});
KILN_REGISTER_OP(OpDef{"Squeeze", 1, 2, 1, &infer_squeeze});
KILN_REGISTER_OP(OpDef{"Unsqueeze", 1, 2, 1, &infer_unsqueeze});
KILN_REGISTER_OP(OpDef{"Concatenation", 1, -1, 1, &infer_concat});
KILN_REGISTER_OP(OpDef{"Split", 1, 2, -1, &infer_split});
KILN_REGISTER_OP(OpDef{"Slice", 1, 5, 1, &infer_slice});
KILN_REGISTER_OP(OpDef{"DynamicSlice", 3, 5, 1, &infer_dynamic_slice});
KILN_REGISTER_OP(OpDef{"Gather", 2, 3, 1, &infer_gather});
KILN_REGISTER_OP(OpDef{"Shape", 1, 1, 1, &infer_shape});
KILN_REGISTER_OP(OpDef{"ConstantOfShape", 1, 1, 1, &infer_constant_of_shape});
KILN_REGISTER_OP(OpDef{"Fill", 0, 3, 1, &infer_fill});
KILN_REGISTER_OP(OpDef{"Range", 3, 3, 1, &infer_range});
KILN_REGISTER_OP(OpDef{"Expand", 2, 2, 1, &infer_expand});
KILN_REGISTER_OP(OpDef{"Tile", 2, 2, 1, &infer_tile});
KILN_REGISTER_OP(OpDef{"Pad", 1, 4, 1, &infer_pad});
KILN_REGISTER_OP(OpDef{"Resize", 1, 3, 1, &infer_resize});

}  // namespace kiln::ir
