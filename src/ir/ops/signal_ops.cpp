// Shape/type inference for the signal-processing ops: DFT, STFT, Window (Hann/Hamming/Blackman) and
// MelWeightMatrix. Semantics in ir/OPS.md. Parameters that set output sizes (dft_length, frame_step, a
// window's size, ...) are inputs: when their values are not known here the affected dims are -1.
#include <optional>
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

bool is_int(DataType t) { return t == DataType::kINT32 || t == DataType::kINT64; }

// A scalar (or 1-element) integer input's value when known.
std::optional<int64_t> int_scalar(const InferContext& ctx, size_t i, const std::string& what) {
  if (!ctx.has_input(i)) return std::nullopt;
  const TensorInfo& t = ctx.in(i);
  if (!is_int(t.dtype)) ctx.fail(what + " (input " + std::to_string(i) + ") must be int32 or int64, got " + dtype_name(t.dtype));
  int64_t n = volume(t.shape);
  if (n != 1 && n != -1) ctx.fail(what + " (input " + std::to_string(i) + ") must be a scalar, got shape " + dims_str(t.shape));
  if (!t.value) return std::nullopt;
  return t.value->get_i64(0);
}

void check_float(const InferContext& ctx, DataType dt, const std::string& what) {
  if (dt != DataType::kFLOAT && dt != DataType::kDOUBLE)
    ctx.fail(what + " must be float32 or float64, got " + dtype_name(dt));
}

// DFT: x [..., n, ..., 1|2] (real or complex, the last dim holding the components), transformed along
// `axis` (input 2 when given, else the attribute; counted over all dims, the component dim excluded).
void infer_dft(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_float(ctx, x.dtype, "the input");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank < 2) ctx.fail("the input must be [..., signal, 1 or 2], got " + dims_str(x.shape));
  const int64_t comp = x.shape[rank - 1];
  if (comp != 1 && comp != 2 && comp != -1)
    ctx.fail("the last dim must be 1 (real) or 2 (complex), got " + dims_str(x.shape));
  const bool inverse = ctx.attrs().i("inverse", 0) != 0, onesided = ctx.attrs().i("onesided", 0) != 0;
  if (onesided && !inverse && comp == 2) ctx.fail("onesided needs a real input (last dim 1), got " + dims_str(x.shape));
  std::optional<int64_t> axis = ctx.has_input(2) ? int_scalar(ctx, 2, "axis") : ctx.attrs().i("axis", 1);
  if (axis) {
    int64_t a = *axis < 0 ? *axis + rank : *axis;
    if (a < 0 || a >= rank - 1)
      ctx.fail("axis " + std::to_string(*axis) + " is out of range for input " + dims_str(x.shape) +
               " (the last dim holds the components)");
    axis = a;
  }
  const bool has_len = ctx.has_input(1);
  std::optional<int64_t> len = int_scalar(ctx, 1, "dft_length");
  if (len && *len <= 0) ctx.fail("dft_length must be positive, got " + std::to_string(*len));
  Dims out = x.shape;
  out[rank - 1] = inverse && onesided ? 1 : 2;
  const bool axis_dim_changes = has_len || onesided;
  if (!axis) {
    if (axis_dim_changes)
      for (int64_t d = 0; d < rank - 1; ++d) out[d] = -1;
  } else if (axis_dim_changes) {
    int64_t n = x.shape[*axis];
    int64_t fft_len = has_len ? (len ? *len : -1) : (inverse && onesided ? (n < 0 ? -1 : 2 * (n - 1)) : n);
    if (!has_len && inverse && onesided && n == 1) ctx.fail("an inverse onesided DFT of 1 bin needs dft_length");
    out[*axis] = fft_len < 0 ? -1 : (onesided && !inverse ? fft_len / 2 + 1 : fft_len);
  }
  ctx.set_out(0, x.dtype, out);
}

// STFT: signal [batch, length, 1|2], frame_step, optional window [L], optional frame_length ->
// [batch, frames, bins, 2], frames = 1 + (length - L) / frame_step, bins = L/2+1 when onesided else L.
void infer_stft(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_float(ctx, x.dtype, "the signal");
  if (x.shape.size() != 3 || (x.shape[2] != 1 && x.shape[2] != 2 && x.shape[2] != -1))
    ctx.fail("the signal must be [batch, length, 1 or 2], got " + dims_str(x.shape));
  const bool onesided = ctx.attrs().i("onesided", 1) != 0;
  if (onesided && x.shape[2] == 2) ctx.fail("onesided needs a real signal (last dim 1), got " + dims_str(x.shape));
  std::optional<int64_t> step = int_scalar(ctx, 1, "frame_step");
  if (!ctx.has_input(1)) ctx.fail("frame_step (input 1) is required");
  if (step && *step <= 0) ctx.fail("frame_step must be positive, got " + std::to_string(*step));
  int64_t frame = -1;
  if (ctx.has_input(2)) {
    const TensorInfo& w = ctx.in(2);
    if (w.dtype != x.dtype) ctx.fail("the window must have the signal's dtype " + std::string(dtype_name(x.dtype)));
    if (w.shape.size() != 1) ctx.fail("the window must be 1-D, got " + dims_str(w.shape));
    frame = w.shape[0];
  }
  if (ctx.has_input(3)) {
    std::optional<int64_t> fl = int_scalar(ctx, 3, "frame_length");
    if (fl && *fl <= 0) ctx.fail("frame_length must be positive, got " + std::to_string(*fl));
    if (fl && frame >= 0 && *fl != frame)
      ctx.fail("frame_length " + std::to_string(*fl) + " differs from the window's length " + std::to_string(frame));
    if (fl) frame = *fl;
  } else if (!ctx.has_input(2)) {
    frame = x.shape[1];  // one frame over the whole signal
  }
  if (frame >= 0 && x.shape[1] >= 0 && frame > x.shape[1])
    ctx.fail("the frame length " + std::to_string(frame) + " exceeds the signal length " + std::to_string(x.shape[1]));
  int64_t frames = (frame >= 0 && step && x.shape[1] >= 0) ? 1 + (x.shape[1] - frame) / *step : -1;
  int64_t bins = frame < 0 ? -1 : (onesided ? frame / 2 + 1 : frame);
  ctx.set_out(0, x.dtype, {x.shape[0], frames, bins, 2});
}

DataType out_dtype(const InferContext& ctx) {
  int64_t raw = ctx.attrs().i("dtype", static_cast<int64_t>(DataType::kFLOAT));
  if (!dtype_is_valid(static_cast<int32_t>(raw))) ctx.fail("unknown output dtype " + std::to_string(raw));
  DataType dt = static_cast<DataType>(raw);
  check_float(ctx, dt, "the output dtype");
  return dt;
}

// Window: size (int scalar) -> [size]; `type` HANN 0, HAMMING 1, BLACKMAN 2; `periodic`.
void infer_window(InferContext& ctx) {
  int64_t type = ctx.attrs().i("type", 0);
  if (type < 0 || type > 2) ctx.fail("unknown window type " + std::to_string(type) + " (expected HANN 0, HAMMING 1, BLACKMAN 2)");
  std::optional<int64_t> n = int_scalar(ctx, 0, "size");
  if (n && *n < 0) ctx.fail("size must be >= 0, got " + std::to_string(*n));
  ctx.set_out(0, out_dtype(ctx), {n ? *n : -1});
}

// MelWeightMatrix: num_mel_bins, dft_length, sample_rate (ints), lower/upper edge hertz (floats) ->
// [dft_length/2 + 1, num_mel_bins].
void infer_mel(InferContext& ctx) {
  std::optional<int64_t> bins = int_scalar(ctx, 0, "num_mel_bins");
  std::optional<int64_t> len = int_scalar(ctx, 1, "dft_length");
  int_scalar(ctx, 2, "sample_rate");
  for (size_t i = 3; i < 5; ++i) {
    const TensorInfo& t = ctx.in(i);
    check_float(ctx, t.dtype, i == 3 ? "lower_edge_hertz" : "upper_edge_hertz");
    if (volume(t.shape) != 1 && volume(t.shape) != -1)
      ctx.fail("input " + std::to_string(i) + " must be a scalar, got shape " + dims_str(t.shape));
  }
  if (bins && *bins <= 0) ctx.fail("num_mel_bins must be positive, got " + std::to_string(*bins));
  if (len && *len <= 0) ctx.fail("dft_length must be positive, got " + std::to_string(*len));
  ctx.set_out(0, out_dtype(ctx), {len ? *len / 2 + 1 : -1, bins ? *bins : -1});
}

}  // namespace

KILN_REGISTER_OP(OpDef{"DFT", 1, 3, 1, &infer_dft});
KILN_REGISTER_OP(OpDef{"STFT", 2, 4, 1, &infer_stft});
KILN_REGISTER_OP(OpDef{"Window", 1, 1, 1, &infer_window});
KILN_REGISTER_OP(OpDef{"MelWeightMatrix", 5, 5, 1, &infer_mel});

}  // namespace kiln::ir
