// CPU kernels for the generated spectral tables: Window (ONNX HannWindow / HammingWindow / BlackmanWindow)
// and MelWeightMatrix. Both are computed in double and written in the output dtype.
//
// Windows (N = size when periodic, size - 1 when symmetric; x = 2 pi n / N):
//   HANN 0: 0.5 - 0.5 cos x;  HAMMING 1: 25/46 - 21/46 cos x;  BLACKMAN 2: 0.42 - 0.5 cos x + 0.08 cos 2x.
// MelWeightMatrix follows the ONNX definition (and its reference) exactly: num_mel_bins + 2 points evenly
// spaced on the mel scale (mel = 2595 log10(1 + hz / 700), the step being the range divided by the
// number of points), mapped to DFT bins floor((dft_length + 1) * hz / sample_rate); each mel bin is a
// triangle rising from its left point to its center and falling to its right point.
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

void store(const TensorRef& y, int64_t i, double v) {
  if (y.dtype == DataType::kFLOAT) y.as<float>()[i] = static_cast<float>(v);
  else y.as<double>()[i] = v;
}

void check_out(const KernelContext& ctx) {
  const DataType dt = ctx.out[0].dtype;
  if (dt != DataType::kFLOAT && dt != DataType::kDOUBLE)
    ctx.fail(std::string("the CPU kernel writes float32 or float64, got ") + dtype_name(dt));
}

void k_window(KernelContext& ctx) {
  check_out(ctx);
  const TensorRef& y = ctx.out[0];
  const int64_t size = ctx.input(0).get_i64(0);
  if (size != y.shape[0]) ctx.fail("size " + std::to_string(size) + " does not match the output " + dims_str(y.shape));
  const int64_t type = ctx.attrs().i("type", 0);
  const bool periodic = ctx.attrs().i("periodic", 1) != 0;
  const double denom = static_cast<double>(periodic ? size : size - 1);
  for (int64_t n = 0; n < size; ++n) {
    // A symmetric window of one point divides 0 by 0, as the ONNX reference does (NaN).
    const double x = 2.0 * std::numbers::pi * static_cast<double>(n) / denom;
    double v;
    if (type == 0) v = 0.5 - 0.5 * std::cos(x);
    else if (type == 1) v = 25.0 / 46.0 - 21.0 / 46.0 * std::cos(x);
    else v = 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2.0 * x);
    store(y, n, v);
  }
}

void k_mel_weight_matrix(KernelContext& ctx) {
  check_out(ctx);
  const TensorRef& y = ctx.out[0];
  const int64_t mel_bins = ctx.input(0).get_i64(0), dft_length = ctx.input(1).get_i64(0);
  const int64_t sample_rate = ctx.input(2).get_i64(0);
  const double lower = ctx.input(3).get_f64(0), upper = ctx.input(4).get_f64(0);
  const int64_t rows = dft_length / 2 + 1;
  if (y.shape[0] != rows || y.shape[1] != mel_bins)
    ctx.fail("the inputs give [" + std::to_string(rows) + ", " + std::to_string(mel_bins) + "], the output is " +
             dims_str(y.shape));
  if (sample_rate <= 0) ctx.fail("sample_rate must be positive, got " + std::to_string(sample_rate));
  const double lo_mel = 2595.0 * std::log10(1.0 + lower / 700.0);
  const double hi_mel = 2595.0 * std::log10(1.0 + upper / 700.0);
  const double step = (hi_mel - lo_mel) / static_cast<double>(mel_bins + 2);
  std::vector<int64_t> bin(static_cast<size_t>(mel_bins + 2));
  for (int64_t i = 0; i < mel_bins + 2; ++i) {
    const double hz = 700.0 * (std::pow(10.0, (static_cast<double>(i) * step + lo_mel) / 2595.0) - 1.0);
    bin[i] = static_cast<int64_t>(std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(sample_rate)));
  }
  for (int64_t i = 0; i < y.numel(); ++i) store(y, i, 0.0);
  auto put = [&](int64_t row, int64_t col, double v) {
    if (row < 0 || row >= rows)
      ctx.fail("mel bin " + std::to_string(col) + " reaches DFT bin " + std::to_string(row) + ", outside [0, " +
               std::to_string(rows - 1) + "]; upper_edge_hertz must not exceed sample_rate / 2");
    store(y, row * mel_bins + col, v);
  };
  for (int64_t i = 0; i < mel_bins; ++i) {
    const int64_t left = bin[i], center = bin[i + 1], right = bin[i + 2];
    if (center == left) put(center, i, 1.0);
    else
      for (int64_t j = left; j <= center; ++j)
        put(j, i, static_cast<double>(j - left) / static_cast<double>(center - left));
    for (int64_t j = center; j < right; ++j)
      put(j, i, static_cast<double>(right - j) / static_cast<double>(right - center));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Window", &k_window);
KILN_REGISTER_CPU_KERNEL("MelWeightMatrix", &k_mel_weight_matrix);

}  // namespace kiln::cpu
