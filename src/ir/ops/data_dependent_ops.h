// Ops whose output sizes depend on their input *values*, not only on input shapes (NonZero, Unique,
// Compress, NonMaxSuppression). Inference gives them -1 dims; their kernels size their outputs while
// running (cpu::KernelContext::set_output_shape), so graphs that hold them run in the executor's dynamic mode.
#pragma once
#include <string>

namespace kiln::ir {

bool has_data_dependent_shape(const std::string& op);

}  // namespace kiln::ir
