// CPU kernel for NLLLoss (ONNX NegativeLogLikelihoodLoss semantics).
//
// Element (n, d) of the flattened [N, C, D] input with target t contributes loss -x[n, t, d] * w[t] and
// weight w[t] (w = 1 without a weight input); a target equal to ignore_index contributes 0 to both.
// "mean" divides the summed loss by the summed weights, which is what ONNX (and PyTorch) define; with no
// weight and no ignored element that is the plain mean. Sums accumulate in double.
#include <string>

#include "backends/cpu/kernel.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

template <class T>
void nll_loss(const KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& target = ctx.input(1);
  const T* w = ctx.has_input(2) ? ctx.input(2).as<T>() : nullptr;
  const int64_t n = x.shape[0], c = x.shape[1];
  int64_t d = 1;  // the flattened spatial size d1*..*dk
  for (size_t k = 1; k < target.shape.size(); ++k) d *= target.shape[k];
  const bool has_ignore = ctx.attrs().has("ignore_index");
  const int64_t ignore = ctx.attrs().i("ignore_index", 0);
  const std::string red = ctx.attrs().s("reduction", "mean");
  T* y = ctx.out[0].as<T>();
  const T* xs = x.as<T>();
  double loss_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      const int64_t e = i * d + j;
      const int64_t t = target.get_i64(e);
      double l = 0, wt = 0;
      if (!(has_ignore && t == ignore)) {
        if (t < 0 || t >= c)
          ctx.fail("target value " + std::to_string(t) + " (at element " + std::to_string(e) +
                   ") is out of range [0, " + std::to_string(c - 1) + "]" +
                   (has_ignore ? " and is not ignore_index " + std::to_string(ignore) : std::string()));
        wt = w ? static_cast<double>(w[t]) : 1.0;
        l = -static_cast<double>(xs[(i * c + t) * d + j]) * wt;
      }
      if (red == "none") y[e] = static_cast<T>(l);
      loss_sum += l;
      weight_sum += wt;
    }
  }
  if (red == "sum") y[0] = static_cast<T>(loss_sum);
  else if (red == "mean") y[0] = static_cast<T>(loss_sum / weight_sum);  // 0/0 = NaN, as ONNX's reference
  else if (red != "none") ctx.fail("unknown reduction '" + red + "'");
}

void k_nll_loss(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return nll_loss<float>(ctx);
    case DataType::kDOUBLE: return nll_loss<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("NLLLoss", &k_nll_loss);

}  // namespace kiln::cpu
