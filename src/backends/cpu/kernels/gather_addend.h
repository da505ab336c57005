// The CPU Gather's fused addend (ir/OPS.md, input 2; ir/gather_addend.h): after a gathered row is copied, the
// addend's row for it is added in place, while the row is still in cache. The sum is taken in float32 and
// rounded once, as the ElementWise SUM that the fusion replaced computes it.
#pragma once
#include <cstdint>

#include "backends/cpu/kernel.h"

namespace kiln::cpu {

class GatherAddend {
 public:
  // Checks input 2 of ctx against the data (float32/16 or bf16, gathered along axis 0) and the output y,
  // failing with a message that names the layer.
  GatherAddend(const KernelContext& ctx, const TensorRef& data, const TensorRef& y);

  // Adds the addend's row for gathered row u to `row` (one row of the output).
  void add_to(void* row, int64_t u) const;

 private:
  DataType dtype_;
  const void* data_;
  int64_t rows_;       // whole gathered rows in one copy of the addend; row u takes row u mod rows_
  int64_t row_elems_;  // elements in one gathered row
};

}  // namespace kiln::cpu
