// Host parameters: small tensor inputs whose *values* a CUDA kernel reads on the host (TensorRef::host) to
// set up its launch — a CumSum axis, Reduce axes, Resize scales, Slice starts, Fill's alpha/beta. Shape
// analysis computes many of them (constants, shape arithmetic), and the runtime reads graph inputs that
// define shapes (shape tensors, runtime/shape_inputs.h). The rest are handled here:
//  - graph inputs that reach a host-parameter slot but define no shape are read from the caller's buffers
//    before each run (CudaExecution), like shape tensors;
//  - a step whose host parameter is computed on the device (no host copy) runs on the CPU backend.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::cuda {

// Input slots of `op` whose values its CUDA kernel reads on the host (empty for most ops). Kept beside the
// kernels: a kernel that starts reading an input on the host lists the slot here.
const std::vector<int>& host_parameter_slots(const std::string& op);

// By value id: whether the value's contents feed a host-parameter slot, directly or through the nodes that
// compute it (not through Shape, which reads only dims). Constants are never marked.
std::vector<bool> values_feeding_host_parameters(const ir::Graph& g);

}  // namespace kiln::cuda
