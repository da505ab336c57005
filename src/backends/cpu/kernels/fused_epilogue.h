// The fused epilogue of Convolution and MatrixMultiply on the CPU (ir/OPS.md): after the op has written y,
// y = act(y + bias + residual) in place, with the Activation op's own math (backends/cpu/activation.h).
#pragma once
#include <string>
#include <type_traits>

#include "backends/cpu/activation.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range, grain_for
#include "ir/ops/fused_epilogue.h"

namespace kiln::cpu {

// The residual input (output-shaped, y's dtype) of a fused node, or nullptr; fails on a mismatch.
template <class T>
const T* fused_residual(const KernelContext& ctx, size_t index) {
  if (!ctx.has_input(index)) return nullptr;
  const TensorRef& r = ctx.in[index];
  if (r.dtype != ctx.out[0].dtype || r.shape != ctx.out[0].shape)
    ctx.fail("the residual is " + std::string(dtype_name(r.dtype)) + " " + dims_str(r.shape) + ", expected " +
             dtype_name(ctx.out[0].dtype) + " " + dims_str(ctx.out[0].shape) + " (the output)");
  return r.as<T>();
}

// y[i] = act(y[i] + bias[i % bias_len] + residual[i]) over n elements; bias and residual may be null.
template <class T>
void apply_fused_epilogue(KernelContext& ctx, T* y, int64_t n, const T* bias, int64_t bias_len, const T* residual) {
  if (n <= 0) return;
  auto add = [](T a, T b) {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) + static_cast<std::make_unsigned_t<T>>(b));
    else
      return a + b;
  };
  if (bias) {
    // Row by row (the bias runs along the last dim): contiguous inner loops the compiler vectorizes, no
    // per-element modulo.
    if (bias_len <= 0 || n % bias_len != 0)
      ctx.fail("the fused bias has " + std::to_string(bias_len) + " elements, which do not tile the " +
               std::to_string(n) + "-element output");
    const int64_t rows = n / bias_len;
    parallel_range(ctx.pool, rows, grain_for(2 * bias_len), [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        T* yr = y + r * bias_len;
        const T* res = residual ? residual + r * bias_len : nullptr;
        if (res) {
          for (int64_t j = 0; j < bias_len; ++j) yr[j] = add(add(yr[j], bias[j]), res[j]);
        } else {
          for (int64_t j = 0; j < bias_len; ++j) yr[j] = add(yr[j], bias[j]);
        }
      }
    });
  } else if (residual) {
    parallel_range(ctx.pool, n, grain_for(2), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = add(y[i], residual[i]);
    });
  }
  const int64_t act = ir::fused_activation(ctx.attrs());
  if (act == -1) return;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    double alpha, beta;
    fused_activation_params(ctx.attrs(), act, &alpha, &beta);
    apply_activation(ctx, act, alpha, beta, y, y, n);
  } else {
    ctx.fail("a fused activation needs a float output");
  }
}

}  // namespace kiln::cpu
