// Evaluates one IR node on the host: infers its outputs from the inputs (whose values are all known),
// allocates them and runs the CPU kernel. Used by constant folding, by the shape pass to compute small
// shape tensors, and by kernel tests.
#pragma once
#include <vector>

#include "backends/cpu/kernel.h"
#include "ir/host_tensor.h"

namespace kiln::cpu {

// inputs[i] may be nullptr for an omitted optional input.
std::vector<HostTensor> eval_node(const ir::Node& node, const std::vector<const HostTensor*>& inputs,
                                  ThreadPool* pool = nullptr);

}  // namespace kiln::cpu
