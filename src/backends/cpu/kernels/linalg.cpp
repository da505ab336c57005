// CPU kernel for Det: LU decomposition with partial pivoting of each trailing M x M matrix, in double.
// det = (-1)^swaps * prod(diag(U)); a zero pivot column gives 0.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/broadcast.h"  // parallel_range, grain_for
#include "ir/op_registry.h"                  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

double det_lu(std::vector<double>& a, int64_t m) {
  double det = 1;
  for (int64_t k = 0; k < m; ++k) {
    int64_t piv = k;
    for (int64_t i = k + 1; i < m; ++i)
      if (std::fabs(a[i * m + k]) > std::fabs(a[piv * m + k])) piv = i;
    if (a[piv * m + k] == 0) return 0;
    if (piv != k) {
      for (int64_t j = 0; j < m; ++j) std::swap(a[k * m + j], a[piv * m + j]);
      det = -det;
    }
    const double p = a[k * m + k];
    det *= p;
    for (int64_t i = k + 1; i < m; ++i) {
      const double f = a[i * m + k] / p;
      if (f == 0) continue;
      for (int64_t j = k + 1; j < m; ++j) a[i * m + j] -= f * a[k * m + j];
    }
  }
  return det;
}

template <class T>
void det(KernelContext& ctx) {
  const TensorRef& x = ctx.input(0);
  const int64_t m = x.shape.back();
  const int64_t count = ctx.out[0].numel();
  const T* xs = x.as<T>();
  T* ys = ctx.out[0].as<T>();
  parallel_range(ctx.pool, count, grain_for(m * m * m), [&](int64_t b, int64_t e) {
    std::vector<double> a(static_cast<size_t>(m * m));
    for (int64_t i = b; i < e; ++i) {
      for (int64_t j = 0; j < m * m; ++j) a[j] = static_cast<double>(xs[i * m * m + j]);
      ys[i] = static_cast<T>(det_lu(a, m));
    }
  });
}

void k_det(KernelContext& ctx) {
  switch (ctx.input(0).dtype) {
    case DataType::kFLOAT: return det<float>(ctx);
    case DataType::kDOUBLE: return det<double>(ctx);
    default: ctx.fail(std::string("the CPU kernel supports float32 and float64, got ") + dtype_name(ctx.input(0).dtype));
  }
}

}  // namespace

KILN_REGISTER_CPU_KERNEL("Det", &k_det);

}  // namespace kiln::cpu
