// What the rest of Kiln may ask about GPUs without depending on CUDA headers: whether this build has the
// CUDA backend, whether a device is usable now, and the target string and library versions a plan for
// it records. Implemented by the CUDA backend when it is built, by stubs otherwise.
#pragma once
#include <string>
#include <vector>

#include "ir/op_registry.h"

namespace kiln::gpu {

bool built_with_cuda();
// A CUDA device is present and usable (a driver, at least one device). Never throws.
bool available();
// "cuda:sm_90" for the current device; throws kiln::Error when none.
std::string target();
// "cudart 13000, cublasLt 130000, cudnn 91900": what a plan built here was built against.
std::string library_versions();
// Why no device is usable (empty when one is).
std::string unavailable_reason();
// The CUDA backend has a kernel for this node with these input types (shapes may hold -1).
bool supports(const ir::Node& node, const std::vector<ir::TensorInfo>& inputs);

}  // namespace kiln::gpu
