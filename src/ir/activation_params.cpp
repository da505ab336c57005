#include "ir/activation_params.h"

#include <limits>

namespace kiln::ir {

void activation_defaults(int64_t type, double* alpha, double* beta) {
  // ActivationType codes (ir/OPS.md).
  enum : int64_t { kLeakyRelu = 3, kElu = 4, kSelu = 5, kSoftplus = 7, kClip = 8, kHardSigmoid = 9, kScaledTanh = 10,
                   kThresholdedRelu = 11, kCelu = 67, kShrink = 68 };
  double da = 0, db = 0;
  switch (type) {
    case kLeakyRelu: da = 0.01; break;
    case kElu: case kCelu: case kThresholdedRelu: da = 1.0; break;
    case kSelu: da = 1.67326319217681884765625; db = 1.05070102214813232421875; break;
    case kSoftplus: case kScaledTanh: da = 1.0; db = 1.0; break;
    case kClip: da = -std::numeric_limits<double>::infinity(); db = std::numeric_limits<double>::infinity(); break;
    case kHardSigmoid: da = 0.2; db = 0.5; break;
    case kShrink: da = 0.0; db = 0.5; break;
    default: break;
  }
  *alpha = da;
  *beta = db;
}

}  // namespace kiln::ir
