// The CPU Gather's fused addend (ir/OPS.md, input 2; ir/gather_addend.h). y is the gathered rows plus the
// addend broadcast numpy's way; each sum is taken in float32 and rounded once, as the ElementWise SUM that the
// fusion replaced computes it. Two paths, chosen on the real shapes:
// - by rows (by_rows()): after a gathered row is copied into y, the addend's row for it is added in place,
//   while the row is still in cache;
// - by elements, for any other broadcast: the Gather copies its rows into a scratch tensor and add_broadcast
//   writes y from it and the addend through broadcast strides.
#pragma once
#include <cstdint>

#include "backends/cpu/kernel.h"

namespace kiln::cpu {

class GatherAddend {
 public:
  // Checks input 2 of ctx against the data (float32/16 or bf16, gathered along axis 0), the gathered shape
  // and the output y, failing with a message that names the layer. For DEFAULT mode only (k_gather refuses an
  // addend in the other modes before).
  GatherAddend(const KernelContext& ctx, const TensorRef& data, const Dims& gathered, const TensorRef& y);

  // Whether the gather writes y's rows itself and add_to adds the addend to each.
  bool by_rows() const { return by_rows_; }

  // Adds the addend's row for gathered row u to `row` (one row of the output); by_rows() only.
  void add_to(void* row, int64_t u) const;

  // y = gathered + addend, both broadcast onto y's shape (backends/cpu/kernels/broadcast.h), rows of the
  // broadcast split over `pool`; `gathered` holds the rows in the gathered shape.
  void add_broadcast(const void* gathered, TensorRef& y, ThreadPool* pool) const;

 private:
  DataType dtype_;
  const void* data_;
  Dims addend_shape_, gathered_shape_;
  bool by_rows_;
  int64_t rows_;       // whole gathered rows in one copy of the addend; row u takes row u mod rows_
  int64_t row_elems_;  // elements in one gathered row
};

}  // namespace kiln::cpu
