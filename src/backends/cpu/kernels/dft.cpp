// CPU kernels for DFT (ONNX opset 17/20) and STFT (opset 17).
//
// Both run one complex transform per signal line, in double: a radix-2 FFT when the length is a power of
// two, else a direct O(n^2) sum over a precomputed twiddle table (exact sizes, no Bluestein: the lengths
// models use are small or powers of two). Inputs are zero-padded or truncated to the transform length.
//   forward:            X[k] = sum_t x[t] e^{-2 pi i k t / n}   (onesided keeps k <= n/2)
//   inverse:            x[t] = 1/n sum_k X[k] e^{+2 pi i k t / n}
//   inverse + onesided: the input holds bins 0..n/2 of a Hermitian spectrum; the output is real (numpy's
//                       irfft: the imaginary parts of bin 0 and, for even n, bin n/2 do not contribute).
#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range, grain_for
#include "ir/op_registry.h"                  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using cd = std::complex<double>;

// One transform length and direction; reusable for many lines (read-only after construction).
class Transform {
 public:
  Transform(int64_t n, bool inverse) : n_(n), pow2_(n > 0 && (n & (n - 1)) == 0) {
    const double sign = inverse ? 1.0 : -1.0;
    tw_.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      const double a = sign * 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
      tw_[k] = cd(std::cos(a), std::sin(a));
    }
  }

  // out = transform of in (both n long, distinct buffers); unnormalized.
  void run(const cd* in, cd* out) const {
    if (pow2_) return fft(in, out);
    for (int64_t k = 0; k < n_; ++k) {
      cd acc = 0;
      int64_t idx = 0;  // (k * t) mod n, kept incrementally so no product overflows
      for (int64_t t = 0; t < n_; ++t) {
        acc += in[t] * tw_[idx];
        idx += k;
        if (idx >= n_) idx -= n_;
      }
      out[k] = acc;
    }
  }

 private:
  void fft(const cd* in, cd* out) const {
    int bits = 0;
    while ((int64_t{1} << bits) < n_) ++bits;
    for (int64_t i = 0; i < n_; ++i) {  // bit-reversed copy
      int64_t r = 0;
      for (int b = 0; b < bits; ++b)
        if (i & (int64_t{1} << b)) r |= int64_t{1} << (bits - 1 - b);
      out[r] = in[i];
    }
    for (int64_t len = 2; len <= n_; len <<= 1) {
      const int64_t step = n_ / len;
      for (int64_t s = 0; s < n_; s += len)
        for (int64_t j = 0; j < len / 2; ++j) {
          const cd u = out[s + j], v = out[s + j + len / 2] * tw_[j * step];
          out[s + j] = u + v;
          out[s + j + len / 2] = u - v;
        }
    }
  }

  int64_t n_;
  bool pow2_;
  std::vector<cd> tw_;
};

int64_t scalar_input(const KernelContext& ctx, size_t i) {
  const TensorRef& t = ctx.input(i);
  if (t.numel() != 1) ctx.fail("input " + std::to_string(i) + " must be a scalar, got shape " + dims_str(t.shape));
  return t.get_i64(0);
}

template <class T>
void dft(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = ctx.has_input(2) ? scalar_input(ctx, 2) : ctx.attrs().i("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank - 1) ctx.fail("axis is out of range for input " + dims_str(x.shape));
  const bool inverse = ctx.attrs().i("inverse", 0) != 0, onesided = ctx.attrs().i("onesided", 0) != 0;
  const int64_t n_in = x.shape[axis], comp_in = x.shape[rank - 1], comp_out = y.shape[rank - 1];
  int64_t n = ctx.has_input(1) ? scalar_input(ctx, 1) : (inverse && onesided ? 2 * (n_in - 1) : n_in);
  if (n <= 0) ctx.fail("the DFT length must be positive, got " + std::to_string(n));
  const int64_t n_out = onesided && !inverse ? n / 2 + 1 : n;
  if (y.shape[axis] != n_out)
    ctx.fail("output dim " + std::to_string(axis) + " is " + std::to_string(y.shape[axis]) + ", the DFT gives " +
             std::to_string(n_out));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < rank - 1; ++d) inner *= x.shape[d];
  const Transform tr(n, inverse);
  const T* xs = x.as<T>();
  T* ys = y.as<T>();
  const double scale = inverse ? 1.0 / static_cast<double>(n) : 1.0;
  parallel_range(ctx.pool, outer * inner, grain_for(n * n), [&](int64_t b, int64_t e) {
    std::vector<cd> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    for (int64_t line = b; line < e; ++line) {
      const int64_t o = line / inner, i = line % inner;
      auto at = [&](int64_t k) { return ((o * n_in + k) * inner + i) * comp_in; };
      std::fill(in.begin(), in.end(), cd(0));
      if (inverse && onesided) {
        // Rebuild the full Hermitian spectrum from bins 0..n/2 (those present).
        for (int64_t k = 0; k <= n / 2 && k < n_in; ++k) {
          cd v(xs[at(k)], comp_in == 2 ? xs[at(k) + 1] : T(0));
          in[k] = v;
          if (k > 0 && n - k != k) in[n - k] = std::conj(v);
        }
      } else {
        for (int64_t k = 0; k < n && k < n_in; ++k) in[k] = cd(xs[at(k)], comp_in == 2 ? xs[at(k) + 1] : T(0));
      }
      tr.run(in.data(), out.data());
      for (int64_t k = 0; k < n_out; ++k) {
        T* dst = ys + ((o * n_out + k) * inner + i) * comp_out;
        dst[0] = static_cast<T>(out[k].real() * scale);
        if (comp_out == 2) dst[1] = static_cast<T>(out[k].imag() * scale);
      }
    }
  });
}

// STFT: frame f of batch b is signal[b, f*step .. f*step+L) times the window, transformed forward.
template <class T>
void stft(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& y = ctx.out[0];
  const int64_t batch = x.shape[0], length = x.shape[1], comp = x.shape[2];
  const int64_t step = scalar_input(ctx, 1);
  const T* window = ctx.has_input(2) ? ctx.input(2).as<T>() : nullptr;
  const int64_t frame = ctx.has_input(3) ? scalar_input(ctx, 3) : (window ? ctx.input(2).shape[0] : length);
  if (step <= 0 || frame <= 0 || frame > length)
    ctx.fail("frame_step " + std::to_string(step) + " and frame length " + std::to_string(frame) +
             " do not fit a signal of length " + std::to_string(length));
  if (window && ctx.input(2).shape[0] != frame)
    ctx.fail("the window has " + std::to_string(ctx.input(2).shape[0]) + " values, the frame length is " +
             std::to_string(frame));
  const int64_t frames = 1 + (length - frame) / step, bins = y.shape[2];
  if (y.shape[1] != frames) ctx.fail("the output has " + std::to_string(y.shape[1]) + " frames, expected " + std::to_string(frames));
  const Transform tr(frame, false);
  const T* xs = x.as<T>();
  T* ys = y.as<T>();
  parallel_range(ctx.pool, batch * frames, grain_for(frame * frame), [&](int64_t b0, int64_t e0) {
    std::vector<cd> in(static_cast<size_t>(frame)), out(static_cast<size_t>(frame));
    for (int64_t bf = b0; bf < e0; ++bf) {
      const int64_t b = bf / frames, f = bf % frames;
      for (int64_t t = 0; t < frame; ++t) {
        const T* s = xs + (b * length + f * step + t) * comp;
        const double w = window ? static_cast<double>(window[t]) : 1.0;
        in[t] = cd(s[0] * w, comp == 2 ? s[1] * w : 0.0);
      }
      tr.run(in.data(), out.data());
      for (int64_t k = 0; k < bins; ++k) {
        ys[(bf * bins + k) * 2] = static_cast<T>(out[k].real());
        ys[(bf * bins + k) * 2 + 1] = static_cast<T>(out[k].imag());
      }
    }
  });
}

void k_dft(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return dft<float>(ctx);
    case DataType::kDOUBLE: return dft<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

void k_stft(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return stft<float>(ctx);
    case DataType::kDOUBLE: return stft<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("DFT", &k_dft);
KILN_REGISTER_CPU_KERNEL("STFT", &k_stft);

}  // namespace kiln::cpu
