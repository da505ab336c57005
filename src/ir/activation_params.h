// The Activation op's alpha/beta (ir/OPS.md): ONNX's defaults by ActivationType when the attribute is
// absent. One table for the CPU kernel, the CUDA kernels (activation, fused epilogue) and pointwise
// programs, so their defaults cannot drift apart.
#pragma once
#include <cstdint>

#include "ir/attrs.h"

namespace kiln::ir {

void activation_defaults(int64_t type, double* alpha, double* beta);

// alpha/beta of an activation of `type` read from `a` (attribute names alpha_key/beta_key: the fused
// epilogues store them as act_alpha/act_beta), the defaults where absent.
inline void activation_params(const Attrs& a, int64_t type, double* alpha, double* beta,
                              const char* alpha_key = "alpha", const char* beta_key = "beta") {
  double da = 0, db = 0;
  activation_defaults(type, &da, &db);
  *alpha = a.f(alpha_key, da);
  *beta = a.f(beta_key, db);
}

}  // namespace kiln::ir
