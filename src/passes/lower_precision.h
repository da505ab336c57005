// Runs float32 layers in float16 or bfloat16 where the builder flags allow it (BuilderFlag FP16 / BF16).
//
// A layer is lowered when it computes on float32, the target has a low-precision kernel for it (the
// `supported` predicate, given by the backend so this pass knows no backend), and the user did not pin
// it: with OBEY/PREFER_PRECISION_CONSTRAINTS, a layer whose `precision` or output type is set to float32
// keeps it. Weights feeding only lowered layers are converted once at build time; every other precision
// boundary gets a Cast. Network inputs and outputs keep their declared types (a Cast at each), so the
// caller's buffers do not change. Kernels accumulate in float32 whatever their storage type.
#pragma once
#include <functional>

#include "ir/op_registry.h"
#include "passes/pass.h"

namespace kiln::passes {

class LowerPrecision : public Pass {
 public:
  using Supported = std::function<bool(const ir::Node&, const std::vector<ir::TensorInfo>&)>;
  LowerPrecision(DataType low, bool obey_constraints, Supported supported)
      : low_(low), obey_(obey_constraints), supported_(std::move(supported)) {}
  std::string name() const override { return "lower-precision"; }
  bool run(ir::Graph& g) override;

 private:
  DataType low_;
  bool obey_;
  Supported supported_;
};

}  // namespace kiln::passes
