// CPU kernels for OneHot, ReverseSequence and CenterCropPad. All three only move elements, so they are
// dtype-generic (element copies of dtype_size bytes).
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

// OneHot: out[.., i_axis, ..] = on where i_axis == indices[..] (negative indices + depth), else off. An
// index outside [-depth, depth) selects nothing (a row of `off`), as ONNX specifies.
void k_one_hot(KernelContext& ctx) {
  const TensorRef& idx = ctx.input(0);
  const TensorRef& values = ctx.input(2);
  const TensorRef& y = ctx.out[0];
  const int64_t rank = static_cast<int64_t>(y.shape.size());
  int64_t axis = ctx.attrs().i("axis", -1);
  if (axis < 0) axis += rank;
  const int64_t depth = y.shape[axis];
  if (static_cast<int64_t>(ctx.input(1).get_f64(0)) != depth)
    ctx.fail("depth " + std::to_string(ctx.input(1).get_f64(0)) + " does not match the output " + dims_str(y.shape));
  if (values.numel() != 2) ctx.fail("values must hold 2 elements, got " + std::to_string(values.numel()));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.shape[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= y.shape[d];
  const size_t es = dtype_size(y.dtype);
  const char* off = static_cast<const char*>(values.data);
  const char* on = off + es;
  char* out = static_cast<char*>(y.data);
  const bool float_idx = idx.dtype == DataType::kFLOAT || idx.dtype == DataType::kDOUBLE;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t e = o * inner + i;
      int64_t k = float_idx ? static_cast<int64_t>(idx.get_f64(e)) : idx.get_i64(e);  // floats truncate
      if (k < 0) k += depth;
      for (int64_t d = 0; d < depth; ++d)
        std::memcpy(out + ((o * depth + d) * inner + i) * es, d == k ? on : off, es);
    }
}

// ReverseSequence: y = x, then for batch entry b the steps [0, len_b) along the time axis are reversed.
void k_reverse_sequence(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& lens = ctx.input(1);
  const TensorRef& y = ctx.out[0];
  const int64_t time_axis = ctx.attrs().i("time_axis", 0);
  const int64_t steps = x.shape[time_axis], batch = x.shape[1 - time_axis];
  int64_t inner = 1;
  for (size_t d = 2; d < x.shape.size(); ++d) inner *= x.shape[d];
  const size_t es = dtype_size(x.dtype), row = static_cast<size_t>(inner) * es;
  if (lens.numel() != batch) ctx.fail("sequence_lens has " + std::to_string(lens.numel()) + " values for batch " + std::to_string(batch));
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(y.data);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = lens.get_i64(b);
    if (len < 0 || len > steps)
      ctx.fail("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) + " is outside [0, " +
               std::to_string(steps) + "]");
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t from = t < len ? len - 1 - t : t;
      auto off = [&](int64_t step) { return time_axis == 0 ? step * batch + b : b * steps + step; };
      if (row) std::memcpy(dst + off(t) * row, src + off(from) * row, row);
    }
  }
}

// CenterCropPad: output index o along a listed axis reads input index o + (in - out) / 2 when cropping,
// o - (out - in) / 2 when padding; reads outside the input give zero bytes.
void k_center_crop_pad(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> axes = ctx.attrs().ints("axes");
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  const TensorRef& shape = ctx.input(1);
  std::vector<int64_t> shift(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (shape.get_i64(static_cast<int64_t>(i)) != y.shape[a])
      ctx.fail("shape " + dims_str(shape.to_i64()) + " does not match the output " + dims_str(y.shape));
    const int64_t in = x.shape[a], out = y.shape[a];
    shift[a] = in >= out ? (in - out) / 2 : -((out - in) / 2);
  }
  const size_t es = dtype_size(x.dtype);
  std::memset(y.data, 0, y.nbytes());
  if (x.numel() == 0) return;
  std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(y.data);
  for (int64_t e = 0; e < y.numel(); ++e) {
    int64_t off = 0;
    bool inside = true;
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t i = idx[d] + shift[d];
      if (i < 0 || i >= x.shape[d]) {
        inside = false;
        break;
      }
      off = off * x.shape[d] + i;
    }
    if (inside) std::memcpy(dst + e * es, src + off * es, es);
    for (int64_t d = rank; d-- > 0;) {
      if (++idx[d] < y.shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("OneHot", &k_one_hot);
KILN_REGISTER_CPU_KERNEL("ReverseSequence", &k_reverse_sequence);
KILN_REGISTER_CPU_KERNEL("CenterCropPad", &k_center_crop_pad);

}  // namespace kiln::cpu
